// adapters/v1/yaml_scalars: quoted and block scalars re-read with PyYAML's own scanning rules
// (folding, escapes, chomping) where yaml-cpp reads them differently, and a node's properties
// skipped as PyYAML's scanner skips them.
#include "adapters/v1/yaml_internal.hpp"

#include "adapters/v1/utf8.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace sg::v1::yaml_detail {

// Skips a node's properties ("&anchor", "!tag") at `i`; tells whether one was the non-specific
// "!" tag, which PyYAML resolves like a plain scalar whatever the style ("! 5" is 5, "! '5'" too),
// while yaml-cpp reports it like a quoted scalar.
std::size_t skip_properties(std::string_view text, std::size_t i, bool* non_specific) {
    while (i < text.size()) {
        const char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ++i;
        } else if (c == '!' || c == '&') {
            if (c == '!' && non_specific &&
                (i + 1 >= text.size() || one_of(text[i + 1], " \t\r\n")))
                *non_specific = true;
            if (c == '!' && i + 1 < text.size() && text[i + 1] == '<') {
                const auto e = text.find('>', i);
                i = e == std::string_view::npos ? text.size() : e + 1;
            } else {
                while (i < text.size() && !one_of(text[i], " \t\r\n,[]{}")) ++i;
            }
        } else {
            break;
        }
    }
    return i;
}

namespace {

struct block_header {
    int chomping = 0;  // -1 strip, 0 clip, +1 keep
    long increment = 0;
};

// PyYAML's scan_block_scalar_indicators from just after the "|" or ">", then the blanks and the
// comment of scan_block_scalar_ignored_line (the caller reads its line break).
block_header scan_block_header(std::string_view t, std::size_t& i) {
    auto peek = [&](std::size_t k) { return k < t.size() ? t[k] : '\0'; };
    block_header h;
    for (int round = 0; round < 2; ++round) {
        const char c = peek(i);
        if ((c == '+' || c == '-') && h.chomping == 0) {
            h.chomping = c == '+' ? 1 : -1;
            ++i;
        } else if (c >= '1' && c <= '9' && h.increment == 0) {
            h.increment = c - '0';
            ++i;
        }
    }
    while (peek(i) == ' ') ++i;
    if (peek(i) == '#')
        while (peek(i) != '\0' && peek(i) != '\r' && peek(i) != '\n') ++i;
    return h;
}

}  // namespace

// PyYAML's scan_block_scalar on the text from the "|" or ">" indicator: yaml-cpp keeps one line
// break fewer than PyYAML when "+" chomping meets trailing lines holding only spaces, and the
// indentation rules differ in corners. `parent_indent` is the column of the innermost block
// collection (-1 at top level). `end` receives where PyYAML's scanner stops. Throws yaml_stop
// where PyYAML raises.
std::string pyyaml_block_scalar(std::string_view t, std::size_t i, long parent_indent,
                                std::size_t& end) {
    auto peek = [&](std::size_t k) { return k < t.size() ? t[k] : '\0'; };
    const bool folded = t[i] == '>';
    ++i;
    const auto [chomping, increment] = scan_block_header(t, i);
    long column = 0;
    auto line_break = [&]() -> bool {  // scan_line_break for \r\n, \r, \n
        if (peek(i) == '\r') {
            i += peek(i + 1) == '\n' ? 2 : 1;
        } else if (peek(i) == '\n') {
            ++i;
        } else {
            return false;
        }
        column = 0;
        return true;
    };
    if (!line_break() && i < t.size())
        throw yaml_stop{yaml_outcome::invalid, "expected a comment or a line break"};
    const long min_indent = std::max(parent_indent + 1, 1L);
    std::string breaks;
    long indent;
    if (increment == 0) {
        long max_indent = 0;
        while (peek(i) == ' ' || peek(i) == '\r' || peek(i) == '\n') {
            if (peek(i) != ' ') {
                line_break();
                breaks += '\n';
            } else {
                ++i;
                ++column;
                max_indent = std::max(max_indent, column);
            }
        }
        indent = std::max(min_indent, max_indent);
    } else {
        indent = min_indent + increment - 1;
    }
    auto scan_breaks = [&](std::string& out) {
        while (column < indent && peek(i) == ' ') ++i, ++column;
        while (peek(i) == '\r' || peek(i) == '\n') {
            line_break();
            out += '\n';
            while (column < indent && peek(i) == ' ') ++i, ++column;
        }
    };
    if (increment != 0) scan_breaks(breaks);
    std::string chunks;
    std::string_view last_break;  // a std::string here meets GCC 12's false -Wrestrict (105329)
    while (column == indent && peek(i) != '\0') {
        chunks += breaks;
        const bool leading_non_space = peek(i) != ' ' && peek(i) != '\t';
        const std::size_t start = i;
        while (peek(i) != '\0' && peek(i) != '\r' && peek(i) != '\n') ++i;
        chunks.append(t.substr(start, i - start));
        last_break = line_break() ? "\n" : "";
        breaks.clear();
        scan_breaks(breaks);
        if (column == indent && peek(i) != '\0') {
            if (folded && last_break == "\n" && leading_non_space && peek(i) != ' ' &&
                peek(i) != '\t') {
                if (breaks.empty()) chunks += ' ';
            } else {
                chunks += last_break;
            }
        } else {
            break;
        }
    }
    if (chomping != -1) chunks += last_break;
    if (chomping == 1) chunks += breaks;
    end = i;
    return chunks;
}

namespace {

// PyYAML's scan_flow_scalar_* methods over one quoted scalar: `i` moves through `t` as the
// scanner's pointer does, `out` collects the value.
struct flow_scalar_scanner {
    std::string_view t;
    std::size_t i;
    bool dbl;
    std::string out;

    static bool is_break(char32_t c) {
        return c == '\r' || c == '\n' || c == 0x85 || c == 0x2028 || c == 0x2029;
    }

    char32_t cp_at(std::size_t k, std::size_t* len = nullptr) const {
        if (k >= t.size()) {
            if (len) *len = 0;
            return 0;
        }
        std::size_t j = k;
        const char32_t c = next_code_point(t, j, true);
        if (len) *len = j - k;
        return c;
    }

    void line_break(std::string& to) {  // scan_line_break
        std::size_t len;
        const char32_t c = cp_at(i, &len);
        if (c == '\r' || c == '\n' || c == 0x85) {
            i += (c == '\r' && i + 1 < t.size() && t[i + 1] == '\n') ? 2 : len;
            to += '\n';
        } else {
            to.append(t.substr(i, len));
            i += len;
        }
    }

    void breaks(std::string& to) {  // scan_flow_scalar_breaks
        while (true) {
            const std::string_view pre = t.substr(i, 3);
            if ((pre == "---" || pre == "...") &&
                (i + 3 >= t.size() || one_of(t[i + 3], " \t\r\n") || is_break(cp_at(i + 3))))
                throw yaml_stop{yaml_outcome::invalid, "found unexpected document separator"};
            while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i;
            if (i < t.size() && is_break(cp_at(i))) {
                line_break(to);
            } else {
                return;
            }
        }
    }

    void non_spaces() {  // scan_flow_scalar_non_spaces
        while (true) {
            while (i < t.size()) {
                std::size_t len;
                const char32_t c = cp_at(i, &len);
                if (c == '\'' || c == '"' || c == '\\' || c == ' ' || c == '\t' || is_break(c))
                    break;
                out.append(t.substr(i, len));
                i += len;
            }
            if (i >= t.size()) return;
            const char ch = t[i];
            if (!dbl && ch == '\'' && i + 1 < t.size() && t[i + 1] == '\'') {
                out += '\'';
                i += 2;
            } else if ((dbl && ch == '\'') || (!dbl && (ch == '"' || ch == '\\'))) {
                out += ch;
                ++i;
            } else if (dbl && ch == '\\') {
                ++i;
                escape();
            } else {
                return;
            }
        }
    }

    // The escape after a backslash in a double-quoted scalar (part of non_spaces in PyYAML).
    void escape() {
        const char e = i < t.size() ? t[i] : '\0';
        static const std::string_view simple = "0abt\tnvfre \"/\\";
        static const char* const repl[] = {"\0",   "\x07", "\x08", "\x09", "\x09", "\x0A", "\x0B",
                                           "\x0C", "\x0D", "\x1B", " ",    "\"",   "/",    "\\"};
        const auto si = e ? simple.find(e) : std::string_view::npos;
        if (si != std::string_view::npos) {
            if (e == '0') {
                out += '\0';
            } else {
                out += repl[si];
            }
            ++i;
        } else if (e == 'N' || e == '_' || e == 'L' || e == 'P') {
            out += e == 'N'   ? "\xC2\x85"
                   : e == '_' ? "\xC2\xA0"
                   : e == 'L' ? "\xE2\x80\xA8"
                              : "\xE2\x80\xA9";
            ++i;
        } else if (e == 'x' || e == 'u' || e == 'U') {
            const std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            ++i;
            std::uint32_t code = 0;
            for (std::size_t k = 0; k < n; ++k) {
                if (i + k >= t.size() || !std::isxdigit(static_cast<unsigned char>(t[i + k])))
                    throw yaml_stop{yaml_outcome::invalid, "expected escape sequence"};
                code = code * 16 + static_cast<std::uint32_t>(digit_value(t[i + k]));
            }
            if (code > 0x10FFFF) throw yaml_stop{yaml_outcome::crash, "chr() arg not in range"};
            append_code_point(out, code);  // a lone surrogate stays: Python keeps it
            i += n;
        } else if (i < t.size() && is_break(cp_at(i))) {
            std::string ignored;
            line_break(ignored);
            breaks(out);
        } else {
            throw yaml_stop{yaml_outcome::invalid, "found unknown escape character"};
        }
    }

    void spaces() {  // scan_flow_scalar_spaces
        const std::size_t ws = i;
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t')) ++i;
        const std::string_view whitespace = t.substr(ws, i - ws);
        if (i >= t.size()) throw yaml_stop{yaml_outcome::invalid, "found unexpected end of stream"};
        if (is_break(cp_at(i))) {
            std::string lb, more;
            line_break(lb);
            breaks(more);
            if (lb != "\n") {
                out += lb;
            } else if (more.empty()) {
                out += ' ';
            }
            out += more;
        } else {
            out.append(whitespace);
        }
    }
};

}  // namespace

// PyYAML's scan_flow_scalar from the opening quote at `i`. yaml-cpp differs in places that
// matter for files PyYAML wrote: U+0085, U+2028 and U+2029 are line breaks for PyYAML (folded,
// with the next line's indentation dropped), "\N" and "\_" are mis-encoded by yaml-cpp, and a
// quoted scalar opening with a line break folds differently. Throws yaml_stop where PyYAML raises.
std::string pyyaml_quoted_scalar(std::string_view t, std::size_t i, std::size_t& end) {
    const char quote = t[i];
    flow_scalar_scanner s{t, i + 1, quote == '"', {}};
    s.non_spaces();
    while (s.i < t.size() && t[s.i] != quote) {
        s.spaces();
        s.non_spaces();
    }
    if (s.i >= t.size()) throw yaml_stop{yaml_outcome::invalid, "found unexpected end of stream"};
    end = s.i + 1;
    return std::move(s.out);
}

}  // namespace sg::v1::yaml_detail
