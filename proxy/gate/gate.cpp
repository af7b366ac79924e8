// proxy/gate/gate: see the header.
#include "proxy/gate/gate.hpp"

#include "proxy/common/file_util.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/common/task_failure.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/mirror/mirror.hpp"
#include "proxy/shadow/shadow.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>

namespace sg::proxy {

namespace {

using json = nlohmann::json;
using result_counts = std::map<std::string, std::map<std::string, std::uint64_t>>;

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

struct gate::impl {
    impl(const config::config& c, const shadow* sh, const mirror* mir, prometheus::Registry& reg)
        : cfg(c),
          target(c.gate.target.value_or(c.shadow.targets.front())),
          shadow_(sh),
          mirror_(mir),
          go(add_gauge(reg, "shadowgate_gate_go",
                       "The cutover gate's verdict: 1 GO, 0 NO-GO (GET /admin/gate says why).")),
          criterion_pass(add_gauge_family(reg, "shadowgate_gate_criterion_pass",
                                          "Each gate criterion: 1 when it passes.")),
          drifted_users(add_gauge_family(reg, "shadowgate_reconcile_drifted_users",
                                         "Users with drift in the last whole reconcile.")),
          unrepresentable(add_gauge_family(
              reg, "shadowgate_reconcile_unrepresentable",
              "v1 texts the plan's columns cannot give back exactly, in the last whole "
              "reconcile (the v2 side answers differently there).")),
          write_errors(add_counter(
              reg, "shadowgate_gate_state_write_errors_total",
              "Writes of gate.state_file that failed (the evidence is kept in memory).")) {}

    const config::config cfg;
    const config::compare_target target;  // gate.target, or the first of shadow.targets
    const shadow* shadow_;
    const mirror* mirror_;

    mutable std::mutex mu;
    std::condition_variable_any wake;  // only the flusher's stop token ends its waits early
    bool started = false;
    worker_thread flusher;

    // The evidence of earlier runs (from the state file) ...
    result_counts base;
    std::optional<std::int64_t> shadow_since_ms;
    std::optional<comparator::gate::reconcile_record> last_reconcile;
    // Metrics. The verdict's series are set at each scrape (gate::refresh_metrics); the
    // reconcile families have their one series from the first whole reconcile on.
    gauge go;
    gauge_family& criterion_pass;  // {criterion, endpoint}: fixed by the config
    gauge_family& drifted_users;
    gauge_family& unrepresentable;
    counter write_errors;
    // The rate over time: bucket start (Unix ms) -> endpoint -> (compared, discrepancies), and
    // the totals already counted into it.
    std::map<std::int64_t, std::map<std::string, std::pair<std::uint64_t, std::uint64_t>>> history;
    result_counts counted;
    static constexpr std::size_t max_buckets = 720;

    // Adds what was compared since the last call to the current bucket (under mu).
    void update_history() {
        const auto now = totals();
        const auto width = std::max<std::int64_t>(1, cfg.gate.history_bucket.count());
        const std::int64_t bucket = unix_ms() / width * width;
        for (const auto& [ep, row] : now) {
            comparator::gate::counts a, b;
            a.by_result = row;
            if (auto it = counted.find(ep); it != counted.end()) b.by_result = it->second;
            const auto compared = a.compared() - std::min(a.compared(), b.compared());
            const auto bad = a.discrepancies() - std::min(a.discrepancies(), b.discrepancies());
            if (compared == 0 && bad == 0) continue;
            auto& cell = history[bucket][ep];
            cell.first += compared;
            cell.second += bad;
        }
        counted = now;
        while (history.size() > max_buckets) history.erase(history.begin());
    }

    json history_json() const {  // under mu
        json out = json::array();
        for (const auto& [t, eps] : history) {
            json e = json::object();
            for (const auto& [ep, cell] : eps) e[ep] = {cell.first, cell.second};
            out.push_back({{"t_ms", t}, {"endpoints", std::move(e)}});
        }
        return out;
    }

    // ... plus what this run's comparer counted.
    result_counts totals() const {
        result_counts out = base;
        // Whether or not the comparer is still running: its last counts are evidence.
        for (const auto& [ep, row] : shadow_->counts(target)) {
            for (const auto& [r, n] : row) out[ep][r] += n;
        }
        return out;
    }

    json state_json() const {  // under mu
        json j;
        j["version"] = 1;
        j["target"] = config::to_string(target);
        j["counts"] = totals();
        j["shadow_since_ms"] = shadow_since_ms ? json(*shadow_since_ms) : json(nullptr);
        j["history_bucket_ms"] = cfg.gate.history_bucket.count();
        j["history"] = history_json();
        if (last_reconcile) {
            j["last_reconcile"] = {{"finished_ms", last_reconcile->finished_ms},
                                   {"clean", last_reconcile->clean},
                                   {"users", last_reconcile->users},
                                   {"drifted_users", last_reconcile->drifted_users},
                                   {"unrepresentable", last_reconcile->unrepresentable}};
        }
        return j;
    }

    void flush() {  // under mu
        update_history();
        if (cfg.gate.state_file.empty()) return;
        const auto written = write_atomically(cfg.gate.state_file, state_json().dump(2) + "\n");
        if (!written) {
            write_errors.fetch_add(1, std::memory_order_relaxed);
            spdlog::warn("event=gate_state_write_failed error=\"{}\"", written.error().what);
        }
    }

    result<> load() {
        const auto& path = cfg.gate.state_file;
        if (path.empty()) return {};
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            if (errno == ENOENT) return {};  // a fresh start
            return fail("cannot read " + path + ": " + std::strerror(errno));
        }
        std::stringstream text;
        text << in.rdbuf();
        const json j = json::parse(text.str(), nullptr, false);
        if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1 ||
            !j.contains("counts") || !j["counts"].is_object()) {
            return fail(path +
                        " is not a shadowgate gate state file (version 1); move it "
                        "away to start the evidence again");
        }
        const std::string_view wanted = config::to_string(target);
        if (j.value("target", std::string()) != wanted) {
            return fail(path + " holds evidence for target \"" + j.value("target", std::string()) +
                        "\", the gate's target now is \"" + std::string(wanted) +
                        "\"; move it away to start the evidence again");
        }
        try {
            base = j["counts"].get<result_counts>();
            counted = base;
            if (j.contains("shadow_since_ms") && j["shadow_since_ms"].is_number_integer()) {
                shadow_since_ms = j["shadow_since_ms"].get<std::int64_t>();
            }
            if (j.contains("history") && j["history"].is_array()) {
                for (const auto& b : j["history"]) {
                    auto& eps = history[b.at("t_ms").get<std::int64_t>()];
                    for (const auto& [ep, cell] : b.at("endpoints").items()) {
                        eps[ep] = {cell.at(0).get<std::uint64_t>(),
                                   cell.at(1).get<std::uint64_t>()};
                    }
                }
            }
            if (j.contains("last_reconcile") && j["last_reconcile"].is_object()) {
                const auto& r = j["last_reconcile"];
                last_reconcile = comparator::gate::reconcile_record{
                    r.at("finished_ms").get<std::int64_t>(), r.at("clean").get<bool>(),
                    r.at("users").get<std::uint64_t>(), r.at("drifted_users").get<std::uint64_t>(),
                    r.value("unrepresentable", std::uint64_t{0})};
            }
        } catch (const json::exception& e) {
            return fail(path + ": " + e.what());
        }
        return {};
    }

    void flush_loop(const std::stop_token& stop) {
        std::unique_lock lock(mu);
        while (!stop.stop_requested()) {
            wake.wait_for(lock, stop, cfg.gate.flush_interval, [] { return false; });
            flush();
        }
    }
};

gate::gate(const config::config& cfg, const shadow& sh, const mirror& mir,
           prometheus::Registry& reg)
    : impl_(std::make_unique<impl>(cfg, &sh, &mir, reg)) {}

gate::~gate() { stop(); }

result<> gate::start() {
    std::lock_guard lock(impl_->mu);
    if (impl_->started) return {};
    if (auto loaded = impl_->load(); !loaded) return loaded;
    // The soak runs while the stage is shadow; leaving the stage starts it again.
    if (impl_->cfg.mode == config::stage::shadow) {
        if (!impl_->shadow_since_ms) impl_->shadow_since_ms = unix_ms();
    } else {
        impl_->shadow_since_ms.reset();
    }
    impl_->flush();
    impl_->started = true;
    impl_->flusher.start("sg-gate", task_kind::gate_flusher,
                         [this](const std::stop_token& stop) { impl_->flush_loop(stop); });
    return {};
}

void gate::stop() {
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->started) return;
        impl_->started = false;
    }
    impl_->flusher.request_stop();
    impl_->flusher.join();
    std::lock_guard lock(impl_->mu);
    impl_->flush();
}

void gate::record_reconcile(const comparator::gate::reconcile_record& r) {
    std::lock_guard lock(impl_->mu);
    impl_->last_reconcile = r;
    impl_->flush();
}

comparator::gate::verdict gate::judge() const {
    comparator::gate::evidence ev;
    {
        std::lock_guard lock(impl_->mu);
        for (auto& [ep, row] : impl_->totals()) ev.endpoints[ep].by_result = std::move(row);
        ev.shadow_since_ms = impl_->shadow_since_ms;
        ev.last_reconcile = impl_->last_reconcile;
    }
    if (impl_->mirror_->active()) {
        const auto h = impl_->mirror_->health();
        ev.mirror_running = true;
        ev.mirror_lag_seconds = h.lag_seconds;
        ev.parked_users = h.parked;
    }
    ev.now_ms = unix_ms();
    return comparator::gate::evaluate(impl_->cfg.gate, ev);
}

std::string gate::verdict_json() const {
    const auto v = judge();
    json j;
    j["verdict"] = v.go ? "GO" : "NO-GO";
    j["go"] = v.go;
    json criteria = json::array();
    for (const auto& c : v.criteria) {
        criteria.push_back({{"criterion", c.name},
                            {"endpoint", c.endpoint},
                            {"measured", c.measured},
                            {"threshold", c.threshold},
                            {"pass", c.pass},
                            {"status", c.status}});
    }
    j["criteria"] = std::move(criteria);
    {
        std::lock_guard lock(impl_->mu);
        j["evidence"] = impl_->state_json();
    }
    j["stage"] = config::to_string(impl_->cfg.mode);
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

void gate::refresh_metrics() const {
    const auto v = judge();
    impl_->go.set(v.go ? 1 : 0);
    for (const auto& c : v.criteria) {
        series(impl_->criterion_pass, {{"criterion", c.name}, {"endpoint", c.endpoint}})
            .set(c.pass ? 1 : 0);
    }
    std::optional<comparator::gate::reconcile_record> rec;
    {
        std::lock_guard lock(impl_->mu);
        rec = impl_->last_reconcile;
    }
    if (rec) {
        series(impl_->drifted_users).set(static_cast<double>(rec->drifted_users));
        series(impl_->unrepresentable).set(static_cast<double>(rec->unrepresentable));
    }
}

std::string format_verdict(const std::string& verdict_json) {
    const json j = json::parse(verdict_json, nullptr, false);
    if (j.is_discarded() || !j.contains("criteria")) return verdict_json;
    std::string out =
        fmt::format("gate: {} (stage {})\n", j.value("verdict", "?"), j.value("stage", "?"));
    out += fmt::format("  {:<4} {:<17} {:<16} {:<48} {}\n", "", "criterion", "endpoint", "measured",
                       "threshold");
    for (const auto& c : j["criteria"]) {
        const std::string status = c.value("status", "");
        out += fmt::format("  {:<4} {:<17} {:<16} {:<48} {}{}\n",
                           c.value("pass", false) ? "ok" : "FAIL", c.value("criterion", ""),
                           c.value("endpoint", ""), c.value("measured", ""),
                           c.value("threshold", ""), status == "uncovered" ? "  (uncovered)" : "");
    }
    return out;
}

}  // namespace sg::proxy
