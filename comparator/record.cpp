// comparator/record: see the header.
#include "comparator/record.hpp"

#include <algorithm>

namespace sg::comparator {

namespace {

json body_json(const std::string& body, const redaction& r) {
    json parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded()) return redacted(json(body), r, false);
    return redacted(parsed, r);
}

}  // namespace

json redacted(const json& v, const redaction& r, bool under_field) {
    if (!r.active()) return v;
    if (v.is_string()) {
        if (!r.all_strings && !under_field) return v;
        return json("[redacted " + std::to_string(v.get_ref<const std::string&>().size()) +
                    " bytes]");
    }
    if (v.is_array()) {
        json out = json::array();
        for (const auto& el : v) out.push_back(redacted(el, r, under_field));
        return out;
    }
    if (v.is_object()) {
        json out = json::object();
        for (auto it = v.begin(); it != v.end(); ++it) {
            const bool field = under_field || std::find(r.fields.begin(), r.fields.end(),
                                                        it.key()) != r.fields.end();
            out[it.key()] = redacted(it.value(), r, field);
        }
        return out;
    }
    return v;
}

json to_json(const discrepancy& d, const redaction& r) {
    json diffs = json::array();
    for (const auto& x : d.diff.differences) {
        // The last path segment decides whether a value sits under a redacted key.
        const auto slash = x.path.rfind('/');
        const std::string last = slash == std::string::npos ? "" : x.path.substr(slash + 1);
        const bool field = std::find(r.fields.begin(), r.fields.end(), last) != r.fields.end();
        json j = {{"path", x.path}, {"change", std::string(name(x.what))}};
        j["v1"] = x.v1 ? redacted(*x.v1, r, field) : json();
        j["v2"] = x.v2 ? redacted(*x.v2, r, field) : json();
        if (!x.v1) j.erase("v1");
        if (!x.v2) j.erase("v2");
        diffs.push_back(std::move(j));
    }
    return json{
        {"time_ms", d.time_ms},
        {"request_id", d.request_id},
        {"endpoint", d.endpoint},
        {"user", d.user},
        {"target", d.target},
        {"v2_source", d.v2_source},
        {"result", std::string(name(d.what))},
        {"differences", std::move(diffs)},
        {"truncated", d.diff.truncated},
        {"attempts", d.attempts},
        {"v1", {{"status", d.v1_status}, {"body", body_json(d.v1_body, r)}}},
        {"v2", {{"status", d.v2_status}, {"body", body_json(d.v2_body, r)}}},
    };
}

}  // namespace sg::comparator
