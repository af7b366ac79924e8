// proxy/common/worker_thread: a named std::jthread behind the task barrier, with a bounded join.
#include "proxy/common/worker_thread.hpp"

#include "proxy/common/thread_name.hpp"

namespace sg::proxy {

worker_thread::~worker_thread() {
    request_stop();
    join();
}

void worker_thread::start(const char* name, task_kind kind, body_fn body) {
    done_ = std::make_shared<done_flag>();
    thread_ = std::jthread([done = done_, name, kind, body = std::move(body)](std::stop_token t) {
        name_this_thread(name);
        run_guarded(process_task_failures(), kind, [&] { body(std::move(t)); });
        std::lock_guard lock(done->mu);
        done->done = true;
        done->cv.notify_all();
    });
}

void worker_thread::request_stop() { thread_.request_stop(); }

void worker_thread::join() {
    if (thread_.joinable()) thread_.join();
}

bool worker_thread::join_for(std::chrono::milliseconds bound) {
    if (!thread_.joinable()) return true;
    bool done = false;
    {
        std::unique_lock lock(done_->mu);
        done = done_->cv.wait_for(lock, bound, [&] { return done_->done; });
    }
    if (done) {
        thread_.join();
    } else {
        thread_.detach();
    }
    return done;
}

}  // namespace sg::proxy
