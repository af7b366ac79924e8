// proxy/control/plan_json: the plan's stored form, read strictly.
#include "proxy/control/plan_json.hpp"

#include <charconv>
#include <cmath>

namespace sg::control {

namespace {

using nlohmann::json;

struct reader {
    std::vector<std::string> problems;
    void add(const std::string& path, const std::string& what) {
        problems.push_back(path + ": " + what);
    }

    std::optional<config::stage> stage_at(const json& j, const std::string& path) {
        if (!j.is_string()) {
            add(path, "expected one of " + config::stage_list());
            return std::nullopt;
        }
        auto s = config::parse_stage(j.get<std::string>());
        if (!s) add(path, "\"" + j.get<std::string>() + "\" is not one of " + config::stage_list());
        return s;
    }

    std::vector<std::string> strings_at(const json& j, const std::string& path) {
        std::vector<std::string> out;
        if (!j.is_array()) {
            add(path, "expected an array of strings");
            return out;
        }
        for (std::size_t i = 0; i < j.size(); ++i) {
            if (!j[i].is_string()) {
                add(path + "[" + std::to_string(i) + "]", "expected a string");
                continue;
            }
            out.push_back(j[i].get<std::string>());
        }
        return out;
    }

    void unknown_keys(const json& obj, std::initializer_list<std::string_view> known,
                      const std::string& path) {
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
                add(path + "." + it.key(), "unknown key");
            }
        }
    }
};

}  // namespace

proxy::result<std::uint32_t> parse_percent(std::string_view text) {
    double v = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(v)) {
        return proxy::fail("\"" + std::string(text) + "\" is not a percentage (0 to 100)");
    }
    if (auto why = percent_problem(v)) {
        const bool range = !(v >= 0 && v <= 100);
        return proxy::fail("a percentage " + *why +
                           (range ? ", not " + std::string(text) : " (" + std::string(text) + ")"));
    }
    return static_cast<std::uint32_t>(std::lround(v * 100));
}

std::optional<std::string> percent_problem(double v) {
    if (!(v >= 0 && v <= 100)) return "must be between 0 and 100";
    const double bp = v * 100;
    if (std::fabs(bp - std::round(bp)) > 1e-6) return "has at most two decimals";
    return std::nullopt;
}

std::string percent_text(std::uint32_t basis_points) {
    std::string s = std::to_string(basis_points / 100);
    if (const auto frac = basis_points % 100; frac != 0) {
        s += frac % 10 == 0 ? "." + std::to_string(frac / 10)
                            : (frac < 10 ? ".0" : ".") + std::to_string(frac);
    }
    return s;
}

json to_json(const routing::plan& p) {
    json j;
    j["default"] = config::to_string(p.default_stage);
    j["cohorts"] = json::array();
    for (const auto& c : p.cohorts) {
        json jc;
        jc["name"] = c.name;
        jc["stage"] = config::to_string(c.stage);
        if (c.selects == routing::cohort::kind::users) {
            jc["users"] = c.users;
        } else {
            // A number, exact to the basis point: 250 -> 2.5.
            jc["percent"] = static_cast<double>(c.basis_points) / 100.0;
        }
        j["cohorts"].push_back(std::move(jc));
    }
    if (p.freeze) {
        json f;
        f["until_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                            p.freeze->until.time_since_epoch())
                            .count();
        f["cohorts"] = p.freeze->cohorts;
        f["reason"] = p.freeze->reason;
        j["freeze"] = std::move(f);
    }
    return j;
}

proxy::result<routing::plan> plan_from_json(std::string_view text) {
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return proxy::fail("$: not JSON");
    if (!j.is_object()) return proxy::fail("$: expected an object");
    reader r;
    routing::plan p;
    r.unknown_keys(j, {"default", "cohorts", "freeze"}, "$");
    if (!j.contains("default")) {
        r.add("$.default", "missing");
    } else if (auto s = r.stage_at(j["default"], "$.default")) {
        p.default_stage = *s;
    }
    if (j.contains("cohorts")) {
        const json& cs = j["cohorts"];
        if (!cs.is_array()) r.add("$.cohorts", "expected an array");
        for (std::size_t i = 0; cs.is_array() && i < cs.size(); ++i) {
            const std::string at = "$.cohorts[" + std::to_string(i) + "]";
            const json& jc = cs[i];
            if (!jc.is_object()) {
                r.add(at, "expected an object");
                continue;
            }
            r.unknown_keys(jc, {"name", "stage", "users", "percent"}, at);
            routing::cohort c;
            if (jc.contains("name") && jc["name"].is_string()) {
                c.name = jc["name"].get<std::string>();
            } else {
                r.add(at + ".name", "expected a string");
            }
            if (!jc.contains("stage")) {
                r.add(at + ".stage", "missing");
            } else if (auto s = r.stage_at(jc["stage"], at + ".stage")) {
                c.stage = *s;
            }
            const bool has_users = jc.contains("users");
            const bool has_percent = jc.contains("percent");
            if (has_users == has_percent) {
                r.add(at, "expected exactly one of \"users\" and \"percent\"");
            } else if (has_users) {
                c.selects = routing::cohort::kind::users;
                c.users = r.strings_at(jc["users"], at + ".users");
            } else if (!jc["percent"].is_number()) {
                r.add(at + ".percent", "expected a number");
            } else {
                c.selects = routing::cohort::kind::percent;
                const double v = jc["percent"].get<double>();
                if (auto why = percent_problem(v)) {
                    r.add(at + ".percent", *why);
                } else {
                    c.basis_points = static_cast<std::uint32_t>(std::lround(v * 100));
                }
            }
            p.cohorts.push_back(std::move(c));
        }
    }
    if (j.contains("freeze") && !j["freeze"].is_null()) {
        const json& f = j["freeze"];
        if (!f.is_object()) {
            r.add("$.freeze", "expected an object or null");
        } else {
            r.unknown_keys(f, {"until_ms", "cohorts", "reason"}, "$.freeze");
            routing::freeze_window w;
            if (f.contains("until_ms") && f["until_ms"].is_number_integer()) {
                w.until = routing::wall_clock::time_point(
                    std::chrono::milliseconds(f["until_ms"].get<std::int64_t>()));
            } else {
                r.add("$.freeze.until_ms", "expected an integer (milliseconds since the epoch)");
            }
            if (f.contains("cohorts")) w.cohorts = r.strings_at(f["cohorts"], "$.freeze.cohorts");
            if (f.contains("reason") && f["reason"].is_string()) {
                w.reason = f["reason"].get<std::string>();
            }
            p.freeze = std::move(w);
        }
    }
    if (r.problems.empty()) {
        for (auto& problem : routing::plan_problems(p)) r.problems.push_back(std::move(problem));
    }
    if (!r.problems.empty()) {
        std::string all;
        for (const auto& problem : r.problems) all += (all.empty() ? "" : "\n") + problem;
        return proxy::fail(all);
    }
    return p;
}

}  // namespace sg::control
