// config/dump: dump_json, a config as the document that would load it (secrets left out).
#include "config/config.hpp"

#include "config/config_internal.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace sg::config {

using namespace detail;

namespace {

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
        {"control",
         {{"enabled", c.control.enabled},
          {"poll_interval_ms", c.control.poll_interval.count()},
          {"stale_after_ms", c.control.stale_after.count()},
          {"replica_id", c.control.replica_id}}},
        {"log", {{"level", to_string(c.log.level)}}},
    };
    return doc.dump(4, ' ', false, json::error_handler_t::replace);
}

}  // namespace sg::config
