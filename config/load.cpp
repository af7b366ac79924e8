// config/load: the field tables that read each section of a config document through the loader
// (config_internal.hpp), and the checks across sections that run once everything is read.
#include "config/config_internal.hpp"

#include "comparator/mapping.hpp"
#include "config/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::config {

using namespace detail;

namespace {

// Upper bounds catch typos (an extra zero, a value meant in another unit), not taste.
constexpr std::int64_t max_threads = 256;
constexpr std::int64_t max_header_bytes = std::int64_t{1} << 20;
constexpr std::int64_t max_body_bytes = std::int64_t{1} << 30;
constexpr std::int64_t max_upstream_body_bytes = std::int64_t{4} << 30;
constexpr std::int64_t max_connections = 1'000'000;
constexpr std::int64_t max_idle_connections = 4096;

}  // namespace

namespace detail {

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

}  // namespace detail

namespace {

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
                 l.add(path,
                       std::string("expected an object of path: field, got ") + v.type_name());
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
    return comparator::check_step(
        {step.drop ? comparator::map_step::op::drop : comparator::map_step::op::move, step.from,
         step.to});
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
                                     "{\"drop\": path}, got ") +
                             e.type_name());
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
                    l.add(child_path(p, key),
                          std::string("expected a JSON Pointer string, got ") + value.type_name());
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
                 l.add(path,
                       "expected \"\" or a path such as \"/api/v2\" (no trailing \"/\", "
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
                 l.add(path,
                       "expected \"dolt\", \"v2_http\" or \"\" (the first of "
                       "shadow.targets)");
             }
         }},
        {"endpoints", l.strings(g.endpoints,
                                [](const std::string& e) -> std::string {
                                    const auto* end = std::end(shadow_endpoint_names);
                                    if (std::find(std::begin(shadow_endpoint_names), end, e) ==
                                        end) {
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

reader_fn control_fields(loader& l, control_config& c) {
    return l.section({
        {"enabled", l.boolean(c.enabled)},
        {"poll_interval_ms", l.duration(c.poll_interval)},
        {"stale_after_ms", l.duration(c.stale_after)},
        {"replica_id", l.text(c.replica_id, true)},
    });
}

}  // namespace

namespace detail {

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
        {"control", control_fields(l, c.control)},
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
    if (c.control.poll_interval < milliseconds(10) ||
        c.control.poll_interval > milliseconds(1'000)) {
        l.add("$.control.poll_interval_ms",
              "must be between 10 and 1000: replicas follow a change within a second");
    }
    if (c.control.stale_after < 2 * c.control.poll_interval) {
        l.add("$.control.stale_after_ms", "must be at least twice control.poll_interval_ms");
    }
    const auto& rid = c.control.replica_id;
    if (rid.size() > 128 || !std::all_of(rid.begin(), rid.end(), [](unsigned char ch) {
            return std::isalnum(ch) || ch == '.' || ch == '_' || ch == ':' || ch == '-';
        })) {
        l.add("$.control.replica_id", "at most 128 letters, digits and . _ : -");
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

}  // namespace detail

}  // namespace sg::config
