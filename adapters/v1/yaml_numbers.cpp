// adapters/v1/yaml_numbers: Python's int(str, base), on unbounded integers, and float(str), as
// PyYAML's int and float constructors call them.
#include "adapters/v1/yaml_internal.hpp"

#include <locale.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace sg::v1::yaml_detail {

// ------------------------------------------------------------------------------------------------
// Unbounded integers, enough for PyYAML's int constructor: parse in base 2/8/10/16, * small, + big.

int digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return 99;
}

std::optional<parsed_int> python_int(std::string_view s, int base) {
    s = python_strip(s);
    bool neg = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s.size() >= 2 && s[0] == '0') {
        const char p = static_cast<char>(s[1] | 0x20);
        if ((base == 16 && p == 'x') || (base == 8 && p == 'o') || (base == 2 && p == 'b'))
            s.remove_prefix(2);
    }
    if (s.empty()) return std::nullopt;
    for (const char c : s)
        if (digit_value(c) >= base) return std::nullopt;
    if (base == 10 && s.size() > python_max_str_digits) return std::nullopt;
    parsed_int r;
    // A power-of-two base has no digit limit in CPython, but str() of a huge value fails later.
    const double bits_per_digit = base == 16 ? 4 : base == 8 ? 3 : base == 2 ? 1 : 3.33;
    if (static_cast<double>(s.size()) * bits_per_digit > 4300 * 3.33 + 64) {
        r.printable = false;
        return r;
    }
    for (const char c : s)
        r.value.mul_add_small(static_cast<std::uint32_t>(base),
                              static_cast<std::uint32_t>(digit_value(c)));
    r.value.neg = neg;
    r.value.trim();
    if (r.value.decimal_digits() > python_max_str_digits) r.printable = false;
    return r;
}

// ------------------------------------------------------------------------------------------------
// Python float(str).

namespace {

locale_t c_locale() {
    static locale_t loc = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
    return loc;
}

bool ascii_ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
    return true;
}

}  // namespace

std::optional<double> python_float(std::string_view s) {
    s = python_strip(s);
    std::string_view body = s;
    bool neg = false;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
        neg = body[0] == '-';
        body.remove_prefix(1);
    }
    if (ascii_ieq(body, "inf") || ascii_ieq(body, "infinity"))
        return neg ? -std::numeric_limits<double>::infinity()
                   : std::numeric_limits<double>::infinity();
    if (ascii_ieq(body, "nan")) return std::numeric_limits<double>::quiet_NaN();
    // digits [. digits] [e [sign] digits], at least one mantissa digit.
    std::size_t i = 0, mant = 0;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++mant;
    if (i < body.size() && body[i] == '.') {
        ++i;
        while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++mant;
    }
    if (mant == 0) return std::nullopt;
    if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
        ++i;
        if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
        std::size_t ed = 0;
        while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++ed;
        if (ed == 0) return std::nullopt;
    }
    if (i != body.size()) return std::nullopt;
    const std::string tmp(body);
    const double v = strtod_l(tmp.c_str(), nullptr, c_locale());
    return neg ? -v : v;
}

}  // namespace sg::v1::yaml_detail
