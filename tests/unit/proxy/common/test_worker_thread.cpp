// tests/unit/proxy/common/test_worker_thread: the one thread helper: its stop token wakes a wait
// at once, an escaping exception is counted under the thread's task, and a bounded join leaves a
// stuck thread behind instead of waiting for it.
#include "proxy/common/worker_thread.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using sg::proxy::task_kind;
using sg::proxy::worker_thread;

TEST_CASE("a stop request wakes a body waiting on its token") {
    std::mutex mu;
    std::condition_variable_any cv;
    std::atomic<bool> woke_by_stop{false};
    worker_thread t;
    t.start("sg-test", task_kind::reconcile_job, [&](std::stop_token stop) {
        std::unique_lock lock(mu);
        // An hour's wait that only the stop token can end early.
        cv.wait_for(lock, stop, std::chrono::hours(1), [] { return false; });
        woke_by_stop = stop.stop_requested();
    });
    t.request_stop();
    CHECK(t.join_for(10s));
    CHECK(woke_by_stop.load());
}

// A task that fails alone (an essential one would stop the process).
TEST_CASE("an exception that escapes the body is counted under the thread's task") {
    auto& counted = sg::proxy::process_task_failures()
                        .by_kind[static_cast<std::size_t>(task_kind::reconcile_job)];
    const auto before = counted.load();
    worker_thread t;
    t.start("sg-test", task_kind::reconcile_job,
            [](std::stop_token) { throw std::runtime_error("test: the body threw"); });
    t.join();
    CHECK(counted.load() == before + 1);
}

TEST_CASE("a bounded join leaves a stuck thread behind, and joins a finished one") {
    auto release = std::make_shared<std::atomic<bool>>(false);
    worker_thread stuck;
    stuck.start("sg-test", task_kind::reconcile_job, [release](std::stop_token) {
        while (!release->load()) std::this_thread::sleep_for(1ms);  // ignores its token
    });
    CHECK_FALSE(stuck.join_for(50ms));
    release->store(true);  // the detached thread may now end; it owns a copy of `release`

    worker_thread quick;
    quick.start("sg-test", task_kind::reconcile_job, [](std::stop_token) {});
    CHECK(quick.join_for(10s));
    CHECK(quick.join_for(0ms));  // joined already: nothing left to wait for
}
