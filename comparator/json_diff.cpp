// comparator/json_diff: see the header.
#include "comparator/json_diff.hpp"

#include <chrono>
#include <cmath>
#include <map>

namespace sg::comparator {
namespace {

// The text an element's key field stands for in a path.
std::string key_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

class walker {
public:
    walker(const rules& r, std::size_t max, diff_result& out) : r_(r), max_(max), out_(out) {}

    void walk(const json* a, const json* b) {
        if (out_.truncated) return;
        if (ignored()) return;
        if (a == nullptr || b == nullptr) {
            add(a == nullptr ? change::extra_in_v2 : change::missing_in_v2, a, b);
            return;
        }
        if (a->is_string() && b->is_string()) {
            if (const timestamp_rule* t = timestamp_at()) {
                const auto ta =
                    parse_timestamp(a->get_ref<const std::string&>(), t->naive_offset_minutes);
                const auto tb =
                    parse_timestamp(b->get_ref<const std::string&>(), t->naive_offset_minutes);
                if (ta && tb) {
                    const std::int64_t tolerance_us = t->precision_ms * 1000;
                    const bool same = tolerance_us == 0 ? *ta == *tb
                                                        : floor_div(*ta, tolerance_us) ==
                                                              floor_div(*tb, tolerance_us);
                    if (!same) add(change::changed, a, b);
                    return;
                }
            }
        }
        if (a->is_number() && b->is_number()) {
            if (!numbers_equal(*a, *b)) add(change::changed, a, b);
            return;
        }
        if (a->type() != b->type()) {
            add(change::changed, a, b);
            return;
        }
        if (a->is_object()) {
            walk_object(*a, *b);
        } else if (a->is_array()) {
            if (const keyed_array* k = keyed_at()) {
                walk_keyed(*a, *b, k->field);
            } else {
                walk_ordered(*a, *b);
            }
        } else if (*a != *b) {
            add(change::changed, a, b);
        }
    }

private:
    static std::int64_t floor_div(std::int64_t a, std::int64_t b) {
        std::int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
        return q;
    }

    bool numbers_equal(const json& a, const json& b) const {
        if (a.is_number_float() || b.is_number_float() || r_.numeric_tolerance > 0) {
            const double x = a.get<double>();
            const double y = b.get<double>();
            if (std::isnan(x) || std::isnan(y)) return false;
            return std::fabs(x - y) <= r_.numeric_tolerance;
        }
        if (a.is_number_unsigned() && b.is_number_unsigned()) {
            return a.get<std::uint64_t>() == b.get<std::uint64_t>();
        }
        if (a.is_number_unsigned() || b.is_number_unsigned()) {
            // one side is negative-capable signed: equal only when both fit in int64
            const json& u = a.is_number_unsigned() ? a : b;
            const json& s = a.is_number_unsigned() ? b : a;
            const auto uv = u.get<std::uint64_t>();
            const auto sv = s.get<std::int64_t>();
            return sv >= 0 && static_cast<std::uint64_t>(sv) == uv;
        }
        return a.get<std::int64_t>() == b.get<std::int64_t>();
    }

    void walk_object(const json& a, const json& b) {
        for (auto it = a.begin(); it != a.end() && !out_.truncated; ++it) {
            push(it.key(), false);
            const auto found = b.find(it.key());
            walk(&it.value(), found == b.end() ? nullptr : &*found);
            pop();
        }
        for (auto it = b.begin(); it != b.end() && !out_.truncated; ++it) {
            if (a.contains(it.key())) continue;
            push(it.key(), false);
            walk(nullptr, &it.value());
            pop();
        }
    }

    void walk_ordered(const json& a, const json& b) {
        const std::size_t n = std::max(a.size(), b.size());
        for (std::size_t i = 0; i < n && !out_.truncated; ++i) {
            push(std::to_string(i), true);
            walk(i < a.size() ? &a[i] : nullptr, i < b.size() ? &b[i] : nullptr);
            pop();
        }
    }

    // Elements with a unique key on their side are matched by key; the others (no such field,
    // or a key given twice) are compared by position among themselves.
    void walk_keyed(const json& a, const json& b, const std::string& field) {
        struct side {
            std::map<std::string, std::size_t> by_key;
            std::vector<std::string> key_order;
            std::vector<std::size_t> rest;
        };
        auto index = [&](const json& arr) {
            side s;
            std::map<std::string, int> seen;
            for (const auto& el : arr) {
                if (el.is_object() && el.contains(field)) ++seen[key_text(el.at(field))];
            }
            for (std::size_t i = 0; i < arr.size(); ++i) {
                const json& el = arr[i];
                if (el.is_object() && el.contains(field)) {
                    auto k = key_text(el.at(field));
                    if (seen[k] == 1) {
                        s.by_key.emplace(k, i);
                        s.key_order.push_back(std::move(k));
                        continue;
                    }
                }
                s.rest.push_back(i);
            }
            return s;
        };
        const side sa = index(a);
        const side sb = index(b);
        for (const auto& k : sa.key_order) {
            if (out_.truncated) return;
            const auto found = sb.by_key.find(k);
            push(k, true);
            walk(&a[sa.by_key.at(k)], found == sb.by_key.end() ? nullptr : &b[found->second]);
            pop();
        }
        for (const auto& k : sb.key_order) {
            if (out_.truncated) return;
            if (sa.by_key.count(k) != 0) continue;
            push(k, true);
            walk(nullptr, &b[sb.by_key.at(k)]);
            pop();
        }
        const std::size_t n = std::max(sa.rest.size(), sb.rest.size());
        for (std::size_t i = 0; i < n && !out_.truncated; ++i) {
            push(std::to_string(i), true);
            walk(i < sa.rest.size() ? &a[sa.rest[i]] : nullptr,
                 i < sb.rest.size() ? &b[sb.rest[i]] : nullptr);
            pop();
        }
    }

    bool ignored() const {
        for (const auto& p : r_.ignore) {
            if (matches(p, path_)) return true;
        }
        return false;
    }
    const timestamp_rule* timestamp_at() const {
        for (const auto& t : r_.timestamps) {
            if (matches(t.at, path_)) return &t;
        }
        return nullptr;
    }
    const keyed_array* keyed_at() const {
        for (const auto& k : r_.keyed) {
            if (matches(k.at, path_)) return &k;
        }
        return nullptr;
    }

    void push(std::string segment, bool element) {
        path_.push_back(std::move(segment));
        element_.push_back(element);
    }
    void pop() {
        path_.pop_back();
        element_.pop_back();
    }

    void add(change what, const json* a, const json* b) {
        if (out_.differences.size() >= max_) {
            out_.truncated = true;
            return;
        }
        difference d;
        for (const auto& s : path_) {
            d.path += '/';
            d.path += escape_segment(s);
        }
        d.what = what;
        if (a != nullptr) d.v1 = *a;
        if (b != nullptr) d.v2 = *b;
        for (std::size_t i = 0; i < path_.size(); ++i) {
            d.general_path += '/';
            d.general_path += element_[i] ? std::string("*") : escape_segment(path_[i]);
        }
        out_.differences.push_back(std::move(d));
    }

    const rules& r_;
    std::size_t max_;
    diff_result& out_;
    std::vector<std::string> path_;
    std::vector<bool> element_;
};

bool digits(std::string_view s, std::size_t at, std::size_t n, int& value) {
    if (at + n > s.size()) return false;
    value = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        value = value * 10 + (s[i] - '0');
    }
    return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date; nullopt for a day the month lacks.
std::optional<std::int64_t> days_from_civil(int y, unsigned m, unsigned d) {
    using namespace std::chrono;
    const year_month_day ymd = year{y} / month{m} / day{d};
    if (!ymd.ok()) return std::nullopt;
    return sys_days(ymd).time_since_epoch().count();
}

}  // namespace

std::string escape_segment(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else {
            out += c;
        }
    }
    return out;
}

std::string_view name(change c) {
    switch (c) {
        case change::changed: return "changed";
        case change::missing_in_v2: return "missing_in_v2";
        case change::extra_in_v2: return "extra_in_v2";
    }
    return "changed";
}

std::optional<path_pattern> parse_pattern(std::string_view text) {
    path_pattern p;
    if (text.empty()) return p;
    if (text.front() != '/') return std::nullopt;
    text.remove_prefix(1);
    for (;;) {
        const auto slash = text.find('/');
        const std::string_view raw = text.substr(0, slash);
        std::string seg;
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '~') {
                if (i + 1 >= raw.size() || (raw[i + 1] != '0' && raw[i + 1] != '1')) {
                    return std::nullopt;
                }
                seg += raw[i + 1] == '0' ? '~' : '/';
                ++i;
            } else {
                seg += raw[i];
            }
        }
        p.segments.push_back(std::move(seg));
        if (slash == std::string_view::npos) break;
        text.remove_prefix(slash + 1);
    }
    return p;
}

bool matches(const path_pattern& p, const std::vector<std::string>& path) {
    if (p.segments.size() != path.size()) return false;
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (p.segments[i] != "*" && p.segments[i] != path[i]) return false;
    }
    return true;
}

diff_result diff(const json& v1, const json& v2, const rules& r, std::size_t max_differences) {
    diff_result out;
    if (r.status_only) return out;
    walker w(r, max_differences, out);
    w.walk(&v1, &v2);
    return out;
}

std::optional<std::int64_t> parse_timestamp(std::string_view s, int naive_offset_minutes) {
    int y = 0, mo = 0, d = 0;
    if (s.size() < 10 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) ||
        s[7] != '-' || !digits(s, 8, 2, d) || mo < 1 || mo > 12 || d < 1 || d > 31) {
        return std::nullopt;
    }
    std::size_t at = 10;
    int h = 0, mi = 0, sec = 0;
    std::int64_t micros = 0;
    if (at < s.size() && (s[at] == 'T' || s[at] == ' ')) {
        if (!digits(s, at + 1, 2, h) || at + 3 >= s.size() || s[at + 3] != ':' ||
            !digits(s, at + 4, 2, mi) || h > 23 || mi > 59) {
            return std::nullopt;
        }
        at += 6;
        if (at < s.size() && s[at] == ':') {
            if (!digits(s, at + 1, 2, sec) || sec > 60) return std::nullopt;
            at += 3;
            if (at < s.size() && (s[at] == '.' || s[at] == ',')) {
                std::size_t n = 0;
                std::int64_t frac = 0;
                ++at;
                while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
                    if (n < 6) frac = frac * 10 + (s[at] - '0');
                    ++n;
                    ++at;
                }
                if (n == 0 || n > 9) return std::nullopt;
                for (std::size_t k = n; k < 6; ++k) frac *= 10;
                micros = frac;
            }
        }
    }
    int offset = naive_offset_minutes;
    if (at < s.size()) {
        if (s[at] == 'Z' || s[at] == 'z') {
            offset = 0;
            ++at;
        } else if (s[at] == '+' || s[at] == '-') {
            const int sign = s[at] == '-' ? -1 : 1;
            int oh = 0, om = 0;
            if (!digits(s, at + 1, 2, oh)) return std::nullopt;
            std::size_t next = at + 3;
            if (next < s.size() && s[next] == ':') ++next;
            if (!digits(s, next, 2, om) || oh > 23 || om > 59) return std::nullopt;
            offset = sign * (oh * 60 + om);
            at = next + 2;
        }
    }
    if (at != s.size()) return std::nullopt;
    const auto days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    if (!days) return std::nullopt;
    const std::int64_t secs = *days * 86400 + h * 3600 + mi * 60 + sec - offset * 60;
    return secs * 1'000'000 + micros;
}

}  // namespace sg::comparator
