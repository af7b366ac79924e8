// proxy/control/control_plane: the poller of the plan row, the operators' changes, the fence.
#include "proxy/control/control_plane.hpp"

#include "adapters/dolt/control.hpp"
#include "adapters/dolt/schema.hpp"
#include "proxy/common/dolt_session.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/control/plan_json.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

namespace sg::control {

namespace {

using steady = std::chrono::steady_clock;
using nlohmann::json;
using routing::wall_clock;

constexpr int cas_attempts = 5;  // re-reads when another writer changed the plan meanwhile
constexpr std::size_t recent_history = 50;  // changes kept for status() and the report
const dolt::retry_policy db_retry{4, std::chrono::milliseconds(50)};  // 1213/1205, lost sessions

std::string utc_text(wall_clock::time_point t) {
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", std::chrono::floor<std::chrono::seconds>(t));
}

std::string random_uuid() { return boost::uuids::to_string(boost::uuids::random_generator()()); }

std::string default_replica_id(const config::config& cfg) {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, 5, "host");
    return std::string(host) + ":" + std::to_string(cfg.proxy.listen.port);
}

// A Dolt tag name (a git ref name) for a flip: shadowgate/<stage>/<cohort>/<UTC time>.
std::string tag_name(std::string_view stage, std::string_view cohort, wall_clock::time_point t) {
    std::string safe;
    for (const char c : cohort) {
        const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
        safe += ok ? c : '_';
    }
    return fmt::format("shadowgate/{}/{}/{:%Y%m%dT%H%M%S}Z", stage, safe,
                       std::chrono::floor<std::chrono::seconds>(t));
}

std::string stage_text(config::stage s) { return std::string(config::to_string(s)); }

// The control connection's own deadlines: a plan row is tiny, and a replica must notice a hung
// database within its fence (stale_after) and start within seconds, not after dolt.*'s bulk
// timeouts (sized for multi-MiB mirror transactions).
dolt::options control_options(const config::config& cfg) {
    dolt::options o = proxy::dolt_options(cfg);
    o.connect_timeout = std::min(o.connect_timeout, std::chrono::seconds(2));
    o.read_timeout = std::min(o.read_timeout, std::chrono::seconds(3));
    o.write_timeout = std::min(o.write_timeout, std::chrono::seconds(3));
    return o;
}

}  // namespace

struct control_plane::impl {
    impl(const config::config& c, routing::router& r, prometheus::Registry& reg, hooks hk)
        : cfg(c),
          router(r),
          h(std::move(hk)),
          replica_id(c.control.replica_id.empty() ? default_replica_id(c) : c.control.replica_id),
          boot_id(random_uuid()),
          conn(control_options(c)),
          stage_family(proxy::add_gauge_family(
              reg, "shadowgate_stage",
              "The stage each cohort is in (0 off, 1 dualwrite, 2 shadow); \"default\" is the "
              "rest")),
          changes_family(proxy::add_counter_family(
              reg, "shadowgate_stage_changes_total",
              "Stage changes this replica made, by the stages users left and entered")),
          poll_failures(proxy::add_counter(reg, "shadowgate_control_poll_failures_total",
                                           "Polls of the plan row that failed")),
          plan_version(proxy::add_gauge(reg, "shadowgate_control_plan_version",
                                        "The version of the plan this replica applies")),
          refused(proxy::add_counter(reg, "shadowgate_control_changes_refused_total",
                                     "Plan changes refused by a rule (nothing written)")),
          change_failures(proxy::add_counter(
              reg, "shadowgate_control_change_failures_total",
              "Plan changes that could not be read or written (the database failed)")),
          fenced_gauge(proxy::add_gauge(
              reg, "shadowgate_control_fenced",
              "1 while this replica has not read the plan for control.stale_after")) {}

    const config::config& cfg;
    routing::router& router;
    hooks h;
    const std::string replica_id;
    const std::string boot_id;
    dolt::connection conn;  // the control thread's only
    bool migrated = false;

    mutable std::mutex mu;  // guards everything below
    std::condition_variable_any cv;
    std::deque<std::function<void()>> jobs;
    bool stopping = true;                 // until start()
    std::optional<routing::plan> stored;  // the plan last read from the table
    bool fenced = false;
    steady::time_point last_ok = steady::now();
    std::string last_error;
    std::vector<dolt::replica_row> replicas;
    // The newest changes, read again whenever the plan's version moves (the report shows them
    // without a database call on the admin thread).
    std::vector<dolt::stage_change_row> recent;
    std::uint64_t recent_version = 0;
    std::map<std::string, prometheus::Gauge*> stage_series;

    proxy::gauge_family& stage_family;
    proxy::counter_family& changes_family;
    proxy::counter poll_failures;
    proxy::gauge plan_version;
    proxy::counter refused;
    proxy::counter change_failures;
    proxy::gauge fenced_gauge;
    proxy::worker_thread thread;

    // Ready unless fenced while `serving` holds a freeze (under mu).
    bool ready_with(const routing::plan& serving) const { return !(fenced && serving.freeze); }

    void run(const std::stop_token& st);
    void poll();
    void poll_failed(const std::string& what);
    proxy::result<routing::plan> read_or_init();
    void adopt(const routing::plan& p, bool fence);
    // Counts a failed change (refused by a rule, or the database's failure) and passes it on.
    proxy::result<json> counted(proxy::result<json> r);
    // A change worked out on the plan read just before: the next plan and the history rows
    // that record it.
    struct proposal {
        routing::plan next;
        std::vector<dolt::stage_change_row> rows;
    };
    using propose_fn = std::function<proxy::result<proposal>(const routing::plan& before)>;
    // Reads the plan, asks `propose` for the change on it, writes it by compare-and-set (again on
    // a fresh read when another writer was first), installs it, and answers it as JSON. `written`
    // gets the rows that were recorded.
    proxy::result<json> write_change(const propose_fn& propose, const std::string& who,
                                     std::vector<dolt::stage_change_row>* written = nullptr);
};

void control_plane::impl::run(const std::stop_token& st) {
    while (!st.stop_requested()) {
        poll();
        const auto next_poll = steady::now() + cfg.control.poll_interval;
        std::unique_lock lock(mu);
        while (!st.stop_requested()) {
            if (!jobs.empty()) {
                auto job = std::move(jobs.front());
                jobs.pop_front();
                lock.unlock();
                job();
                lock.lock();
                continue;
            }
            if (!cv.wait_until(lock, st, next_poll, [&] { return !jobs.empty(); })) break;
        }
    }
    // Jobs left behind are still answered (each reports its own failure if the database is gone).
    std::deque<std::function<void()>> left;
    {
        std::lock_guard lock(mu);
        stopping = true;
        left.swap(jobs);
    }
    for (auto& job : left) job();
}

proxy::result<routing::plan> control_plane::impl::read_or_init() {
    if (auto up = conn.ensure_connected(); !up) return proxy::fail(up.error().to_string());
    if (!migrated) {
        if (auto m = dolt::migrate(conn); !m) return proxy::fail(m.error().to_string());
        migrated = true;
    }
    auto row = dolt::read_plan(conn);
    if (!row) return proxy::fail(row.error().to_string());
    dolt::stored_plan s;
    if (*row) {
        s = std::move(**row);
    } else {
        const auto initial = json(to_json(routing::plan::of(cfg.mode))).dump();
        auto made = dolt::init_plan(conn, initial, replica_id + " (the config's initial plan)");
        if (!made) return proxy::fail(made.error().to_string());
        spdlog::info("event=plan_initialised version={} by=\"{}\"", made->version,
                     made->updated_by);
        s = std::move(*made);
    }
    auto p = plan_from_json(s.body);
    if (!p) return proxy::fail("plan version " + std::to_string(s.version) + ": " + p.error().what);
    p->version = s.version;
    return p;
}

void control_plane::impl::adopt(const routing::plan& p, bool fence) {
    routing::plan serving = p;
    if (fence && serving.freeze) serving.freeze->until = wall_clock::time_point::max();
    if (router.current() == serving) return;
    if (h.refuse) {
        if (auto why = h.refuse(serving)) {
            poll_failed("plan version " + std::to_string(p.version) + " cannot be served: " + *why);
            return;
        }
    }
    const auto& installed = router.install(serving);
    plan_version.set(static_cast<double>(installed.version));
    spdlog::info("event=plan_installed version={} fenced={} plan={}", installed.version, fence,
                 to_json(p).dump());
    if (h.installed) h.installed(installed);
}

void control_plane::impl::poll_failed(const std::string& what) {
    poll_failures.fetch_add(1);
    bool fence_now = false;
    std::optional<routing::plan> last;
    {
        std::lock_guard lock(mu);
        const bool first = last_error.empty();
        last_error = what;
        if (first) spdlog::warn("event=control_poll_failed error=\"{}\"", what);
        if (!fenced && steady::now() - last_ok > cfg.control.stale_after) {
            fenced = fence_now = true;
            last = stored;
        }
    }
    if (fence_now) {
        fenced_gauge.set(1);
        spdlog::error(
            "event=control_fenced stale_ms={} error=\"{}\" (freeze windows hold until "
            "the plan is read again)",
            cfg.control.stale_after.count(), what);
        if (last) adopt(*last, true);
    }
}

void control_plane::impl::poll() {
    auto p = read_or_init();
    if (!p) {
        poll_failed(p.error().what);
        return;
    }
    bool was_fenced = false;
    {
        std::lock_guard lock(mu);
        stored = *p;
        was_fenced = fenced;
        fenced = false;
        last_ok = steady::now();
        if (!last_error.empty()) spdlog::info("event=control_poll_recovered");
        last_error.clear();
    }
    if (was_fenced) fenced_gauge.set(0);
    adopt(*p, false);
    auto acked = dolt::report_replica(conn, replica_id, boot_id, router.current().version);
    if (!acked) {
        poll_failed(acked.error().to_string());
        return;
    }
    auto rows = dolt::read_replicas(conn);
    if (!rows) {
        poll_failed(rows.error().to_string());
        return;
    }
    std::optional<std::vector<dolt::stage_change_row>> fresh;
    if (p->version != recent_version) {
        auto h = dolt::read_history(conn, recent_history);
        if (!h) {
            poll_failed(h.error().to_string());
            return;
        }
        fresh = std::move(*h);
    }
    std::lock_guard lock(mu);
    replicas = std::move(*rows);
    if (fresh) {
        recent = std::move(*fresh);
        recent_version = p->version;
    }
}

proxy::result<json> control_plane::impl::counted(proxy::result<json> r) {
    if (!r) (r.error().refused ? refused : change_failures).fetch_add(1);
    if (!r && !r.error().refused) {
        spdlog::error("event=plan_change_failed error=\"{}\"", r.error().what);
    }
    return r;
}

proxy::result<json> control_plane::impl::write_change(
    const propose_fn& propose, const std::string& who,
    std::vector<dolt::stage_change_row>* written) {
    for (int attempt = 0; attempt < cas_attempts; ++attempt) {
        auto before = read_or_init();
        if (!before) return proxy::fail("cannot read the plan: " + before.error().what);
        auto proposed = propose(*before);
        if (!proposed) return proposed.error();
        routing::plan& next = proposed->next;
        next.version = before->version;
        if (next == *before) {
            json j;
            j["changed"] = false;
            j["version"] = before->version;
            j["plan"] = to_json(*before);
            return j;
        }
        if (h.refuse) {
            if (auto why = h.refuse(next)) return proxy::refuse(*why);
        }
        const auto& rows = proposed->rows;
        const std::string body = to_json(next).dump();
        auto cas = dolt::with_retry(conn, db_retry, [&](dolt::connection& c) {
            return dolt::compare_and_set_plan(c, before->version, body, who, rows);
        });
        if (!cas) return proxy::fail("cannot write the plan: " + cas.error().to_string());
        if (!*cas) continue;  // another writer was first: apply the change to its plan
        next.version = (*cas)->version;
        {
            std::lock_guard lock(mu);
            stored = next;
        }
        adopt(next, false);
        json j;
        j["changed"] = true;
        j["version"] = next.version;
        j["plan"] = to_json(next);
        j["changes"] = json::array();
        for (const auto& r : rows) {
            j["changes"].push_back({{"event", r.event},
                                    {"cohort", r.cohort},
                                    {"from", r.from_stage},
                                    {"to", r.to_stage},
                                    {"forced", r.forced},
                                    {"tag", r.tag}});
        }
        if (written != nullptr) *written = rows;
        return j;
    }
    return proxy::fail("the plan kept changing under this change (" + std::to_string(cas_attempts) +
                       " attempts): try again");
}

control_plane::control_plane(const config::config& cfg, routing::router& router,
                             prometheus::Registry& reg, hooks h)
    : impl_(std::make_shared<impl>(cfg, router, reg, std::move(h))) {}

control_plane::~control_plane() { (void)stop(std::chrono::milliseconds(0)); }

void control_plane::start() {
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = false;
    }
    spdlog::info("event=control_starting replica={} boot={} poll_ms={}", impl_->replica_id,
                 impl_->boot_id, impl_->cfg.control.poll_interval.count());
    // The first read before any request is served: a restart must not serve the config's stage
    // (or miss a freeze) for a poll. Bounded by the control connection's deadlines (2 s to
    // connect) when the database is away; the service then starts with the config's plan and
    // keeps polling.
    impl_->poll();
    impl_->thread.start("sg-control", proxy::task_kind::control_plane,
                        [self = impl_](const std::stop_token& st) { self->run(st); });
}

bool control_plane::stop(std::chrono::milliseconds bound) {
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->thread.request_stop();
    return impl_->thread.join_for(bound);
}

bool control_plane::submit(std::function<void()> job) {
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopping) return false;
        impl_->jobs.push_back(std::move(job));
    }
    impl_->cv.notify_all();
    return true;
}

proxy::result<json> control_plane::set_stage(const stage_change& change) {
    const auto now = wall_clock::now();
    const std::string verdict = impl_->h.gate_verdict ? impl_->h.gate_verdict() : "{}";
    std::vector<dolt::stage_change_row> written;
    auto r = impl_->write_change(
        [&](const routing::plan& before) -> proxy::result<impl::proposal> {
            auto out = apply_change(before, change);
            if (!out) return out.error();
            impl::proposal p{std::move(out->next), {}};
            for (const auto& m : out->moves) {
                dolt::stage_change_row row;
                row.event = "stage";
                row.cohort = out->cohort;
                row.from_stage = stage_text(m.from);
                row.to_stage = stage_text(m.to);
                row.forced = change.force;
                row.who = change.who;
                row.why = change.reason;
                row.gate_verdict = verdict;
                row.tag = tag_name(row.to_stage, row.cohort, now);
                p.rows.push_back(std::move(row));
            }
            return p;
        },
        change.who, &written);
    r = impl_->counted(std::move(r));
    if (!r) return r;
    for (const auto& row : written) {
        proxy::series(impl_->changes_family, {{"from", row.from_stage},
                                              {"to", row.to_stage},
                                              {"forced", row.forced ? "true" : "false"}})
            .fetch_add(1);
        spdlog::info(
            "event=stage_changed cohort={} from={} to={} forced={} who=\"{}\" why=\"{}\" "
            "version={}",
            row.cohort, row.from_stage, row.to_stage, row.forced, row.who, row.why,
            (*r)["version"].get<std::uint64_t>());
    }
    return r;
}

proxy::result<json> control_plane::freeze(const freeze_request& req) {
    if (req.length <= std::chrono::milliseconds(0)) {
        return impl_->counted(proxy::refuse("a freeze needs a positive length"));
    }
    const auto until = wall_clock::now() + req.length;
    const std::string verdict = impl_->h.gate_verdict ? impl_->h.gate_verdict() : "{}";
    auto r = impl_->write_change(
        [&](const routing::plan& before) -> proxy::result<impl::proposal> {
            routing::plan next = before;
            routing::freeze_window w;
            w.until = until;
            w.cohorts = req.cohorts;
            w.reason = req.reason;
            next.freeze = w;
            if (const auto problems = routing::plan_problems(next); !problems.empty()) {
                return proxy::refuse(problems.front());
            }
            dolt::stage_change_row row;
            row.event = "freeze";
            std::string names;
            for (const auto& c : req.cohorts) names += (names.empty() ? "" : ",") + c;
            row.cohort = names.empty() ? "all" : names;
            row.who = req.who;
            row.why = req.reason + " (until " + utc_text(until) + ")";
            row.gate_verdict = verdict;
            return impl::proposal{std::move(next), {row}};
        },
        req.who);
    r = impl_->counted(std::move(r));
    if (r)
        spdlog::info("event=frozen cohorts={} until={} who=\"{}\"", req.cohorts.size(),
                     utc_text(until), req.who);
    return r;
}

proxy::result<json> control_plane::unfreeze(const std::string& who, const std::string& reason) {
    auto r = impl_->write_change(
        [&](const routing::plan& before) -> proxy::result<impl::proposal> {
            // Built field by field: GCC 12 reports a copy followed by reset() of the optional
            // as a use of uninitialised memory (a false positive at -O2).
            routing::plan next;
            next.version = before.version;
            next.default_stage = before.default_stage;
            next.cohorts = before.cohorts;
            dolt::stage_change_row row;
            row.event = "unfreeze";
            row.cohort = "all";
            row.who = who;
            row.why = reason;
            return impl::proposal{std::move(next), {row}};
        },
        who);
    r = impl_->counted(std::move(r));
    if (r) spdlog::info("event=unfrozen who=\"{}\"", who);
    return r;
}

namespace {
json history_json(const std::vector<dolt::stage_change_row>& rows) {
    json out = json::array();
    for (const auto& r : rows) {
        json verdict = json::parse(r.gate_verdict, nullptr, false);
        out.push_back({{"version", r.plan_version},
                       {"event", r.event},
                       {"cohort", r.cohort},
                       {"from", r.from_stage},
                       {"to", r.to_stage},
                       {"forced", r.forced},
                       {"who", r.who},
                       {"why", r.why},
                       {"gate", verdict.is_discarded() ? json(r.gate_verdict) : verdict},
                       {"tag", r.tag},
                       {"at", r.changed_at}});
    }
    return out;
}
}  // namespace

proxy::result<json> control_plane::history(std::size_t limit) {
    if (auto up = impl_->conn.ensure_connected(); !up) return proxy::fail(up.error().to_string());
    auto rows = dolt::read_history(impl_->conn, limit);
    if (!rows) return proxy::fail(rows.error().to_string());
    return history_json(*rows);
}

json control_plane::status() const {
    const routing::plan serving = impl_->router.current();
    json j;
    j["replica_id"] = impl_->replica_id;
    j["boot_id"] = impl_->boot_id;
    j["version"] = serving.version;
    j["plan"] = to_json(serving);
    std::lock_guard lock(impl_->mu);
    j["fenced"] = impl_->fenced;
    j["ready"] = impl_->ready_with(serving);
    j["seconds_since_plan_read"] =
        std::chrono::duration<double>(steady::now() - impl_->last_ok).count();
    j["last_error"] = impl_->last_error;
    if (serving.freeze) {
        const auto now = wall_clock::now();
        json f;
        f["active"] = serving.freeze->until > now;
        f["until"] = impl_->fenced ? std::string("(fenced: until the plan is read again)")
                                   : utc_text(serving.freeze->until);
        f["cohorts"] = serving.freeze->cohorts;
        f["reason"] = serving.freeze->reason;
        j["freeze"] = f;
    }
    j["recent_changes"] = history_json(impl_->recent);
    j["replicas"] = json::array();
    for (const auto& r : impl_->replicas) {
        j["replicas"].push_back({{"replica_id", r.replica_id},
                                 {"boot_id", r.boot_id},
                                 {"applied_version", r.applied_version},
                                 {"started_at", r.started_at},
                                 {"last_poll_ok", r.last_poll_ok},
                                 {"seconds_since_poll", r.seconds_since_poll}});
    }
    return j;
}

bool control_plane::ready() const {
    const routing::plan& serving = impl_->router.current();
    std::lock_guard lock(impl_->mu);
    return impl_->ready_with(serving);
}

void control_plane::refresh_metrics() const {
    const routing::plan p = impl_->router.current();
    std::map<std::string, double> now;
    now[std::string(routing::default_cohort)] = static_cast<double>(p.default_stage);
    for (const auto& c : p.cohorts) now[c.name] = static_cast<double>(c.stage);
    std::lock_guard lock(impl_->mu);
    for (auto it = impl_->stage_series.begin(); it != impl_->stage_series.end();) {
        if (now.contains(it->first)) {
            ++it;
            continue;
        }
        impl_->stage_family.Remove(it->second);  // a cohort that is gone
        it = impl_->stage_series.erase(it);
    }
    for (const auto& [name, value] : now) {
        auto& g = impl_->stage_series[name];
        if (g == nullptr) g = &impl_->stage_family.Add({{"cohort", name}});
        g->Set(value);
    }
    impl_->plan_version.set(static_cast<double>(p.version));
}

}  // namespace sg::control
