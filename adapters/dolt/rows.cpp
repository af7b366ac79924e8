// adapters/dolt/rows: v1 states as rows of the v2 tables and back. See the header.
#include "adapters/dolt/rows.hpp"

#include "adapters/dolt/values.hpp"
#include "adapters/v1/frontmatter.hpp"
#include "adapters/v1/yaml_json.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace sg::dolt {

namespace {

using json = nlohmann::json;

std::int64_t flip(std::int64_t count, std::int64_t position) { return count - 1 - position; }

std::string version_key(std::string_view label, std::string_view sha) {
    return std::string(label) + "@" + std::string(sha);
}

// The diff fields v1's API shows as strings: a value of another JSON type prints differently
// from its JSON text (pydantic's str of true is "True"), so only strings (and null where the
// field may be null) round-trip through the text columns.
constexpr std::string_view diff_string_fields[] = {"id",         "agent_id",       "block_label",
                                                   "operation",  "proposed_value", "reasoning",
                                                   "confidence", "status",         "created_at"};
constexpr std::string_view diff_nullable_fields[] = {"field", "current_value", "source_query",
                                                     "reviewed_at", "applied_commit"};

std::string diff_problem(const v1::pending_diff& d) {
    if (!d.raw_json.empty()) {
        const json j = json::parse(d.raw_json, nullptr, false);
        if (j.is_object()) {
            for (const auto f : diff_string_fields) {
                const auto it = j.find(std::string(f));
                if (it != j.end() && !it->is_string())
                    return "field " + std::string(f) + " is not a string";
            }
            for (const auto f : diff_nullable_fields) {
                const auto it = j.find(std::string(f));
                if (it != j.end() && !it->is_string() && !it->is_null())
                    return "field " + std::string(f) + " is neither a string nor null";
            }
        }
    }
    const auto created = iso_to_datetime6(d.created_at);
    if (!created || datetime6_to_iso(*created) != d.created_at)
        return "created_at is not a naive isoformat() time";
    if (d.reviewed_at) {
        const auto reviewed = iso_to_datetime6(*d.reviewed_at);
        if (!reviewed || datetime6_to_iso(*reviewed) != *d.reviewed_at)
            return "reviewed_at is not a naive isoformat() time";
    }
    return {};
}

std::string first_line(std::string_view s) { return std::string(s.substr(0, s.find('\n'))); }

// JSON values equal in type and value, object keys in any order (Dolt sorts them): 1 and 1.0
// differ, as they do in yaml.dump.
bool strict_equal(const json& a, const json& b) {
    const bool ai = a.is_number_integer(), bi = b.is_number_integer();
    if (ai || bi) return ai && bi && a == b;
    if (a.type() != b.type()) return false;
    if (a.is_object()) {
        if (a.size() != b.size()) return false;
        for (auto it = a.begin(); it != a.end(); ++it) {
            const auto other = b.find(it.key());
            if (other == b.end() || !strict_equal(*it, *other)) return false;
        }
        return true;
    }
    if (a.is_array()) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (!strict_equal(a[i], b[i])) return false;
        return true;
    }
    return a == b;
}

bool same_json(const std::optional<std::string>& a, const std::optional<std::string>& b) {
    if (!a || !b) return a.has_value() == b.has_value();
    if (*a == *b) return true;
    const json x = json::parse(*a, nullptr, false), y = json::parse(*b, nullptr, false);
    if (x.is_discarded() || y.is_discarded()) return false;
    return strict_equal(x, y);
}

bool same_text(const v1::text_columns& a, const v1::text_columns& b) {
    return a.content == b.content && same_json(a.metadata, b.metadata) &&
           a.metadata_keys == b.metadata_keys && a.frontmatter == b.frontmatter &&
           a.blank_lines == b.blank_lines;
}

// Shown values: long ones cut (on a UTF-8 boundary) with their size.
std::string shown(const std::string& s) {
    constexpr std::size_t keep = 160;
    if (s.size() <= keep + 40) return s;
    std::size_t cut = keep;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return s.substr(0, cut) + "... (" + std::to_string(s.size()) + " bytes)";
}
std::string shown(const std::optional<std::string>& s) { return s ? shown(*s) : "NULL"; }
std::string shown(std::int64_t v) { return std::to_string(v); }
std::string shown(bool v) { return v ? "true" : "false"; }

class column_diffs {
public:
    column_diffs(std::vector<row_drift>& out, std::string item, std::string key)
        : out_(out), item_(std::move(item)), key_(std::move(key)) {}
    template <class T>
    void col(const char* column, const T& a, const T& b) {
        if (a == b) return;
        add(column, shown(a), shown(b));
    }
    void meta(const std::optional<std::string>& a, const std::optional<std::string>& b) {
        if (same_json(a, b)) return;
        add("metadata", shown(a), shown(b));
    }
    void text(const v1::text_columns& a, const v1::text_columns& b) {
        col("content", a.content, b.content);
        meta(a.metadata, b.metadata);
        col("metadata_keys", a.metadata_keys, b.metadata_keys);
        col("frontmatter", a.frontmatter, b.frontmatter);
        col("blank_lines", a.blank_lines, b.blank_lines);
    }

private:
    void add(const char* column, std::string a, std::string b) {
        out_.push_back(
            {row_drift::kind::different, item_, key_, column, std::move(a), std::move(b)});
    }
    std::vector<row_drift>& out_;
    std::string item_, key_;
};

template <class T, class KeyFn, class CompareFn>
void diff_keyed(const std::vector<T>& expected, const std::vector<T>& actual, const char* item,
                KeyFn key_of, CompareFn compare, std::vector<row_drift>& out) {
    std::map<std::string, const T*> a, b;
    for (const auto& x : expected) a.emplace(key_of(x), &x);
    for (const auto& x : actual) b.emplace(key_of(x), &x);
    for (const auto& [key, x] : a) {
        const auto it = b.find(key);
        if (it == b.end()) {
            out.push_back({row_drift::kind::missing, item, key, "", "", ""});
            continue;
        }
        column_diffs c(out, item, key);
        compare(*x, *it->second, c);
    }
    for (const auto& [key, x] : b) {
        if (!a.count(key)) out.push_back({row_drift::kind::extra, item, key, "", "", ""});
    }
}

// The commit time of each sha of a user's commits and versions.
using commit_times = std::unordered_map<std::string_view, std::int64_t>;

// What an earlier derivation can give again: the same v1 bytes give the same columns.
struct earlier_rows {
    std::unordered_map<std::string, const block_row*> blocks;
    std::unordered_map<std::string, const version_row*> versions;
    std::unordered_map<std::string, std::string> reasons;

    earlier_rows(const user_rows* reuse, const std::string& user_id) {
        if (reuse != nullptr && reuse->user_id == user_id) {
            for (const auto& b : reuse->blocks) blocks.emplace(b.label, &b);
            for (const auto& v : reuse->versions) versions.emplace(version_key(v.label, v.id), &v);
            for (const auto& u : reuse->unrepresentable)
                reasons.emplace(u.item + "\n" + u.key, u.reason);
        }
    }

    std::string reason(const char* item, const std::string& key) const {
        const auto it = reasons.find(std::string(item) + "\n" + key);
        return it == reasons.end() ? std::string() : it->second;
    }
};

// Records why an item's text cannot be given back exactly, when there is a reason.
void note(user_rows& r, const char* item, std::string key, std::string reason) {
    if (!reason.empty()) r.unrepresentable.push_back({item, std::move(key), std::move(reason)});
}

// The blocks' rows, in label order.
void add_blocks(const v1::user_state& s, const commit_times& times, const earlier_rows& old,
                user_rows& r) {
    std::vector<const v1::block*> blocks;
    for (const auto& b : s.blocks) blocks.push_back(&b);
    std::stable_sort(blocks.begin(), blocks.end(),
                     [](const v1::block* a, const v1::block* b) { return a->label < b->label; });
    for (const v1::block* b : blocks) {
        block_row row;
        const auto prev = old.blocks.find(b->label);
        if (prev != old.blocks.end() && prev->second->source == b->source &&
            prev->second->v1_commit == b->commit) {
            row = *prev->second;
            note(r, "block", b->label, old.reason("block", b->label));
        } else {
            row.label = b->label;
            // GET block reads the file in text mode: universal newlines first.
            auto split = v1::split_text(v1::universal_newlines(b->source));
            row.text = std::move(split.columns);
            if (const auto t = times.find(b->commit); t != times.end()) {
                if (auto when = utc_datetime(t->second)) row.updated_at = *when + ".000000";
            }
            row.v1_commit = b->commit;
            row.source = b->source;
            note(r, "block", b->label, std::move(split.unrepresentable));
        }
        r.blocks.push_back(std::move(row));
    }
}

// The versions' rows, ordinals counted from the oldest of each block.
void add_versions(const v1::user_state& s, const earlier_rows& old, user_rows& r) {
    std::unordered_map<std::string_view, std::int64_t> per_label;
    for (const auto& v : s.versions) ++per_label[v.label];
    for (const auto& v : s.versions) {
        const std::string key = version_key(v.label, v.sha);
        version_row row;
        const auto prev = old.versions.find(key);
        if (prev != old.versions.end() && prev->second->source == v.source &&
            prev->second->full_message == v.message && prev->second->deleted == v.deleted &&
            prev->second->created_at == v.commit_time &&
            prev->second->created_tz_offset == v.commit_tz_offset_minutes) {
            row = *prev->second;
            note(r, "version", key, old.reason("version", key));
        } else {
            row.id = v.sha;
            row.label = v.label;
            if (!v.deleted) {
                auto split = v1::split_text(v.source);
                row.text = std::move(split.columns);
                note(r, "version", key, std::move(split.unrepresentable));
            }
            row.author = v1::utf8_decode_replace(v.author);
            row.message = first_line(v1::utf8_decode_replace(v.message));
            row.created_at = v.commit_time;
            row.created_tz_offset = v.commit_tz_offset_minutes;
            row.deleted = v.deleted;
            row.full_message = v.message;
            row.source = v.source;
        }
        row.is_current = v.ordinal == 0;
        row.ordinal = flip(per_label[v.label], v.ordinal);
        r.versions.push_back(std::move(row));
    }
}

void add_diffs(const v1::user_state& s, user_rows& r) {
    for (const auto& d : s.diffs) {
        diff_row row;
        row.fields = d;
        row.created_at = iso_to_datetime6(d.created_at);
        if (d.reviewed_at) row.reviewed_at = iso_to_datetime6(*d.reviewed_at);
        note(r, "diff", d.id, diff_problem(d));
        r.diffs.push_back(std::move(row));
    }
}

}  // namespace

user_rows derive_rows(const v1::user_state& s, const user_rows* reuse) {
    user_rows r;
    r.user_id = s.user_id;
    r.head = s.head;
    r.diffs_fingerprint = s.diffs_fingerprint;

    const auto n_commits = static_cast<std::int64_t>(s.commits.size());
    r.commits = s.commits;
    std::stable_sort(r.commits.begin(), r.commits.end(),
                     [](const v1::commit& a, const v1::commit& b) { return a.seq < b.seq; });
    for (auto& c : r.commits) c.seq = flip(n_commits, c.seq);

    commit_times times;
    for (const auto& c : s.commits) times.emplace(c.sha, c.commit_time);
    for (const auto& v : s.versions) times.emplace(v.sha, v.commit_time);

    const earlier_rows old(reuse, s.user_id);
    add_blocks(s, times, old, r);
    add_versions(s, old, r);
    add_diffs(s, r);
    sort_rows(r);
    return r;
}

void sort_rows(user_rows& r) {
    std::stable_sort(r.commits.begin(), r.commits.end(),
                     [](const v1::commit& a, const v1::commit& b) { return a.seq > b.seq; });
    std::stable_sort(r.blocks.begin(), r.blocks.end(),
                     [](const block_row& a, const block_row& b) { return a.label < b.label; });
    std::stable_sort(r.versions.begin(), r.versions.end(),
                     [](const version_row& a, const version_row& b) {
                         return a.label != b.label ? a.label < b.label : a.ordinal > b.ordinal;
                     });
    std::stable_sort(r.diffs.begin(), r.diffs.end(), [](const diff_row& a, const diff_row& b) {
        return a.fields.id < b.fields.id;
    });
}

v1::user_state rebuild_state(const user_rows& r) {
    v1::user_state s;
    s.user_id = r.user_id;
    s.head = r.head;
    s.diffs_fingerprint = r.diffs_fingerprint;
    const auto n_commits = static_cast<std::int64_t>(r.commits.size());
    s.commits = r.commits;
    for (auto& c : s.commits) c.seq = flip(n_commits, c.seq);
    std::stable_sort(s.commits.begin(), s.commits.end(),
                     [](const v1::commit& a, const v1::commit& b) { return a.seq < b.seq; });
    for (const auto& b : r.blocks) {
        s.blocks.push_back(v1::block{b.label, v1::join_text(b.text).value_or(""), b.v1_commit});
    }
    std::unordered_map<std::string_view, std::int64_t> per_label;
    for (const auto& v : r.versions) ++per_label[v.label];
    for (const auto& row : r.versions) {
        v1::block_version v;
        v.sha = row.id;
        v.label = row.label;
        v.deleted = row.deleted;
        if (!row.deleted) v.source = v1::join_text(row.text).value_or("");
        v.message = row.message;
        v.author = row.author;
        v.commit_time = row.created_at;
        v.commit_tz_offset_minutes = row.created_tz_offset;
        v.ordinal = flip(per_label[row.label], row.ordinal);
        v.is_current = row.is_current;
        s.versions.push_back(std::move(v));
    }
    for (const auto& row : r.diffs) {
        v1::pending_diff d = row.fields;
        d.raw_json.clear();  // built from the fields
        d.created_at = row.created_at ? datetime6_to_iso(*row.created_at).value_or("") : "";
        d.reviewed_at = std::nullopt;
        if (row.reviewed_at) d.reviewed_at = datetime6_to_iso(*row.reviewed_at);
        s.diffs.push_back(std::move(d));
    }
    return s;
}

v1::user_state audit_state(const user_rows& r) {
    v1::user_state s = rebuild_state(r);
    for (std::size_t i = 0; i < r.blocks.size(); ++i) s.blocks[i].source = r.blocks[i].source;
    for (std::size_t i = 0; i < r.versions.size(); ++i) {
        s.versions[i].source = r.versions[i].source;
        s.versions[i].message = r.versions[i].full_message;
        s.versions[i].is_current.reset();
    }
    for (std::size_t i = 0; i < r.diffs.size(); ++i) s.diffs[i] = r.diffs[i].fields;
    return s;
}

std::string_view name(row_drift::kind k) {
    switch (k) {
        case row_drift::kind::missing: return "missing";
        case row_drift::kind::extra: return "extra";
        case row_drift::kind::different: return "different";
    }
    return "unknown";
}

std::string to_string(const row_drift& d) {
    std::string out = std::string(name(d.what)) + " " + d.item;
    if (!d.key.empty()) out += " " + d.key;
    if (d.what == row_drift::kind::different) {
        out += ": " + d.column + " (v1 " +
               json(d.v1).dump(-1, ' ', false, json::error_handler_t::replace) + ", v2 " +
               json(d.v2).dump(-1, ' ', false, json::error_handler_t::replace) + ")";
    }
    return out;
}

std::vector<row_drift> diff_rows(const user_rows& a, const user_rows& b) {
    std::vector<row_drift> out;
    {
        column_diffs c(out, "user", "");
        c.col("head", a.head, b.head);
        c.col("diffs_fingerprint", a.diffs_fingerprint, b.diffs_fingerprint);
    }
    diff_keyed(
        a.commits, b.commits, "commit", [](const v1::commit& c) { return c.sha; },
        [](const v1::commit& x, const v1::commit& y, column_diffs& c) {
            c.col("seq", x.seq, y.seq);
            c.col("parents", join_parents(x.parents), join_parents(y.parents));
            c.col("message", x.message, y.message);
            c.col("author", x.author, y.author);
            c.col("committed_at", x.commit_time, y.commit_time);
            c.col("tz_offset", std::int64_t{x.commit_tz_offset_minutes},
                  std::int64_t{y.commit_tz_offset_minutes});
        },
        out);
    diff_keyed(
        a.blocks, b.blocks, "block", [](const block_row& x) { return x.label; },
        [](const block_row& x, const block_row& y, column_diffs& c) {
            c.text(x.text, y.text);
            c.col("updated_at", x.updated_at, y.updated_at);
            c.col("v1_commit", x.v1_commit, y.v1_commit);
            c.col("source", x.source, y.source);
        },
        out);
    diff_keyed(
        a.versions, b.versions, "version",
        [](const version_row& x) { return version_key(x.label, x.id); },
        [](const version_row& x, const version_row& y, column_diffs& c) {
            c.text(x.text, y.text);
            c.col("author", x.author, y.author);
            c.col("message", x.message, y.message);
            c.col("created_at", x.created_at, y.created_at);
            c.col("created_tz_offset", std::int64_t{x.created_tz_offset},
                  std::int64_t{y.created_tz_offset});
            c.col("is_current", x.is_current, y.is_current);
            c.col("ordinal", x.ordinal, y.ordinal);
            c.col("deleted", x.deleted, y.deleted);
            c.col("full_message", x.full_message, y.full_message);
            c.col("source", x.source, y.source);
        },
        out);
    diff_keyed(
        a.diffs, b.diffs, "diff", [](const diff_row& x) { return x.fields.id; },
        [](const diff_row& x, const diff_row& y, column_diffs& c) {
            const auto& p = x.fields;
            const auto& q = y.fields;
            c.col("agent_id", p.agent_id, q.agent_id);
            c.col("block_label", p.block_label, q.block_label);
            c.col("field", p.field, q.field);
            c.col("operation", p.operation, q.operation);
            c.col("current_value", p.current_value, q.current_value);
            c.col("proposed_value", p.proposed_value, q.proposed_value);
            c.col("reasoning", p.reasoning, q.reasoning);
            c.col("confidence", p.confidence, q.confidence);
            c.col("status", p.status, q.status);
            c.col("source_query", p.source_query, q.source_query);
            c.col("created_at", x.created_at, y.created_at);
            c.col("reviewed_at", x.reviewed_at, y.reviewed_at);
            c.col("applied_commit", p.applied_commit, q.applied_commit);
            c.col("created_at_text", p.created_at, q.created_at);
            c.col("reviewed_at_text", p.reviewed_at, q.reviewed_at);
            c.col("raw_json", p.raw_json, q.raw_json);
        },
        out);
    return out;
}

bool same_row(const block_row& a, const block_row& b) {
    return a.label == b.label && same_text(a.text, b.text) && a.updated_at == b.updated_at &&
           a.v1_commit == b.v1_commit && a.source == b.source;
}

bool same_row(const version_row& a, const version_row& b) {
    return a.id == b.id && a.label == b.label && same_text(a.text, b.text) &&
           a.author == b.author && a.message == b.message && a.created_at == b.created_at &&
           a.created_tz_offset == b.created_tz_offset && a.is_current == b.is_current &&
           a.ordinal == b.ordinal && a.deleted == b.deleted && a.full_message == b.full_message &&
           a.source == b.source;
}

bool same_row(const diff_row& a, const diff_row& b) { return a == b; }

}  // namespace sg::dolt
