// proxy/mirror/mirror: the public side of the mirror (see the header), the worker's loop over its
// schedule, metrics and status. One pass is forward_pass.cpp; the capture scan is capture_scan.cpp.
#include "proxy/mirror/mirror.hpp"

#include "adapters/dolt/schema.hpp"
#include "adapters/v1/utf8.hpp"
#include "proxy/common/dolt_session.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/common/task_failure.hpp"
#include "proxy/mirror/mirror_internal.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <vector>

namespace sg::proxy {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

}  // namespace

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
        impl_->sched.dirty.mark(t->user_id, steady::now(), std::move(t->commit_sha));
    }
    impl_->wake.notify_one();
}

bool mirror::look_at(const std::string& user) {
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->sched.dirty.is_parked(user)) return false;
        impl_->sched.dirty.mark(user, steady::now());
    }
    impl_->wake.notify_one();
    return true;
}

std::size_t mirror::retry_parked(const std::string& user) {
    std::size_t n = 0;
    {
        std::lock_guard lock(impl_->mu);
        n = impl_->sched.dirty.unpark(user, steady::now());
    }
    // A retry reads the user's rows in Dolt again rather than trusting what was applied last.
    impl_->forget_applied_state(user);
    impl_->wake.notify_one();
    return n;
}

mirror::health_info mirror::health() const {
    std::lock_guard lock(impl_->mu);
    return {impl_->sched.dirty.oldest_age(steady::now()).count(),
            impl_->sched.dirty.parked().size()};
}

bool mirror::idle() const {
    std::lock_guard lock(impl_->mu);
    return impl_->sched.idle();
}

void mirror::impl::worker_loop() {
    dolt::connection conn(dolt_options(cfg), dolt_stats);
    bool schema_ready = false;
    for (;;) {
        ml::schedule::step step;
        {
            std::unique_lock lock(mu);
            for (;;) {
                if (stopping) return;
                const std::optional<steady::time_point> interval_due =
                    mode == commit_mode::interval && interval_pending
                        ? std::optional(interval_since + cfg.mirror.dolt_commit_interval)
                        : std::nullopt;
                step = sched.next(steady::now(), interval_due);
                if (step.user) break;
                lock.unlock();
                commit_interval(conn, false);
                lock.lock();
                if (stopping) return;
                wake.wait_until(lock, std::max(step.wake_at, steady::now() + milliseconds(1)));
            }
        }
        const std::string& user = *step.user;

        const auto started = steady::now();
        const ml::pass_outcome o = run_pass(conn, schema_ready, user);
        passes[static_cast<std::size_t>(o.result)].fetch_add(1, relaxed);
        const auto now = steady::now();
        pass_ns.fetch_add(static_cast<std::uint64_t>((now - started).count()), relaxed);
        ml::schedule::finished f;
        {
            std::lock_guard lock(mu);
            f = sched.finish(user, step.since, o, now, std::chrono::system_clock::now(),
                             std::uniform_real_distribution<double>(0.0, 1.0)(rng));
            if (f.circuit_opened) {
                spdlog::warn(
                    "event=mirror_circuit_open failures={} for_ms={} error=\"{}\"",
                    sched.circuit.consecutive_failures(),
                    std::chrono::duration_cast<milliseconds>(sched.circuit.open_until() - now)
                        .count(),
                    o.error);
            }
        }
        if (f.retry_counted) retries.fetch_add(1, relaxed);
        if (o.result == ml::pass_result::retry) {
            spdlog::warn("event=mirror_retry user={} attempt={} wait_ms={} error=\"{}\"",
                         v1::escaped(user), f.attempt, f.wait.count(), v1::escaped(o.error));
        }
        if (o.result == ml::pass_result::parked) {
            parks.fetch_add(1, relaxed);
            spdlog::error("event=mirror_parked user={} error=\"{}\"", v1::escaped(user),
                          v1::escaped(o.error));
        }
        if (f.forget_session) conn.close();
        if (f.reset_schema) schema_ready = false;
        commit_interval(conn, false);
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
    for (std::size_t i = 0; i < ml::pass_result_names.size(); ++i) {
        passes[i] = series(by_result, {{"result", std::string(ml::pass_result_names[i])}});
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
        p.dirty_users.set(static_cast<double>(s.sched.dirty.size()));
        p.parked_users.set(static_cast<double>(s.sched.dirty.parked_count()));
        p.lag_seconds.set(s.sched.dirty.oldest_age(steady::now()).count());
        p.circuit_open.set(s.sched.circuit.current() == ml::breaker::state::open ? 1 : 0);
        p.circuit_opens.advance_to(static_cast<double>(s.sched.circuit.opens()));
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
        {"state", ml::name(s.sched.circuit.current())},
        {"consecutive_failures", s.sched.circuit.consecutive_failures()},
        {"opens", s.sched.circuit.opens()},
        {"open_for_ms", s.sched.circuit.current() == ml::breaker::state::open
                            ? std::max<std::int64_t>(0, std::chrono::duration_cast<milliseconds>(
                                                            s.sched.circuit.open_until() - now)
                                                            .count())
                            : 0}};
    j["dirty_users"] = s.sched.dirty.size();
    j["lag_seconds"] = s.sched.dirty.oldest_age(now).count();
    j["scanned_once"] = s.sched.scanned_once();
    j["idle"] = s.sched.idle();
    std::vector<double> lags(s.sched.lags().begin(), s.sched.lags().end());
    j["recent_lag_seconds"] = {
        {"samples", lags.size()},
        {"p50", percentile(lags, 0.5)},
        {"p99", percentile(lags, 0.99)},
        {"max", lags.empty() ? 0.0 : *std::max_element(lags.begin(), lags.end())}};
    // Lagging: the oldest dirty users first.
    std::vector<std::pair<std::string, const ml::dirty_entry*>> dirty;
    for (const auto& [u, e] : s.sched.dirty.entries()) dirty.emplace_back(u, &e);
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
    for (const auto& [u, p] : s.sched.dirty.parked()) {
        if (listed++ >= max_listed) break;
        parked.push_back(
            {{"user_id", u},
             {"error", p.error},
             {"since_unix",
              std::chrono::duration_cast<std::chrono::seconds>(p.since.time_since_epoch()).count()},
             {"head", p.head}});
    }
    j["parked_users"] = s.sched.dirty.parked_count();
    j["parked"] = std::move(parked);
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace sg::proxy
