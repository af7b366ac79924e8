// adapters/git/pending_diffs: fingerprint, content hash and v1-faithful loading of pending_diffs/.
#include "adapters/git/pending_diffs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "adapters/git/libgit2.hpp"
#include "adapters/git/safe_fs.hpp"

namespace sg::git {
namespace {

using nlohmann::json;

// Far above anything an agent writes (a diff holds two copies of a block); a bigger file is
// refused rather than read into memory.
constexpr std::size_t max_diff_bytes = std::size_t{64} << 20;
constexpr std::string_view diffs_dir_name = "pending_diffs";

// What v1's DiffStore globs: "*.json", and Python's glob skips names starting with ".".
bool is_diff_name(std::string_view n) { return n.ends_with(".json") && n.front() != '.'; }

struct entry_meta {
    std::string name;
    char type = 'o';  // f(ile), d(irectory), l(ink), o(ther)
    std::int64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
};

entry_meta meta_of(std::string name, const struct stat& st) {
    entry_meta m;
    m.name = std::move(name);
    m.type = S_ISREG(st.st_mode)   ? 'f'
             : S_ISDIR(st.st_mode) ? 'd'
             : S_ISLNK(st.st_mode) ? 'l'
                                   : 'o';
    m.size = static_cast<std::int64_t>(st.st_size);
    m.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    m.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
    return m;
}

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Builds the fingerprint from metadata sorted by name. The serialization is the contract between
// fingerprint_diffs and read_diffs: both must give the same value for the same directory.
diffs_fingerprint fingerprint_of(const std::vector<entry_meta>& sorted) {
    std::string text;
    const std::int64_t racy_after = now_ns() - std::int64_t{racy_window_seconds} * 1'000'000'000;
    bool racy = false;
    for (const auto& m : sorted) {
        text += m.name;
        text += '\0';
        text += m.type;
        text += ' ' + std::to_string(m.size) + ' ' + std::to_string(m.mtime_ns) + ' ' +
                std::to_string(m.ctime_ns) + '\n';
        if (std::max(m.mtime_ns, m.ctime_ns) >= racy_after) racy = true;
    }
    return diffs_fingerprint{hash_hex(text), racy};
}

// pending_diffs/ opened without following a symlink; nullopt when it does not exist.
result<std::optional<unique_fd>> open_diffs_dir(int user_dir_fd) {
    auto dir = open_subdir(user_dir_fd, std::string(diffs_dir_name), diffs_dir_name);
    if (dir) return std::optional<unique_fd>(std::move(*dir));
    if (dir.error().kind == error_kind::not_found) return std::optional<unique_fd>();
    return dir.error();
}

// The "*.json" names in the directory, sorted (bytewise, as everything else here).
result<std::vector<std::string>> diff_names(int dir_fd) {
    auto entries = list_dir(dir_fd, diffs_dir_name);
    if (!entries) return entries.error();
    std::vector<std::string> names;
    for (auto& e : *entries) {
        if (is_diff_name(e.name)) names.push_back(std::move(e.name));
    }
    std::sort(names.begin(), names.end());
    return names;
}

// One diff file: its metadata (stat'ed before reading) and, when it is a readable regular file,
// its bytes. `problem` says why there are no bytes.
struct diff_file {
    std::optional<entry_meta> meta;  // nullopt: vanished between readdir and open
    std::optional<std::string> bytes;
    std::string problem;
};

result<diff_file> load_file(int dir_fd, const std::string& name) {
    diff_file out;
    // O_NONBLOCK: a FIFO planted here must not hang the reader.
    const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        const int err = errno;
        // What v1 could not read either (it skips such files) is a warning; anything else, like
        // running out of descriptors, must not make a diff look deleted.
        if (err != ELOOP && err != EACCES && err != EPERM && err != ENXIO && err != ENODEV &&
            err != ENOENT) {
            return make_error(error_kind::io, name + ": open: " + std::strerror(err));
        }
        struct stat st {};
        auto present = stat_at(dir_fd, name, st, name);
        if (!present) return present.error();
        if (!*present) return out;
        out.meta = meta_of(name, st);
        out.problem = S_ISLNK(st.st_mode) ? "is a symlink"
                                          : std::string("cannot be opened: ") + std::strerror(err);
        return out;
    }
    unique_fd file(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return make_error(error_kind::io, name + ": fstat: " + std::strerror(errno));
    }
    out.meta = meta_of(name, st);
    if (!S_ISREG(st.st_mode)) {
        out.problem = "is not a regular file";
        return out;
    }
    if (static_cast<std::uint64_t>(st.st_size) > max_diff_bytes) {
        out.problem = "is larger than " + std::to_string(max_diff_bytes) + " bytes";
        return out;
    }
    auto bytes = read_all(fd, max_diff_bytes, name);
    if (!bytes) return bytes.error();
    out.bytes = std::move(*bytes);
    return out;
}

void add_content_line(std::string& text, const std::string& name, const diff_file& f) {
    text += name;
    text += '\0';
    text += f.bytes ? hash_hex(*f.bytes) : std::string("!");
    text += '\n';
}

// The text of a JSON value where v1 expects a string: strings as they are, anything else as its
// JSON text (never throws: invalid UTF-8 cannot come out of the parser, and is replaced anyway).
std::string text_of(const json& v) {
    if (v.is_string()) return v.get_ref<const std::string&>();
    return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

constexpr std::array<std::string_view, 13> required_keys = {
    "id",           "user_id",       "agent_id",       "block_label", "field",
    "operation",    "current_value", "proposed_value", "reasoning",   "confidence",
    "source_query", "status",        "created_at",
};
constexpr std::array<std::string_view, 2> defaulted_keys = {"reviewed_at", "applied_commit"};

bool one_of(std::string_view v, std::initializer_list<std::string_view> set) {
    return std::find(set.begin(), set.end(), v) != set.end();
}

}  // namespace

std::string hash_hex(std::string_view bytes) {
    lg::ensure_init();
    git_oid id{};
    if (git_odb_hash(&id, bytes.data(), bytes.size(), GIT_OBJECT_BLOB) != 0) return std::string();
    return lg::hex(id);
}

result<diffs_fingerprint> fingerprint_diffs(int user_dir_fd) {
    auto dir = open_diffs_dir(user_dir_fd);
    if (!dir) return dir.error();
    std::vector<entry_meta> metas;
    if (*dir) {
        auto names = diff_names((*dir)->get());
        if (!names) return names.error();
        for (auto& name : *names) {
            struct stat st {};
            auto present = stat_at((*dir)->get(), name, st, name);
            if (!present) return present.error();
            if (*present) metas.push_back(meta_of(std::move(name), st));
        }
    }
    return fingerprint_of(metas);
}

result<std::string> diffs_content_hash(int user_dir_fd) {
    auto dir = open_diffs_dir(user_dir_fd);
    if (!dir) return dir.error();
    std::string text;
    if (*dir) {
        auto names = diff_names((*dir)->get());
        if (!names) return names.error();
        for (const auto& name : *names) {
            auto f = load_file((*dir)->get(), name);
            if (!f) return f.error();
            if (f->meta) add_content_line(text, name, *f);
        }
    }
    return hash_hex(text);
}

result<diffs_read> read_diffs(int user_dir_fd, std::string_view subject_prefix) {
    auto dir = open_diffs_dir(user_dir_fd);
    if (!dir) return dir.error();
    diffs_read out;
    std::vector<entry_meta> metas;
    std::string content;
    struct parsed {
        v1::pending_diff diff;
        std::string file_name;
        bool name_matches = false;
    };
    std::vector<parsed> loaded;
    if (*dir) {
        auto names = diff_names((*dir)->get());
        if (!names) return names.error();
        for (const auto& name : *names) {
            auto f = load_file((*dir)->get(), name);
            if (!f) return f.error();
            if (!f->meta) continue;
            metas.push_back(*f->meta);
            add_content_line(content, name, *f);
            const std::string subject =
                std::string(subject_prefix) + std::string(diffs_dir_name) + "/" + name;
            if (!f->bytes) {
                out.warnings.push_back(
                    make_warning(warning_kind::unsafe_diff_file, subject, f->problem));
                continue;
            }
            auto d = parse_pending_diff(name, std::move(*f->bytes), subject_prefix, out.warnings);
            if (!d) continue;
            const bool matches = name == d->id + ".json";
            loaded.push_back(parsed{std::move(*d), name, matches});
        }
    }
    out.fingerprint = fingerprint_of(metas);
    out.content_hash = hash_hex(content);

    // One diff per id (the id is the key everywhere downstream). v1 opens "{id}.json" for an id,
    // so the file with the matching name wins; otherwise the first name.
    std::stable_sort(loaded.begin(), loaded.end(), [](const parsed& a, const parsed& b) {
        if (a.diff.id != b.diff.id) return a.diff.id < b.diff.id;
        return a.name_matches && !b.name_matches;
    });
    for (auto& p : loaded) {
        if (!out.diffs.empty() && out.diffs.back().id == p.diff.id) {
            out.warnings.push_back(make_warning(
                warning_kind::malformed_diff,
                std::string(subject_prefix) + std::string(diffs_dir_name) + "/" + p.file_name,
                "duplicate diff id " + p.diff.id + ": skipped"));
            continue;
        }
        out.diffs.push_back(std::move(p.diff));
    }
    return out;
}

std::optional<v1::pending_diff> parse_pending_diff(std::string_view file_name, std::string raw,
                                                   std::string_view subject_prefix,
                                                   std::vector<warning>& warnings) {
    const std::string subject =
        std::string(subject_prefix) + std::string(diffs_dir_name) + "/" + std::string(file_name);
    const auto malformed = [&](std::string why) -> std::optional<v1::pending_diff> {
        warnings.push_back(make_warning(warning_kind::malformed_diff, subject, std::move(why)));
        return std::nullopt;
    };
    // nlohmann skips a byte order mark; Python's json.loads refuses the text.
    if (raw.starts_with("\xEF\xBB\xBF")) return malformed("starts with a UTF-8 byte order mark");
    const json j = json::parse(raw, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return malformed("not valid JSON (or not UTF-8)");
    if (!j.is_object()) return malformed("not a JSON object");
    // v1 builds a dataclass from the object: a missing field without a default, or any field the
    // dataclass does not have, makes every v1 read of the file fail.
    for (const auto key : required_keys) {
        if (!j.contains(key)) return malformed("missing key \"" + std::string(key) + "\"");
    }
    for (const auto& [key, value] : j.items()) {
        const bool known =
            std::find(required_keys.begin(), required_keys.end(), key) != required_keys.end() ||
            std::find(defaulted_keys.begin(), defaulted_keys.end(), key) != defaulted_keys.end();
        if (!known) return malformed("unknown key \"" + key + "\"");
    }

    const auto odd = [&](std::string_view key, std::string why) {
        warnings.push_back(make_warning(warning_kind::odd_diff_field, subject,
                                        "\"" + std::string(key) + "\" " + std::move(why)));
    };
    // A field v1 shows as a string: anything else is kept as its JSON text.
    const auto text = [&](std::string_view key) {
        const json& v = j.at(key);
        if (!v.is_string()) odd(key, "is not a string: " + std::string(v.type_name()));
        return v.is_null() ? std::string() : text_of(v);
    };
    const auto optional_text = [&](std::string_view key) -> std::optional<std::string> {
        const auto it = j.find(key);
        if (it == j.end() || it->is_null()) return std::nullopt;
        if (!it->is_string()) odd(key, "is not a string or null: " + std::string(it->type_name()));
        return text_of(*it);
    };

    v1::pending_diff d;
    d.raw_json = std::move(raw);
    d.id = text("id");
    d.agent_id = text("agent_id");
    d.block_label = text("block_label");
    d.field = optional_text("field");
    d.operation = text("operation");
    d.current_value = optional_text("current_value");
    d.proposed_value = text("proposed_value");
    d.reasoning = text("reasoning");
    d.confidence = text("confidence");
    d.status = text("status");
    d.source_query = optional_text("source_query");
    d.created_at = text("created_at");
    d.reviewed_at = optional_text("reviewed_at");
    d.applied_commit = optional_text("applied_commit");

    if (file_name != d.id + ".json") odd("id", "does not match the file name");
    if (!one_of(d.operation, {"append", "replace", "llm_diff", "full_replace"})) {
        odd("operation", "is not one v1 knows: " + d.operation);
    }
    if (!one_of(d.confidence, {"low", "medium", "high"})) {
        odd("confidence", "is not low, medium or high: " + d.confidence);
    }
    if (!one_of(d.status, {"pending", "approved", "rejected", "superseded", "expired"})) {
        odd("status", "is not one v1 knows: " + d.status);
    }
    return d;
}

}  // namespace sg::git
