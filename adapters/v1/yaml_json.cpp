// adapters/v1/yaml_json: PyYAML safe_load semantics on top of yaml-cpp's event parser, and
// FastAPI's JSON encoding of the result. See the header for the contract and the known gaps. This
// file holds py_graph and the Python text helpers; the rest is in yaml_numbers, yaml_resolve,
// yaml_scalars, yaml_compose, yaml_construct and yaml_encode (what they share: yaml_internal.hpp).
#include "adapters/v1/yaml_json.hpp"

#include "adapters/v1/yaml_internal.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace sg::v1 {

std::size_t py_graph::add(py_object o) {
    objects.push_back(std::move(o));
    return objects.size() - 1;
}

// ------------------------------------------------------------------------------------------------
// UTF-8, the way CPython's codec sees it.

namespace yaml_detail {

bool has_surrogate(std::string_view s) {
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        if (static_cast<unsigned char>(s[i]) == 0xED &&
            static_cast<unsigned char>(s[i + 1]) >= 0xA0)
            return true;
    }
    return false;
}

// PyYAML's Reader refuses these anywhere in the stream (ReaderError, a YAMLError).
bool is_yaml_printable(char32_t c) {
    return c == 0x09 || c == 0x0A || c == 0x0D || (c >= 0x20 && c <= 0x7E) || c == 0x85 ||
           (c >= 0xA0 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

}  // namespace yaml_detail

std::size_t python_len(std::string_view utf8) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < utf8.size();) {
        next_code_point(utf8, i, true);
        ++n;
    }
    return n;
}

bool is_python_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string_view python_strip(std::string_view s) {
    std::size_t b = 0;
    while (b < s.size()) {
        std::size_t j = b;
        const char32_t c = next_code_point(s, j, true);
        if (c == no_char || !is_python_space(c)) break;
        b = j;
    }
    std::size_t e = s.size();
    while (e > b) {
        // Step back to the start of the last code point.
        std::size_t k = e - 1;
        while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80 && e - k < 4) --k;
        std::size_t j = k;
        const char32_t c = next_code_point(s, j, true);
        if (c == no_char || j != e || !is_python_space(c)) break;
        e = k;
    }
    return s.substr(b, e - b);
}

std::string python_json_string(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size() + 2);
    out += '"';
    for (const char ch : utf8) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
    return out;
}

std::string python_float_repr(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
    // Shortest round-trip digits, then Python's layout rule (float_repr_style 'short', mode 'r').
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    std::string sci(buf, res.ptr);
    std::string sign;
    if (!sci.empty() && sci[0] == '-') {
        sign = "-";
        sci.erase(0, 1);
    }
    const auto epos = sci.find('e');
    std::string mant = sci.substr(0, epos);
    const int exp10 = std::atoi(sci.c_str() + epos + 1);
    std::string digits;
    for (const char c : mant)
        if (c != '.') digits += c;
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    const int decpt = exp10 + 1;
    const int n = static_cast<int>(digits.size());
    std::string out = sign;
    if (decpt > 16 || decpt <= -4) {
        out += digits[0];
        if (n > 1) {
            out += '.';
            out += digits.substr(1);
        }
        char ebuf[16];
        std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
        out += ebuf;
    } else if (decpt <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-decpt), '0');
        out += digits;
    } else if (decpt >= n) {
        out += digits;
        out.append(static_cast<std::size_t>(decpt - n), '0');
        out += ".0";
    } else {
        out += digits.substr(0, static_cast<std::size_t>(decpt));
        out += '.';
        out += digits.substr(static_cast<std::size_t>(decpt));
    }
    return out;
}

}  // namespace sg::v1
