// config: shadowgate's configuration as plain structs, with the defaults in one place (the member
// initialisers below) and a loader that validates a JSON document (comments allowed) against them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sg::config {

using std::chrono::milliseconds;

// Migration stage (design.md §1). Only off, dualwrite and shadow exist so far.
enum class stage { off, dualwrite, shadow };

std::string_view to_string(stage s);

struct endpoint_address {
    std::string host;
    std::uint16_t port = 0;
};

struct limits_config {
    std::size_t header_limit_bytes = 16 * 1024;        // larger request headers get 431
    std::size_t body_limit_bytes = 8 * 1024 * 1024;    // larger request bodies get 413
    std::size_t upstream_body_limit_bytes = 64 * 1024 * 1024;  // larger v1 answers get 502
    milliseconds idle_timeout{60'000};     // keep-alive connection with no request in flight
    milliseconds request_timeout{15'000};  // whole request (headers and body) must arrive in this
    std::size_t max_connections = 10'000;  // accepted client connections beyond this are closed
};

struct proxy_config {
    endpoint_address listen{"127.0.0.1", 8080};
    int threads = 0;  // 0: one per core
    bool reject_hostile_paths = true;  // 400 for user ids/labels with "..", "/", "\", NUL, leading "."
    milliseconds shutdown_grace{10'000};  // SIGTERM: how long in-flight requests may take to finish
    limits_config limits;
};

struct upstream_config {
    std::string name = "v1";
    endpoint_address address{"127.0.0.1", 8000};
    milliseconds connect_timeout{2'000};    // -> 504 when exceeded, 502 when refused
    milliseconds response_timeout{30'000};  // from request sent to full response -> 504
    std::size_t max_idle_per_thread = 64;   // pooled keep-alive connections per proxy thread
    milliseconds idle_keepalive{4'000};     // pooled connections older than this are closed
                                            // (uvicorn closes idle ones after 5 s)
};

struct admin_config {
    endpoint_address listen{"127.0.0.1", 9090};
    bool allow_remote = false;  // a non-loopback listen address is refused unless this is true
    std::string token_env = "SHADOWGATE_ADMIN_TOKEN";  // env var holding the bearer token
    std::string token;  // filled from the environment at load time, never from the file
};

struct dolt_config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 3306;
    std::string user = "shadowgate";
    std::string database = "shadowgate";
    std::string password_env = "SHADOWGATE_DOLT_PASSWORD";
    std::string password;  // filled from the environment at load time, never from the file
    milliseconds connect_timeout{3'000};
    milliseconds read_timeout{10'000};
    milliseconds write_timeout{10'000};
};

struct log_config {
    std::string level = "info";  // trace, debug, info, warn, error, off
};

struct config {
    stage mode = stage::off;
    std::string v1_data_dir;  // v1 storage root (one git repository per user); optional for now
    proxy_config proxy;
    upstream_config v1;
    admin_config admin;
    dolt_config dolt;
    log_config log;
};

// One problem found in a config document, with the JSON path it concerns ("$.proxy.listen.port").
struct problem {
    std::string path;
    std::string message;
};

struct load_result {
    std::optional<config> value;    // set only when problems is empty
    std::vector<problem> problems;  // every problem found, in document order
};

// Environment lookup, injectable so that loading stays pure and testable.
using env_lookup = std::optional<std::string> (*)(const char* name);
std::optional<std::string> process_env(const char* name);

// Parses and validates a config document. Never throws: syntax errors, unknown keys, wrong types
// and out-of-range values all come back as problems, all of them at once. Secrets (admin token,
// Dolt password) are read through `env`, never from the document.
load_result parse(std::string_view text, env_lookup env = process_env);

// Reads `path` and parses it; an unreadable file is one problem at path "$".
load_result load_file(const std::string& path, env_lookup env = process_env);

// The defaults as a config document (what an empty "{}" yields); secrets are never included.
std::string dump_json(const config& c);

// "$.a.b: message" lines, one per problem.
std::string format_problems(const std::vector<problem>& problems);

}  // namespace sg::config
