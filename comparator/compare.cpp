// comparator/compare: see the header.
#include "comparator/compare.hpp"

#include <algorithm>

namespace sg::comparator {

namespace {

constexpr std::array<std::string_view, result_count> result_names = {
    "match",      "mismatch", "missing_in_v2", "extra_in_v2", "status_mismatch", "v2_error",
    "v2_timeout", "v1_error", "revision_form", "lagging",     "skipped",
};

bool is_2xx(unsigned s) { return s >= 200 && s < 300; }

}  // namespace

std::string_view name(result r) { return result_names[static_cast<std::size_t>(r)]; }

const std::array<result, result_count>& all_results() {
    static const std::array<result, result_count> all = [] {
        std::array<result, result_count> a{};
        for (std::size_t i = 0; i < result_count; ++i) a[i] = static_cast<result>(i);
        return a;
    }();
    return all;
}

bool is_discrepancy(result r) {
    switch (r) {
        case result::mismatch:
        case result::missing_in_v2:
        case result::extra_in_v2:
        case result::status_mismatch: return true;
        default: return false;
    }
}

comparison compare(const response& v1, const response& v2, const endpoint_rules& r,
                   std::size_t max_differences) {
    comparison out;
    if (v1_failed(v1.status)) {
        out.what = result::v1_error;
        return out;
    }
    if (v1.status != v2.status) {
        if (is_2xx(v1.status) && v2.status == 404) {
            out.what = result::missing_in_v2;
        } else if (v1.status == 404 && is_2xx(v2.status)) {
            out.what = result::extra_in_v2;
        } else {
            out.what = result::status_mismatch;
        }
        return out;
    }
    const auto& codes = r.status_only_codes;
    if (r.body.status_only || std::find(codes.begin(), codes.end(), v1.status) != codes.end()) {
        return out;
    }
    json a = json::parse(v1.body, nullptr, false);
    json b = json::parse(v2.body, nullptr, false);
    if (a.is_discarded() || b.is_discarded()) {
        if (v1.body == v2.body) return out;
        difference d;
        d.what = change::changed;
        d.v1 = std::string(v1.body);
        d.v2 = std::string(v2.body);
        out.body.differences.push_back(std::move(d));
        out.what = result::mismatch;
        return out;
    }
    out.body = diff(a, b, r.body, max_differences);
    if (out.body.empty()) return out;
    const auto all = [&](change c) {
        return std::all_of(out.body.differences.begin(), out.body.differences.end(),
                           [&](const difference& d) { return d.what == c; });
    };
    out.what = all(change::missing_in_v2) ? result::missing_in_v2
               : all(change::extra_in_v2) ? result::extra_in_v2
                                          : result::mismatch;
    return out;
}

}  // namespace sg::comparator
