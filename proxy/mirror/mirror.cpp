// proxy/mirror/mirror: the worker and capture-scan threads (see the header), their metrics and
// status.
#include "proxy/mirror/mirror.hpp"

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/dolt_commit.hpp"
#include "adapters/dolt/schema.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/git/reader.hpp"
#include "adapters/v1/utf8.hpp"
#include "proxy/common/dolt_session.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/common/task_failure.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/mirror/mirror_apply.hpp"
#include "proxy/mirror/mirror_logic.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

namespace sg::proxy {

namespace ml = mirror_logic;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto relaxed = std::memory_order_relaxed;
// A user whose watermark is this many commits behind is applied in one step (one Dolt commit)
// instead of commit by commit: a user that was never backfilled must not take minutes.
constexpr std::size_t max_replayed_commits = 100;
// Lag samples kept for the p50/p99 in status_json.
constexpr std::size_t lag_samples = 4096;

using commit_mode = config::mirror_commit;

enum class pass_result { applied, unchanged, unreachable, retry, parked };

constexpr std::array<std::string_view, 5> pass_result_names{"applied", "unchanged", "unreachable",
                                                            "retry", "parked"};

struct pass_outcome {
    pass_result result = pass_result::applied;
    std::string error;
    std::string head;         // v1's HEAD as read (for parking)
    std::string fingerprint;  // pending_diffs/ fingerprint as read
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

std::string short_sha(std::string_view s) { return std::string(s.substr(0, 12)); }

// Roughly what a user state holds in memory, for the cache's budget.
std::size_t approximate_bytes(const v1::user_state& s) {
    std::size_t n = sizeof s + s.diffs_fingerprint.size() + s.head.size();
    for (const auto& c : s.commits) n += sizeof c + c.message.size() + c.author.size() + 96;
    for (const auto& b : s.blocks) n += sizeof b + b.source.size() + b.label.size() + 40;
    for (const auto& v : s.versions) {
        n += sizeof v + v.source.size() + v.message.size() + v.author.size() + v.label.size() + 40;
    }
    for (const auto& d : s.diffs) n += sizeof d + 2 * d.raw_json.size();
    return n;
}

}  // namespace

struct mirror::impl {
    impl(const config::config& c, prometheus::Registry& reg)
        : cfg(c),
          mode(c.mirror.dolt_commit),
          breaker(c.mirror.breaker_threshold, c.mirror.breaker_cooldown, c.mirror.retry_max),
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
    ml::dirty_set dirty;
    ml::breaker breaker;
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
    bool scanned_once = false;
    bool in_pass = false;
    std::deque<double> lags;  // seconds from a change noticed to applied, most recent last

    worker_thread worker;   // worker_loop
    worker_thread scanner;  // scan_loop
    std::shared_ptr<dolt::counters> dolt_stats;
    std::mt19937_64 rng;                // worker thread only
    const std::uint64_t packet_needed;  // for the largest block proxy.limits lets through

    // Metrics: the series counted into (monotonic counters), bound by register_metrics.
    counter triggers;
    std::array<counter, pass_result_names.size()> passes{};
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
    steady::time_point interval_since = steady::now();

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

    void worker_loop();
    void scan_loop();
    bool run_scan(dolt::connection& conn);
    pass_outcome run_pass(dolt::connection& conn, bool& schema_ready, const std::string& user);
    void check_packet(dolt::connection& conn);
    void commit_interval(dolt::connection& conn, bool force);
    void record_commit(dolt::connection& conn, const dolt::commit_request& req,
                       std::string_view user, std::string_view v1_commit);
};

mirror::mirror(const config::config& cfg, prometheus::Registry& reg)
    : impl_(std::make_shared<impl>(cfg, reg)) {}

mirror::~mirror() { stop(); }

void mirror::start() {
    // Each thread holds the engine: one left behind by stop(bound) outlives the mirror safely.
    auto run = [self = impl_](void (impl::*loop)()) {
        return [self, loop](const std::stop_token&) { ((*self).*loop)(); };
    };
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = false;
    }
    impl_->active.store(true);
    impl_->worker.start("sg-mirror", task_kind::mirror_worker, run(&impl::worker_loop));
    impl_->scanner.start("sg-scan", task_kind::mirror_scan, run(&impl::scan_loop));
}

bool mirror::active() const { return impl_->active.load(); }

void mirror::stop() {
    impl_->ask_threads_to_stop();
    impl_->worker.join();
    impl_->scanner.join();
}

bool mirror::stop(std::chrono::milliseconds bound) {
    impl_->ask_threads_to_stop();
    const auto until = steady::now() + bound;
    const bool worker_done = impl_->worker.join_for(bound);
    const auto left = std::max(until - steady::now(), steady::duration::zero());
    const bool scanner_done =
        impl_->scanner.join_for(std::chrono::duration_cast<std::chrono::milliseconds>(left));
    if (!worker_done || !scanner_done) {
        spdlog::warn(
            "event=mirror_stop_abandoned bound_ms={} reason=\"a database call is still "
            "running; its user is found again by the next start's scan\"",
            bound.count());
        return false;
    }
    return true;
}

void mirror::written(const v1::route& route, unsigned status, std::string_view body) {
    auto t = ml::trigger_of(route, status, body);  // nullopt for reads and failed writes
    if (!t) return;
    impl_->triggers.fetch_add(1, relaxed);
    {
        std::lock_guard lock(impl_->mu);
        impl_->dirty.mark(t->user_id, steady::now(), std::move(t->commit_sha));
    }
    impl_->wake.notify_one();
}

bool mirror::look_at(const std::string& user) {
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->dirty.is_parked(user)) return false;
        impl_->dirty.mark(user, steady::now());
    }
    impl_->wake.notify_one();
    return true;
}

std::size_t mirror::retry_parked(const std::string& user) {
    std::size_t n = 0;
    {
        std::lock_guard lock(impl_->mu);
        n = impl_->dirty.unpark(user, steady::now());
    }
    // A retry reads the user's rows in Dolt again rather than trusting what was applied last.
    impl_->forget_applied_state(user);
    impl_->wake.notify_one();
    return n;
}

mirror::health_info mirror::health() const {
    std::lock_guard lock(impl_->mu);
    return {impl_->dirty.oldest_age(steady::now()).count(), impl_->dirty.parked().size()};
}

bool mirror::idle() const {
    std::lock_guard lock(impl_->mu);
    return impl_->scanned_once && impl_->dirty.size() == 0 && !impl_->in_pass;
}

// ---- the worker --------------------------------------------------------------------------------

void mirror::impl::record_commit(dolt::connection& conn, const dolt::commit_request& req,
                                 std::string_view user, std::string_view v1_commit) {
    const auto t0 = steady::now();
    dolt::commit_request with_tables = req;
    with_tables.stage_new_tables = req.stage_new_tables || new_tables;
    auto r = dolt::commit_or_record(conn, with_tables, user, v1_commit);
    dolt_commit_ns.fetch_add(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count()),
        relaxed);
    if (!r) {
        // The data is committed and the watermark moved; only the Dolt commit is missing, and
        // the next one (-a) takes these changes with it.
        dolt_commit_failures.fetch_add(1, relaxed);
        spdlog::warn("event=mirror_dolt_commit_failed user={} error=\"{}\"", v1::escaped(user),
                     v1::escaped(r.error().to_string()));
        return;
    }
    new_tables = false;
    if (r->outcome == dolt::commit_outcome::nothing_to_commit) {
        dolt_commits_empty.fetch_add(1, relaxed);
    } else {
        dolt_commits.fetch_add(1, relaxed);
    }
}

void mirror::impl::commit_interval(dolt::connection& conn, bool force) {
    if (mode != commit_mode::interval || !interval_pending) return;
    if (!force && steady::now() - interval_since < cfg.mirror.dolt_commit_interval) return;
    if (!conn.connected()) return;
    dolt::commit_request req;
    req.message = fmt::format("shadowgate mirror: {} v1 commit{} from {} user{}", interval_commits,
                              interval_commits == 1 ? "" : "s", interval_users,
                              interval_users == 1 ? "" : "s");
    req.author = "shadowgate";
    req.time = std::time(nullptr);
    record_commit(conn, req, "", "");
    interval_pending = false;
    interval_commits = 0;
    interval_users = 0;
    interval_since = steady::now();
}

pass_outcome mirror::impl::run_pass(dolt::connection& conn, bool& schema_ready,
                                    const std::string& user) {
    pass_outcome out;
    auto from_dolt = [&](const dolt::error& e) {
        out.error = e.to_string();
        out.result = e.kind == dolt::error_kind::connection_lost ? pass_result::unreachable
                     : e.kind == dolt::error_kind::retryable     ? pass_result::retry
                                                                 : pass_result::parked;
        return out;
    };

    if (auto up = conn.ensure_connected(); !up) {
        out.result = pass_result::unreachable;
        out.error = up.error().to_string();
        return out;
    }
    if (!schema_ready) {
        auto m = dolt::migrate(conn);
        if (!m) {
            schema_failures.fetch_add(1, relaxed);
            auto o = from_dolt(m.error());
            if (o.result == pass_result::parked) o.result = pass_result::retry;  // not the user's
            return o;
        }
        schema_ready = true;
        // New tables are untracked on Dolt: the next Dolt commit must add them (-A, not -a).
        if (!m->empty()) new_tables = true;
    }

    const git::storage_reader* store = storage();
    if (store == nullptr) {
        out.result = pass_result::retry;
        out.error = "v1 storage unusable: " + cfg.v1_data_dir;
        return out;
    }
    auto from_git = [&](const git::error& e) {
        git_errors.fetch_add(1, relaxed);
        out.error = std::string(git::name(e.kind)) + ": " + e.message;
        out.result = e.kind == git::error_kind::io ? pass_result::retry : pass_result::parked;
        return out;
    };
    // Cheap first: HEAD and the pending_diffs/ fingerprint against the watermark (a burst's
    // later triggers usually find their change applied by the pass of an earlier one).
    auto now_at = store->head_and_fingerprint(user);
    if (!now_at) return from_git(now_at.error());
    out.head = now_at->head;
    out.fingerprint = now_at->diffs.value;
    auto mark = dolt::read_watermark(conn, user);
    if (!mark) return from_dolt(mark.error());
    const auto matches = [&](std::string_view head, std::string_view fingerprint) {
        return *mark && (*mark)->v1_commit == head && (*mark)->diffs_fingerprint == fingerprint;
    };
    if (matches(now_at->head, now_at->diffs.value)) {
        out.result = pass_result::unchanged;
        return out;
    }

    // What this mirror applied last, while Dolt still holds it: read on from there.
    auto known = applied_state(user);
    if (known && !matches(known->read.state.head, known->read.state.diffs_fingerprint)) {
        known.reset();
    }
    auto read = known ? store->read_user_since(known->read) : store->read_user(user);
    if (!read) return from_git(read.error());
    (read->incremental ? reads_incremental : reads_full).fetch_add(1, relaxed);
    const v1::user_state& state = read->state;
    out.head = state.head;
    out.fingerprint = state.diffs_fingerprint;
    if (matches(state.head, state.diffs_fingerprint)) {  // moved back meanwhile
        out.result = pass_result::unchanged;
        return out;
    }

    const std::string old_head = *mark ? (*mark)->v1_commit : std::string();
    const ml::history_plan plan = ml::plan_history(state, old_head);
    if (plan.rewritten) {
        history_rewrites.fetch_add(1, relaxed);
        spdlog::warn("event=mirror_history_rewrite user={} watermark={} head={} action=reimport",
                     v1::escaped(user), short_sha(old_head), short_sha(state.head));
    }

    dolt::write_options wopts;
    // Only what is new is derived: the rest comes from the rows applied last.
    dolt::user_rows rows = dolt::derive_rows(state, known ? &known->rows : nullptr);
    std::size_t diffs_changed = 0;
    auto count = [&](const dolt::apply_stats& st) {
        rows_written.fetch_add(st.rows_inserted, relaxed);
        rows_deleted.fetch_add(st.rows_deleted, relaxed);
        diffs_changed += st.diffs_changed;
    };
    auto commit_for = [&](const v1::commit& c) {
        dolt::commit_request req;
        req.message = c.message;
        req.author = c.author;
        req.time = c.commit_time;
        record_commit(conn, req, user, c.sha);
    };

    // Commit by commit (per_v1_commit, a known watermark, a short way behind): every v1 commit
    // becomes one Dolt commit with its author, date and message. Otherwise one step. On a server
    // that is not Dolt there is no history to build, only the record of each commit: one apply
    // of the final state, then one record per new commit.
    auto dolt = conn.is_dolt();
    if (!dolt) return from_dolt(dolt.error());
    const bool per_commit = mode == commit_mode::per_v1_commit && !plan.rewritten && *mark &&
                            plan.new_commits.size() <= max_replayed_commits;
    const bool replay = per_commit && *dolt && plan.new_commits.size() > 1;
    if (replay) {
        auto failed = apply_one_by_one(conn, *store, rows, plan.new_commits, wopts,
                                       [&](const v1::commit& c, const dolt::apply_stats& st) {
                                           count(st);
                                           commit_for(c);
                                       });
        if (failed) {
            if (failed->from == step_failure::source::dolt) return from_dolt(failed->dolt_error);
            git_errors.fetch_add(1, relaxed);
            out.error = failed->message;
            out.result = pass_result::retry;
            return out;
        }
    } else {
        dolt::apply_options aopts;
        aopts.known = known ? &known->rows : nullptr;
        auto r = dolt::apply_user(conn, rows, wopts, aopts);
        if (!r) return from_dolt(r.error());
        if (r->used_known) applies_known.fetch_add(1, relaxed);
        count(*r);
    }
    const std::size_t commits_applied = plan.new_commits.size();

    if (mode == commit_mode::per_v1_commit) {
        if (per_commit && !plan.new_commits.empty()) {
            if (!replay) {
                for (const v1::commit* c : plan.new_commits) commit_for(*c);
            }
        } else if (!plan.new_commits.empty()) {
            dolt::commit_request req;
            req.author = "shadowgate";
            req.time =
                state.commits.empty() ? std::time(nullptr) : state.commits.front().commit_time;
            req.message = plan.rewritten
                              ? fmt::format(
                                    "mirror {}: re-import after a v1 history rewrite ({} is not an "
                                    "ancestor of {})",
                                    user, short_sha(old_head), short_sha(state.head))
                              : fmt::format("mirror {}: {} v1 commits up to {}", user,
                                            plan.new_commits.size(), short_sha(state.head));
            record_commit(conn, req, user, state.head);
        } else if (diffs_changed > 0) {
            dolt::commit_request req;
            req.author = "shadowgate";
            req.time = std::time(nullptr);
            req.message = fmt::format("mirror {}: pending diffs ({} changed)", user, diffs_changed);
            record_commit(conn, req, user, "");  // stands for no v1 commit
        }
    } else if (mode == commit_mode::interval) {
        interval_pending = true;
        interval_commits += commits_applied;
        interval_users += 1;
    }
    applied_commits.fetch_add(commits_applied, relaxed);
    applied_diffs.fetch_add(diffs_changed, relaxed);
    out.result = pass_result::applied;
    keep_applied_state(user,
                       std::make_shared<const applied>(applied{std::move(*read), std::move(rows)}));
    return out;
}

void mirror::impl::worker_loop() {
    dolt::connection conn(dolt_options(cfg), dolt_stats);
    bool schema_ready = false;
    for (;;) {
        std::string user;
        steady::time_point since;
        {
            std::unique_lock lock(mu);
            for (;;) {
                if (stopping) return;
                const auto now = steady::now();
                if (breaker.allow(now)) {
                    if (auto u = dirty.take(now)) {
                        user = std::move(*u);
                        since = dirty.entries().at(user).since;
                        in_pass = true;
                        break;
                    }
                }
                // Sleep until something is due, the circuit may close, or the interval ends.
                auto until = now + std::chrono::seconds(1);
                if (auto due = dirty.next_due()) until = std::min(until, *due);
                if (breaker.current() == ml::breaker::state::open) {
                    until = std::max(until, breaker.open_until());
                }
                if (mode == commit_mode::interval && interval_pending) {
                    until = std::min(until, interval_since + cfg.mirror.dolt_commit_interval);
                }
                lock.unlock();
                commit_interval(conn, false);
                lock.lock();
                if (stopping) return;
                wake.wait_until(lock, std::max(until, steady::now() + milliseconds(1)));
            }
        }

        const auto started = steady::now();
        const pass_outcome o = run_pass(conn, schema_ready, user);
        passes[static_cast<std::size_t>(o.result)].fetch_add(1, relaxed);
        const auto now = steady::now();
        pass_ns.fetch_add(static_cast<std::uint64_t>((now - started).count()), relaxed);
        {
            std::lock_guard lock(mu);
            in_pass = false;
            switch (o.result) {
                case pass_result::applied:
                case pass_result::unchanged: {
                    breaker.success();
                    const double lag = std::chrono::duration<double>(now - since).count();
                    lags.push_back(lag);
                    if (lags.size() > lag_samples) lags.pop_front();
                    dirty.done(user);
                    break;
                }
                case pass_result::unreachable:
                    breaker.failure(now);
                    retries.fetch_add(1, relaxed);
                    dirty.retry(user, now, milliseconds(0), o.error, /*count_attempt=*/false);
                    if (breaker.current() == ml::breaker::state::open) {
                        spdlog::warn(
                            "event=mirror_circuit_open failures={} for_ms={} error=\"{}\"",
                            breaker.consecutive_failures(),
                            std::chrono::duration_cast<milliseconds>(breaker.open_until() - now)
                                .count(),
                            o.error);
                    }
                    schema_ready = false;  // a new server may need the schema
                    break;
                case pass_result::retry: {
                    breaker.success();
                    retries.fetch_add(1, relaxed);
                    const int attempt = dirty.entries().at(user).attempts + 1;
                    const auto wait =
                        ml::backoff(attempt, cfg.mirror.retry_initial, cfg.mirror.retry_max,
                                    std::uniform_real_distribution<double>(0.0, 1.0)(rng));
                    dirty.retry(user, now, wait, o.error);
                    spdlog::warn("event=mirror_retry user={} attempt={} wait_ms={} error=\"{}\"",
                                 v1::escaped(user), attempt, wait.count(), v1::escaped(o.error));
                    break;
                }
                case pass_result::parked:
                    breaker.success();
                    parks.fetch_add(1, relaxed);
                    dirty.park(user, ml::parked_entry{o.error, std::chrono::system_clock::now(),
                                                      o.head, o.fingerprint, now});
                    spdlog::error("event=mirror_parked user={} error=\"{}\"", v1::escaped(user),
                                  v1::escaped(o.error));
                    // A session keeps the settings it started with (max_allowed_packet among
                    // them): the next attempt starts a new one, so an operator's fix counts.
                    conn.close();
                    schema_ready = false;
                    break;
            }
        }
        commit_interval(conn, false);
    }
}

// ---- the capture scan --------------------------------------------------------------------------

// The global value, not the session's: an operator's SET GLOBAL shows at the next scan.
void mirror::impl::check_packet(dolt::connection& conn) {
    auto rows = conn.query("SELECT @@global.max_allowed_packet");
    if (!rows || rows->data.empty() || rows->data[0].empty() || !rows->data[0][0]) return;
    std::uint64_t value = 0;
    const std::string& text = *rows->data[0][0];
    std::from_chars(text.data(), text.data() + text.size(), value);
    const std::uint64_t before = server_packet.exchange(value, relaxed);
    if (value == before) return;
    if (value < packet_needed) {
        spdlog::warn(
            "event=dolt_packet_too_small max_allowed_packet={} needed={} body_limit_bytes={} "
            "detail=\"a block near proxy.limits.body_limit_bytes would park its user: {}\"",
            value, packet_needed, cfg.proxy.limits.body_limit_bytes,
            dolt::packet_remedy(packet_needed));
    } else if (before != 0 && before < packet_needed) {
        spdlog::info("event=dolt_packet_ok max_allowed_packet={} needed={}", value, packet_needed);
    }
}

bool mirror::impl::run_scan(dolt::connection& conn) {
    const auto t0 = steady::now();
    const git::storage_reader* store = storage();
    if (store == nullptr) return false;
    auto listed = store->list_users();
    if (!listed) {
        spdlog::error("event=mirror_scan_failed error=\"{}\"", listed.error().message);
        return false;
    }
    std::unordered_map<std::string, std::pair<std::string, std::string>> marks;
    if (auto up = conn.ensure_connected(); !up) {
        spdlog::warn("event=mirror_scan_skipped reason=dolt_unreachable error=\"{}\"",
                     up.error().to_string());
        return false;
    }
    check_packet(conn);
    auto rows = conn.query("SELECT user_id, v1_commit, diffs_fingerprint FROM mirror_watermarks");
    if (!rows) {
        // No table yet (the worker creates the schema on its first pass): nothing is mirrored.
        if (rows.error().kind != dolt::error_kind::permanent) {
            spdlog::warn("event=mirror_scan_skipped reason=dolt error=\"{}\"",
                         rows.error().to_string());
            return false;
        }
    } else {
        for (auto& r : rows->data) {
            if (r.size() == 3 && r[0] && r[1] && r[2]) marks[*r[0]] = {*r[1], *r[2]};
        }
    }

    struct seen {
        std::string user, head, fingerprint;
    };
    std::vector<seen> changed;
    for (const auto& u : listed->users) {
        auto hf = store->head_and_fingerprint(u);
        if (!hf) {
            changed.push_back({u, "", ""});  // the worker reads it and reports why
            continue;
        }
        auto m = marks.find(u);
        if (m == marks.end() || m->second.first != hf->head ||
            m->second.second != hf->diffs.value || hf->diffs.racy) {
            changed.push_back({u, hf->head, hf->diffs.value});
        }
    }
    std::size_t found = 0;
    bool retried = false;
    {
        std::lock_guard lock(mu);
        const auto now = steady::now();
        // A parked user that now matches its watermark (its storage was repaired back to what
        // Dolt has) is in step again: no longer parked.
        std::unordered_set<std::string_view> differing;
        for (const auto& c : changed) differing.insert(c.user);
        // A parked user that no longer exists in v1 storage has nothing left to mirror: its entry
        // would hold the gate's parked_users criterion shut until a restart.
        std::vector<std::string> settled, gone;
        for (const auto& [user, p] : dirty.parked()) {
            if (!std::binary_search(listed->users.begin(), listed->users.end(), user)) {
                gone.push_back(user);
            } else if (!differing.count(user)) {
                settled.push_back(user);
            }
        }
        for (const auto& user : settled) dirty.forget_parked(user);
        for (const auto& user : gone) {
            dirty.forget_parked(user);
            parked_gone.fetch_add(1, relaxed);
            spdlog::info("event=mirror_parked_released reason=gone user={}", v1::escaped(user));
        }
        // Parked long enough: try again whatever the storage says.
        for (const auto& user : dirty.parked_before(now - cfg.mirror.parked_retry)) {
            dirty.mark(user, now);
            parked_retries.fetch_add(1, relaxed);
            retried = true;
        }
        for (const auto& c : changed) {
            if (dirty.is_parked(c.user) &&
                !dirty.parked_and_changed(c.user, c.head, c.fingerprint)) {
                continue;
            }
            if (dirty.mark(c.user, now)) ++found;
        }
        scanned_once = true;
    }
    if (found > 0 || retried) wake.notify_one();
    scans.fetch_add(1, relaxed);
    scan_found.fetch_add(found, relaxed);
    scan_last_users.store(listed->users.size(), relaxed);
    scan_last_ns.store(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count()),
        relaxed);
    spdlog::debug("event=mirror_scan users={} found={} ms={:.1f}", listed->users.size(), found,
                  std::chrono::duration<double, std::milli>(steady::now() - t0).count());
    return true;
}

void mirror::impl::scan_loop() {
    dolt::connection conn(dolt_options(cfg), dolt_stats);
    for (;;) {
        const bool ok = run_scan(conn);
        if (!ok) scan_failures.fetch_add(1, relaxed);
        std::unique_lock lock(mu);
        // After a failed scan, try again sooner: what it would have found is still waiting.
        const auto wait = ok ? cfg.mirror.scan_interval
                             : std::min<milliseconds>(cfg.mirror.scan_interval, milliseconds(2000));
        scan_wake.wait_for(lock, wait, [&] { return stopping || scan_requested; });
        if (stopping) return;
        scan_requested = false;
    }
}

// ---- metrics and status ------------------------------------------------------------------------

std::string mirror::packet_info::remedy() const { return dolt::packet_remedy(needed); }

mirror::packet_info mirror::packet() const {
    return {impl_->server_packet.load(relaxed), impl_->packet_needed};
}

void mirror::impl::register_metrics(prometheus::Registry& reg) {
    auto gauge_of = [&](const char* name, const char* help) { return add_gauge(reg, name, help); };
    scraped.dirty_users =
        gauge_of("shadowgate_mirror_dirty_users", "Users with changes not yet in Dolt.");
    scraped.lag_seconds = gauge_of("shadowgate_mirror_lag_seconds",
                                   "Age of the oldest change not yet in Dolt (0 when none).");
    scraped.parked_users =
        gauge_of("shadowgate_mirror_parked_users",
                 "Users whose apply failed permanently, waiting for a change or a retry.");
    scraped.server_packet =
        gauge_of("shadowgate_dolt_max_allowed_packet_bytes",
                 "The database's global max_allowed_packet (0 until the first capture scan).");
    scraped.packet_needed =
        gauge_of("shadowgate_dolt_packet_needed_bytes",
                 "The max_allowed_packet the largest block proxy.limits lets through needs.");
    scraped.packet_too_small =
        gauge_of("shadowgate_dolt_packet_too_small",
                 "1 when max_allowed_packet is known and below what the largest block needs.");
    triggers = add_counter(reg, "shadowgate_mirror_triggers_total",
                           "2xx v1 write answers that marked a user dirty.");
    auto& by_result =
        add_counter_family(reg, "shadowgate_mirror_passes_total", "Mirror passes by result.");
    for (std::size_t i = 0; i < pass_result_names.size(); ++i) {
        passes[i] = series(by_result, {{"result", std::string(pass_result_names[i])}});
    }
    // The plain counters, name and help beside the member they publish.
    struct counter_row {
        const char* name;
        const char* help;
        counter impl::*value;
    };
    static constexpr counter_row counters[] = {
        {"applied_commits", "v1 commits applied to Dolt.", &impl::applied_commits},
        {"applied_diffs", "pending_diffs rows added, changed or removed in Dolt.",
         &impl::applied_diffs},
        {"rows_written", "Rows inserted into Dolt.", &impl::rows_written},
        {"rows_deleted", "Rows deleted from Dolt.", &impl::rows_deleted},
        {"retries", "Passes that failed and were scheduled again.", &impl::retries},
        {"parks", "Users parked after a permanent failure.", &impl::parks},
        {"parked_retries", "Parked users tried again after mirror.parked_retry_ms.",
         &impl::parked_retries},
        {"parked_gone", "Parked users released because they no longer exist in v1 storage.",
         &impl::parked_gone},
        {"history_rewrites",
         "Users re-imported because v1's history no longer contained the watermark.",
         &impl::history_rewrites},
        {"git_errors", "v1 storage reads that failed.", &impl::git_errors},
        {"reads_incremental",
         "Passes that read only the commits since the state they applied last.",
         &impl::reads_incremental},
        {"reads_full", "Passes that read the user's whole history from v1 storage.",
         &impl::reads_full},
        {"applies_known",
         "Applies compared with the state applied last instead of reading the user's rows.",
         &impl::applies_known},
        {"schema_failures", "Schema migrations that failed before a pass.", &impl::schema_failures},
        {"dolt_commits",
         "Dolt commits made (or recorded in mirror_commit_log on a server that is not Dolt).",
         &impl::dolt_commits},
        {"dolt_commits_empty", "Dolt commits skipped: nothing changed.", &impl::dolt_commits_empty},
        {"dolt_commit_failures", "Dolt commits that failed (their changes go with the next one).",
         &impl::dolt_commit_failures},
        {"scans", "Capture scans completed.", &impl::scans},
        {"scan_failures", "Capture scans that could not run (Dolt or storage unreachable).",
         &impl::scan_failures},
        {"scan_found", "Users the capture scan found changed and not yet dirty.",
         &impl::scan_found},
    };
    for (const auto& c : counters) {
        this->*c.value =
            add_counter(reg, fmt::format("shadowgate_mirror_{}_total", c.name), c.help);
    }
    scraped.pass_seconds = add_counter(
        reg, "shadowgate_mirror_pass_seconds_total",
        "Time spent in mirror passes (reading v1 storage, applying to Dolt, Dolt commits).");
    scraped.dolt_commit_seconds = add_counter(reg, "shadowgate_mirror_dolt_commit_seconds_total",
                                              "Time spent making Dolt commits.");
    scraped.circuit_open =
        gauge_of("shadowgate_mirror_circuit_open",
                 "1 while the mirror does not call Dolt (too many failures to reach it).");
    scraped.circuit_opens =
        add_counter(reg, "shadowgate_mirror_circuit_opens_total", "Times the circuit opened.");
    scraped.state_cache_bytes =
        gauge_of("shadowgate_mirror_state_cache_bytes",
                 "Approximate memory held by the states applied last (mirror.state_cache_mib).");
    scraped.state_cache_users =
        gauge_of("shadowgate_mirror_state_cache_users", "Users whose state applied last is kept.");
    scraped.scan_seconds =
        gauge_of("shadowgate_mirror_scan_seconds", "Duration of the last capture scan.");
    scraped.scan_users =
        gauge_of("shadowgate_mirror_scan_users", "Users seen by the last capture scan.");
    scraped.dolt_connects =
        add_counter(reg, "shadowgate_mirror_dolt_connects_total", "Dolt sessions opened.");
    scraped.dolt_connect_failures =
        add_counter(reg, "shadowgate_mirror_dolt_connect_failures_total",
                    "Failed attempts to open a Dolt session.");
    auto& dolt_errors = add_counter_family(reg, "shadowgate_mirror_dolt_errors_total",
                                           "Failed Dolt statements by kind.");
    scraped.dolt_connection_lost = series(dolt_errors, {{"kind", "connection_lost"}});
    scraped.dolt_retryable = series(dolt_errors, {{"kind", "retryable"}});
    scraped.dolt_permanent = series(dolt_errors, {{"kind", "permanent"}});
}

void mirror::refresh_metrics() const {
    const impl& s = *impl_;
    const auto& p = s.scraped;
    {
        std::lock_guard lock(s.mu);
        p.dirty_users.set(static_cast<double>(s.dirty.size()));
        p.parked_users.set(static_cast<double>(s.dirty.parked_count()));
        p.lag_seconds.set(s.dirty.oldest_age(steady::now()).count());
        p.circuit_open.set(s.breaker.current() == ml::breaker::state::open ? 1 : 0);
        p.circuit_opens.advance_to(static_cast<double>(s.breaker.opens()));
    }
    const packet_info packet{s.server_packet.load(relaxed), s.packet_needed};
    p.server_packet.set(static_cast<double>(packet.server));
    p.packet_needed.set(static_cast<double>(packet.needed));
    p.packet_too_small.set(packet.known() && !packet.fits() ? 1 : 0);
    p.pass_seconds.advance_to(static_cast<double>(s.pass_ns.load()) / 1e9);
    p.dolt_commit_seconds.advance_to(static_cast<double>(s.dolt_commit_ns.load()) / 1e9);
    {
        std::lock_guard lock(impl_->cache_mu);
        p.state_cache_bytes.set(static_cast<double>(impl_->applied_states.bytes()));
        p.state_cache_users.set(static_cast<double>(impl_->applied_states.size()));
    }
    p.scan_seconds.set(static_cast<double>(s.scan_last_ns.load()) / 1e9);
    p.scan_users.set(static_cast<double>(s.scan_last_users.load()));
    const dolt::counters& d = *s.dolt_stats;
    p.dolt_connects.advance_to(static_cast<double>(d.connects.load()));
    p.dolt_connect_failures.advance_to(static_cast<double>(d.connect_failures.load()));
    p.dolt_connection_lost.advance_to(static_cast<double>(d.connection_lost.load()));
    p.dolt_retryable.advance_to(static_cast<double>(d.retryable_errors.load()));
    p.dolt_permanent.advance_to(static_cast<double>(d.permanent_errors.load()));
}

std::string mirror::status_json(std::size_t max_listed) const {
    const impl& s = *impl_;
    nlohmann::json j;
    std::lock_guard lock(s.mu);
    const auto now = steady::now();
    j["stage"] = config::to_string(s.cfg.mode);
    j["dolt_commit"] = config::to_string(s.cfg.mirror.dolt_commit);
    j["circuit"] = {
        {"state", ml::name(s.breaker.current())},
        {"consecutive_failures", s.breaker.consecutive_failures()},
        {"opens", s.breaker.opens()},
        {"open_for_ms",
         s.breaker.current() == ml::breaker::state::open
             ? std::max<std::int64_t>(
                   0,
                   std::chrono::duration_cast<milliseconds>(s.breaker.open_until() - now).count())
             : 0}};
    j["dirty_users"] = s.dirty.size();
    j["lag_seconds"] = s.dirty.oldest_age(now).count();
    j["scanned_once"] = s.scanned_once;
    j["idle"] = s.scanned_once && s.dirty.size() == 0 && !s.in_pass;
    std::vector<double> lags(s.lags.begin(), s.lags.end());
    j["recent_lag_seconds"] = {
        {"samples", lags.size()},
        {"p50", percentile(lags, 0.5)},
        {"p99", percentile(lags, 0.99)},
        {"max", lags.empty() ? 0.0 : *std::max_element(lags.begin(), lags.end())}};
    // Lagging: the oldest dirty users first.
    std::vector<std::pair<std::string, const ml::dirty_entry*>> dirty;
    for (const auto& [u, e] : s.dirty.entries()) dirty.emplace_back(u, &e);
    std::sort(dirty.begin(), dirty.end(),
              [](const auto& a, const auto& b) { return a.second->since < b.second->since; });
    nlohmann::json lagging = nlohmann::json::array();
    for (std::size_t i = 0; i < dirty.size() && i < max_listed; ++i) {
        const auto& e = *dirty[i].second;
        nlohmann::json item{
            {"user_id", dirty[i].first},
            {"dirty_for_seconds", std::chrono::duration<double>(now - e.since).count()},
            {"attempts", e.attempts},
            {"in_flight", e.in_flight}};
        if (!e.last_error.empty()) item["last_error"] = e.last_error;
        if (e.commit_sha) item["commit_sha"] = *e.commit_sha;
        lagging.push_back(std::move(item));
    }
    j["lagging"] = std::move(lagging);
    nlohmann::json parked = nlohmann::json::array();
    std::size_t listed = 0;
    for (const auto& [u, p] : s.dirty.parked()) {
        if (listed++ >= max_listed) break;
        parked.push_back(
            {{"user_id", u},
             {"error", p.error},
             {"since_unix",
              std::chrono::duration_cast<std::chrono::seconds>(p.since.time_since_epoch()).count()},
             {"head", p.head}});
    }
    j["parked_users"] = s.dirty.parked_count();
    j["parked"] = std::move(parked);
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace sg::proxy
