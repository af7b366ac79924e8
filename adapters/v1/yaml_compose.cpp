// adapters/v1/yaml_compose: yaml-cpp's events into PyYAML-like nodes, refusing what PyYAML's
// scanner and parser refuse; and load_yaml, which composes a document and then has it constructed.
#include "adapters/v1/yaml_json.hpp"

#include "adapters/v1/utf8.hpp"
#include "adapters/v1/yaml_internal.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sg::v1 {

using namespace yaml_detail;

namespace {

// ------------------------------------------------------------------------------------------------
// Composition: yaml-cpp events into PyYAML-like nodes (tags resolved as PyYAML's composer does).

// yaml-cpp (YAML 1.2) reads "&a:" and "*a:" as names ending in ":", PyYAML (YAML 1.1) as a name
// followed by ":". load_yaml inserts a blank at `at` and parses again, which changes nothing for
// PyYAML.
struct colon_after_name {
    std::size_t at;
};

bool is_anchor_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

// Where to put the blank for an anchor or alias indicator at `pos`, if that is the fix.
std::optional<std::size_t> colon_fix(std::string_view text, std::size_t pos) {
    std::size_t i = pos + 1;
    while (i < text.size() && is_anchor_char(text[i])) ++i;
    if (i > pos + 1 && i < text.size() && text[i] == ':') return i;
    return std::nullopt;
}

// [begin, end) of the source a quoted or block scalar occupies, as PyYAML's scanner reads it.
using text_range = std::pair<std::size_t, std::size_t>;

// Turns yaml-cpp's events into PyYAML-like nodes (tags resolved as PyYAML's composer and resolver
// do) and refuses, by throwing yaml_stop, what PyYAML's scanner or parser would refuse as far as
// the events and their source positions show it.
class composer final : public YAML::EventHandler {
public:
    composer(std::string_view text, const yaml_limits& limits, std::vector<ynode>& nodes)
        : text_(text), limits_(limits), nodes_(nodes) {}

    std::optional<std::size_t> root;
    std::vector<text_range> scalar_ranges;  // quoted and block scalars, for the tab rule

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        const std::size_t pos = pos_of(mark);
        check_properties(pos);
        // "{: x}", "[a, : x]": an empty key in flow context is an error for PyYAML.
        if (pos < text_.size() && text_[pos] == ':' && !stack_.empty() && stack_.back().flow)
            throw yaml_stop{yaml_outcome::invalid, "while parsing a flow node"};
        // "[a, , b]" and "{a,,b}": yaml-cpp reads an empty entry as null, PyYAML refuses it.
        if (pos < text_.size() && one_of(text_[pos], ",]}")) {
            std::size_t k = pos;
            while (k > 0 && one_of(text_[k - 1], " \t\r\n")) --k;
            if (k > 0 && one_of(text_[k - 1], ",[{"))
                throw yaml_stop{yaml_outcome::invalid, "expected the node content"};
        }
        // yaml-cpp reports plain "", "~", "null", "Null", "NULL" without a tag as null: PyYAML
        // resolves all of them to the null tag as well.
        ynode n;
        n.tag = tag_null;
        finish(add(std::move(n), anchor), mark, event_kind::null);
    }

    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        const auto it = anchors_.find(anchor);
        if (it == anchors_.end()) throw yaml_stop{yaml_outcome::invalid, "unknown alias"};
        finish(it->second, mark, event_kind::scalar);
    }

    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        const std::size_t pos = pos_of(mark);
        check_properties(pos);
        ynode n;
        n.value = value;
        bool non_specific = false;
        event_kind kind = event_kind::scalar;
        if (tag != "?") {
            const std::size_t body = skip_properties(text_, pos, &non_specific);
            if (body < text_.size() && (text_[body] == '\'' || text_[body] == '"')) {
                std::size_t end = body;
                n.value = pyyaml_quoted_scalar(text_, body, end);
                scalar_ranges.emplace_back(body, end);
            } else if (body < text_.size() && (text_[body] == '|' || text_[body] == '>')) {
                kind = event_kind::block;
                long parent = -1;
                for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
                    if (it->block) {
                        parent = it->column;
                        break;
                    }
                }
                std::size_t end = body;
                n.value = pyyaml_block_scalar(text_, body, parent, end);
                scalar_ranges.emplace_back(body, end);
            }
        }
        if (tag == "?" || non_specific) {
            n.tag = resolve_plain(n.value);
        } else if (tag == "!") {
            n.tag = tag_str;  // quoted or block scalar: never resolved
        } else {
            n.tag = tag;
        }
        finish(add(std::move(n), anchor), mark, kind);
    }

    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value style) override {
        const std::size_t pos = pos_of(mark);
        check_properties(pos);
        ynode n;
        n.k = ynode::kind::sequence;
        n.tag = (tag == "?" || tag == "!") ? std::string(tag_seq) : tag;
        open(add(std::move(n), anchor), mark, style == YAML::EmitterStyle::Block, false,
             style == YAML::EmitterStyle::Flow);
    }

    void OnSequenceEnd() override { close(); }

    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value style) override {
        const std::size_t pos = pos_of(mark);
        check_properties(pos);
        ynode n;
        n.k = ynode::kind::mapping;
        n.tag = (tag == "?" || tag == "!") ? std::string(tag_map) : tag;
        const bool block = style == YAML::EmitterStyle::Block;
        open(add(std::move(n), anchor), mark, block, block, style == YAML::EmitterStyle::Flow);
    }

    void OnMapEnd() override { close(); }

    void OnAnchor(const YAML::Mark& mark, const std::string& name) override {
        // PyYAML's scanner takes only [0-9A-Za-z_-] in anchor names ("while scanning an anchor").
        if (!std::all_of(name.begin(), name.end(), is_anchor_char)) {
            const auto at = text_.find("&" + name, pos_of(mark));
            if (at != std::string_view::npos) {
                if (auto fix = colon_fix(text_, at)) throw colon_after_name{*fix};
            }
            throw yaml_stop{yaml_outcome::invalid, "while scanning an anchor"};
        }
        // PyYAML's composer refuses a second anchor of the same name ("found duplicate anchor").
        if (!anchor_names_.insert(name).second)
            throw yaml_stop{yaml_outcome::invalid, "duplicate anchor"};
    }

private:
    enum class event_kind : std::uint8_t { null, scalar, flow, block };

    struct frame {
        std::size_t id;
        bool block;  // a block collection (its column is an indentation level for PyYAML)
        bool block_map;
        bool flow;
        long column;
        std::size_t key_pos = 0;
        long key_line = 0;
    };

    // PyYAML wants a blank (or the end) after a tag, and one of " \t\r\n?:,]}%@`" after an anchor;
    // yaml-cpp also ends them at flow indicators ("!{a: 1}").
    void check_properties(std::size_t i) const {
        while (i < text_.size() && (text_[i] == '!' || text_[i] == '&')) {
            const bool tag = text_[i] == '!';
            if (tag && i + 1 < text_.size() && text_[i + 1] == '<') {
                const auto e = text_.find('>', i);
                i = e == std::string_view::npos ? text_.size() : e + 1;
            } else if (tag) {
                ++i;
                while (i < text_.size() && !one_of(text_[i], " \t\r\n,[]{}")) ++i;
            } else {
                ++i;
                while (i < text_.size() && is_anchor_char(text_[i])) ++i;
            }
            if (i < text_.size() && !one_of(text_[i], tag ? " \r\n" : " \t\r\n?:,]}%@`"))
                throw yaml_stop{yaml_outcome::invalid, "while scanning a tag or anchor"};
            while (i < text_.size() && one_of(text_[i], " \t\r\n")) ++i;
        }
    }

    // PyYAML's simple keys (block context) live on one line, properties included, with their ":"
    // within 1024 characters; yaml-cpp lets "key\n: value" and "&a\nkey: value" through.
    bool bad_implicit_key(std::size_t key_pos) const {
        std::size_t k = key_pos;
        while (k > 0 && (text_[k - 1] == ' ' || text_[k - 1] == '\t')) --k;
        if (k > 0 && text_[k - 1] == '?') return false;  // an explicit "? key"
        const std::size_t body = skip_properties(text_, key_pos);
        for (std::size_t i = key_pos; i < text_.size(); ++i) {
            const char c = text_[i];
            if (i == body && (c == '\'' || c == '"')) {
                std::size_t j = i + 1;
                while (j < text_.size()) {
                    if (c == '"' && text_[j] == '\\') {
                        j += 2;
                        continue;
                    }
                    if (text_[j] == c) {
                        if (c == '\'' && j + 1 < text_.size() && text_[j + 1] == '\'') {
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    ++j;
                }
                const std::string_view quoted = text_.substr(i, std::min(j, text_.size()) - i);
                if (quoted.find_first_of("\r\n") != std::string_view::npos) return true;
                i = j;
                continue;
            }
            if (c == '\n' || c == '\r') return true;
            if (c == '#' && i > key_pos && (text_[i - 1] == ' ' || text_[i - 1] == '\t'))
                return true;
            if (c == ':' && (i + 1 >= text_.size() || one_of(text_[i + 1], " \t\r\n")))
                return python_len(text_.substr(key_pos, i - key_pos)) > 1024;
        }
        return false;
    }

    std::size_t pos_of(const YAML::Mark& mark) const {
        return std::min(static_cast<std::size_t>(std::max(mark.pos, 0)), text_.size());
    }

    std::size_t add(ynode n, YAML::anchor_t anchor) {
        if (nodes_.size() >= limits_.max_nodes)
            throw yaml_stop{yaml_outcome::too_large, "too many nodes"};
        nodes_.push_back(std::move(n));
        const std::size_t id = nodes_.size() - 1;
        if (anchor != YAML::NullAnchor) anchors_[anchor] = id;
        return id;
    }

    void open(std::size_t id, const YAML::Mark& mark, bool block, bool block_map, bool flow) {
        // PyYAML's composer recurses twice per level: Python's recursion limit ends it near here.
        if (stack_.size() + 1 >= limits_.max_depth)
            throw yaml_stop{yaml_outcome::crash, "nesting too deep"};
        finish(id, mark, block ? event_kind::block : event_kind::flow);
        stack_.push_back({id, block, block_map, flow, mark.column});
    }

    void close() {
        if (!stack_.empty()) stack_.pop_back();
    }

    void finish(std::size_t id, const YAML::Mark& mark, event_kind kind) {
        if (stack_.empty()) {
            if (!root) root = id;
            return;
        }
        const std::size_t pos = pos_of(mark);
        frame& f = stack_.back();
        auto& children = nodes_[f.id].children;
        if (f.block_map) {
            if (children.size() % 2 == 0) {
                // ": x" (no key) in block context: PyYAML "while parsing a block mapping".
                if (kind == event_kind::null && pos < text_.size() && text_[pos] == ':')
                    throw yaml_stop{yaml_outcome::invalid, "expected <block end>"};
                f.key_pos = pos;
                f.key_line = mark.line;
            } else if (kind == event_kind::null && pos == f.key_pos) {
                // yaml-cpp gives a block mapping key without ":" a null value ("a: 1\nb");
                // PyYAML: "could not find expected ':'".
                throw yaml_stop{yaml_outcome::invalid, "could not find expected ':'"};
            } else if ((kind == event_kind::scalar || kind == event_kind::flow ||
                        (kind == event_kind::null && pos < text_.size() &&
                         (text_[pos] == '&' || text_[pos] == '!'))) &&
                       mark.line > f.key_line && mark.column <= f.column) {
                // A value on a later line no deeper than its key ("a:\n{x: 1}"): PyYAML scans it
                // as the next key and finds no ":".
                throw yaml_stop{yaml_outcome::invalid, "could not find expected ':'"};
            } else if (kind != event_kind::null && bad_implicit_key(f.key_pos)) {
                throw yaml_stop{yaml_outcome::invalid, "could not find expected ':'"};
            }
        }
        children.push_back(id);
    }

    std::string_view text_;
    const yaml_limits& limits_;
    std::vector<ynode>& nodes_;
    std::vector<frame> stack_;
    std::unordered_map<YAML::anchor_t, std::size_t> anchors_;
    std::unordered_set<std::string> anchor_names_;
};

// Syntax PyYAML refuses and yaml-cpp (YAML 1.2) accepts, found with the help of the event
// positions: (1) PyYAML never skips a tab between tokens and never lets one into a plain scalar, so
// a tab is an error except inside a quoted scalar, a block scalar's content, or a comment; (2) a
// "%" at the start of a line is a directive for PyYAML, an error once the document has begun.
bool pyyaml_refuses(std::string_view text, std::vector<text_range> safe) {
    const bool tabs = text.find('\t') != std::string_view::npos;
    const bool percent =
        text.find("\n%") != std::string_view::npos || (!text.empty() && text[0] == '%');
    if (!tabs && !percent) return false;
    std::sort(safe.begin(), safe.end());
    std::size_t si = 0;
    bool in_comment = false, content_seen = false, line_start = true, need_doc_start = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        while (si < safe.size() && safe[si].second <= i) ++si;
        if (si < safe.size() && safe[si].first <= i) {
            i = safe[si].second - 1;
            in_comment = false;
            line_start = text[i] == '\n' || text[i] == '\r';
            content_seen = true;
            continue;
        }
        const char c = text[i];
        if (c == '\n' || c == '\r') {
            in_comment = false;
            line_start = true;
            continue;
        }
        const bool at_line_start = line_start;
        line_start = false;
        if (in_comment) continue;
        if (c == '#' && (i == 0 || one_of(text[i - 1], " \t\n\r"))) {
            in_comment = true;
            continue;
        }
        if (c == '\t') return true;
        if (need_doc_start && c != ' ' && c != '%') {
            // After directives PyYAML wants "---" ("expected '<document start>'").
            if (!at_line_start || text.substr(i, 3) != "---" ||
                (i + 3 < text.size() && !one_of(text[i + 3], " \t\r\n")))
                return true;
            need_doc_start = false;
        }
        if (c == '%' && at_line_start) {
            if (content_seen) return true;
            // A directive of the prologue: PyYAML wants a name of [0-9A-Za-z_-] then a blank;
            // yaml-cpp judges the rest.
            std::size_t k = i + 1;
            while (k < text.size() && is_anchor_char(text[k])) ++k;
            if (k == i + 1 || (k < text.size() && !one_of(text[k], " \r\n"))) return true;
            in_comment = true;
            need_doc_start = true;
            continue;
        }
        if (c != ' ') content_seen = true;
    }
    return false;
}

// PyYAML's parser wants a node after an implicit document start, so a stream whose first token is
// "..." is an error there; yaml-cpp reads it as an empty document.
bool starts_with_document_end(std::string_view text) {
    std::size_t i = 0;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
    while (i < text.size()) {
        std::size_t sp = i;
        while (sp < text.size() && text[sp] == ' ') ++sp;
        const std::size_t eol = std::min(text.find('\n', i), text.size());
        if (sp >= eol || text[sp] == '#' || text[sp] == '\r') {
            i = eol + 1;
            continue;
        }
        if (sp == i && text.substr(i, 3) == "..." &&
            (i + 3 >= text.size() || one_of(text[i + 3], " \t\r\n")))
            return true;
        return false;
    }
    return false;
}

// What PyYAML's Reader and parser refuse before composing anything: text that is not UTF-8 (v1
// cannot decode it), a character the Reader does not allow, a stream opening with "...".
std::optional<yaml_stop> refused_stream(std::string_view text) {
    if (!is_valid_utf8(text)) return yaml_stop{yaml_outcome::crash, "not UTF-8"};
    for (std::size_t i = 0; i < text.size();) {
        const char32_t c = next_code_point(text, i);
        if (!is_yaml_printable(c)) {
            return yaml_stop{yaml_outcome::invalid, "special characters are not allowed"};
        }
    }
    if (starts_with_document_end(text)) {
        return yaml_stop{yaml_outcome::invalid,
                         "expected the node content, but found '<document end>'"};
    }
    return std::nullopt;
}

// Parses `work` into `nodes` through `comp`; where yaml-cpp reads "&a:" or "*a:" as a name with
// a colon, puts a blank after the name in `work` (meaningless to PyYAML) and parses again. False
// when the stream holds a second document: safe_load wants exactly one.
bool compose_one_document(std::string& work, const yaml_limits& limits, std::vector<ynode>& nodes,
                          std::optional<composer>& comp) {
    for (int attempt = 0;; ++attempt) {
        nodes.clear();
        comp.emplace(work, limits, nodes);
        std::optional<std::size_t> fix;
        try {
            std::istringstream in{work};
            YAML::Parser parser(in);
            if (parser.HandleNextDocument(*comp)) {
                std::vector<ynode> more_nodes;
                composer more(work, limits, more_nodes);
                if (parser.HandleNextDocument(more)) return false;
            }
        } catch (const colon_after_name& c) {
            fix = c.at;
        } catch (const YAML::Exception& e) {
            const auto at = static_cast<std::size_t>(std::max(e.mark.pos, 0));
            if (e.msg.find("referenced anchor is not defined") != std::string::npos &&
                at < work.size() && work[at] == '*')
                fix = colon_fix(work, at);
            if (!fix) throw;
        }
        if (!fix) return true;
        if (attempt >= 64) throw yaml_stop{yaml_outcome::invalid, "anchor names"};
        work.insert(*fix, 1, ' ');
    }
}

}  // namespace

yaml_load_result load_yaml(std::string_view text, const yaml_limits& limits) {
    yaml_load_result r;
    try {
        if (auto refused = refused_stream(text)) {
            r.outcome = refused->outcome;
            r.error = std::move(refused->why);
            return r;
        }
        std::string work(text);
        std::vector<ynode> nodes;
        std::optional<composer> comp;
        if (!compose_one_document(work, limits, nodes, comp)) {
            r.outcome = yaml_outcome::invalid;
            r.error = "expected a single document in the stream";
            return r;
        }
        if (pyyaml_refuses(work, comp->scalar_ranges)) {
            r.outcome = yaml_outcome::invalid;
            r.error = "a tab or directive PyYAML cannot scan";
            return r;
        }
        if (!comp->root) {
            r.graph.root = r.graph.add(py_object{});  // empty stream: None
            r.outcome = yaml_outcome::ok;
            return r;
        }
        r.graph.root = construct_document(nodes, r.graph, limits, *comp->root);
        r.outcome = yaml_outcome::ok;
        return r;
    } catch (const yaml_stop& s) {
        r.outcome = s.outcome;
        r.error = s.why;
    } catch (const constructor_error&) {
        r.outcome = yaml_outcome::invalid;
        r.error = "constructor error";
    } catch (const python_error&) {
        r.outcome = yaml_outcome::crash;
        r.error = "value error";
    } catch (const YAML::Exception& e) {
        const std::string what = e.what();
        // PyYAML builds the string (chr() of a surrogate is fine, beyond U+10FFFF raises
        // ValueError); either way v1 ends in a 500, never in a YAMLError.
        r.outcome = what.find("invalid unicode") != std::string::npos ? yaml_outcome::crash
                                                                      : yaml_outcome::invalid;
        r.error = what;
    } catch (const std::bad_alloc&) {
        r.outcome = yaml_outcome::too_large;
        r.error = "out of memory";
    } catch (const std::exception& e) {
        r.outcome = yaml_outcome::invalid;
        r.error = e.what();
    }
    r.graph = py_graph{};
    return r;
}

}  // namespace sg::v1
