// config: loads a JSON config document (comments allowed) into the structs of config.hpp, reporting
// every problem with its JSON path.
#include "config/config.hpp"

#include "comparator/mapping.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <span>

namespace sg::config {
namespace {

// ordered_json keeps keys in document order, so problems come out in the order a reader sees them.
using json = nlohmann::ordered_json;

// Upper bounds catch typos (an extra zero, a value meant in another unit), not taste.
constexpr std::int64_t max_port = 65535;
constexpr std::int64_t max_threads = 256;
constexpr std::int64_t max_timeout_ms = 3'600'000;  // one hour
constexpr std::int64_t max_header_bytes = std::int64_t{1} << 20;
constexpr std::int64_t max_body_bytes = std::int64_t{1} << 30;
constexpr std::int64_t max_upstream_body_bytes = std::int64_t{4} << 30;
constexpr std::int64_t max_connections = 1'000'000;
constexpr std::int64_t max_idle_connections = 4096;

constexpr std::string_view stage_names[] = {"off", "dualwrite", "shadow"};
// Each in its enum's order (config.hpp).
constexpr std::string_view log_levels[] = {"trace", "debug", "info", "warn", "error", "off"};
constexpr std::string_view migrate_commit_policies[] = {"per_user_import", "once_per_run", "off"};
constexpr std::string_view mirror_commit_policies[] = {"per_v1_commit", "interval", "off"};
constexpr std::string_view compare_target_names[] = {"dolt", "v2_http"};

template <typename E, std::size_t N>
std::string_view name_of(E value, const std::string_view (&names)[N]) {
    const auto i = static_cast<std::size_t>(value);
    return i < N ? names[i] : "unknown";
}


std::string child_path(const std::string& parent, std::string_view key) {
    const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    });
    if (plain) return parent + "." + std::string(key);
    // Quoted so that a key with dots or spaces cannot be mistaken for a deeper path.
    return parent + "[" +
           json(std::string(key)).dump(-1, ' ', false, json::error_handler_t::replace) + "]";
}

std::string join(std::span<const std::string_view> names) {
    std::string out;
    for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
    return out;
}

bool is_env_name(std::string_view s) {
    if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_';
    });
}

bool is_loopback(const std::string& host) {
    std::string lower = host;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "localhost") return true;
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        return std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0;
    }
    return false;
}

bool is_wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

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
                    add(path, "must be \"UTC\", \"local\" or an offset like \"+02:00\" (at most 14 hours), got \"" +
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
                add(path, "must be between " + text(min) + " and " + text(max) + ", got " +
                              v.dump());
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

reader_fn limits_fields(loader& l, limits_config& lim) {
    return l.section({
        {"header_limit_bytes", l.number(lim.header_limit_bytes, 1, max_header_bytes)},
        {"body_limit_bytes", l.number(lim.body_limit_bytes, 1, max_body_bytes)},
        {"upstream_body_limit_bytes",
         l.number(lim.upstream_body_limit_bytes, 1, max_upstream_body_bytes)},
        {"idle_timeout_ms", l.duration(lim.idle_timeout)},
        {"first_byte_timeout_ms", l.duration(lim.first_byte_timeout)},
        {"request_timeout_ms", l.duration(lim.request_timeout)},
        {"max_connections", l.number(lim.max_connections, 1, max_connections)},
    });
}

reader_fn proxy_fields(loader& l, proxy_config& p) {
    return l.section({
        {"listen", l.address(p.listen, 0)},
        {"threads", l.number(p.threads, 0, max_threads)},
        {"reject_hostile_paths", l.boolean(p.reject_hostile_paths)},
        {"shutdown_grace_ms", l.duration(p.shutdown_grace)},
        {"limits", limits_fields(l, p.limits)},
    });
}

reader_fn upstream_fields(loader& l, upstream_config& u) {
    return l.section({
        {"name", l.text(u.name, false)},
        {"address", l.address(u.address, 1)},
        {"connect_timeout_ms", l.duration(u.connect_timeout)},
        {"response_timeout_ms", l.duration(u.response_timeout)},
        {"max_idle_per_thread", l.number(u.max_idle_per_thread, 0, max_idle_connections)},
        {"idle_keepalive_ms", l.duration(u.idle_keepalive)},
        {"time_zone", l.time_zone(u.time_zone)},
    });
}

reader_fn admin_fields(loader& l, admin_config& a) {
    return l.section({
        {"listen", l.address(a.listen, 0)},
        {"allow_remote", l.boolean(a.allow_remote)},
        {"token_env", l.env_name(a.token_env)},
    });
}

reader_fn dolt_fields(loader& l, dolt_config& d) {
    return l.section({
        {"host", l.host(d.host)},
        {"port", l.number(d.port, 1, max_port)},
        {"user", l.text(d.user, false)},
        {"database", l.text(d.database, false)},
        {"password_env", l.env_name(d.password_env)},
        {"connect_timeout_ms", l.duration(d.connect_timeout)},
        {"read_timeout_ms", l.duration(d.read_timeout)},
        {"write_timeout_ms", l.duration(d.write_timeout)},
    });
}

reader_fn migrate_fields(loader& l, migrate_config& m) {
    return l.section({
        {"dolt_commit", l.one_of(migrate_commit_policies, m.dolt_commit)},
        {"batch_size", l.number(m.batch_size, 1, 100'000)},
        {"readers", l.number(m.readers, 1, 64)},
    });
}

reader_fn mirror_fields(loader& l, mirror_config& m) {
    return l.section({
        {"dolt_commit", l.one_of(mirror_commit_policies, m.dolt_commit)},
        {"dolt_commit_interval_ms", l.duration(m.dolt_commit_interval)},
        {"scan_interval_ms", l.duration(m.scan_interval)},
        {"retry_initial_ms", l.duration(m.retry_initial)},
        {"retry_max_ms", l.duration(m.retry_max)},
        {"breaker_threshold", l.number(m.breaker_threshold, 1, 1000)},
        {"breaker_cooldown_ms", l.duration(m.breaker_cooldown)},
        {"parked_retry_ms", l.duration(m.parked_retry)},
        {"state_cache_mib", l.number(m.state_cache_mib, 0, 65536)},
    });
}

// "" when `p` is a JSON Pointer in which "*" may stand for a segment; else what is wrong.
std::string pointer_problem(const std::string& p) {
    if (!p.empty() && p.front() != '/') {
        return "must be a JSON Pointer (\"\" or starting with \"/\"), got \"" + p + "\"";
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] == '~' && (i + 1 >= p.size() || (p[i + 1] != '0' && p[i + 1] != '1'))) {
            return "\"~\" must be followed by 0 or 1 (RFC 6901), got \"" + p + "\"";
        }
    }
    return {};
}

std::string user_id_problem(const std::string& u) {
    if (u.empty()) return "must not be empty";
    return {};
}

// An object keyed by compared read endpoint names: each member goes to `each` (key, value,
// path); other keys are problems.
reader_fn per_endpoint(
    loader& l, std::function<void(const std::string&, const json&, const std::string&)> each) {
    return [&l, each = std::move(each)](const json& v, const std::string& path) {
        if (!v.is_object()) {
            l.add(path, std::string("expected an object, got ") + v.type_name());
            return;
        }
        for (const auto& [key, value] : v.items()) {
            const std::string p = child_path(path, key);
            const auto* end = std::end(shadow_endpoint_names);
            if (std::find(std::begin(shadow_endpoint_names), end, key) == end) {
                l.add(p, "not a compared read endpoint; one of " + join(shadow_endpoint_names));
                continue;
            }
            each(key, value, p);
        }
    };
}

reader_fn shadow_endpoint_fields(loader& l, shadow_endpoint_config& e) {
    return l.section({
        {"sample_rate", l.optional_real(e.sample_rate, 0, 1)},
        {"ignore", l.strings(e.ignore, pointer_problem)},
        {"array_keys",
         [&l, &e](const json& v, const std::string& path) {
             if (!v.is_object()) {
                 l.add(path, std::string("expected an object of path: field, got ") +
                                 v.type_name());
                 return;
             }
             std::map<std::string, std::string> out;
             for (const auto& [key, value] : v.items()) {
                 const std::string p = child_path(path, key);
                 if (auto why = pointer_problem(key); !why.empty()) {
                     l.add(p, why);
                 } else if (!value.is_string() || value.get<std::string>().empty()) {
                     l.add(p, "expected the name of the field that identifies an element");
                 } else {
                     out[key] = value.get<std::string>();
                 }
             }
             e.array_keys = std::move(out);
         }},
        {"timestamps", l.strings(e.timestamps, pointer_problem)},
        {"timestamp_precision_ms", l.number(e.timestamp_precision_ms, 0, 86'400'000)},
        {"numeric_tolerance", l.real(e.numeric_tolerance, 0, 1e300)},
        {"status_only", l.boolean(e.status_only)},
    });
}

// "" when `step` (a move or a drop) can be applied; else what is wrong: the pointers' syntax with
// the messages config gives every path, then comparator::check_step's rules (the ones the proxy
// applies).
std::string mapping_problem(const mapping_step& step) {
    if (auto why = pointer_problem(step.from); !why.empty()) return why;
    if (!step.drop) {
        if (auto why = pointer_problem(step.to); !why.empty()) return why;
    }
    return comparator::check_step({step.drop ? comparator::map_step::op::drop
                                             : comparator::map_step::op::move,
                                   step.from, step.to});
}

reader_fn mapping_fields(loader& l, std::vector<mapping_step>& steps) {
    return [&l, &steps](const json& v, const std::string& path) {
        if (!v.is_array()) {
            l.add(path, std::string("expected an array of steps, got ") + v.type_name());
            return;
        }
        std::vector<mapping_step> out;
        for (std::size_t i = 0; i < v.size(); ++i) {
            const std::string p = path + "[" + std::to_string(i) + "]";
            const json& e = v[i];
            auto text = [&](const char* key) -> std::optional<std::string> {
                auto it = e.find(key);
                if (it == e.end() || !it->is_string()) return std::nullopt;
                return it->get<std::string>();
            };
            mapping_step step;
            if (!e.is_object()) {
                l.add(p, std::string("expected {\"move\": path, \"to\": path} or "
                                     "{\"drop\": path}, got ") + e.type_name());
                continue;
            }
            const bool is_drop = e.contains("drop");
            const bool is_move = e.contains("move");
            if (is_drop == is_move) {
                l.add(p, "expected {\"move\": path, \"to\": path} or {\"drop\": path}");
                continue;
            }
            bool ok = true;
            for (const auto& [key, value] : e.items()) {
                if (key != "drop" && key != "move" && key != "to") {
                    l.add(child_path(p, key), "unknown key (a step has move and to, or drop)");
                    ok = false;
                } else if (!value.is_string()) {
                    l.add(child_path(p, key), std::string("expected a JSON Pointer string, got ") +
                                                  value.type_name());
                    ok = false;
                }
            }
            if (!ok) continue;
            step.drop = is_drop;
            step.from = *text(is_drop ? "drop" : "move");
            if (is_drop && e.contains("to")) {
                l.add(child_path(p, "to"), "a drop has no destination");
                continue;
            }
            if (!is_drop) {
                auto to = text("to");
                if (!to) {
                    l.add(p, "a move needs \"to\"");
                    continue;
                }
                step.to = *to;
            }
            if (auto why = mapping_problem(step); !why.empty()) {
                l.add(p, why);
                continue;
            }
            out.push_back(std::move(step));
        }
        steps = std::move(out);
    };
}

reader_fn v2_http_fields(loader& l, v2_http_config& v) {
    return l.section({
        {"address", l.address(v.address, 0)},  // 0: not set (a problem only when targeted)
        {"path_prefix",
         [&l, &v](const json& j, const std::string& path) {
             if (!j.is_string()) {
                 l.add(path, std::string("expected a string, got ") + j.type_name());
                 return;
             }
             const auto p = j.get<std::string>();
             if (!p.empty() && (p.front() != '/' || p.back() == '/' ||
                                p.find_first_of("?# \t\r\n") != std::string::npos)) {
                 l.add(path, "expected \"\" or a path such as \"/api/v2\" (no trailing \"/\", "
                             "no query)");
                 return;
             }
             v.path_prefix = p;
         }},
        {"endpoints",
         per_endpoint(l,
                      [&l, &v](const std::string& key, const json& value, const std::string& p) {
                          l.section({{"map", mapping_fields(l, v.endpoints[key])}})(value, p);
                      })},
    });
}

// "dolt" or "v2_http" as a compare_target; nullopt for anything else.
std::optional<compare_target> target_named(const json& v) {
    if (!v.is_string()) return std::nullopt;
    const auto* begin = std::begin(compare_target_names);
    const auto* end = std::end(compare_target_names);
    const auto it = std::find(begin, end, v.get<std::string>());
    if (it == end) return std::nullopt;
    return static_cast<compare_target>(it - begin);
}

reader_fn shadow_fields(loader& l, shadow_config& s) {
    return l.section({
        {"targets",
         [&l, &s](const json& v, const std::string& path) {
             if (!v.is_array() || v.empty()) {
                 l.add(path, "expected a non-empty array of \"dolt\" and/or \"v2_http\"");
                 return;
             }
             std::vector<compare_target> out;
             for (std::size_t i = 0; i < v.size(); ++i) {
                 const std::string p = path + "[" + std::to_string(i) + "]";
                 const auto t = target_named(v[i]);
                 if (!t) {
                     l.add(p, "expected \"dolt\" or \"v2_http\"");
                 } else if (std::find(out.begin(), out.end(), *t) != out.end()) {
                     l.add(p, "\"" + v[i].get<std::string>() + "\" is listed twice");
                 } else {
                     out.push_back(*t);
                 }
             }
             s.targets = std::move(out);
         }},
        {"v2_http", v2_http_fields(l, s.v2_http)},
        {"sample_rate", l.real(s.sample_rate, 0, 1)},
        {"endpoints",
         per_endpoint(l,
                      [&l, &s](const std::string& key, const json& value, const std::string& p) {
                          shadow_endpoint_fields(l, s.endpoints[key])(value, p);
                      })},
        {"always_users", l.strings(s.always_users, user_id_problem)},
        {"workers", l.number(s.workers, 1, 64)},
        {"queue", l.number(s.queue, 1, 1'000'000)},
        {"deadline_ms", l.duration(s.deadline)},
        {"settle_timeout_ms", l.duration(s.settle_timeout)},
        {"max_rereads", l.number(s.max_rereads, 1, 1024)},
        {"max_body_bytes", l.number(s.max_body_bytes, 1, max_upstream_body_bytes)},
        {"max_per_second", l.real(s.max_per_second, 0, 1e9)},
        {"min_idle_cpu", l.real(s.min_idle_cpu, 0, 1)},
        {"max_proxy_wait_us", l.real(s.max_proxy_wait_us, 0, 1e6)},
        {"records",
         l.section({
             {"ring", l.number(s.records.ring, 0, 1'000'000)},
             {"file", l.text(s.records.file, true)},
             {"max_file_bytes", l.number(s.records.max_file_bytes, 4096, max_upstream_body_bytes)},
             {"keep_files", l.number(s.records.keep_files, 0, 1000)},
             {"redact_all_strings", l.boolean(s.records.redact_all_strings)},
             {"redact_fields", l.strings(s.records.redact_fields, nullptr)},
         })},
    });
}

reader_fn gate_fields(loader& l, gate_config& g) {
    return l.section({
        {"state_file", l.text(g.state_file, true)},
        {"flush_interval_ms", l.duration(g.flush_interval)},
        {"target",
         [&l, &g](const json& v, const std::string& path) {
             if (v.is_string() && v.get<std::string>().empty()) {
                 g.target.reset();
             } else if (const auto t = target_named(v)) {
                 g.target = *t;
             } else {
                 l.add(path, "expected \"dolt\", \"v2_http\" or \"\" (the first of "
                             "shadow.targets)");
             }
         }},
        {"endpoints",
         l.strings(g.endpoints,
                   [](const std::string& e) -> std::string {
                       const auto* end = std::end(shadow_endpoint_names);
                       if (std::find(std::begin(shadow_endpoint_names), end, e) == end) {
                           return "not a compared read endpoint; one of " +
                                  join(shadow_endpoint_names);
                       }
                       return {};
                   })},
        {"min_compared", l.number(g.min_compared, 0, 1'000'000'000'000)},
        {"max_discrepancy_rate", l.real(g.max_discrepancy_rate, 0, 1)},
        {"confidence", l.real(g.confidence, 0.5, 0.999999)},
        {"max_mirror_lag_ms", l.duration(g.max_mirror_lag)},
        {"max_parked_users", l.number(g.max_parked_users, 0, 1'000'000'000)},
        {"reconcile_max_age_hours", l.number(g.reconcile_max_age_hours, 0, 100'000)},
        {"min_shadow_hours", l.number(g.min_shadow_hours, 0, 100'000)},
        {"history_bucket_ms", l.duration(g.history_bucket)},
    });
}

void read_document(loader& l, const json& doc, config& c) {
    auto set_stage = [&c](std::size_t i) { c.mode = static_cast<stage>(i); };
    l.section({
        {"stage", l.choice(stage_names, set_stage)},
        {"v1_data_dir", l.text(c.v1_data_dir, true)},
        {"proxy", proxy_fields(l, c.proxy)},
        {"v1", upstream_fields(l, c.v1)},
        {"admin", admin_fields(l, c.admin)},
        {"dolt", dolt_fields(l, c.dolt)},
        {"migrate", migrate_fields(l, c.migrate)},
        {"mirror", mirror_fields(l, c.mirror)},
        {"shadow", shadow_fields(l, c.shadow)},
        {"gate", gate_fields(l, c.gate)},
        {"log", l.section({{"level", l.one_of(log_levels, c.log.level)}})},
    })(doc, "$");
}

void cross_check(loader& l, const config& c) {
    const auto& admin = c.admin;
    if (!admin.allow_remote && !is_loopback(admin.listen.host)) {
        l.add("$.admin.listen.host", "\"" + admin.listen.host +
                                         "\" is not a loopback address; set admin.allow_remote to "
                                         "true to expose the admin API");
    }
    if (admin.allow_remote && admin.token.empty()) {
        l.add("$.admin.allow_remote", "a remote admin API needs a token: set " + admin.token_env);
    }
    if (c.mode != stage::off && c.v1_data_dir.empty()) {
        l.add("$.v1_data_dir", "the " + std::string(to_string(c.mode)) +
                                   " stage mirrors v1 storage into Dolt: set v1_data_dir");
    }
    if (c.mirror.retry_initial > c.mirror.retry_max) {
        l.add("$.mirror.retry_initial_ms", "must not exceed mirror.retry_max_ms (" +
                                               std::to_string(c.mirror.retry_max.count()) + ")");
    }
    const auto& targets = c.shadow.targets;
    if (std::find(targets.begin(), targets.end(), compare_target::v2_http) != targets.end() &&
        c.shadow.v2_http.address.port == 0) {
        l.add("$.shadow.v2_http.address", "shadow.targets has \"v2_http\": set its address");
    }
    const auto& wanted = c.gate.target;
    if (wanted && std::find(targets.begin(), targets.end(), *wanted) == targets.end()) {
        l.add("$.gate.target", "\"" + std::string(to_string(*c.gate.target)) +
                                   "\" is not among shadow.targets: its reads are never compared");
    }
    const auto& proxy = c.proxy.listen;
    const bool same_host = admin.listen.host == proxy.host || is_wildcard(admin.listen.host) ||
                           is_wildcard(proxy.host);
    if (admin.listen.port != 0 && admin.listen.port == proxy.port && same_host) {
        l.add("$.admin.listen", "same endpoint as proxy.listen (" + proxy.host + ":" +
                                    std::to_string(proxy.port) + ")");
    }
}

json address_json(const endpoint_address& a) { return {{"host", a.host}, {"port", a.port}}; }

json shadow_json(const shadow_config& s) {
    json endpoints = json::object();
    for (const auto& [name, e] : s.endpoints) {
        json j = {{"ignore", e.ignore},
                  {"array_keys", e.array_keys},
                  {"timestamps", e.timestamps},
                  {"timestamp_precision_ms", e.timestamp_precision_ms},
                  {"numeric_tolerance", e.numeric_tolerance},
                  {"status_only", e.status_only}};
        if (e.sample_rate) j["sample_rate"] = *e.sample_rate;
        endpoints[name] = std::move(j);
    }
    json maps = json::object();
    for (const auto& [name, steps] : s.v2_http.endpoints) {
        json list = json::array();
        for (const auto& step : steps) {
            list.push_back(step.drop ? json{{"drop", step.from}}
                                     : json{{"move", step.from}, {"to", step.to}});
        }
        maps[name] = {{"map", std::move(list)}};
    }
    json targets = json::array();
    for (const auto t : s.targets) targets.push_back(to_string(t));
    return {{"targets", std::move(targets)},
            {"v2_http",
             {{"address", address_json(s.v2_http.address)},
              {"path_prefix", s.v2_http.path_prefix},
              {"endpoints", std::move(maps)}}},
            {"sample_rate", s.sample_rate},
            {"endpoints", std::move(endpoints)},
            {"always_users", s.always_users},
            {"workers", s.workers},
            {"queue", s.queue},
            {"deadline_ms", s.deadline.count()},
            {"settle_timeout_ms", s.settle_timeout.count()},
            {"max_rereads", s.max_rereads},
            {"max_body_bytes", s.max_body_bytes},
            {"max_per_second", s.max_per_second},
            {"min_idle_cpu", s.min_idle_cpu},
            {"max_proxy_wait_us", s.max_proxy_wait_us},
            {"records",
             {{"ring", s.records.ring},
              {"file", s.records.file},
              {"max_file_bytes", s.records.max_file_bytes},
              {"keep_files", s.records.keep_files},
              {"redact_all_strings", s.records.redact_all_strings},
              {"redact_fields", s.records.redact_fields}}}};
}

}  // namespace

std::string_view to_string(stage s) {
    const auto i = static_cast<std::size_t>(s);
    return i < std::size(stage_names) ? stage_names[i] : "unknown";
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

std::string dump_json(const config& c) {
    const auto& p = c.proxy;
    const auto& lim = c.proxy.limits;
    const json doc = {
        {"stage", to_string(c.mode)},
        {"v1_data_dir", c.v1_data_dir},
        {"proxy",
         {{"listen", address_json(p.listen)},
          {"threads", p.threads},
          {"reject_hostile_paths", p.reject_hostile_paths},
          {"shutdown_grace_ms", p.shutdown_grace.count()},
          {"limits",
           {{"header_limit_bytes", lim.header_limit_bytes},
            {"body_limit_bytes", lim.body_limit_bytes},
            {"upstream_body_limit_bytes", lim.upstream_body_limit_bytes},
            {"idle_timeout_ms", lim.idle_timeout.count()},
            {"first_byte_timeout_ms", lim.first_byte_timeout.count()},
            {"request_timeout_ms", lim.request_timeout.count()},
            {"max_connections", lim.max_connections}}}}},
        {"v1",
         {{"name", c.v1.name},
          {"address", address_json(c.v1.address)},
          {"connect_timeout_ms", c.v1.connect_timeout.count()},
          {"response_timeout_ms", c.v1.response_timeout.count()},
          {"max_idle_per_thread", c.v1.max_idle_per_thread},
          {"idle_keepalive_ms", c.v1.idle_keepalive.count()},
          {"time_zone", to_string(c.v1.time_zone)}}},
        {"admin",
         {{"listen", address_json(c.admin.listen)},
          {"allow_remote", c.admin.allow_remote},
          {"token_env", c.admin.token_env}}},
        {"dolt",
         {{"host", c.dolt.host},
          {"port", c.dolt.port},
          {"user", c.dolt.user},
          {"database", c.dolt.database},
          {"password_env", c.dolt.password_env},
          {"connect_timeout_ms", c.dolt.connect_timeout.count()},
          {"read_timeout_ms", c.dolt.read_timeout.count()},
          {"write_timeout_ms", c.dolt.write_timeout.count()}}},
        {"migrate",
         {{"dolt_commit", to_string(c.migrate.dolt_commit)},
          {"batch_size", c.migrate.batch_size},
          {"readers", c.migrate.readers}}},
        {"mirror",
         {{"dolt_commit", to_string(c.mirror.dolt_commit)},
          {"dolt_commit_interval_ms", c.mirror.dolt_commit_interval.count()},
          {"scan_interval_ms", c.mirror.scan_interval.count()},
          {"retry_initial_ms", c.mirror.retry_initial.count()},
          {"retry_max_ms", c.mirror.retry_max.count()},
          {"breaker_threshold", c.mirror.breaker_threshold},
          {"breaker_cooldown_ms", c.mirror.breaker_cooldown.count()},
          {"parked_retry_ms", c.mirror.parked_retry.count()},
          {"state_cache_mib", c.mirror.state_cache_mib}}},
        {"shadow", shadow_json(c.shadow)},
        {"gate",
         {{"state_file", c.gate.state_file},
          {"flush_interval_ms", c.gate.flush_interval.count()},
          {"target", c.gate.target ? to_string(*c.gate.target) : std::string_view{}},
          {"endpoints", c.gate.endpoints},
          {"min_compared", c.gate.min_compared},
          {"max_discrepancy_rate", c.gate.max_discrepancy_rate},
          {"confidence", c.gate.confidence},
          {"max_mirror_lag_ms", c.gate.max_mirror_lag.count()},
          {"max_parked_users", c.gate.max_parked_users},
          {"reconcile_max_age_hours", c.gate.reconcile_max_age_hours},
          {"min_shadow_hours", c.gate.min_shadow_hours},
          {"history_bucket_ms", c.gate.history_bucket.count()}}},
        {"log", {{"level", to_string(c.log.level)}}},
    };
    return doc.dump(4, ' ', false, json::error_handler_t::replace);
}

std::string format_problems(const std::vector<problem>& problems) {
    std::string out;
    for (const auto& p : problems) out += p.path + ": " + p.message + "\n";
    return out;
}

}  // namespace sg::config
