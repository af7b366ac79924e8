// proxy/shadow/shadow: see the header.
#include "proxy/shadow/shadow.hpp"

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

namespace {

using steady = std::chrono::steady_clock;
using outcome = comparator::result;  // of one comparison
namespace ml = mirror_logic;
namespace sl = shadow_logic;
constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::chrono::milliseconds settle_poll{20};
// After v1's storage moved during a re-read: the pause before looking again, doubling from
// settle_poll per re-read up to 16 times it (hot writes cost a few re-reads, not one per poll).
std::chrono::milliseconds reread_backoff(int attempts) {
    return settle_poll * (1 << std::clamp(attempts - 1, 0, 4));
}
constexpr std::size_t max_tallied_paths = 32;
constexpr int comparer_nice = 10;

constexpr std::chrono::milliseconds cpu_sample_every{100};
constexpr std::chrono::milliseconds busy_hold{300};
// The proxy's run-queue wait is judged over this many samples (500 ms): one 100 ms sample swings
// with whichever process ran at that moment, and at half of v1's capacity such swings tripped
// the guard on a third of the samples without moving the client's p99.
constexpr std::size_t proxy_wait_window = 5;

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
constexpr std::array<std::string_view, 8> skip_names = {
    "queue_full",       "deadline", "unsettled", "too_large",
    "v1_reread_failed", "stopping", "budget",    "busy"};

// What v1's answer is compared with (shadow.targets).
using target = config::compare_target;
constexpr std::size_t target_count = 2;
std::string_view name(target t) { return config::to_string(t); }

double seconds_since(steady::time_point t) {
    return std::chrono::duration<double>(steady::now() - t).count();
}

std::int64_t unix_ms() {
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
    steady::time_point until;           // the first look + shadow.settle_timeout
    steady::time_point due;             // when to look again
    int attempts = 1;                   // reads of v1 so far (the served answer counts)
    std::string token;                  // v1 storage's token last seen
    bool in_step = false;               // Dolt's watermark equals `token`
    bool polled = false;                // the mirror was asked and the poll interval has passed
    std::optional<fetch_result> again;  // v1's answer to the re-read, when it is back
};

// Soonest due first (std::push_heap keeps the largest first: compare backwards).
bool later(const settling& a, const settling& b) { return a.due > b.due; }

// Where the two sides stand for one user, as comparable tokens: v1 storage's HEAD and
// pending_diffs/ fingerprint ("absent" without the user, "unreadable" when it cannot be read),
// and Dolt's watermark for the same user (the state it holds was applied from that token).
std::string dolt_token(const std::optional<dolt::watermark>& mark) {
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
constexpr std::size_t max_looks = 4096;
constexpr std::chrono::milliseconds mirror_ask_every{250};  // older looks are dropped beyond this

}  // namespace

struct shadow::impl {
    impl(const config::config& c, mirror* mir, prometheus::Registry& reg)
        : cfg(c),
          mirror_(mir),
          sample(c.shadow),
          breaker(c.mirror.breaker_threshold, c.mirror.breaker_cooldown, c.mirror.retry_max),
          dolt_stats(std::make_shared<dolt::counters>()),
          tally{sl::path_tally(max_tallied_paths), sl::path_tally(max_tallied_paths)} {
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
    std::array<std::array<counts, v1::endpoint_count>, target_count> results{};
    std::array<counter, skip_names.size()> skips{};
    std::array<histogram, v1::endpoint_count> v1_seconds{};
    std::array<std::array<histogram, v1::endpoint_count>, target_count> v2_seconds{};
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
    std::array<sl::path_tally, target_count> tally;

    // Records.
    mutable std::mutex ring_mu;
    std::deque<std::pair<std::string, nlohmann::json>> ring;  // (endpoint, record), newest last
    std::optional<jsonl_log> log;

    static thread_local std::mt19937_64 rng;

    void count(target t, v1::endpoint ep, outcome r) {
        results[static_cast<std::size_t>(t)][static_cast<std::size_t>(ep)]
               [static_cast<std::size_t>(r)]
                   .fetch_add(1, relaxed);
    }
    // A comparison not made for one target, or (no target) for all of them.
    void skip(v1::endpoint ep, skip_reason why, std::optional<target> only = std::nullopt) {
        if (only) {
            count(*only, ep, outcome::skipped);
        } else {
            for (const auto t : targets) count(t, ep, outcome::skipped);
        }
        skips[static_cast<std::size_t>(why)].fetch_add(1, relaxed);
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

thread_local std::mt19937_64 shadow::impl::rng{std::random_device{}()};

shadow::shadow(const config::config& cfg, mirror* mir, prometheus::Registry& reg)
    : impl_(std::make_unique<impl>(cfg, mir, reg)) {}

shadow::~shadow() { stop(); }

void shadow::start() {
    std::lock_guard lock(impl_->mu);
    if (!impl_->workers.empty()) return;
    impl_->stopping = false;
    // Opened by the stage that compares, not by the comparer's existence.
    const auto& records = impl_->cfg.shadow.records;
    if (!impl_->log && !records.file.empty()) {
        impl_->log.emplace(records.file, records.max_file_bytes, records.keep_files);
    }
    impl_->active.store(true);
    impl_->v1_client = std::make_unique<http_client>("sg-compare", comparer_nice);
    for (int i = 0; i < impl_->cfg.shadow.workers; ++i) {
        worker_thread w;
        w.start("sg-compare", task_kind::shadow_worker,
                [this](const std::stop_token&) { impl_->worker_loop(); });
        impl_->workers.push_back(std::move(w));
    }
    if (impl_->cfg.shadow.min_idle_cpu > 0 || impl_->cfg.shadow.max_proxy_wait_us > 0) {
        impl_->cpu_watch.start("sg-cpu-watch", task_kind::shadow_cpu_watch,
                               [this](const std::stop_token&) { impl_->watch_cpu(); });
    }
}

void shadow::stop() {
    // The stop is the comparer's own flag (under mu): offer() must see it too.
    std::vector<worker_thread> threads;
    {
        std::lock_guard lock(impl_->mu);
        impl_->active.store(false);
        impl_->stopping = true;
        for (const auto& q : impl_->queue) {
            impl_->skip(q.job.route.ep, skip_reason::stopping);
        }
        impl_->queue.clear();
        for (const auto& w : impl_->waiting) {
            impl_->skip(w.q->job.route.ep, skip_reason::stopping, w.t);
        }
        impl_->waiting.clear();
        threads.swap(impl_->workers);
        threads.push_back(std::move(impl_->cpu_watch));
    }
    impl_->wake.notify_all();
    impl_->pause.notify_all();
    for (auto& t : threads) t.join();
    // Re-reads still on their way end as "stopping": each comes back through defer, which
    // counts it skipped.
    if (impl_->v1_client) impl_->v1_client->stop();
    impl_->v1_client.reset();
}

bool shadow::active() const { return impl_->active.load(); }

bool shadow::wants(const v1::route& route, std::string_view method) const {
    if (method != "GET" || route.hostile_reason) return false;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    if (!impl_->sample.take(route.ep, route.user_id, u(impl::rng))) return false;
    // A busy machine skips here, before the proxy copies the request and the answer.
    if (impl_->busy.load(relaxed)) {
        impl_->skip(route.ep, skip_reason::busy);
        return false;
    }
    return true;
}

void shadow::offer(shadow_job job) {
    const auto ep = job.route.ep;
    if (job.v1_body.size() > impl_->cfg.shadow.max_body_bytes) {
        impl_->skip(ep, skip_reason::too_large);
        return;
    }
    impl_->v1_seconds[static_cast<std::size_t>(ep)].observe(job.v1_seconds);
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopping || impl_->queue.size() >= impl_->cfg.shadow.queue) {
            impl_->skip(ep, impl_->stopping ? skip_reason::stopping : skip_reason::queue_full);
            return;
        }
        if (!impl_->budget.take(steady::now())) {
            impl_->skip(ep, skip_reason::budget);
            return;
        }
        impl_->queue.push_back(queued{std::move(job), steady::now()});
    }
    impl_->wake.notify_one();
}

// ---- the workers -------------------------------------------------------------------------------

void shadow::impl::worker_loop() {
    // Comparisons yield the CPU to the proxy's threads: on a busy machine they fall behind (and
    // are skipped when the queue fills) rather than slow the client's answers. Linux's nice
    // applies per thread; failing to lower it is harmless.
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), comparer_nice);
    dolt::connection conn(dolt_options(cfg), dolt_stats);
    std::unique_lock lock(mu);
    for (;;) {
        // A comparison due to settle comes first (it is older), then a new one; in between the
        // worker sleeps until the next one is due or a new one is queued.
        const bool due = !waiting.empty() && waiting.front().due <= steady::now();
        if (stopping) return;
        if (due) {
            std::pop_heap(waiting.begin(), waiting.end(), later);
            settling w = std::move(waiting.back());
            waiting.pop_back();
            ++running;
            lock.unlock();
            settle(conn, std::move(w));
            lock.lock();
            --running;
            continue;
        }
        if (queue.empty()) {
            if (waiting.empty()) {
                wake.wait(lock);
            } else {
                wake.wait_until(lock, waiting.front().due);
            }
            continue;
        }
        queued q = std::move(queue.front());
        queue.pop_front();
        ++running;
        lock.unlock();
        process(conn, q);
        lock.lock();
        --running;
    }
}

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

bool shadow::impl::dolt_allowed() {
    std::lock_guard lock(mu);
    return breaker.allow(steady::now());
}

void shadow::impl::dolt_result(bool reached) {
    std::lock_guard lock(mu);
    if (reached) {
        breaker.success();
    } else {
        breaker.failure(steady::now());
    }
}

std::string shadow::impl::git_token(const std::string& user) {
    auto store = reader.get();
    if (!store) return "absent";
    auto hf = (*store)->head_and_fingerprint(user);
    if (hf) return hf->head + "|" + hf->diffs.value;
    if (hf.error().kind == git::error_kind::not_found ||
        hf.error().kind == git::error_kind::invalid_id) {
        return "absent";
    }
    return "unreadable";
}

template <class F>
auto shadow::impl::through_breaker(dolt::connection& conn, F&& fn)
    -> proxy::result<std::decay_t<decltype(*fn(conn))>> {
    if (!dolt_allowed()) return fail("circuit open: Dolt unreachable");
    auto up = conn.ensure_connected();
    if (!up) {
        dolt_result(false);
        return fail(up.error().to_string());
    }
    auto r = fn(conn);
    if (!r) {
        dolt_result(r.error().kind != dolt::error_kind::connection_lost);
        return fail(r.error().to_string());
    }
    dolt_result(true);
    return std::move(*r);
}

watermark_check shadow::impl::check_dolt(dolt::connection& conn, const std::string& user) {
    auto mark =
        through_breaker(conn, [&](dolt::connection& c) { return dolt::read_watermark(c, user); });
    if (!mark) return mark.error();
    return dolt_token(*mark);
}

// Dolt's answer: the watermark and the parts of the user's state the endpoint renders from, in
// one snapshot (one round trip). Slower than shadow.deadline counts as a timeout (Dolt's own
// time, not the time the comparison waited in the queue or for the mirror).
v2_answer shadow::impl::ask_dolt(dolt::connection& conn, const shadow_job& job) {
    const auto t0 = steady::now();
    const auto deadline = t0 + cfg.shadow.deadline;
    bool asked = false;  // the snapshot read itself failed (not the circuit or the connect)
    auto snap = through_breaker(conn, [&](dolt::connection& c) {
        asked = true;
        return dolt::read_snapshot(c, job.route.user_id, dolt::parts_for(job.route));
    });
    if (!snap) return fail(snap.error().what, asked && steady::now() >= deadline);
    auto rendered = v1::render_read(snap->state, job.route, job.target, tz);
    v2_seconds[static_cast<std::size_t>(target::dolt)][static_cast<std::size_t>(job.route.ep)]
        .observe(seconds_since(t0));
    if (!rendered) return fail("not a read route");
    if (steady::now() > deadline) {
        return fail("Dolt answered after the comparison's deadline", true);
    }
    return v2_reply{rendered->status, std::move(rendered->body), dolt_token(snap->mark)};
}

void shadow::impl::process(dolt::connection& conn, queued& q) {
    const auto ep = q.job.route.ep;
    if (steady::now() > q.enqueued + cfg.shadow.deadline) {
        skip(ep, skip_reason::deadline);
        return;
    }
    if (busy.load(relaxed)) {  // queued before the machine got busy
        skip(ep, skip_reason::busy);
        return;
    }
    const auto shared = std::make_shared<const queued>(std::move(q));
    for (const auto t : targets) compare_with(conn, shared, t);
}

void shadow::impl::defer(settling w, bool reread_back) {
    {
        std::lock_guard lock(mu);
        if (reread_back) --rereading;
        if (stopping) {
            skip(w.q->job.route.ep, skip_reason::stopping, w.t);
            return;
        }
        // Bounded like the queue; a re-read coming back was counted in the bound when it left.
        if (!reread_back && waiting.size() + rereading >= cfg.shadow.queue) {
            skip(w.q->job.route.ep, skip_reason::unsettled, w.t);
            return;
        }
        waiting.push_back(std::move(w));
        std::push_heap(waiting.begin(), waiting.end(), later);
    }
    wake.notify_one();  // a sleeping worker sets its timer by the soonest due
}

// Both sides' tokens for `user`: the look another settling comparison made less than a poll
// interval ago, else a new one. A token seen earlier is as good as a fresh one here: the storage
// token read after the re-read must still equal it, and tokens never come back.
user_look shadow::impl::look(dolt::connection& conn, const std::string& user) {
    const auto now = steady::now();
    {
        std::lock_guard lock(looks_mu);
        auto it = looks.find(user);
        if (it != looks.end() && now - it->second.at < settle_poll) return it->second;
    }
    user_look l;
    l.at = now;
    l.git = git_token(user);
    l.dolt = check_dolt(conn, user);
    looks_made.fetch_add(1, relaxed);
    std::lock_guard lock(looks_mu);
    if (looks.size() >= max_looks) {
        std::erase_if(looks, [&](const auto& kv) {
            return now - std::max(kv.second.at, kv.second.mirror_asked) > cfg.shadow.settle_timeout;
        });
    }
    auto& slot = looks[user];
    l.mirror_asked = slot.mirror_asked;
    slot = l;
    return l;
}

// The mirror asked to look at `user` (a change that bypassed the API has no trigger), at most once
// per mirror_ask_every whoever asks: writes through the API mark the user themselves, and each
// ask can cost the mirror a pass.
void shadow::impl::ask_mirror(const std::string& user) {
    if (mirror_ == nullptr) return;
    const auto now = steady::now();
    {
        std::lock_guard lock(looks_mu);
        auto& slot = looks[user];
        if (now - slot.mirror_asked < mirror_ask_every) return;
        slot.mirror_asked = now;
    }
    mirror_->look_at(user);
}

// v1 read again on the client's thread; the answer comes back through defer, due at once. While
// shadow.max_rereads are on their way, the comparison looks again after a poll interval.
void shadow::impl::reread(settling w) {
    {
        std::unique_lock lock(mu);
        if (rereading >= static_cast<std::size_t>(cfg.shadow.max_rereads)) {
            lock.unlock();
            w.in_step = false;
            w.polled = true;
            w.due = steady::now() + settle_poll;
            defer(std::move(w));
            return;
        }
        ++rereading;
    }
    ++w.attempts;
    rereads.fetch_add(1, relaxed);
    const shadow_job& job = w.q->job;
    get_request req{.address = cfg.v1.address,
                    .target = job.target,
                    .headers = job.headers,
                    .timeout = cfg.shadow.deadline,
                    .max_body = cfg.shadow.max_body_bytes};
    auto held = std::make_shared<settling>(std::move(w));
    v1_client->get(std::move(req), [this, held](fetch_result r) {
        held->again = std::move(r);
        held->due = steady::now();
        defer(std::move(*held), true);
    });
}

v2_answer shadow::impl::ask(dolt::connection& conn, const shadow_job& job, target t) {
    return t == target::dolt ? ask_dolt(conn, job) : ask_v2(conn, job);
}

// The v2 service's answer, mapped into v1's shape. v2 reads Dolt: the watermark read just before
// asking says which state it could at least have seen (the settling below checks the rest).
v2_answer shadow::impl::ask_v2(dolt::connection& conn, const shadow_job& job) {
    const watermark_check w = check_dolt(conn, job.route.user_id);
    if (!w) return w.error();
    const auto& v2 = cfg.shadow.v2_http;
    if (v2.address.port == 0) return fail("shadow.v2_http.address is not set");
    const auto t0 = steady::now();
    fetch_result r = http_get({.address = v2.address,
                               .target = v2.path_prefix + job.target,
                               .headers = job.headers,
                               .timeout = cfg.shadow.deadline,
                               .max_body = cfg.shadow.max_body_bytes});
    v2_seconds[static_cast<std::size_t>(target::v2_http)][static_cast<std::size_t>(job.route.ep)]
        .observe(seconds_since(t0));
    if (!r) return r.error();
    return v2_reply{r->status, sl::map_body(r->body, maps[static_cast<std::size_t>(job.route.ep)]),
                    *w};
}

void shadow::impl::compare_with(dolt::connection& conn, const std::shared_ptr<const queued>& q,
                                target t) {
    const shadow_job& job = q->job;
    const auto ep = job.route.ep;
    const auto& user = job.route.user_id;
    const comparator::endpoint_rules& r = rules[static_cast<std::size_t>(ep)];

    // First look: v1's answer as served, against the target's when Dolt's state is the one of
    // v1's storage now (the answer v1 served came from that storage or an older one: an older
    // one can only make a difference, which the settling below sorts out).
    if (comparator::v1_failed(job.v1_status)) {  // nothing to ask v2 about
        count(t, ep, outcome::v1_error);
        return;
    }
    // A branch name, a reflog entry or a search: git resolves it for v1, v2 keeps no refs.
    if (ep == v1::endpoint::get_version && !v1::answerable_revision(job.route.sha)) {
        count(t, ep, outcome::revision_form);
        return;
    }
    settling w;
    w.q = q;
    w.t = t;
    w.token = git_token(user);
    v2_answer v2 = ask(conn, job, t);
    if (!v2) {
        count(t, ep, v2.error().timed_out ? outcome::v2_timeout : outcome::v2_error);
        spdlog::debug("event=shadow_v2_failed target={} endpoint={} request_id={} error=\"{}\"",
                      name(t), v1::name(ep), job.request_id, v2.error().what);
        return;
    }
    w.in_step = w.token != "unreadable" && v2->token == w.token;
    if (w.in_step) {
        const auto c = comparator::compare({job.v1_status, job.v1_body}, {v2->status, v2->body}, r);
        if (c.what == outcome::match) {
            count(t, ep, outcome::match);
            return;
        }
    }
    w.until = steady::now() + cfg.shadow.settle_timeout;
    settle(conn, std::move(w));
}

// Settle: wait until Dolt is in step with v1's storage (token), then read both again with the
// storage unchanged around the two reads. Equal: lag. Different: a discrepancy. Waiting for the
// mirror hands the comparison back (defer) instead of holding the worker.
void shadow::impl::settle(dolt::connection& conn, settling w) {
    const shadow_job& job = w.q->job;
    const auto ep = job.route.ep;
    const auto& user = job.route.user_id;
    const target t = w.t;
    auto v2_failed = [&](const failure& f) {
        count(t, ep, f.timed_out ? outcome::v2_timeout : outcome::v2_error);
        spdlog::debug("event=shadow_v2_failed target={} endpoint={} request_id={} error=\"{}\"",
                      name(t), v1::name(ep), job.request_id, f.what);
    };
    const comparator::endpoint_rules& r = rules[static_cast<std::size_t>(ep)];
    for (;;) {
        {
            std::unique_lock lock(mu);
            if (stopping) {
                skip(ep, skip_reason::stopping, t);
                return;
            }
        }
        if (w.again) {  // v1's second answer is back: Dolt's now, and whether storage moved
            fetch_result again = std::move(*w.again);
            w.again.reset();
            if (!again) {
                skip(ep, skip_reason::v1_reread_failed, t);
                spdlog::debug("event=shadow_reread_failed endpoint={} request_id={} error=\"{}\"",
                              v1::name(ep), job.request_id, again.error().what);
                return;
            }
            v2_answer v2 = ask(conn, job, t);
            if (!v2) {
                v2_failed(v2.error());
                return;
            }
            const std::string after = git_token(user);
            if (after != w.token || v2->token != w.token) {  // storage or Dolt moved meanwhile:
                // look again later, the longer the more often it moved (writes are hot)
                w.in_step = false;
                w.polled = true;
                w.due = steady::now() + reread_backoff(w.attempts);
                defer(std::move(w));
                return;
            }
            const auto c =
                comparator::compare({again->status, again->body}, {v2->status, v2->body}, r);
            if (c.what == outcome::match) {
                count(t, ep, outcome::lagging);  // the first look differed or could not be trusted
                return;
            }
            count(t, ep, c.what);
            if (comparator::is_discrepancy(c.what)) {  // not v1 failing on the re-read
                record(job, t, c, again->status, again->body, *v2, w.attempts);
            }
            return;
        }
        if (steady::now() >= w.until) break;
        if (!w.in_step) {
            if (!w.polled) {  // ask the mirror, look again after a poll interval
                ask_mirror(user);
                w.polled = true;
                w.due = steady::now() + settle_poll;
                defer(std::move(w));
                return;
            }
            w.polled = false;
            const user_look l = look(conn, user);
            if (!l.dolt) {
                v2_failed(l.dolt.error());
                return;
            }
            w.token = l.git;
            w.in_step = w.token != "unreadable" && *l.dolt == w.token;
            continue;
        }
        reread(std::move(w));  // in step at w.token: read v1 again (storage must stay there)
        return;
    }
    skip(ep, skip_reason::unsettled, t);
}

void shadow::impl::record(const shadow_job& job, target t, const comparator::comparison& c,
                          unsigned v1_status, const std::string& v1_body, const v2_reply& v2,
                          int attempts) {
    comparator::discrepancy d;
    d.time_ms = unix_ms();
    d.request_id = job.request_id;
    d.endpoint = std::string(v1::name(job.route.ep));
    d.user = job.route.user_id;
    d.target = job.target;
    d.v2_source = std::string(name(t));
    d.what = c.what;
    d.diff = c.body;
    d.v1_status = v1_status;
    d.v1_body = v1_body;
    d.v2_status = v2.status;
    d.v2_body = v2.body;
    d.attempts = attempts;
    nlohmann::json j = comparator::to_json(d, red);
    {
        std::lock_guard lock(tally_mu);
        auto& paths = tally[static_cast<std::size_t>(t)];
        if (c.body.differences.empty()) {
            paths.add(job.route.ep, "(status)");
        }
        for (const auto& x : c.body.differences) paths.add(job.route.ep, x.general_path);
    }
    if (log) {
        const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (auto written = log->append(line); !written) {
            record_write_errors.fetch_add(1, relaxed);
            spdlog::warn("event=discrepancy_log_failed error=\"{}\"", written.error().what);
        }
    }
    spdlog::info("event=discrepancy target={} endpoint={} result={} request_id={} differences={}",
                 name(t), d.endpoint, comparator::name(c.what), d.request_id,
                 c.body.differences.size());
    if (cfg.shadow.records.ring == 0) return;
    std::lock_guard lock(ring_mu);
    ring.emplace_back(d.endpoint, std::move(j));
    while (ring.size() > cfg.shadow.records.ring) ring.pop_front();
}

// ---- admin and metrics
// ---------------------------------------------------------------------------

std::string shadow::discrepancies_json(std::string_view endpoint, std::size_t limit) const {
    nlohmann::json out = nlohmann::json::array();
    std::lock_guard lock(impl_->ring_mu);
    for (auto it = impl_->ring.rbegin(); it != impl_->ring.rend() && out.size() < limit; ++it) {
        if (!endpoint.empty() && it->first != endpoint) continue;
        out.push_back(it->second);
    }
    return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string shadow::status_json() const {
    const impl& s = *impl_;
    nlohmann::json j;
    {
        std::lock_guard lock(s.mu);
        j["queued"] = s.queue.size();
        j["running"] = s.running;
        j["settling"] = s.waiting.size() + s.rereading;  // waiting for the mirror or v1
        j["workers"] = s.workers.size();
        j["circuit"] = std::string(ml::name(s.breaker.current()));
    }
    j["idle"] = j["queued"] == 0 && j["running"] == 0 && j["settling"] == 0;
    j["cpu_idle_share"] = s.idle.load(relaxed);
    j["proxy_wait_per_run_us"] = s.proxy_wait_per_run.load(relaxed);
    j["busy"] = s.busy.load(relaxed);
    j["busy_samples"] = {{"low_idle_cpu", s.busy_low_idle.load()},
                         {"proxy_wait", s.busy_proxy_wait.load()}};
    nlohmann::json names = nlohmann::json::array();
    for (const auto t : s.targets) names.push_back(std::string(name(t)));
    j["targets"] = std::move(names);
    // Per endpoint: results summed over the targets, and per target.
    nlohmann::json eps = nlohmann::json::object();
    for (const auto ep : v1::all_endpoints()) {
        if (!v1::is_block_read(ep)) continue;
        const auto e = static_cast<std::size_t>(ep);
        nlohmann::json sum = nlohmann::json::object();
        nlohmann::json by_target = nlohmann::json::object();
        for (const auto t : s.targets) {
            nlohmann::json counts = nlohmann::json::object();
            for (const auto r : comparator::all_results()) {
                const std::string key(comparator::name(r));
                const auto n =
                    s.results[static_cast<std::size_t>(t)][e][static_cast<std::size_t>(r)].load();
                counts[key] = n;
                sum[key] = sum.value(key, std::uint64_t{0}) + n;
            }
            by_target[std::string(name(t))] = std::move(counts);
        }
        eps[std::string(v1::name(ep))] = {{"sample_rate", s.sample.rate(ep)},
                                          {"results", std::move(sum)},
                                          {"targets", std::move(by_target)}};
    }
    j["endpoints"] = std::move(eps);
    nlohmann::json skipped = nlohmann::json::object();
    for (std::size_t i = 0; i < skip_names.size(); ++i) {
        skipped[std::string(skip_names[i])] = s.skips[i].load();
    }
    j["skipped"] = std::move(skipped);
    j["rereads"] = s.rereads.load();
    return j.dump() + "\n";
}

std::string shadow::differing_paths_json() const {
    nlohmann::json out = nlohmann::json::array();
    std::lock_guard lock(impl_->tally_mu);
    for (const auto t : impl_->targets) {
        for (const auto& row : impl_->tally[static_cast<std::size_t>(t)].rows()) {
            out.push_back({{"endpoint", std::string(v1::name(row.ep))},
                           {"target", std::string(name(t))},
                           {"path", row.path},
                           {"count", row.count}});
        }
    }
    return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::map<std::string, std::map<std::string, std::uint64_t>> shadow::counts(
    config::compare_target wanted) const {
    std::map<std::string, std::map<std::string, std::uint64_t>> out;
    for (const auto t : impl_->targets) {
        if (t != wanted) continue;
        for (const auto ep : v1::all_endpoints()) {
            if (!v1::is_block_read(ep)) continue;
            auto& row = out[std::string(v1::name(ep))];
            for (const auto r : comparator::all_results()) {
                row[std::string(comparator::name(r))] =
                    impl_
                        ->results[static_cast<std::size_t>(t)][static_cast<std::size_t>(ep)]
                                 [static_cast<std::size_t>(r)]
                        .load();
            }
        }
    }
    return out;
}

void shadow::impl::register_metrics(prometheus::Registry& reg) {
    auto& compared =
        add_counter_family(reg, "shadowgate_compare_total",
                           "Shadow comparisons by endpoint, target (dolt, v2_http) and result.");
    // One histogram per compared endpoint (and target).
    auto& v1_hist = add_histogram_family(reg, "shadowgate_compare_v1_seconds",
                                         "v1's read latency for compared reads.");
    auto& v2_hist = add_histogram_family(
        reg, "shadowgate_compare_v2_seconds",
        "The target's answer time for compared reads (dolt: read and rendering; "
        "v2_http: the service's round trip).");
    for (const auto ep : v1::all_endpoints()) {
        if (!v1::is_block_read(ep)) continue;
        const std::string endpoint(v1::name(ep));
        const auto e = static_cast<std::size_t>(ep);
        v1_seconds[e] = series(v1_hist, {{"endpoint", endpoint}});
        for (const auto t : targets) {
            const std::string target_name(name(t));
            const auto ti = static_cast<std::size_t>(t);
            for (const auto r : comparator::all_results()) {
                results[ti][e][static_cast<std::size_t>(r)] =
                    series(compared, {{"endpoint", endpoint},
                                      {"target", target_name},
                                      {"result", std::string(comparator::name(r))}});
            }
            v2_seconds[ti][e] = series(v2_hist, {{"endpoint", endpoint}, {"target", target_name}});
        }
    }
    auto& skipped = add_counter_family(reg, "shadowgate_compare_skipped_total",
                                       "Comparisons not made, by reason.");
    for (std::size_t i = 0; i < skip_names.size(); ++i) {
        skips[i] = series(skipped, {{"reason", std::string(skip_names[i])}});
    }
    scraped.differing_paths = &add_counter_family(
        reg, "shadowgate_compare_differing_paths_total",
        "Differing field paths in discrepancies (array positions and keys as *; at "
        "most 32 per endpoint, then (other)).");
    scraped.queued =
        add_gauge(reg, "shadowgate_compare_queued", "Comparisons waiting for a worker.");
    scraped.running = add_gauge(reg, "shadowgate_compare_running", "Comparisons in progress.");
    scraped.settling =
        add_gauge(reg, "shadowgate_compare_settling",
                  "Comparisons waiting for the mirror to catch up (holding no worker).");
    scraped.cpu_idle_ratio =
        add_gauge(reg, "shadowgate_compare_cpu_idle_ratio",
                  "The machine's idle CPU share at the last sample (comparisons pause below "
                  "shadow.min_idle_cpu).");
    scraped.proxy_wait_per_run =
        add_gauge(reg, "shadowgate_compare_proxy_wait_per_run_seconds",
                  "How long the proxy threads waited for a CPU, on average, each time they ran "
                  "(last 500 ms; comparisons pause above shadow.max_proxy_wait_us).");
    auto& busy_samples = add_counter_family(
        reg, "shadowgate_compare_busy_samples_total",
        "CPU samples (every 100 ms) that paused new comparisons, by what tripped.");
    busy_low_idle = series(busy_samples, {{"cause", "low_idle_cpu"}});
    busy_proxy_wait = series(busy_samples, {{"cause", "proxy_wait"}});
    rereads = add_counter(reg, "shadowgate_compare_rereads_total",
                          "Second reads of both sides after the mirror settled.");
    record_write_errors = add_counter(reg, "shadowgate_compare_record_write_errors_total",
                                      "Discrepancy records the JSONL file could not take.");
}

void shadow::refresh_metrics() const {
    const impl& s = *impl_;
    {
        std::lock_guard lock(s.tally_mu);
        for (const auto t : s.targets) {
            for (const auto& row : s.tally[static_cast<std::size_t>(t)].rows()) {
                // A path's series is made when the tally first has it: at most 32 per endpoint.
                series(*s.scraped.differing_paths, {{"endpoint", std::string(v1::name(row.ep))},
                                                    {"target", std::string(name(t))},
                                                    {"path", row.path}})
                    .advance_to(static_cast<double>(row.count));
            }
        }
    }
    std::size_t queued = 0, running = 0, settling_now = 0;
    {
        std::lock_guard lock(s.mu);
        queued = s.queue.size();
        running = s.running;
        settling_now = s.waiting.size() + s.rereading;
    }
    s.scraped.queued.set(static_cast<double>(queued));
    s.scraped.running.set(static_cast<double>(running));
    s.scraped.settling.set(static_cast<double>(settling_now));
    s.scraped.cpu_idle_ratio.set(s.idle.load(relaxed));
    s.scraped.proxy_wait_per_run.set(s.proxy_wait_per_run.load(relaxed) / 1e6);
}

}  // namespace sg::proxy
