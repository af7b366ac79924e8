// config/config_internal: what the files behind config.hpp (config, load, dump) share: the JSON
// type, the enums' spellings, and the loader that parse (config.cpp) runs over the field tables
// of load.cpp, with the helpers it calls. Only those files include it; everyone else includes
// config.hpp.
#pragma once

#include "config/config.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sg::config::detail {

// ordered_json keeps keys in document order, so problems come out in the order a reader sees them.
using json = nlohmann::ordered_json;

// The spellings the field tables (load.cpp) read and to_string (config.cpp) gives.
inline constexpr std::string_view stage_names[] = {"off", "dualwrite", "shadow"};
// Each in its enum's order (config.hpp).
inline constexpr std::string_view log_levels[] = {"trace", "debug", "info", "warn", "error", "off"};
inline constexpr std::string_view migrate_commit_policies[] = {"per_user_import", "once_per_run",
                                                               "off"};
inline constexpr std::string_view mirror_commit_policies[] = {"per_v1_commit", "interval", "off"};
inline constexpr std::string_view compare_target_names[] = {"dolt", "v2_http"};

// From load.cpp: paths and names.

// `key` under `parent`: "parent.key" for a plain key, else parent["key"] (JSON-quoted).
std::string child_path(const std::string& parent, std::string_view key);

// `names` separated by ", ".
std::string join(std::span<const std::string_view> names);

// True for a valid environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool is_env_name(std::string_view s);

// The loader: defined here because parse (config.cpp) runs it and the field tables of load.cpp
// are made of its readers.

// The bounds the loader's own readers use (address, duration); load.cpp has the others.
inline constexpr std::int64_t max_port = 65535;
inline constexpr std::int64_t max_timeout_ms = 3'600'000;  // one hour

using reader_fn = std::function<void(const json& value, const std::string& path)>;

struct field {
    std::string_view key;
    reader_fn read;
};

// Walks a document against field tables; each reader writes its target only when the value is
// valid, so a rejected value leaves the default in place and later cross-checks still make sense.
class loader {
public:
    std::vector<problem> problems;

    void add(const std::string& path, std::string message) {
        problems.push_back({path, std::move(message)});
    }

    void object(const json& v, const std::string& path, std::span<const field> fields) {
        if (!v.is_object()) {
            add(path, std::string("expected an object, got ") + v.type_name());
            return;
        }
        for (const auto& item : v.items()) {
            // Not a structured binding: Clang 14 cannot capture one in a lambda.
            const std::string& key = item.key();
            const json& value = item.value();
            const std::string p = child_path(path, key);
            auto f = std::find_if(fields.begin(), fields.end(),
                                  [&](const field& fd) { return fd.key == key; });
            if (f != fields.end()) {
                f->read(value, p);
            } else if (key == "password" || key == "token" || key == "admin_token") {
                // The env var name may be set later in the document: fill the message at the end.
                secrets_.push_back({problems.size(), key == "password"});
                add(p, "");
            } else {
                add(p, "unknown key");
            }
        }
    }

    std::optional<std::int64_t> integer(const json& v, const std::string& path, std::int64_t min,
                                        std::int64_t max) {
        if (!v.is_number_integer()) {
            add(path, std::string("expected an integer, got ") + v.type_name());
            return std::nullopt;
        }
        const bool too_big =
            v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(max);
        const std::int64_t n = too_big ? max : v.get<std::int64_t>();
        if (too_big || n < min || n > max) {
            add(path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                          ", got " + v.dump());
            return std::nullopt;
        }
        return n;
    }

    template <class T>
    reader_fn number(T& target, std::int64_t min, std::int64_t max) {
        return [this, &target, min, max](const json& v, const std::string& path) {
            if (auto n = integer(v, path, min, max)) target = static_cast<T>(*n);
        };
    }

    reader_fn duration(milliseconds& target) {
        return [this, &target](const json& v, const std::string& path) {
            if (auto n = integer(v, path, 1, max_timeout_ms)) target = milliseconds{*n};
        };
    }

    reader_fn boolean(bool& target) {
        return [this, &target](const json& v, const std::string& path) {
            if (v.is_boolean()) {
                target = v.get<bool>();
            } else {
                add(path, std::string("expected a boolean, got ") + v.type_name());
            }
        };
    }

    std::optional<std::string> string(const json& v, const std::string& path) {
        if (!v.is_string()) {
            add(path, std::string("expected a string, got ") + v.type_name());
            return std::nullopt;
        }
        return v.get<std::string>();
    }

    reader_fn text(std::string& target, bool may_be_empty) {
        return [this, &target, may_be_empty](const json& v, const std::string& path) {
            if (auto s = string(v, path)) {
                if (s->empty() && !may_be_empty) {
                    add(path, "must not be empty");
                } else {
                    target = std::move(*s);
                }
            }
        };
    }

    reader_fn host(std::string& target) {
        return [this, &target](const json& v, const std::string& path) {
            if (auto s = string(v, path)) {
                const bool bad = std::any_of(s->begin(), s->end(),
                                             [](unsigned char c) { return c <= ' ' || c == 0x7f; });
                if (s->empty()) {
                    add(path, "must not be empty");
                } else if (bad) {
                    add(path, "must not contain spaces or control characters");
                } else {
                    target = std::move(*s);
                }
            }
        };
    }

    reader_fn env_name(std::string& target) {
        return [this, &target](const json& v, const std::string& path) {
            if (auto s = string(v, path)) {
                if (is_env_name(*s)) {
                    target = std::move(*s);
                } else {
                    add(path, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
                }
            }
        };
    }

    reader_fn time_zone(zone& target) {
        return [this, &target](const json& v, const std::string& path) {
            if (auto s = string(v, path)) {
                if (auto z = parse_time_zone(*s)) {
                    target = *z;
                } else {
                    add(path,
                        "must be \"UTC\", \"local\" or an offset like \"+02:00\" (at most "
                        "14 hours), got \"" +
                            *s + "\"");
                }
            }
        };
    }

    // Reads one of `names` into `target`, an enum whose values are listed in `names`' order.
    template <typename E>
    reader_fn one_of(std::span<const std::string_view> names, E& target) {
        return choice(names, [&target](std::size_t i) { target = static_cast<E>(i); });
    }

    // Reads one of `names` and hands its index to `store`.
    reader_fn choice(std::span<const std::string_view> names,
                     std::function<void(std::size_t)> store) {
        return [this, names, store](const json& v, const std::string& path) {
            auto s = string(v, path);
            if (!s) return;
            auto it = std::find(names.begin(), names.end(), *s);
            if (it == names.end()) {
                add(path, "must be one of " + join(names) + ", got \"" + *s + "\"");
            } else {
                store(static_cast<std::size_t>(it - names.begin()));
            }
        };
    }

    // A nested object read with its own field table.
    reader_fn section(std::vector<field> fields) {
        return [this, fields = std::move(fields)](const json& v, const std::string& path) {
            object(v, path, fields);
        };
    }

    reader_fn real(double& target, double min, double max) {
        return [this, &target, min, max](const json& v, const std::string& path) {
            if (!v.is_number()) {
                add(path, std::string("expected a number, got ") + v.type_name());
                return;
            }
            const double d = v.get<double>();
            if (!(d >= min && d <= max)) {
                auto text = [](double x) {
                    return std::fabs(x) < 1e15 &&
                                   x == static_cast<double>(static_cast<long long>(x))
                               ? std::to_string(static_cast<long long>(x))
                               : json(x).dump();
                };
                add(path,
                    "must be between " + text(min) + " and " + text(max) + ", got " + v.dump());
                return;
            }
            target = d;
        };
    }

    reader_fn optional_real(std::optional<double>& target, double min, double max) {
        return [this, &target, min, max](const json& v, const std::string& path) {
            double d = 0;
            const auto before = problems.size();
            real(d, min, max)(v, path);
            if (problems.size() == before) target = d;
        };
    }

    // A list of strings, each checked by `valid` (which returns "" or what is wrong).
    reader_fn strings(std::vector<std::string>& target,
                      std::function<std::string(const std::string&)> valid) {
        return [this, &target, valid](const json& v, const std::string& path) {
            if (!v.is_array()) {
                add(path, std::string("expected an array of strings, got ") + v.type_name());
                return;
            }
            std::vector<std::string> out;
            bool ok = true;
            for (std::size_t i = 0; i < v.size(); ++i) {
                const std::string p = path + "[" + std::to_string(i) + "]";
                auto str = string(v[i], p);
                if (!str) {
                    ok = false;
                    continue;
                }
                if (auto why = valid ? valid(*str) : std::string(); !why.empty()) {
                    add(p, why);
                    ok = false;
                    continue;
                }
                out.push_back(std::move(*str));
            }
            if (ok) target = std::move(out);
        };
    }

    // Listeners may use port 0 ("the OS picks", for tests); addresses we connect to may not.
    reader_fn address(endpoint_address& target, std::int64_t min_port) {
        return section(
            {{"host", host(target.host)}, {"port", number(target.port, min_port, max_port)}});
    }

    void fill_secret_messages(const config& c) {
        for (const auto& [index, is_password] : secrets_) {
            problems[index].message = "secrets come from the environment: set " +
                                      (is_password ? c.dolt.password_env : c.admin.token_env);
        }
    }

private:
    std::vector<std::pair<std::size_t, bool>> secrets_;  // problem index, is the Dolt password
};

// From load.cpp: the field tables and the checks across sections.

// Reads the whole document `doc` into `c` through the field tables; problems go to `l`.
void read_document(loader& l, const json& doc, config& c);

// The rules that relate one section to another, run on the values read (secrets included).
void cross_check(loader& l, const config& c);

}  // namespace sg::config::detail
