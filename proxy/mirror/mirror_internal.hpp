// proxy/mirror/mirror_internal: the mirror's engine, shared by the files that make it up:
// mirror.cpp (the public side, the worker loop, status and metrics), forward_pass.cpp (one pass:
// read, plan, apply, commit) and capture_scan.cpp. Not for use outside proxy/mirror/.
#pragma once

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/git/reader.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/mirror/mirror.hpp"
#include "proxy/mirror/mirror_logic.hpp"
#include "proxy/mirror/pass_plan.hpp"
#include "proxy/mirror/schedule.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <variant>

namespace sg::proxy {

namespace ml = mirror_logic;

using commit_mode = config::mirror_commit;

// Roughly what a user state holds in memory, for the cache's budget.
std::size_t approximate_bytes(const v1::user_state& s);

inline ml::schedule_policy policy_of(const config::mirror_config& m) {
    ml::schedule_policy p;
    p.breaker_threshold = m.breaker_threshold;
    p.breaker_cooldown = m.breaker_cooldown;
    p.retry_initial = m.retry_initial;
    p.retry_max = m.retry_max;
    p.parked_retry = m.parked_retry;
    return p;
}

struct mirror::impl {
    impl(const config::config& c, prometheus::Registry& reg)
        : cfg(c),
          mode(c.mirror.dolt_commit),
          sched(policy_of(c.mirror)),
          dolt_stats(std::make_shared<dolt::counters>()),
          rng(std::random_device{}()),
          packet_needed(dolt::packet_needed_for_block(c.proxy.limits.body_limit_bytes)) {
        register_metrics(reg);
    }

    const config::config cfg;
    const commit_mode mode;
    std::atomic<bool> active{false};  // from start() until a stop is asked

    // Shared state, under mu.
    mutable std::mutex mu;
    std::condition_variable wake;       // the worker: new dirty user, stop
    std::condition_variable scan_wake;  // the scan thread: stop, scan now
    ml::schedule sched;                 // dirty set, circuit breaker, lag samples
    // The threads' stop: a flag under mu, since they wait on mu's condition variables.
    bool stopping = false;
    // Both stops begin here: no more writes are reported to it, and both threads are woken to
    // see the flag.
    void ask_threads_to_stop() {
        active.store(false);
        std::lock_guard lock(mu);
        stopping = true;
        wake.notify_all();
        scan_wake.notify_all();
    }
    bool scan_requested = false;

    worker_thread worker;   // worker_loop
    worker_thread scanner;  // scan_loop
    std::shared_ptr<dolt::counters> dolt_stats;
    std::mt19937_64 rng;                // worker thread only
    const std::uint64_t packet_needed;  // for the largest block proxy.limits lets through

    // Metrics: the series counted into (monotonic counters), bound by register_metrics.
    counter triggers;
    std::array<counter, ml::pass_result_names.size()> passes{};
    counter applied_commits;
    counter applied_diffs;
    counter rows_written;
    counter rows_deleted;
    counter retries;
    counter parks;
    counter parked_retries;
    counter parked_gone;
    // The server's global max_allowed_packet as the last scan read it (0: not read yet).
    std::atomic<std::uint64_t> server_packet{0};
    counter history_rewrites;
    counter git_errors;
    counter dolt_commits;  // made (Dolt) or recorded (not Dolt)
    counter dolt_commits_empty;
    counter dolt_commit_failures;
    std::atomic<std::uint64_t> dolt_commit_ns{0};
    counter scans;
    counter scan_failures;
    counter scan_found;
    std::atomic<std::uint64_t> scan_last_ns{0};
    std::atomic<std::uint64_t> scan_last_users{0};
    counter schema_failures;
    // The series published from the state above at each scrape (mirror::refresh_metrics).
    struct {
        gauge dirty_users, lag_seconds, parked_users, server_packet, packet_needed,
            packet_too_small, circuit_open, state_cache_bytes, state_cache_users, scan_seconds,
            scan_users;
        counter pass_seconds, dolt_commit_seconds, circuit_opens, dolt_connects,
            dolt_connect_failures, dolt_connection_lost, dolt_retryable, dolt_permanent;
    } scraped;
    void register_metrics(prometheus::Registry& reg);

    // Worker-thread state: schema migrations created tables not yet in a Dolt commit.
    bool new_tables = false;
    // Worker-thread state for the interval policy.
    bool interval_pending = false;
    std::size_t interval_commits = 0;
    std::size_t interval_users = 0;
    std::chrono::steady_clock::time_point interval_since = std::chrono::steady_clock::now();

    // The state last applied per recently mirrored user (mirror.state_cache_mib): the next pass
    // reads on from it (git) and compares with it (Dolt) instead of reading whole histories.
    // Worker thread, and retry_parked (forgets users whose rows an operator wants re-read).
    std::mutex cache_mu;
    struct applied {
        git::user_read read;
        dolt::user_rows rows;  // derived from read.state
    };
    ml::recent_cache<std::shared_ptr<const applied>> applied_states{
        static_cast<std::size_t>(cfg.mirror.state_cache_mib) * 1024 * 1024};
    counter reads_incremental;
    counter reads_full;
    counter applies_known;
    std::atomic<std::uint64_t> pass_ns{0};  // time spent in passes

    std::shared_ptr<const applied> applied_state(const std::string& user) {
        std::lock_guard lock(cache_mu);
        auto* p = applied_states.find(user);
        return p != nullptr ? *p : nullptr;
    }
    void keep_applied_state(const std::string& user, std::shared_ptr<const applied> r) {
        // the rows hold about as much again as the state
        const std::size_t bytes = 2 * approximate_bytes(r->read.state);
        std::lock_guard lock(cache_mu);
        applied_states.put(user, std::move(r), bytes);
    }
    void forget_applied_state(const std::string& user) {
        std::lock_guard lock(cache_mu);
        if (user.empty()) {
            applied_states.clear();
        } else {
            applied_states.erase(user);
        }
    }

    // Opened lazily (storage may appear later). The worker reads a user on every write: the 64
    // most recent repositories (and libgit2's cache of their objects) stay open between passes.
    git::lazy_storage_reader reader{cfg.v1_data_dir, 64};

    const git::storage_reader* storage() {
        auto r = reader.get();
        if (!r) {
            spdlog::error("event=mirror_storage_unusable dir=\"{}\" error=\"{}\"", cfg.v1_data_dir,
                          r.error().message);
            return nullptr;
        }
        return *r;
    }

    // The worker (mirror.cpp) and its forward pass (forward_pass.cpp): read, plan, apply, commit.
    void worker_loop();
    ml::pass_outcome run_pass(dolt::connection& conn, bool& schema_ready, const std::string& user);
    std::optional<ml::pass_outcome> prepare(dolt::connection& conn, bool& schema_ready);
    struct pass_read {
        std::optional<dolt::watermark> mark;
        std::shared_ptr<const applied> known;  // what this mirror applied last, when still valid
        git::user_read read;
    };
    std::variant<pass_read, ml::pass_outcome> read_user(dolt::connection& conn,
                                                        const git::storage_reader& store,
                                                        const std::string& user);
    struct pass_applied {
        dolt::user_rows rows;
        std::size_t diffs_changed = 0;
    };
    std::variant<pass_applied, ml::pass_outcome> apply(dolt::connection& conn,
                                                       const git::storage_reader& store,
                                                       const std::string& user, const pass_read& r,
                                                       const ml::pass_plan& plan);
    void commit(dolt::connection& conn, const std::string& user, const v1::user_state& state,
                const ml::pass_plan& plan, std::size_t diffs_changed);
    ml::pass_outcome git_failure(const git::error& e);
    void commit_interval(dolt::connection& conn, bool force);
    void record_commit(dolt::connection& conn, const ml::commit_step& step, std::string_view user);

    // The capture scan (capture_scan.cpp).
    void scan_loop();
    bool run_scan(dolt::connection& conn);
    void check_packet(dolt::connection& conn);
};

}  // namespace sg::proxy
