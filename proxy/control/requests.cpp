// proxy/control/requests: strict readers of the plan-change bodies.
#include "proxy/control/requests.hpp"

#include "proxy/control/plan_json.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace sg::control {

namespace {

using nlohmann::json;

constexpr double max_freeze_minutes = 24 * 60;  // a freeze longer than a day is a mistake

class body_reader {
public:
    explicit body_reader(std::string_view text, std::initializer_list<std::string_view> known) {
        doc_ = json::parse(text, nullptr, false);
        if (doc_.is_discarded() || !doc_.is_object()) {
            add("$", "expected a JSON object");
            doc_ = json::object();
            return;
        }
        for (auto it = doc_.begin(); it != doc_.end(); ++it) {
            if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
                add("$." + it.key(), "unknown key");
            }
        }
    }

    void add(const std::string& path, const std::string& what) {
        problems_ += (problems_.empty() ? "" : "\n") + path + ": " + what;
    }
    bool has(const char* key) const { return doc_.contains(key) && !doc_[key].is_null(); }
    const json& at(const char* key) const { return doc_[key]; }

    std::string text(const char* key, std::string fallback = "") {
        if (!has(key)) return fallback;
        if (!doc_[key].is_string()) {
            add(std::string("$.") + key, "expected a string");
            return fallback;
        }
        return doc_[key].get<std::string>();
    }
    bool flag(const char* key) {
        if (!has(key)) return false;
        if (!doc_[key].is_boolean()) {
            add(std::string("$.") + key, "expected true or false");
            return false;
        }
        return doc_[key].get<bool>();
    }
    std::vector<std::string> strings(const char* key) {
        std::vector<std::string> out;
        if (!doc_[key].is_array()) {
            add(std::string("$.") + key, "expected an array of strings");
            return out;
        }
        for (std::size_t i = 0; i < doc_[key].size(); ++i) {
            if (!doc_[key][i].is_string()) {
                add(std::string("$.") + key + "[" + std::to_string(i) + "]", "expected a string");
                continue;
            }
            out.push_back(doc_[key][i].get<std::string>());
        }
        return out;
    }

    template <class T>
    proxy::result<T> done(T value) const {
        if (!problems_.empty()) return proxy::refuse(problems_);
        return value;
    }

private:
    json doc_;
    std::string problems_;
};

}  // namespace

proxy::result<stage_change> parse_stage_change(std::string_view body) {
    body_reader r(body,
                  {"stage", "cohort", "users", "percent", "remove", "force", "reason", "who"});
    stage_change c;
    const std::string stage = r.text("stage");
    if (!r.has("stage")) {
        r.add("$.stage", "missing: one of " + config::stage_list());
    } else if (auto s = config::parse_stage(stage)) {
        c.to = *s;
    } else if (!stage.empty()) {
        r.add("$.stage", "\"" + stage + "\" is not one of " + config::stage_list());
    }
    c.cohort = r.text("cohort");
    if (r.has("users")) c.users = r.strings("users");
    if (r.has("percent")) {
        const json& p = r.at("percent");
        // A number, or a string as typed on a command line ("2.5").
        const std::string text = p.is_number()   ? fmt::format("{}", p.get<double>())
                                 : p.is_string() ? p.get<std::string>()
                                                 : std::string("?");
        if (auto bp = parse_percent(text)) {
            c.basis_points = *bp;
        } else {
            r.add("$.percent", bp.error().what);
        }
    }
    c.remove = r.flag("remove");
    c.force = r.flag("force");
    c.reason = r.text("reason");
    c.who = r.text("who", "admin API");
    if (c.force && c.reason.empty()) r.add("$.reason", "a forced change needs a reason");
    return r.done(std::move(c));
}

proxy::result<freeze_request> parse_freeze(std::string_view body) {
    body_reader r(body, {"minutes", "cohorts", "reason", "who"});
    freeze_request f;
    if (!r.has("minutes") || !r.at("minutes").is_number()) {
        r.add("$.minutes", "expected a number of minutes");
    } else {
        const double m = r.at("minutes").get<double>();
        if (!(m > 0 && m <= max_freeze_minutes)) {
            r.add("$.minutes",
                  fmt::format("must be more than 0 and at most {}", max_freeze_minutes));
        } else {
            f.length = std::chrono::milliseconds(std::llround(m * 60'000));
        }
    }
    if (r.has("cohorts")) f.cohorts = r.strings("cohorts");
    f.reason = r.text("reason");
    f.who = r.text("who", "admin API");
    return r.done(std::move(f));
}

proxy::result<unfreeze_request> parse_unfreeze(std::string_view body) {
    body_reader r(body.empty() ? std::string_view("{}") : body, {"reason", "who"});
    unfreeze_request u;
    u.reason = r.text("reason");
    u.who = r.text("who", "admin API");
    return r.done(std::move(u));
}

}  // namespace sg::control
