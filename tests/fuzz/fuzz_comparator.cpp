// tests/fuzz/fuzz_comparator: libFuzzer target for comparator/ (json_diff, compare, record). The
// input is two documents separated by the first NUL byte (no NUL: the input against itself
// changed by one byte). Besides crashes and sanitizer findings it checks the comparator's
// properties: reflexive, symmetric in the number of differences, equal serializations never
// differ, and documents that differ are never classified as a match.
#include "comparator/compare.hpp"
#include "comparator/json_diff.hpp"
#include "comparator/record.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace cmp = sg::comparator;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

cmp::rules some_rules() {
    cmp::rules r;
    r.keyed.push_back({*cmp::parse_pattern(""), "label"});
    r.keyed.push_back({*cmp::parse_pattern("/*/items"), "id"});
    r.timestamps.push_back({*cmp::parse_pattern("/*/timestamp"), 1000, 60});
    r.ignore.push_back(*cmp::parse_pattern("/etag"));
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string a, b;
    if (const auto nul = in.find('\0'); nul != std::string_view::npos) {
        a = std::string(in.substr(0, nul));
        b = std::string(in.substr(nul + 1));
    } else {
        a = std::string(in);
        b = a;
        if (!b.empty()) b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 1);
    }
    cmp::parse_timestamp(a, 0);
    cmp::parse_pattern(a);
    const cmp::json ja = cmp::json::parse(a, nullptr, false);
    const cmp::json jb = cmp::json::parse(b, nullptr, false);
    const cmp::endpoint_rules er{some_rules(), {422}};
    const auto c = cmp::compare({200, a}, {200, b}, er);
    if (ja.is_discarded() || jb.is_discarded()) return 0;
    for (const cmp::rules& r : {cmp::rules{}, some_rules()}) {
        check(cmp::diff(ja, ja, r).empty());
        check(cmp::diff(jb, jb, r).empty());
        const auto ab = cmp::diff(ja, jb, r, 100000);
        const auto ba = cmp::diff(jb, ja, r, 100000);
        check(ab.size() == ba.size());
    }
    // Documents that serialize the same (nlohmann sorts keys) never differ; ones that differ
    // are never classified as a match.
    const auto plain = cmp::diff(ja, jb, cmp::rules{}, 100000);
    if (ja.dump() == jb.dump()) check(plain.empty());
    if (!plain.empty()) {
        check(cmp::compare({200, a}, {200, b}, cmp::endpoint_rules{}).what != cmp::result::match);
    }
    cmp::discrepancy d;
    d.v1_body = a;
    d.v2_body = b;
    d.what = c.what;
    d.diff = c.body;
    cmp::redaction red;
    red.fields = {"content"};
    (void)cmp::to_json(d, red).dump(-1, ' ', false, cmp::json::error_handler_t::replace);
    return 0;
}
