// adapters/v1/yaml_emit: a port of PyYAML 6.0's emitter (yaml/emitter.py) for the events the
// representer makes of a JSON value. Names follow emitter.py so the two can be read side by side;
// the event queue is replaced by recursion (with only block collections and empty flow
// collections, no state needs look-ahead beyond "is this collection empty"). Text is handled as
// code points, as Python's str is: columns count characters, not bytes. exact_json, declared beside
// pyyaml_dump in yaml_emit.hpp, is in yaml_exact.cpp.
#include "adapters/v1/yaml_emit.hpp"

#include "adapters/v1/utf8.hpp"
#include "adapters/v1/yaml_json.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

namespace sg::v1 {

namespace {

using ojson = nlohmann::ordered_json;

// Valid UTF-8 to code points (checked by the caller with is_valid_utf8).
std::u32string decode(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        char32_t c = 0;
        int n = 0;
        if (b < 0x80) {
            c = b, n = 1;
        } else if (b < 0xE0) {
            c = b & 0x1F, n = 2;
        } else if (b < 0xF0) {
            c = b & 0x0F, n = 3;
        } else {
            c = b & 0x07, n = 4;
        }
        for (int k = 1; k < n && i + static_cast<std::size_t>(k) < s.size(); ++k) {
            c = (c << 6) | (static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]) & 0x3F);
        }
        out.push_back(c);
        i += static_cast<std::size_t>(n);
    }
    return out;
}

bool in(char32_t c, std::u32string_view set) { return set.find(c) != std::u32string_view::npos; }

constexpr std::u32string_view breaks = U"\n\x85\u2028\u2029";
// '\0 \t\r\n\x85\u2028\u2029'
constexpr std::u32string_view blanks_or_breaks{U"\0 \t\r\n\x85\u2028\u2029", 8};

struct scalar_analysis {
    bool empty = false;
    bool multiline = false;
    bool allow_flow_plain = true;
    bool allow_block_plain = true;
    bool allow_single_quoted = true;
    bool allow_double_quoted = true;
};

// Emitter.analyze_scalar with allow_unicode=False.
scalar_analysis analyze_scalar(const std::u32string& scalar) {
    scalar_analysis a;
    if (scalar.empty()) {
        a.empty = true;
        a.allow_flow_plain = false;
        return a;
    }
    bool block_indicators = false, flow_indicators = false, line_breaks = false,
         special_characters = false;
    bool leading_space = false, leading_break = false, trailing_space = false,
         trailing_break = false, break_space = false, space_break = false;
    const std::u32string_view s(scalar);
    if (s.starts_with(U"---") || s.starts_with(U"...")) {
        block_indicators = flow_indicators = true;
    }
    bool preceded_by_whitespace = true;
    bool followed_by_whitespace = s.size() == 1 || in(s[1], blanks_or_breaks);
    bool previous_space = false, previous_break = false;
    for (std::size_t index = 0; index < s.size(); ++index) {
        const char32_t ch = s[index];
        if (index == 0) {
            if (in(ch, U"#,[]{}&*!|>'\"%@`")) flow_indicators = block_indicators = true;
            if (in(ch, U"?:")) {
                flow_indicators = true;
                if (followed_by_whitespace) block_indicators = true;
            }
            if (ch == U'-' && followed_by_whitespace) flow_indicators = block_indicators = true;
        } else {
            if (in(ch, U",?[]{}")) flow_indicators = true;
            if (ch == U':') {
                flow_indicators = true;
                if (followed_by_whitespace) block_indicators = true;
            }
            if (ch == U'#' && preceded_by_whitespace) flow_indicators = block_indicators = true;
        }
        if (in(ch, breaks)) line_breaks = true;
        if (!(ch == U'\n' || (ch >= 0x20 && ch <= 0x7E))) {
            // Printable non-ASCII is "unicode"; with allow_unicode=False both are special.
            special_characters = true;
        }
        if (ch == U' ') {
            if (index == 0) leading_space = true;
            if (index == s.size() - 1) trailing_space = true;
            if (previous_break) break_space = true;
            previous_space = true;
            previous_break = false;
        } else if (in(ch, breaks)) {
            if (index == 0) leading_break = true;
            if (index == s.size() - 1) trailing_break = true;
            if (previous_space) space_break = true;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = previous_break = false;
        }
        preceded_by_whitespace = in(ch, blanks_or_breaks);
        followed_by_whitespace = index + 2 >= s.size() || in(s[index + 2], blanks_or_breaks);
    }
    if (leading_space || leading_break || trailing_space || trailing_break) {
        a.allow_flow_plain = a.allow_block_plain = false;
    }
    if (break_space) a.allow_flow_plain = a.allow_block_plain = a.allow_single_quoted = false;
    if (space_break || special_characters) {
        a.allow_flow_plain = a.allow_block_plain = a.allow_single_quoted = false;
    }
    if (line_breaks) a.allow_flow_plain = a.allow_block_plain = false;
    if (flow_indicators) a.allow_flow_plain = false;
    if (block_indicators) a.allow_block_plain = false;
    a.multiline = line_breaks;
    return a;
}

// One scalar event: its text and whether the plain form would be read back with its own tag
// (Serializer: implicit[0] = tag == resolve(value, (True, False))).
struct scalar_event {
    std::u32string value;
    bool implicit_plain = true;
};

class emitter {
public:
    std::string out;

    bool node(const ojson& v, bool root, bool sequence, bool mapping, bool simple_key) {
        root_context_ = root;
        sequence_context_ = sequence;
        mapping_context_ = mapping;
        simple_key_context_ = simple_key;
        if (v.is_object()) {
            if (v.empty()) {
                empty_flow("{", "}");
                return true;
            }
            return block_mapping(v);
        }
        if (v.is_array()) {
            if (v.empty()) {
                empty_flow("[", "]");
                return true;
            }
            return block_sequence(v);
        }
        auto ev = scalar_of(v);
        if (!ev) return false;
        scalar(*ev, nullptr);
        return true;
    }

    // Document end, then stream end (Emitter.expect_document_end / expect_document_start).
    void finish() {
        write_indent();
        if (open_ended_) {
            write_indicator("...", true);
            write_indent();
        }
    }

private:
    static constexpr int best_indent = 2;
    static constexpr int best_width = 80;

    static std::optional<scalar_event> scalar_of(const ojson& v) {
        scalar_event ev;
        std::string text;
        if (v.is_string()) {
            const auto& s = v.get_ref<const std::string&>();
            if (!is_valid_utf8(s)) return std::nullopt;
            ev.value = decode(s);
            ev.implicit_plain = plain_scalar_is_str(s);
            return ev;
        }
        if (v.is_null()) {
            text = "null";
        } else if (v.is_boolean()) {
            text = v.get<bool>() ? "true" : "false";
        } else if (v.is_number_integer()) {
            text = v.dump();
        } else if (v.is_number_float()) {
            const double d = v.get<double>();
            if (!std::isfinite(d)) return std::nullopt;
            // SafeRepresenter.represent_float: repr(data).lower(), and "1e+16" gets its ".0"
            text = python_float_repr(d);
            for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (text.find('.') == std::string::npos) {
                if (auto e = text.find('e'); e != std::string::npos) text.insert(e, ".0");
            }
        } else {
            return std::nullopt;
        }
        ev.value = decode(text);
        ev.implicit_plain = true;  // each of these resolves to its own tag
        return ev;
    }

    void increase_indent(bool flow, bool indentless = false) {
        indents_.push_back(indent_);
        if (indent_ < 0) {
            indent_ = flow ? best_indent : 0;
        } else if (!indentless) {
            indent_ += best_indent;
        }
    }
    void pop_indent() {
        indent_ = indents_.back();
        indents_.pop_back();
    }

    void empty_flow(std::string_view open, std::string_view close) {
        write_indicator(open, true, /*whitespace=*/true);
        ++flow_level_;
        increase_indent(true);
        pop_indent();
        --flow_level_;
        write_indicator(close, false);
    }

    bool block_sequence(const ojson& v) {
        const bool indentless = mapping_context_ && !indention_;
        increase_indent(false, indentless);
        for (const auto& item : v) {
            write_indent();
            write_indicator("-", true, false, /*indention=*/true);
            if (!node(item, false, true, false, false)) return false;
        }
        pop_indent();
        return true;
    }

    bool block_mapping(const ojson& v) {
        increase_indent(false);
        for (const auto& [key, value] : v.items()) {
            write_indent();
            if (!is_valid_utf8(key)) return false;
            scalar_event k{decode(key), plain_scalar_is_str(key)};
            const scalar_analysis ka = analyze_scalar(k.value);
            // check_simple_key: the key and its prepared tag ("!!str", 5 characters: the
            // serializer always sets the tag) shorter than 128 characters, not empty, one line
            if (k.value.size() + 5 < 128 && !ka.empty && !ka.multiline) {
                set_context(false, false, true, true);
                scalar(k, &ka);
                write_indicator(":", false);
            } else {
                write_indicator("?", true, false, /*indention=*/true);
                set_context(false, false, true, false);
                scalar(k, &ka);
                write_indent();
                write_indicator(":", true, false, /*indention=*/true);
            }
            if (!node(value, false, false, true, false)) return false;
        }
        pop_indent();
        return true;
    }

    void set_context(bool root, bool sequence, bool mapping, bool simple_key) {
        root_context_ = root;
        sequence_context_ = sequence;
        mapping_context_ = mapping;
        simple_key_context_ = simple_key;
    }

    // expect_scalar: choose_scalar_style, then the writer of that style.
    void scalar(const scalar_event& ev, const scalar_analysis* known) {
        const scalar_analysis a = known ? *known : analyze_scalar(ev.value);
        increase_indent(true);
        char style = '"';
        if (ev.implicit_plain && !(simple_key_context_ && (a.empty || a.multiline)) &&
            (flow_level_ ? a.allow_flow_plain : a.allow_block_plain)) {
            style = 0;
        } else if (a.allow_single_quoted && !(simple_key_context_ && a.multiline)) {
            style = '\'';
        }
        const bool split = !simple_key_context_;
        if (style == '"') {
            write_double_quoted(ev.value, split);
        } else if (style == '\'') {
            write_single_quoted(ev.value, split);
        } else {
            write_plain(ev.value, split);
        }
        pop_indent();
    }

    void write(std::u32string_view data) {
        for (char32_t c : data) append_code_point(out, c);
        column_ += static_cast<int>(data.size());
    }

    void write_indicator(std::string_view indicator, bool need_whitespace, bool whitespace = false,
                         bool indention = false) {
        if (!(whitespace_ || !need_whitespace)) {
            out += ' ';
            ++column_;
        }
        out += indicator;
        column_ += static_cast<int>(indicator.size());
        whitespace_ = whitespace;
        indention_ = indention_ && indention;
        open_ended_ = false;
    }

    void write_indent() {
        const int indent = indent_ < 0 ? 0 : indent_;
        if (!indention_ || column_ > indent || (column_ == indent && !whitespace_)) {
            write_line_break();
        }
        if (column_ < indent) {
            whitespace_ = true;
            out.append(static_cast<std::size_t>(indent - column_), ' ');
            column_ = indent;
        }
    }

    void write_line_break(char32_t br = U'\n') {
        whitespace_ = true;
        indention_ = true;
        column_ = 0;
        append_code_point(out, br);
    }

    // The line breaks of text[start, end) as write_single_quoted / write_plain write them.
    void write_breaks(std::u32string_view text, std::size_t start, std::size_t end) {
        if (text[start] == U'\n') write_line_break();
        for (std::size_t i = start; i < end; ++i) {
            write_line_break(text[i] == U'\n' ? U'\n' : text[i]);
        }
        write_indent();
    }

    void write_single_quoted(std::u32string_view text, bool split) {
        write_indicator("'", true);
        bool spaces = false, breaks_ = false;
        std::size_t start = 0, end = 0;
        while (end <= text.size()) {
            const bool have = end < text.size();
            const char32_t ch = have ? text[end] : 0;
            if (spaces) {
                if (!have || ch != U' ') {
                    if (start + 1 == end && column_ > best_width && split && start != 0 &&
                        end != text.size()) {
                        write_indent();
                    } else {
                        write(text.substr(start, end - start));
                    }
                    start = end;
                }
            } else if (breaks_) {
                if (!have || !in(ch, breaks)) {
                    write_breaks(text, start, end);
                    start = end;
                }
            } else {
                if (!have || in(ch, U" \n\x85\u2028\u2029") || ch == U'\'') {
                    if (start < end) {
                        write(text.substr(start, end - start));
                        start = end;
                    }
                }
            }
            if (have && ch == U'\'') {
                out += "''";
                column_ += 2;
                start = end + 1;
            }
            if (have) {
                spaces = ch == U' ';
                breaks_ = in(ch, breaks);
            }
            ++end;
        }
        write_indicator("'", false);
    }

    static std::string escape_of(char32_t ch) {
        switch (ch) {
            case 0x00: return "\\0";
            case 0x07: return "\\a";
            case 0x08: return "\\b";
            case 0x09: return "\\t";
            case 0x0A: return "\\n";
            case 0x0B: return "\\v";
            case 0x0C: return "\\f";
            case 0x0D: return "\\r";
            case 0x1B: return "\\e";
            case U'"': return "\\\"";
            case U'\\': return "\\\\";
            case 0x85: return "\\N";
            case 0xA0: return "\\_";
            case 0x2028: return "\\L";
            case 0x2029: return "\\P";
            default: break;
        }
        char buf[16];
        if (ch <= 0xFF) {
            std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(ch));
        } else if (ch <= 0xFFFF) {
            std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(ch));
        } else {
            std::snprintf(buf, sizeof buf, "\\U%08X", static_cast<unsigned>(ch));
        }
        return buf;
    }

    void write_double_quoted(std::u32string_view text, bool split) {
        write_indicator("\"", true);
        std::size_t start = 0, end = 0;
        while (end <= text.size()) {
            const bool have = end < text.size();
            const char32_t ch = have ? text[end] : 0;
            if (!have || in(ch, U"\"\\\x85\u2028\u2029\uFEFF") || !(ch >= 0x20 && ch <= 0x7E)) {
                if (start < end) {
                    write(text.substr(start, end - start));
                    start = end;
                }
                if (have) {
                    const std::string esc = escape_of(ch);
                    out += esc;
                    column_ += static_cast<int>(esc.size());
                    start = end + 1;
                }
            }
            if (0 < end && end + 1 < text.size() && (ch == U' ' || start >= end) &&
                column_ + static_cast<int>(end - start) > best_width && split) {
                // data = text[start:end] + '\\' (start <= end here: start > end only right
                // after an escape, when the slice is empty)
                if (start < end) {
                    write(text.substr(start, end - start));
                    start = end;
                }
                out += '\\';
                ++column_;
                write_indent();
                whitespace_ = false;
                indention_ = false;
                if (text[start] == U' ') {
                    out += '\\';
                    ++column_;
                }
            }
            ++end;
        }
        write_indicator("\"", false);
    }

    void write_plain(std::u32string_view text, bool split) {
        if (root_context_) open_ended_ = true;
        if (text.empty()) return;
        if (!whitespace_) {
            out += ' ';
            ++column_;
        }
        whitespace_ = false;
        indention_ = false;
        bool spaces = false, breaks_ = false;
        std::size_t start = 0, end = 0;
        while (end <= text.size()) {
            const bool have = end < text.size();
            const char32_t ch = have ? text[end] : 0;
            if (spaces) {
                if (!have || ch != U' ') {
                    if (start + 1 == end && column_ > best_width && split) {
                        write_indent();
                        whitespace_ = false;
                        indention_ = false;
                    } else {
                        write(text.substr(start, end - start));
                    }
                    start = end;
                }
            } else if (breaks_) {
                if (!have || !in(ch, breaks)) {
                    write_breaks(text, start, end);
                    whitespace_ = false;
                    indention_ = false;
                    start = end;
                }
            } else {
                if (!have || in(ch, U" \n\x85\u2028\u2029")) {
                    write(text.substr(start, end - start));
                    start = end;
                }
            }
            if (have) {
                spaces = ch == U' ';
                breaks_ = in(ch, breaks);
            }
            ++end;
        }
    }

    std::vector<int> indents_;
    int indent_ = -1;  // None
    int flow_level_ = 0;
    bool root_context_ = false;
    bool sequence_context_ = false;
    bool mapping_context_ = false;
    bool simple_key_context_ = false;
    int column_ = 0;
    bool whitespace_ = true;
    bool indention_ = true;
    bool open_ended_ = false;
};

}  // namespace

std::optional<std::string> pyyaml_dump(const nlohmann::ordered_json& value) {
    emitter e;
    if (!e.node(value, /*root=*/true, false, false, false)) return std::nullopt;
    e.finish();
    return std::move(e.out);
}

}  // namespace sg::v1
