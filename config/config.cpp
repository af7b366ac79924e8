// config: loads a JSON config document (comments allowed) into the structs of config.hpp, reporting
// every problem with its JSON path.
// This file holds the public entry points; the loader and the field tables are in load.cpp,
// dump_json in dump.cpp, and what they share in config_internal.hpp.
#include "config/config.hpp"

#include "config/config_internal.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sg::config {

using namespace detail;

namespace {

template <typename E, std::size_t N>
std::string_view name_of(E value, const std::string_view (&names)[N]) {
    const auto i = static_cast<std::size_t>(value);
    return i < N ? names[i] : "unknown";
}

}  // namespace

std::string_view to_string(stage s) {
    const auto i = static_cast<std::size_t>(s);
    return i < std::size(stage_names) ? stage_names[i] : "unknown";
}

std::optional<stage> parse_stage(std::string_view name) {
    for (std::size_t i = 0; i < std::size(stage_names); ++i) {
        if (stage_names[i] == name) return static_cast<stage>(i);
    }
    return std::nullopt;
}

std::string stage_list() {
    std::string out;
    for (const auto n : stage_names) {
        if (!out.empty()) out += ", ";
        out += n;
    }
    return out;
}

std::string_view to_string(migrate_commit c) { return name_of(c, migrate_commit_policies); }
std::string_view to_string(mirror_commit c) { return name_of(c, mirror_commit_policies); }
std::string_view to_string(compare_target t) { return name_of(t, compare_target_names); }
std::string_view to_string(log_level l) { return name_of(l, log_levels); }

std::string to_string(const zone& z) {
    switch (z.k) {
        case zone::kind::utc: return "UTC";
        case zone::kind::local: return "local";
        case zone::kind::fixed: break;
    }
    const int m = z.offset_minutes < 0 ? -z.offset_minutes : z.offset_minutes;
    std::string out(1, z.offset_minutes < 0 ? '-' : '+');
    for (const int part : {m / 60, m % 60}) {
        if (out.size() > 1) out += ':';
        out += static_cast<char>('0' + part / 10 % 10);
        out += static_cast<char>('0' + part % 10);
    }
    return out;
}

std::optional<zone> parse_time_zone(std::string_view s) {
    if (s == "UTC" || s == "utc") return zone{zone::kind::utc, 0};
    if (s == "local") return zone{zone::kind::local, 0};
    auto digit = [&](std::size_t i) { return s[i] >= '0' && s[i] <= '9'; };
    if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' || !digit(1) || !digit(2) ||
        !digit(4) || !digit(5)) {
        return std::nullopt;
    }
    const int hours = (s[1] - '0') * 10 + (s[2] - '0');
    const int minutes = (s[4] - '0') * 10 + (s[5] - '0');
    if (hours > 14 || minutes > 59) return std::nullopt;  // UTC+14:00 is the furthest zone
    const int total = hours * 60 + minutes;
    return zone{zone::kind::fixed, s[0] == '-' ? -total : total};
}

std::optional<std::string> process_env(const char* name) {
    if (const char* v = std::getenv(name)) return std::string(v);
    return std::nullopt;
}

namespace {

// JSON allows a key once per object in spirit (RFC 8259 §4: names SHOULD be unique) and
// nlohmann keeps the last silently: a config with "stage" twice would run with whichever came
// last. The parser's callback sees every key; this remembers each object's and reports repeats.
class duplicate_keys {
public:
    bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
        using ev = json::parse_event_t;
        switch (event) {
            case ev::object_start:
            case ev::array_start:
                frames_.push_back({event == ev::array_start, next_path(), {}, {}, -1});
                break;
            case ev::object_end:
            case ev::array_end:
                if (!frames_.empty()) frames_.pop_back();
                break;
            case ev::key:
                if (!frames_.empty() && parsed.is_string()) {
                    auto& f = frames_.back();
                    f.key = parsed.get<std::string>();
                    if (!f.keys.insert(f.key).second) {
                        found.push_back({child_path(f.path, f.key),
                                         "duplicate key: JSON gives each key once per object "
                                         "(the last one would silently win)"});
                    }
                }
                break;
            case ev::value:
                if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
                break;
        }
        return true;
    }
    std::vector<problem> found;

private:
    struct frame {
        bool array;
        std::string path;
        std::set<std::string> keys;
        std::string key;  // the object's current key
        long index;       // the array's current element
    };
    std::string next_path() {
        if (frames_.empty()) return "$";
        auto& top = frames_.back();
        if (!top.array) return child_path(top.path, top.key);
        return top.path + "[" + std::to_string(++top.index) + "]";
    }
    std::vector<frame> frames_;
};

}  // namespace

load_result parse(std::string_view text, env_lookup env) {
    load_result result;
    try {
        json doc;
        duplicate_keys duplicates;
        try {
            doc = json::parse(text.begin(), text.end(), std::ref(duplicates), true,
                              /*ignore_comments=*/true);
        } catch (const json::parse_error& e) {
            // Drop the "[json.exception.parse_error.101] " prefix: the rest has line and column.
            std::string message = e.what();
            if (auto end = message.find("] ");
                message.starts_with("[json.") && end != message.npos) {
                message.erase(0, end + 2);
            }
            result.problems.push_back({"$", std::move(message)});
            return result;
        }
        config c;
        loader l;
        for (auto& p : duplicates.found) l.add(p.path, std::move(p.message));
        read_document(l, doc, c);
        if (env != nullptr) {
            if (auto t = env(c.admin.token_env.c_str())) c.admin.token = *t;
            if (auto p = env(c.dolt.password_env.c_str())) c.dolt.password = *p;
        }
        cross_check(l, c);
        l.fill_secret_messages(c);
        result.problems = std::move(l.problems);
        if (result.problems.empty()) result.value = std::move(c);
    } catch (const std::exception& e) {
        result.value.reset();
        result.problems.push_back({"$", std::string("internal error: ") + e.what()});
    }
    return result;
}

load_result load_file(const std::string& path, env_lookup env) {
    std::string text;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    int err = f == nullptr ? errno : 0;
    if (f != nullptr) {
        char buf[8192];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        if (std::ferror(f)) err = errno != 0 ? errno : EIO;  // e.g. EISDIR for a directory
        std::fclose(f);
    }
    if (err != 0) {
        load_result result;
        result.problems.push_back({"$", "cannot read " + path + ": " + std::strerror(err)});
        return result;
    }
    return parse(text, env);
}

std::vector<problem> environment_problems(const config& c) {
    std::vector<problem> out;
    if (c.mode != stage::off && !c.v1_data_dir.empty()) {
        namespace fs = std::filesystem;
        std::error_code ec;
        const fs::file_status st = fs::status(c.v1_data_dir, ec);
        std::string why;
        if (st.type() == fs::file_type::not_found) {
            why = "does not exist";
        } else if (ec) {
            why = "cannot be read: " + ec.message();
        } else if (!fs::is_directory(st)) {
            why = "is not a directory";
        }
        if (!why.empty()) {
            out.push_back({"$.v1_data_dir", "\"" + c.v1_data_dir + "\" " + why + ": the " +
                                                std::string(to_string(c.mode)) +
                                                " stage mirrors v1's repositories from there"});
        }
    }
    return out;
}

std::string format_problems(const std::vector<problem>& problems) {
    std::string out;
    for (const auto& p : problems) out += p.path + ": " + p.message + "\n";
    return out;
}

}  // namespace sg::config
