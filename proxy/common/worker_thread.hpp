// proxy/common/worker_thread: the one way a module of the service runs a thread of its own. The
// thread is named (top -H and perf tell roles apart), its body runs behind the task barrier (an
// exception that escapes it is logged and counted as the thread's task_kind), it is asked to stop
// through a std::stop_token (a std::condition_variable_any waiting with the token wakes at once),
// and it is joined, or, with a bound, left to the process's exit. A module whose stop must also
// be seen by other threads (the comparer refusing new work) keeps that flag with its own data.
#pragma once

#include "proxy/common/task_failure.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>

namespace sg::proxy {

class worker_thread {
public:
    using body_fn = std::function<void(std::stop_token)>;

    worker_thread() = default;
    worker_thread(worker_thread&&) noexcept = default;
    worker_thread& operator=(worker_thread&&) noexcept = default;
    ~worker_thread();  // request_stop(), then join()

    // Starts body(token) on a new thread named `name` (15 bytes at most), its escaping
    // exception counted as `kind`. The thread must not be running.
    void start(const char* name, task_kind kind, body_fn body);

    // Fires the body's stop token. Idempotent.
    void request_stop();
    // Waits for the body to return. Idempotent; a no-op when never started.
    void join();
    // Waits at most `bound` for the body to return and joins it; false when it is still running
    // (inside a call that cannot be interrupted): it is then detached and left to the process's
    // exit, so whatever it uses must be shared with it, not owned by the caller.
    [[nodiscard]] bool join_for(std::chrono::milliseconds bound);

private:
    struct done_flag {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
    };
    std::shared_ptr<done_flag> done_;
    std::jthread thread_;
};

}  // namespace sg::proxy
