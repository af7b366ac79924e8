#include "proxy/common/task_failure.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>
#include <csignal>

namespace sg::proxy {

std::string_view name(task_kind k) {
    switch (k) {
        case task_kind::session: return "session";
        case task_kind::accept_loop: return "accept_loop";
        case task_kind::sweep: return "sweep";
        case task_kind::worker_thread: return "worker_thread";
        case task_kind::admin_session: return "admin_session";
        case task_kind::admin_accept_loop: return "admin_accept_loop";
        case task_kind::admin_thread: return "admin_thread";
        case task_kind::mirror_worker: return "mirror_worker";
        case task_kind::mirror_scan: return "mirror_scan";
        case task_kind::shadow_worker: return "shadow_worker";
        case task_kind::shadow_cpu_watch: return "shadow_cpu_watch";
        case task_kind::http_client: return "http_client";
        case task_kind::gate_flusher: return "gate_flusher";
        case task_kind::reconcile_job: return "reconcile_job";
        case task_kind::batch_reader: return "batch_reader";
        case task_kind::control_plane: return "control_plane";
        case task_kind::count_: break;
    }
    return "unknown";
}

bool essential(task_kind k) {
    // A connection, a handler (its client thread serves on) and one reconcile run fail alone.
    return k != task_kind::session && k != task_kind::admin_session &&
           k != task_kind::http_client && k != task_kind::reconcile_job;
}

task_failures& process_task_failures() {
    static task_failures f;
    return f;
}

void task_end(task_failures& f, task_kind k, std::exception_ptr e) noexcept {
    if (!e) return;
    f.by_kind[static_cast<std::size_t>(k)].fetch_add(1, std::memory_order_relaxed);
    std::string what = "unknown exception";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        what = ex.what();
    } catch (...) {
    }
    try {
        spdlog::error("event=task_failed task={} essential={} error=\"{}\"", name(k), essential(k),
                      what);
    } catch (...) {
    }
    if (essential(k) && !f.essential_failed.exchange(true)) {
        // Process-directed: main's sigwait takes it and drains; then it exits non-zero.
        ::kill(::getpid(), SIGTERM);
    }
}

}  // namespace sg::proxy
