// proxy/shadow/shadow_cpu: the CPU guard that keeps comparisons from taking CPU the proxy
// needs (see watch_cpu).
#include "proxy/shadow/shadow_internal.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace sg::proxy {

using namespace shadow_detail;

namespace {

// The proxy threads' schedstat so far, summed, and how many there are: every thread of this
// process named sg-proxy (/proc/self/task/*/comm, then its schedstat).
std::pair<sl::sched_times, std::size_t> proxy_sched() {
    sl::sched_times sum;
    std::size_t threads = 0;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        if (!std::getline(comm, name) || name != "sg-proxy") continue;
        std::ifstream stat(task.path() / "schedstat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        if (auto t = sl::parse_schedstat(line)) {
            sum.run += t->run;
            sum.delay += t->delay;
            sum.slices += t->slices;
            ++threads;
        }
    }
    return {sum, threads};
}

}  // namespace

// Every 100 ms: the machine's idle CPU share (/proc/stat) and how long, over the last 500 ms, the
// proxy's threads waited for a CPU each time they ran (their schedstat run delay over their
// timeslices: the delay a request's every step picks up). Below shadow.min_idle_cpu, or above
// shadow.max_proxy_wait_us, new comparisons are skipped (busy, held for 300 ms after the last
// busy sample): on a saturated machine neither this process's comparers nor the database work
// they cause take CPU from the client's answers. A share of time waited would not do: it grows
// with the traffic (a busier proxy is runnable more often) as much as with the contention.
// Readings that cannot be made (no /proc) never make it busy.
void shadow::impl::watch_cpu() {
    auto read = []() -> std::optional<sl::cpu_times> {
        std::ifstream in("/proc/stat");
        std::string line;
        if (!std::getline(in, line)) return std::nullopt;
        return sl::parse_proc_stat(line);
    };
    auto last = read();
    // (summed schedstat, threads) of the last proxy_wait_window samples, oldest first.
    struct wait_sample {
        sl::sched_times sched;
        std::size_t threads;
    };
    std::deque<wait_sample> waits;
    {
        const auto w = proxy_sched();
        waits.push_back({w.first, w.second});
    }
    steady::time_point busy_until{};
    std::unique_lock lock(mu);
    while (!stopping) {
        pause.wait_for(lock, cpu_sample_every, [&] { return stopping; });
        if (stopping) break;
        lock.unlock();
        auto now = read();
        const auto wait = proxy_sched();
        const auto t = steady::now();
        // A thread that came or went makes the sums incomparable: start the window again.
        const sl::sched_times& prev = waits.back().sched;
        if (wait.second != waits.back().threads || wait.first.delay < prev.delay ||
            wait.first.slices < prev.slices) {
            waits.clear();
        }
        waits.push_back({wait.first, wait.second});
        if (waits.size() > proxy_wait_window + 1) waits.pop_front();
        const wait_sample& from = waits.front();
        bool is_busy = false;
        if (last && now) {
            const double share = sl::idle_share(*last, *now);
            idle.store(share, relaxed);
            is_busy = cfg.shadow.min_idle_cpu > 0 && share < cfg.shadow.min_idle_cpu;
            if (is_busy) busy_low_idle.fetch_add(1, relaxed);
        }
        if (wait.second > 0 && waits.size() > 1) {
            const double us = sl::wait_per_run_us(from.sched, wait.first);
            proxy_wait_per_run.store(us, relaxed);
            if (cfg.shadow.max_proxy_wait_us > 0 && us > cfg.shadow.max_proxy_wait_us) {
                busy_proxy_wait.fetch_add(1, relaxed);
                is_busy = true;
            }
        }
        // Once busy, stay busy for a while: the comparisons a quiet sample lets in make the
        // machine busy again at once, and short open windows would only let bursts through.
        if (is_busy) busy_until = t + busy_hold;
        busy.store(t < busy_until, relaxed);
        last = now;
        lock.lock();
    }
}

}  // namespace sg::proxy
