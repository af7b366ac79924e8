// tests/unit/config/test_config: loading and validating config documents, and the example config.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"

using namespace std::chrono_literals;
using sg::config::load_result;
using sg::config::parse;

namespace {

std::optional<std::string> no_env(const char*) { return std::nullopt; }

std::optional<std::string> fake_env(const char* name) {
    static const std::map<std::string, std::string> vars = {
        {"SHADOWGATE_ADMIN_TOKEN", "admin-secret"},
        {"SHADOWGATE_DOLT_PASSWORD", "dolt-secret"},
        {"MY_TOKEN", "my-admin-secret"},
        {"MY_PASSWORD", "my-dolt-secret"},
    };
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
}

std::vector<std::string> paths_of(const load_result& r) {
    std::vector<std::string> out;
    for (const auto& p : r.problems) out.push_back(p.path);
    return out;
}

// The message of the only problem at `path`; fails the test when there is not exactly one.
std::string message_at(const load_result& r, const std::string& path) {
    std::string found;
    int count = 0;
    for (const auto& p : r.problems) {
        if (p.path == path) {
            found = p.message;
            ++count;
        }
    }
    INFO(sg::config::format_problems(r.problems));
    CHECK(count == 1);
    return found;
}

std::filesystem::path source_root() {
    if (const char* src = std::getenv("SHADOWGATE_SRC")) return src;
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

}  // namespace

TEST_CASE("an empty document gives the struct defaults", "[config]") {
    const auto r = parse("{}", no_env);
    REQUIRE(r.problems.empty());
    REQUIRE(r.value);
    const auto& c = *r.value;
    CHECK(c.mode == sg::config::stage::off);
    CHECK(c.proxy.listen.host == "127.0.0.1");
    CHECK(c.proxy.listen.port == 8080);
    CHECK(c.proxy.threads == 0);
    CHECK(c.proxy.limits.body_limit_bytes == 8 * 1024 * 1024);
    CHECK(c.proxy.limits.idle_timeout == 60s);
    CHECK(c.v1.address.port == 8000);
    CHECK(c.admin.listen.port == 9090);
    CHECK(c.admin.token.empty());
    CHECK(c.dolt.password.empty());
    CHECK(c.log.level == sg::config::log_level::info);
    CHECK(sg::config::dump_json(c) == sg::config::dump_json(sg::config::config{}));
}

TEST_CASE("a full document sets every field", "[config]") {
    const auto r = parse(R"({
        "stage": "shadow",
        "v1_data_dir": "/var/lib/youlab",
        "proxy": {
            "listen": {"host": "0.0.0.0", "port": 0},
            "threads": 4,
            "reject_hostile_paths": false,
            "shutdown_grace_ms": 2500,
            "limits": {
                "header_limit_bytes": 8192,
                "body_limit_bytes": 1048576,
                "upstream_body_limit_bytes": 2097152,
                "idle_timeout_ms": 30000,
                "request_timeout_ms": 5000,
                "max_connections": 100
            }
        },
        "v1": {
            "name": "youlab-v1",
            "address": {"host": "v1.internal", "port": 8001},
            "connect_timeout_ms": 500,
            "response_timeout_ms": 20000,
            "max_idle_per_thread": 0,
            "idle_keepalive_ms": 3000,
            "time_zone": "-05:30"
        },
        "admin": {
            "listen": {"host": "10.0.0.5", "port": 9191},
            "allow_remote": true,
            "token_env": "MY_TOKEN"
        },
        "dolt": {
            "host": "dolt", "port": 3307, "user": "sg", "database": "blocks",
            "password_env": "MY_PASSWORD",
            "connect_timeout_ms": 1000, "read_timeout_ms": 2000, "write_timeout_ms": 3000
        },
        "migrate": {"dolt_commit": "per_user_import", "batch_size": 7, "readers": 3},
        "mirror": {
            "dolt_commit": "interval", "dolt_commit_interval_ms": 60000,
            "scan_interval_ms": 5000, "retry_initial_ms": 100, "retry_max_ms": 9000,
            "breaker_threshold": 4, "breaker_cooldown_ms": 1500, "parked_retry_ms": 60000,
            "state_cache_mib": 8
        },
        "log": {"level": "debug"}
    })",
                         fake_env);
    INFO(sg::config::format_problems(r.problems));
    REQUIRE(r.value);
    const auto& c = *r.value;
    CHECK(c.mode == sg::config::stage::shadow);
    CHECK(c.v1_data_dir == "/var/lib/youlab");
    CHECK(c.proxy.listen.host == "0.0.0.0");
    CHECK(c.proxy.listen.port == 0);
    CHECK(c.proxy.threads == 4);
    CHECK_FALSE(c.proxy.reject_hostile_paths);
    CHECK(c.proxy.shutdown_grace == 2500ms);
    CHECK(c.proxy.limits.header_limit_bytes == 8192);
    CHECK(c.proxy.limits.body_limit_bytes == 1048576);
    CHECK(c.proxy.limits.upstream_body_limit_bytes == 2097152);
    CHECK(c.proxy.limits.idle_timeout == 30s);
    CHECK(c.proxy.limits.request_timeout == 5s);
    CHECK(c.proxy.limits.max_connections == 100);
    CHECK(c.v1.name == "youlab-v1");
    CHECK(c.v1.address.host == "v1.internal");
    CHECK(c.v1.address.port == 8001);
    CHECK(c.v1.connect_timeout == 500ms);
    CHECK(c.v1.response_timeout == 20s);
    CHECK(c.v1.max_idle_per_thread == 0);
    CHECK(c.v1.idle_keepalive == 3s);
    CHECK(c.admin.listen.host == "10.0.0.5");
    CHECK(c.admin.listen.port == 9191);
    CHECK(c.admin.allow_remote);
    CHECK(c.admin.token_env == "MY_TOKEN");
    CHECK(c.admin.token == "my-admin-secret");
    CHECK(c.dolt.host == "dolt");
    CHECK(c.dolt.port == 3307);
    CHECK(c.dolt.user == "sg");
    CHECK(c.dolt.database == "blocks");
    CHECK(c.dolt.password_env == "MY_PASSWORD");
    CHECK(c.dolt.password == "my-dolt-secret");
    CHECK(c.dolt.connect_timeout == 1s);
    CHECK(c.dolt.read_timeout == 2s);
    CHECK(c.dolt.write_timeout == 3s);
    CHECK(c.v1.time_zone.k == sg::config::zone::kind::fixed);
    CHECK(c.v1.time_zone.offset_minutes == -330);
    CHECK(sg::config::to_string(c.v1.time_zone) == "-05:30");
    CHECK(c.migrate.dolt_commit == sg::config::migrate_commit::per_user_import);
    CHECK(c.migrate.batch_size == 7);
    CHECK(c.migrate.readers == 3);
    CHECK(c.mirror.dolt_commit == sg::config::mirror_commit::interval);
    CHECK(c.mirror.dolt_commit_interval == 60s);
    CHECK(c.mirror.scan_interval == 5s);
    CHECK(c.mirror.retry_initial == 100ms);
    CHECK(c.mirror.retry_max == 9s);
    CHECK(c.mirror.breaker_threshold == 4);
    CHECK(c.mirror.breaker_cooldown == 1500ms);
    CHECK(c.mirror.parked_retry == 60s);
    CHECK(c.mirror.state_cache_mib == 8);
    CHECK(c.log.level == sg::config::log_level::debug);
}

TEST_CASE("time zones", "[config]") {
    using sg::config::parse_time_zone;
    using kind = sg::config::zone::kind;
    CHECK(parse_time_zone("UTC")->k == kind::utc);
    CHECK(parse_time_zone("utc")->k == kind::utc);
    CHECK(parse_time_zone("local")->k == kind::local);
    CHECK(parse_time_zone("+02:00")->offset_minutes == 120);
    CHECK(parse_time_zone("-05:30")->offset_minutes == -330);
    CHECK(parse_time_zone("+14:00")->offset_minutes == 840);
    CHECK(parse_time_zone("-00:00")->k == kind::fixed);
    for (const char* bad :
         {"", "Utc", "+2:00", "+02:60", "+15:00", "02:00", "+02:00 ", "+0a:00", "Europe/Paris"}) {
        INFO(bad);
        CHECK_FALSE(parse_time_zone(bad));
    }
}

TEST_CASE("comments are allowed", "[config]") {
    const auto r = parse(R"(
        // a line comment
        {
            /* a block
               comment */
            "stage": "dualwrite", // trailing comment
            "v1_data_dir": "/srv/v1",
            "log": {"level": /* inline */ "warn"}
        }
        // after the document
    )",
                         no_env);
    INFO(sg::config::format_problems(r.problems));
    REQUIRE(r.value);
    CHECK(r.value->mode == sg::config::stage::dualwrite);
    CHECK(r.value->log.level == sg::config::log_level::warn);
}

TEST_CASE("each invalid value is reported at its JSON path", "[config]") {
    struct bad_case {
        std::string document;
        std::string path;
        std::string message_part;
    };
    const std::vector<bad_case> cases = {
        {R"({"proxy": {"listne": {}}})", "$.proxy.listne", "unknown key"},
        {R"({"stages": "off"})", "$.stages", "unknown key"},
        {R"({"proxy": {"limits": {"max_conn": 1}}})", "$.proxy.limits.max_conn", "unknown key"},
        {R"({"proxy": {"listen": {"host": "h", "port": 1, "ipv6": true}}})", "$.proxy.listen.ipv6",
         "unknown key"},
        {R"({"log": {"a.b": 1}})", R"($.log["a.b"])", "unknown key"},
        {R"({"proxy": {"threads": "4"}})", "$.proxy.threads", "expected an integer, got string"},
        {R"({"proxy": {"threads": 1.5}})", "$.proxy.threads", "expected an integer, got number"},
        {R"({"proxy": {"threads": null}})", "$.proxy.threads", "expected an integer, got null"},
        {R"({"proxy": {"threads": 257}})", "$.proxy.threads", "between 0 and 256"},
        {R"({"proxy": {"threads": -1}})", "$.proxy.threads", "between 0 and 256"},
        {R"({"proxy": {"reject_hostile_paths": "yes"}})", "$.proxy.reject_hostile_paths",
         "expected a boolean, got string"},
        {R"({"proxy": {"listen": {"port": 65536}}})", "$.proxy.listen.port", "between 0 and 65535"},
        {R"({"proxy": {"listen": {"port": 18446744073709551615}}})", "$.proxy.listen.port",
         "between 0 and 65535"},
        {R"({"proxy": {"listen": {"host": ""}}})", "$.proxy.listen.host", "must not be empty"},
        {R"({"proxy": {"listen": {"host": "a b"}}})", "$.proxy.listen.host", "spaces"},
        {R"({"proxy": {"listen": "127.0.0.1:8080"}})", "$.proxy.listen",
         "expected an object, got string"},
        {R"({"proxy": {"shutdown_grace_ms": 0}})", "$.proxy.shutdown_grace_ms", "between 1 and"},
        {R"({"proxy": {"limits": {"idle_timeout_ms": 3600001}}})", "$.proxy.limits.idle_timeout_ms",
         "between 1 and 3600000"},
        {R"({"proxy": {"limits": {"body_limit_bytes": 0}}})", "$.proxy.limits.body_limit_bytes",
         "between 1 and"},
        {R"({"proxy": {"limits": {"header_limit_bytes": 1073741824}}})",
         "$.proxy.limits.header_limit_bytes", "between 1 and 1048576"},
        {R"({"proxy": {"limits": {"max_connections": 0}}})", "$.proxy.limits.max_connections",
         "between 1 and"},
        {R"({"v1": {"address": {"port": 0}}})", "$.v1.address.port", "between 1 and 65535"},
        {R"({"v1": {"name": ""}})", "$.v1.name", "must not be empty"},
        {R"({"v1": {"connect_timeout_ms": "2s"}})", "$.v1.connect_timeout_ms",
         "expected an integer, got string"},
        {R"({"v1": {"max_idle_per_thread": 5000}})", "$.v1.max_idle_per_thread", "between 0 and"},
        {R"({"dolt": {"port": 0}})", "$.dolt.port", "between 1 and 65535"},
        {R"({"dolt": {"password_env": "not a name"}})", "$.dolt.password_env",
         "environment variable name"},
        {R"({"admin": {"token_env": ""}})", "$.admin.token_env", "environment variable name"},
        {R"({"stage": "shadowing"})", "$.stage", "must be one of off, dualwrite, shadow"},
        {R"({"stage": 1})", "$.stage", "expected a string, got number"},
        {R"({"log": {"level": "verbose"}})", "$.log.level", "must be one of trace, debug"},
        {R"({"v1": {"time_zone": "CET"}})", "$.v1.time_zone", "\"UTC\", \"local\" or an offset"},
        {R"({"v1": {"time_zone": "+15:00"}})", "$.v1.time_zone", "at most 14 hours"},
        {R"({"migrate": {"dolt_commit": "per_commit"}})", "$.migrate.dolt_commit",
         "must be one of per_user_import, once_per_run, off"},
        {R"({"migrate": {"batch_size": 0}})", "$.migrate.batch_size", "between 1 and 100000"},
        {R"({"migrate": {"readers": 65}})", "$.migrate.readers", "between 1 and 64"},
        {R"({"mirror": {"dolt_commit": "per_user_import"}})", "$.mirror.dolt_commit",
         "must be one of per_v1_commit, interval, off"},
        {R"({"mirror": {"scan_interval_ms": 0}})", "$.mirror.scan_interval_ms", "between 1 and"},
        {R"({"mirror": {"breaker_threshold": 0}})", "$.mirror.breaker_threshold",
         "between 1 and 1000"},
        {R"({"mirror": {"retry_initial_ms": 5000, "retry_max_ms": 1000}})",
         "$.mirror.retry_initial_ms", "must not exceed mirror.retry_max_ms (1000)"},
        {R"({"mirror": {"scan": 1}})", "$.mirror.scan", "unknown key"},
        {R"({"stage": "shadow"})", "$.v1_data_dir", "the shadow stage mirrors v1 storage"},
        {R"({"log": []})", "$.log", "expected an object, got array"},
        {R"([])", "$", "expected an object, got array"},
        {R"({"dolt": {"password": "hunter2"}})", "$.dolt.password",
         "secrets come from the environment: set SHADOWGATE_DOLT_PASSWORD"},
        {R"({"admin": {"token": "t"}})", "$.admin.token",
         "secrets come from the environment: set SHADOWGATE_ADMIN_TOKEN"},
        {R"({"admin_token": "t", "admin": {"token_env": "MY_TOKEN"}})", "$.admin_token",
         "secrets come from the environment: set MY_TOKEN"},
        {R"({"proxy": {"limits": {"password": "x"}}})", "$.proxy.limits.password",
         "secrets come from the environment"},
        {R"({"admin": {"listen": {"host": "0.0.0.0", "port": 9090}}})", "$.admin.listen.host",
         "not a loopback address"},
        {R"({"admin": {"listen": {"host": "192.168.1.2"}}})", "$.admin.listen.host",
         "allow_remote"},
        {R"({"admin": {"allow_remote": true}})", "$.admin.allow_remote",
         "set SHADOWGATE_ADMIN_TOKEN"},
        {R"({"admin": {"listen": {"port": 8080}}})", "$.admin.listen", "same endpoint"},
        {R"({"proxy": {"listen": {"host": "0.0.0.0", "port": 9090}}})", "$.admin.listen",
         "same endpoint"},
        {R"({"proxy": {"threads": 4,}})", "$", "line 1, column"},
        {R"({"proxy": )", "$", "line 1"},
        {"", "$", "unexpected end of input"},
        {"{\n  \"stage\": 'off'\n}", "$", "line 2, column"},
        {R"({"shadow": {"sample_rate": 1.5}})", "$.shadow.sample_rate", "between 0 and 1"},
        {R"({"shadow": {"sample_rate": "all"}})", "$.shadow.sample_rate", "expected a number"},
        {R"({"shadow": {"endpoints": {"put_block": {}}}})", "$.shadow.endpoints.put_block",
         "not a compared read endpoint"},
        {R"({"shadow": {"endpoints": {"get_block": {"ignore": ["content"]}}}})",
         "$.shadow.endpoints.get_block.ignore[0]", "JSON Pointer"},
        {R"({"shadow": {"endpoints": {"get_block": {"ignore": ["/a~2"]}}}})",
         "$.shadow.endpoints.get_block.ignore[0]", "followed by 0 or 1"},
        {R"({"shadow": {"endpoints": {"list_blocks": {"array_keys": {"": 3}}}}})",
         R"($.shadow.endpoints.list_blocks.array_keys[""])", "name of the field"},
        {R"({"shadow": {"endpoints": {"list_blocks": {"array_keys": {"x": "id"}}}}})",
         "$.shadow.endpoints.list_blocks.array_keys.x", "JSON Pointer"},
        {R"({"shadow": {"endpoints": {"get_block": {"sample_rate": -0.1}}}})",
         "$.shadow.endpoints.get_block.sample_rate", "between 0 and 1"},
        {R"({"shadow": {"always_users": ["a", 7]}})", "$.shadow.always_users[1]",
         "expected a string"},
        {R"({"shadow": {"workers": 0}})", "$.shadow.workers", "between 1 and 64"},
        {R"({"shadow": {"records": {"max_file_bytes": 10}}})", "$.shadow.records.max_file_bytes",
         "between 4096"},
        {R"({"shadow": {"records": {"redact": true}}})", "$.shadow.records.redact", "unknown key"},
        {R"({"shadow": {"targets": []}})", "$.shadow.targets", "non-empty array"},
        {R"({"shadow": {"targets": ["dolt", "v3"]}})", "$.shadow.targets[1]",
         "expected \"dolt\" or \"v2_http\""},
        {R"({"shadow": {"targets": ["dolt", "dolt"]}})", "$.shadow.targets[1]", "listed twice"},
        {R"({"shadow": {"targets": ["v2_http"]}})", "$.shadow.v2_http.address", "set its address"},
        {R"({"shadow": {"v2_http": {"address": {"port": 70000}}}})",
         "$.shadow.v2_http.address.port", "between 0 and 65535"},
        {R"({"shadow": {"v2_http": {"path_prefix": "api/"}}})", "$.shadow.v2_http.path_prefix",
         "/api/v2"},
        {R"({"shadow": {"v2_http": {"endpoints": {"put_block": {}}}}})",
         "$.shadow.v2_http.endpoints.put_block", "not a compared read endpoint"},
        {R"({"shadow": {"v2_http": {"endpoints": {"get_block": {"rename": []}}}}})",
         "$.shadow.v2_http.endpoints.get_block.rename", "unknown key"},
        {R"({"shadow": {"v2_http": {"endpoints": {"get_block": {"map": {}}}}}})",
         "$.shadow.v2_http.endpoints.get_block.map", "array of steps"},
        {R"({"shadow": {"v2_http": {"endpoints": {"get_block": {"map": [{"move": "/a"}]}}}}})",
         "$.shadow.v2_http.endpoints.get_block.map[0]", "needs \"to\""},
        {R"({"shadow": {"v2_http": {"endpoints": {"get_block": {"map": [
            {"move": "/a", "to": "/b"}, {"move": "a", "to": "/b"}]}}}}})",
         "$.shadow.v2_http.endpoints.get_block.map[1]", "JSON Pointer"},
        {R"({"shadow": {"v2_http": {"endpoints": {"list_blocks": {"map": [
            {"move": "/items/*/name", "to": "/other/*/label"}]}}}}})",
         "$.shadow.v2_http.endpoints.list_blocks.map[0]", "same up to their last"},
        {R"({"shadow": {"v2_http": {"endpoints": {"get_block": {"map": [{"drop": ""}]}}}}})",
         "$.shadow.v2_http.endpoints.get_block.map[0]", "whole document"},
        {R"({"shadow": {"v2_http": {"endpoints": {"get_block": {"map": [
            {"drop": "/a", "to": "/b"}]}}}}})",
         "$.shadow.v2_http.endpoints.get_block.map[0].to", "no destination"},
        {R"({"shadow": {"v2_http": {"endpoints": {"get_block": {"map": [
            {"move": "/a", "to": 3}]}}}}})",
         "$.shadow.v2_http.endpoints.get_block.map[0].to", "JSON Pointer string"},
        {R"({"shadow": {"max_per_second": -1}})", "$.shadow.max_per_second", "between 0"},
        {R"({"gate": {"target": "v2_http"}})", "$.gate.target", "not among shadow.targets"},
        {R"({"gate": {"target": "v3"}})", "$.gate.target", "expected \"dolt\""},
        {R"({"gate": {"endpoints": ["put_block"]}})", "$.gate.endpoints[0]",
         "not a compared read endpoint"},
        {R"({"gate": {"confidence": 1}})", "$.gate.confidence", "between 0.5"},
        {R"({"gate": {"max_discrepancy_rate": 2}})", "$.gate.max_discrepancy_rate", "between 0"},
        {R"({"gate": {"min_shadow_hours": -1}})", "$.gate.min_shadow_hours", "between 0"},
        {R"({"shadow": {"min_idle_cpu": 2}})", "$.shadow.min_idle_cpu", "between 0 and 1"},
        {R"({"shadow": {"max_proxy_wait_us": -1}})", "$.shadow.max_proxy_wait_us", "between 0 and"},
        {R"({"shadow": {"max_proxy_wait": 0.1}})", "$.shadow.max_proxy_wait", "unknown key"},
    };
    for (const auto& c : cases) {
        INFO(c.document);
        const auto r = parse(c.document, no_env);
        INFO(sg::config::format_problems(r.problems));
        CHECK_FALSE(r.value);
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].path == c.path);
        CHECK_THAT(r.problems[0].message, Catch::Contains(c.message_part));
    }
}

TEST_CASE("loopback admin addresses and distinct endpoints are accepted", "[config]") {
    for (const std::string host : {"127.0.0.1", "127.1.2.3", "::1", "localhost", "LocalHost"}) {
        INFO(host);
        const auto r = parse(R"({"admin": {"listen": {"host": ")" + host + R"("}}})", no_env);
        INFO(sg::config::format_problems(r.problems));
        CHECK(r.value);
    }
    // Both ports 0: the OS picks two different ones.
    const auto zero =
        parse(R"({"proxy": {"listen": {"port": 0}}, "admin": {"listen": {"port": 0}}})", no_env);
    CHECK(zero.value);
    // Same port on different concrete hosts is two endpoints.
    const auto other =
        parse(R"({"proxy": {"listen": {"host": "127.0.0.2", "port": 9090}}})", no_env);
    CHECK(other.value);
    // A remote admin API with its token present.
    const auto remote =
        parse(R"({"admin": {"listen": {"host": "0.0.0.0"}, "allow_remote": true}})", fake_env);
    REQUIRE(remote.value);
    CHECK(remote.value->admin.token == "admin-secret");
}

TEST_CASE("every problem in a document is reported, in document order", "[config]") {
    const auto r = parse(R"({
        "stage": "live",
        "proxy": {
            "listne": {"port": 1},
            "threads": "many",
            "limits": {"body_limit_bytes": -5, "idle_timeout": 100}
        },
        "v1": {"address": {"host": "", "port": 70000}},
        "dolt": {"password": "x", "read_timeout_ms": 1.5},
        "log": {"level": "loud"},
        "extra": true
    })",
                         no_env);
    const std::vector<std::string> expected = {
        "$.stage",
        "$.proxy.listne",
        "$.proxy.threads",
        "$.proxy.limits.body_limit_bytes",
        "$.proxy.limits.idle_timeout",
        "$.v1.address.host",
        "$.v1.address.port",
        "$.dolt.password",
        "$.dolt.read_timeout_ms",
        "$.log.level",
        "$.extra",
    };
    INFO(sg::config::format_problems(r.problems));
    CHECK_FALSE(r.value);
    CHECK(paths_of(r) == expected);
    CHECK(message_at(r, "$.proxy.threads") == "expected an integer, got string");
    CHECK(message_at(r, "$.extra") == "unknown key");
}

TEST_CASE("secrets come from the injected environment", "[config]") {
    const auto with = parse("{}", fake_env);
    REQUIRE(with.value);
    CHECK(with.value->admin.token == "admin-secret");
    CHECK(with.value->dolt.password == "dolt-secret");

    const auto renamed =
        parse(R"({"admin": {"token_env": "MY_TOKEN"}, "dolt": {"password_env": "MY_PASSWORD"}})",
              fake_env);
    REQUIRE(renamed.value);
    CHECK(renamed.value->admin.token == "my-admin-secret");
    CHECK(renamed.value->dolt.password == "my-dolt-secret");

    const auto missing = parse(R"({"admin": {"token_env": "UNSET_VAR"}})", fake_env);
    REQUIRE(missing.value);
    CHECK(missing.value->admin.token.empty());

    // The dump never carries the secrets.
    const auto dumped = sg::config::dump_json(*with.value);
    CHECK_THAT(dumped, !Catch::Contains("admin-secret") && !Catch::Contains("dolt-secret"));
}

TEST_CASE("dump_json round-trips", "[config]") {
    const sg::config::config defaults;
    const auto r = parse(sg::config::dump_json(defaults), no_env);
    INFO(sg::config::format_problems(r.problems));
    REQUIRE(r.value);
    CHECK(sg::config::dump_json(*r.value) == sg::config::dump_json(defaults));

    sg::config::config changed;
    changed.mode = sg::config::stage::dualwrite;
    changed.v1_data_dir = "/data";
    changed.proxy.listen.port = 0;
    changed.proxy.limits.request_timeout = 1234ms;
    changed.v1.address = {"v1", 9000};
    changed.admin.token_env = "OTHER";
    changed.dolt.port = 3310;
    changed.log.level = sg::config::log_level::error;
    changed.shadow.sample_rate = 0.25;
    changed.shadow.always_users = {"alice"};
    changed.shadow.endpoints["get_block"].sample_rate = 0.5;
    changed.shadow.endpoints["get_block"].ignore = {"/metadata/*"};
    changed.shadow.endpoints["list_diffs"].array_keys = {{"", "id"}, {"/x", "y"}};
    changed.shadow.records.redact_fields = {"content"};
    changed.shadow.targets = {sg::config::compare_target::v2_http,
                              sg::config::compare_target::dolt};
    changed.shadow.v2_http.address = {"127.0.0.1", 9000};
    changed.shadow.v2_http.path_prefix = "/api/v2";
    changed.shadow.v2_http.endpoints["list_blocks"] = {{false, "/items/*/name", "/items/*/label"},
                                                       {true, "/count", ""}};
    changed.shadow.max_per_second = 50;
    changed.shadow.min_idle_cpu = 0.25;
    changed.shadow.max_proxy_wait_us = 250;
    changed.gate.state_file = "/var/lib/shadowgate/gate.json";
    changed.gate.target = sg::config::compare_target::v2_http;
    changed.v1.time_zone = {sg::config::zone::kind::fixed, 570};
    changed.gate.endpoints = {"get_block"};
    changed.gate.min_shadow_hours = 24;
    changed.gate.max_mirror_lag = std::chrono::milliseconds(750);
    const auto dumped = sg::config::dump_json(changed);
    const auto again = parse(dumped, no_env);
    INFO(sg::config::format_problems(again.problems));
    REQUIRE(again.value);
    CHECK(sg::config::dump_json(*again.value) == dumped);
    CHECK(again.value->proxy.limits.request_timeout == 1234ms);
    CHECK(again.value->mode == sg::config::stage::dualwrite);
    CHECK(again.value->shadow.endpoints.at("get_block").sample_rate == 0.5);
    CHECK(again.value->shadow.endpoints.at("list_diffs").array_keys.at("/x") == "y");
    CHECK(again.value->shadow.targets ==
          std::vector<sg::config::compare_target>{sg::config::compare_target::v2_http,
                                                  sg::config::compare_target::dolt});
    CHECK(again.value->gate.target == sg::config::compare_target::v2_http);
    CHECK(sg::config::to_string(again.value->v1.time_zone) == "+09:30");
    CHECK(again.value->log.level == sg::config::log_level::error);
    CHECK(again.value->shadow.v2_http.address.port == 9000);
    CHECK(again.value->shadow.v2_http.path_prefix == "/api/v2");
    const auto& steps = again.value->shadow.v2_http.endpoints.at("list_blocks");
    REQUIRE(steps.size() == 2);
    CHECK(steps[0].to == "/items/*/label");
    CHECK((steps[1].drop && steps[1].from == "/count"));
    CHECK(again.value->shadow.max_per_second == 50);
    CHECK(again.value->shadow.min_idle_cpu == 0.25);
    CHECK(again.value->shadow.max_proxy_wait_us == 250);
    CHECK(again.value->gate.state_file == "/var/lib/shadowgate/gate.json");
    CHECK(again.value->gate.endpoints == std::vector<std::string>{"get_block"});
    CHECK(again.value->gate.min_shadow_hours == 24);
    CHECK(again.value->gate.max_mirror_lag.count() == 750);
}

TEST_CASE("stage names", "[config]") {
    CHECK(sg::config::to_string(sg::config::stage::off) == "off");
    CHECK(sg::config::to_string(sg::config::stage::dualwrite) == "dualwrite");
    CHECK(sg::config::to_string(sg::config::stage::shadow) == "shadow");
}

TEST_CASE("load_file", "[config]") {
    SECTION("the example config is valid and lists the defaults") {
        const auto path = source_root() / "config" / "shadowgate.example.jsonc";
        const auto r = sg::config::load_file(path.string(), no_env);
        INFO(path.string() << "\n" << sg::config::format_problems(r.problems));
        REQUIRE(r.problems.empty());
        REQUIRE(r.value);
        CHECK(sg::config::dump_json(*r.value) == sg::config::dump_json(sg::config::config{}));
    }
    SECTION("a missing file is one problem at $ naming the file") {
        const auto r = sg::config::load_file("/nonexistent/shadowgate.jsonc", no_env);
        CHECK_FALSE(r.value);
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].path == "$");
        CHECK_THAT(r.problems[0].message, Catch::Contains("/nonexistent/shadowgate.jsonc") &&
                                              Catch::Contains("No such file or directory"));
    }
    SECTION("a directory is one problem at $") {
        const auto r = sg::config::load_file("/", no_env);
        CHECK_FALSE(r.value);
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].path == "$");
        CHECK_THAT(r.problems[0].message, Catch::Contains("Is a directory"));
    }
}

TEST_CASE("format_problems prints one line per problem", "[config]") {
    const std::vector<sg::config::problem> problems = {{"$.a", "one"}, {"$.b[2]", "two"}};
    CHECK(sg::config::format_problems(problems) == "$.a: one\n$.b[2]: two\n");
}
