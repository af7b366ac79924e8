// proxy/common/task_failure: the one barrier every background task ends into.
// A coroutine spawned with co_spawn completes into on_task_end(f, kind), a thread's body runs
// in run_guarded(f, kind, body): an exception is logged
// (event=task_failed), counted (shadowgate_task_failures_total{task}) and, for the tasks the
// service cannot run without (the accept loops, the deadline sweep, a thread's event loop),
// stops the process: the running service drains as for SIGTERM and exits non-zero. Nothing that
// fails is dropped without a line and a counter (asio::detached would drop it).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace sg::proxy {

enum class task_kind {
    session,            // one client connection of the proxy
    accept_loop,        // the proxy's listener
    sweep,              // a proxy worker's deadline sweep
    worker_thread,      // a proxy worker's event loop
    admin_session,      // one connection of the admin listener
    admin_accept_loop,  // the admin listener
    admin_thread,       // the admin listener's event loop
    mirror_worker,      // the mirror's forward passes
    mirror_scan,        // the mirror's capture scan
    shadow_worker,      // a shadow comparer worker
    shadow_cpu_watch,   // the comparer's CPU guard
    http_client,        // a completion handler on a v1 re-read / v2 HTTP client thread
    gate_flusher,       // the gate's evidence flusher
    reconcile_job,      // POST /admin/reconcile's run
    batch_reader,       // a v1 reader of a batch command (migrate, verify, reconcile)
    control_plane,      // the control plane's poller (the plan every replica follows)
    count_
};
inline constexpr std::size_t task_kind_count = static_cast<std::size_t>(task_kind::count_);

std::string_view name(task_kind k);
// Whether the service cannot go on without the task.
bool essential(task_kind k);

struct task_failures {
    std::array<std::atomic<std::uint64_t>, task_kind_count> by_kind{};
    std::atomic<bool> essential_failed{false};  // main exits non-zero after the drain
};

// The service's one set (every module counts into it; the proxy's metrics publish it as
// shadowgate_task_failures_total{task}).
task_failures& process_task_failures();

// Logs and counts `e` (null: the task ended normally, nothing happens); an essential task's
// failure sets essential_failed and sends the process SIGTERM, which main turns into a drain.
void task_end(task_failures& f, task_kind k, std::exception_ptr e) noexcept;

// The completion handler for co_spawn: `asio::co_spawn(ex, task(), on_task_end(f, kind))`.
inline auto on_task_end(task_failures& f, task_kind k) {
    return [&f, k](std::exception_ptr e) { task_end(f, k, e); };
}

// A thread's body behind the same barrier: `run_guarded(f, task_kind::worker_thread, [&] {
// ioc.run(); })`.
template <class F>
void run_guarded(task_failures& f, task_kind k, F&& body) noexcept {
    try {
        body();
    } catch (...) {
        task_end(f, k, std::current_exception());
    }
}

}  // namespace sg::proxy
