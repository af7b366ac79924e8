// proxy/shadow/shadow_internal: the shadow comparer's engine, shared by the files that make it
// up: shadow.cpp (the public side, the workers' loop, status and metrics), shadow_compare.cpp (one
// comparison: both sides asked, settle-and-reread driven by proxy/shadow/settle, records) and
// shadow_cpu.cpp (the CPU guard). Not for use outside proxy/shadow/.
#pragma once

#include "adapters/dolt/store.hpp"
#include "adapters/git/reader.hpp"
#include "adapters/v1/render.hpp"
#include "adapters/v1/v2_render.hpp"
#include "comparator/record.hpp"
#include "proxy/common/dolt_session.hpp"
#include "proxy/common/jsonl_log.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/common/task_failure.hpp"
#include "proxy/common/time_zone.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/mirror/mirror_logic.hpp"
#include "proxy/shadow/settle.hpp"
#include "proxy/shadow/shadow.hpp"
#include "proxy/shadow/shadow_logic.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <unordered_map>
#include <vector>

namespace sg::proxy {

namespace ml = mirror_logic;
namespace sl = shadow_logic;

namespace shadow_detail {

using steady = std::chrono::steady_clock;

using outcome = comparator::result;  // of one comparison
inline constexpr auto relaxed = std::memory_order_relaxed;
using sl::settle_poll;
inline constexpr std::size_t max_tallied_paths = 32;
inline constexpr int comparer_nice = 10;

inline constexpr std::chrono::milliseconds cpu_sample_every{100};
inline constexpr std::chrono::milliseconds busy_hold{300};
// The proxy's run-queue wait is judged over this many samples (500 ms): one 100 ms sample swings
// with whichever process ran at that moment, and at half of v1's capacity such swings tripped
// the guard on a third of the samples without moving the client's p99.
inline constexpr std::size_t proxy_wait_window = 5;

// Why a comparison was not made (shadowgate_compare_skipped_total{reason}).
enum class skip_reason {
    queue_full,
    deadline,
    unsettled,
    too_large,
    v1_reread_failed,
    stopping,
    budget,
    busy
};
inline constexpr std::array<std::string_view, 8> skip_names = {
    "queue_full",       "deadline", "unsettled", "too_large",
    "v1_reread_failed", "stopping", "budget",    "busy"};

// What v1's answer is compared with (shadow.targets).
using target = config::compare_target;
inline constexpr std::size_t target_count = 2;
inline std::string_view name(target t) { return config::to_string(t); }

inline double seconds_since(steady::time_point t) {
    return std::chrono::duration<double>(steady::now() - t).count();
}

inline std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct queued {
    shadow_job job;
    steady::time_point enqueued;
};

// A comparison whose first look could not decide (Dolt behind v1's storage, or the answers
// differed): it waits for the mirror without holding a worker, resumed by whichever worker is
// free when it is due (shadow::impl::settle).
struct settling {
    std::shared_ptr<const queued> q;
    target t = target::dolt;
    sl::settle_state s;                 // where it stands (proxy/shadow/settle)
    std::optional<fetch_result> again;  // v1's answer to the re-read, when it is back
};

// Soonest due first (std::push_heap keeps the largest first: compare backwards).
inline bool later(const settling& a, const settling& b) { return a.s.due > b.s.due; }

// Where the two sides stand for one user, as comparable tokens: v1 storage's HEAD and
// pending_diffs/ fingerprint ("absent" without the user, "unreadable" when it cannot be read),
// and Dolt's watermark for the same user (the state it holds was applied from that token).
inline std::string dolt_token(const std::optional<dolt::watermark>& mark) {
    return mark ? mark->v1_commit + "|" + mark->diffs_fingerprint : std::string("absent");
}

// The answer of one target: Dolt's tables rendered as v1 would answer, or the v2 service's answer
// mapped into v1's shape; and the Dolt state behind it.
struct v2_reply {
    unsigned status = 0;
    std::string body;
    std::string token;  // Dolt's watermark token of the state answered from (for v2_http: read
                        // just before asking the service)
};
using v2_answer = proxy::result<v2_reply>;  // failure::timed_out: a v2_timeout, else a v2_error

// Dolt's watermark token alone, while waiting for the mirror.
using watermark_check = proxy::result<std::string>;

// Where both sides of one user stood at `at`: shared by every comparison of that user settling
// at once (hot writes queue many), so that they cost one look per poll interval, not one each.
struct user_look {
    steady::time_point at;
    std::string git;                  // v1 storage's token
    watermark_check dolt;             // Dolt's
    steady::time_point mirror_asked;  // the last look_at for this user
};
inline constexpr std::size_t max_looks = 4096;
inline constexpr std::chrono::milliseconds mirror_ask_every{
    250};  // older looks are dropped beyond this

}  // namespace shadow_detail

struct shadow::impl {
    // The engine's own types (shadow_detail), by their short names.
    using outcome = shadow_detail::outcome;
    using queued = shadow_detail::queued;
    using settling = shadow_detail::settling;
    using skip_reason = shadow_detail::skip_reason;
    using target = shadow_detail::target;
    using user_look = shadow_detail::user_look;
    using v2_answer = shadow_detail::v2_answer;
    using v2_reply = shadow_detail::v2_reply;
    using watermark_check = shadow_detail::watermark_check;
    impl(const config::config& c, mirror* mir, prometheus::Registry& reg)
        : cfg(c),
          mirror_(mir),
          sample(c.shadow),
          breaker(c.mirror.breaker_threshold, c.mirror.breaker_cooldown, c.mirror.retry_max),
          dolt_stats(std::make_shared<dolt::counters>()),
          tally{sl::path_tally(shadow_detail::max_tallied_paths),
                sl::path_tally(shadow_detail::max_tallied_paths)} {
        tz = to_v1_zone(c.v1.time_zone);
        // Naive timestamps in rules are read in v1's zone when it is a fixed offset.
        const int naive = tz.k == v1::time_zone::kind::fixed_offset ? tz.offset_minutes : 0;
        for (const auto ep : v1::all_endpoints()) {
            rules[static_cast<std::size_t>(ep)] = sl::rules_for(c.shadow, ep, naive);
        }
        red.all_strings = c.shadow.records.redact_all_strings;
        red.fields = c.shadow.records.redact_fields;
        targets = c.shadow.targets;
        for (const auto ep : v1::all_endpoints()) {
            maps[static_cast<std::size_t>(ep)] = sl::mapping_for(c.shadow, ep);
        }
        register_metrics(reg);
    }

    const config::config cfg;
    mirror* mirror_;
    std::atomic<bool> active{false};  // from start() until stop()
    // v1 re-reads (from start() to stop()): on a thread of their own, so that a worker never
    // waits for v1.
    std::unique_ptr<http_client> v1_client;
    std::vector<target> targets;
    std::array<std::vector<comparator::map_step>, v1::endpoint_count> maps;  // v2's shape -> v1's
    sl::sampler sample;
    v1::time_zone tz;
    std::array<comparator::endpoint_rules, v1::endpoint_count> rules;
    comparator::redaction red;

    // Queue and workers.
    mutable std::mutex mu;
    std::condition_variable wake;  // a comparison was queued (or stopping)
    // Timed waits that only stopping ends (settling, CPU samples): kept off `wake`, whose
    // notify_one must reach an idle worker.
    std::condition_variable pause;
    std::deque<queued> queue;
    std::vector<settling> waiting;  // a heap by `due` (later): comparisons waiting to settle
    std::size_t rereading = 0;      // settling comparisons whose v1 re-read is on its way
    bool stopping = false;
    std::size_t running = 0;
    std::vector<worker_thread> workers;
    worker_thread cpu_watch;
    ml::breaker breaker;                                 // under mu
    sl::token_bucket budget{cfg.shadow.max_per_second};  // under mu
    std::atomic<bool> busy{false};  // the machine has less idle CPU than shadow.min_idle_cpu
    std::atomic<double> idle{1.0};  // the machine's idle share at the last sample
    // The µs the proxy threads waited for a CPU, on average, each time they ran (last 500 ms).
    std::atomic<double> proxy_wait_per_run{0.0};
    // CPU samples that made the machine busy, by what tripped: idle CPU, proxy wait.
    counter busy_low_idle;
    counter busy_proxy_wait;
    std::shared_ptr<dolt::counters> dolt_stats;

    git::lazy_storage_reader reader{cfg.v1_data_dir};  // storage may appear later

    // Metrics: the series counted into, bound by register_metrics (only the configured targets'
    // and the compared endpoints' slots are).
    using counts = std::array<counter, comparator::result_count>;
    std::array<std::array<counts, v1::endpoint_count>, shadow_detail::target_count> results{};
    std::array<counter, shadow_detail::skip_names.size()> skips{};
    std::array<histogram, v1::endpoint_count> v1_seconds{};
    std::array<std::array<histogram, v1::endpoint_count>, shadow_detail::target_count> v2_seconds{};
    counter record_write_errors;
    counter rereads;
    // The series published from the state around them at each scrape (shadow::refresh_metrics).
    struct {
        gauge queued, running, settling, cpu_idle_ratio, proxy_wait_per_run;
        counter_family* differing_paths = nullptr;  // a series per tallied path, as they come
    } scraped;
    void register_metrics(prometheus::Registry& reg);
    std::atomic<std::uint64_t> looks_made{0};  // token checks made for settling comparisons
    std::mutex looks_mu;
    std::unordered_map<std::string, user_look> looks;  // by user, under looks_mu
    mutable std::mutex tally_mu;
    std::array<sl::path_tally, shadow_detail::target_count> tally;

    // Records.
    mutable std::mutex ring_mu;
    std::deque<std::pair<std::string, nlohmann::json>> ring;  // (endpoint, record), newest last
    std::optional<jsonl_log> log;

    static thread_local std::mt19937_64 rng;

    void count(target t, v1::endpoint ep, outcome r) {
        results[static_cast<std::size_t>(t)][static_cast<std::size_t>(ep)]
               [static_cast<std::size_t>(r)]
                   .fetch_add(1, shadow_detail::relaxed);
    }
    // A comparison not made for one target, or (no target) for all of them.
    void skip(v1::endpoint ep, skip_reason why, std::optional<target> only = std::nullopt) {
        if (only) {
            count(*only, ep, outcome::skipped);
        } else {
            for (const auto t : targets) count(t, ep, outcome::skipped);
        }
        skips[static_cast<std::size_t>(why)].fetch_add(1, shadow_detail::relaxed);
    }

    void worker_loop();
    void watch_cpu();
    void process(dolt::connection& conn, queued& q);
    void compare_with(dolt::connection& conn, const std::shared_ptr<const queued>& q, target t);
    void settle(dolt::connection& conn, settling s);
    void defer(settling s, bool reread_back = false);
    user_look look(dolt::connection& conn, const std::string& user);
    void ask_mirror(const std::string& user);
    void reread(settling s);
    std::string git_token(const std::string& user);
    watermark_check check_dolt(dolt::connection& conn, const std::string& user);
    v2_answer ask(dolt::connection& conn, const shadow_job& job, target t);
    v2_answer ask_dolt(dolt::connection& conn, const shadow_job& job);
    v2_answer ask_v2(dolt::connection& conn, const shadow_job& job);
    void record(const shadow_job& job, target t, const comparator::comparison& c,
                unsigned v1_status, const std::string& v1_body, const v2_reply& v2, int attempts);
    bool dolt_allowed();
    // fn(conn) behind the circuit breaker: its value, or a failure when the circuit is open, the
    // session cannot be opened or fn fails (each counted by the breaker; only a lost session
    // counts as Dolt unreachable).
    template <class F>
    auto through_breaker(dolt::connection& conn, F&& fn)
        -> proxy::result<std::decay_t<decltype(*fn(conn))>>;
    void dolt_result(bool reached);
};

}  // namespace sg::proxy
