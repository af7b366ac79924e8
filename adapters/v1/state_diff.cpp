// adapters/v1/state_diff: field-by-field comparison of two user states.
#include "adapters/v1/state_diff.hpp"

#include <map>
#include <optional>

namespace sg::v1 {

std::string_view name(drift::kind k) {
    switch (k) {
        case drift::kind::missing: return "missing";
        case drift::kind::extra: return "extra";
        case drift::kind::different: return "different";
    }
    return "unknown";
}

namespace {

// Collects "field (v1 x, v2 y)" notes for one item.
class field_notes {
public:
    void text(const char* field, const std::string& a, const std::string& b) {
        if (a == b) return;
        add(std::string(field) + " (v1 " + describe(a) + ", v2 " + describe(b) + ")");
    }
    void opt(const char* field, const std::optional<std::string>& a,
             const std::optional<std::string>& b) {
        if (a == b) return;
        add(std::string(field) + " (v1 " + (a ? describe(*a) : "null") + ", v2 " +
            (b ? describe(*b) : "null") + ")");
    }
    template <class T>
    void value(const char* field, const T& a, const T& b) {
        if (a == b) return;
        add(std::string(field) + " (v1 " + std::to_string(a) + ", v2 " + std::to_string(b) + ")");
    }
    void add(std::string note) {
        if (!notes_.empty()) notes_ += "; ";
        notes_ += note;
    }
    const std::string& notes() const { return notes_; }

private:
    // Short values are shown; long ones (sources, messages) by size, to keep reports readable.
    static std::string describe(const std::string& s) {
        if (s.size() <= 48 && s.find('\n') == std::string::npos) return "\"" + s + "\"";
        return std::to_string(s.size()) + " bytes";
    }
    std::string notes_;
};

template <class T, class KeyFn, class CompareFn>
void diff_keyed(const std::vector<T>& expected, const std::vector<T>& actual, const char* item,
                KeyFn key_of, CompareFn compare, std::vector<drift>& out) {
    std::map<std::string, const T*> a, b;
    for (const auto& x : expected) a.emplace(key_of(x), &x);
    for (const auto& x : actual) b.emplace(key_of(x), &x);
    for (const auto& [key, x] : a) {
        auto it = b.find(key);
        if (it == b.end()) {
            out.push_back({drift::kind::missing, item, key, ""});
            continue;
        }
        field_notes notes;
        compare(*x, *it->second, notes);
        if (!notes.notes().empty()) {
            out.push_back({drift::kind::different, item, key, notes.notes()});
        }
    }
    for (const auto& [key, x] : b) {
        if (!a.count(key)) out.push_back({drift::kind::extra, item, key, ""});
    }
}

// The fields a version shares with the commit that made it.
template <class T>
void compare_commit_fields(const T& a, const T& b, field_notes& n) {
    n.text("message", a.message, b.message);
    n.text("author", a.author, b.author);
    n.value("commit_time", a.commit_time, b.commit_time);
    n.value("commit_tz_offset_minutes", a.commit_tz_offset_minutes, b.commit_tz_offset_minutes);
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
    return out;
}

}  // namespace

std::vector<drift> diff_states(const user_state& expected, const user_state& actual) {
    std::vector<drift> out;
    field_notes user;
    user.text("user_id", expected.user_id, actual.user_id);
    user.text("head", expected.head, actual.head);
    user.text("diffs_fingerprint", expected.diffs_fingerprint, actual.diffs_fingerprint);
    if (!user.notes().empty()) out.push_back({drift::kind::different, "user", "", user.notes()});

    diff_keyed(
        expected.commits, actual.commits, "commit", [](const commit& c) { return c.sha; },
        [](const commit& a, const commit& b, field_notes& n) {
            n.text("parents", join(a.parents), join(b.parents));
            compare_commit_fields(a, b, n);
            n.value("seq", a.seq, b.seq);
        },
        out);
    diff_keyed(
        expected.blocks, actual.blocks, "block", [](const block& b) { return b.label; },
        [](const block& a, const block& b, field_notes& n) {
            n.text("source", a.source, b.source);
            n.text("commit", a.commit, b.commit);
        },
        out);
    diff_keyed(
        expected.versions, actual.versions, "version",
        [](const block_version& v) { return v.label + "@" + v.sha; },
        [](const block_version& a, const block_version& b, field_notes& n) {
            n.text("source", a.source, b.source);
            n.value("deleted", a.deleted, b.deleted);
            compare_commit_fields(a, b, n);
            n.value("ordinal", a.ordinal, b.ordinal);
        },
        out);
    diff_keyed(
        expected.diffs, actual.diffs, "diff", [](const pending_diff& d) { return d.id; },
        [](const pending_diff& a, const pending_diff& b, field_notes& n) {
            n.text("raw_json", a.raw_json, b.raw_json);
            n.text("agent_id", a.agent_id, b.agent_id);
            n.text("block_label", a.block_label, b.block_label);
            n.opt("field", a.field, b.field);
            n.text("operation", a.operation, b.operation);
            n.opt("current_value", a.current_value, b.current_value);
            n.text("proposed_value", a.proposed_value, b.proposed_value);
            n.text("reasoning", a.reasoning, b.reasoning);
            n.text("confidence", a.confidence, b.confidence);
            n.text("status", a.status, b.status);
            n.opt("source_query", a.source_query, b.source_query);
            n.text("created_at", a.created_at, b.created_at);
            n.opt("reviewed_at", a.reviewed_at, b.reviewed_at);
            n.opt("applied_commit", a.applied_commit, b.applied_commit);
        },
        out);
    return out;
}

std::string to_string(const drift& d) {
    std::string out = std::string(name(d.what_kind)) + " " + d.item;
    if (!d.key.empty()) out += " " + d.key;
    if (!d.detail.empty()) out += ": " + d.detail;
    return out;
}

}  // namespace sg::v1
