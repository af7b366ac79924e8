// config: shadowgate's configuration as plain structs, with the defaults in one place (the member
// initialisers below) and a loader that validates a JSON document (comments allowed) against them.
#pragma once

#include "comparator/gate.hpp"

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
// The stage spelled `name` ("off", "dualwrite", "shadow"), or nullopt.
std::optional<stage> parse_stage(std::string_view name);
// The spellings of every stage, in order, joined by ", " (for error messages).
std::string stage_list();

// Choices of the config, read into enums once at load time; to_string gives each one's spelling.
enum class migrate_commit { per_user_import, once_per_run, off };  // migrate.dolt_commit
enum class mirror_commit { per_v1_commit, interval, off };         // mirror.dolt_commit
enum class compare_target { dolt, v2_http };                       // shadow.targets, gate.target
enum class log_level { trace, debug, info, warn, error, off };     // log.level
std::string_view to_string(migrate_commit c);
std::string_view to_string(mirror_commit c);
std::string_view to_string(compare_target t);
std::string_view to_string(log_level l);

// A time zone as v1.time_zone and `render --tz` spell it: "UTC" (or "utc"), "local", or a fixed
// offset "+HH:MM" / "-HH:MM" of at most 14 hours.
struct zone {
    enum class kind { utc, local, fixed } k = kind::utc;
    int offset_minutes = 0;  // east of UTC, for kind::fixed
};
// nullopt for anything else.
std::optional<zone> parse_time_zone(std::string_view s);
// "UTC", "local" or "+HH:MM".
std::string to_string(const zone& z);

struct endpoint_address {
    std::string host;
    std::uint16_t port = 0;
};

struct limits_config {
    std::size_t header_limit_bytes = 16 * 1024;                // larger request headers get 431
    std::size_t body_limit_bytes = 8 * 1024 * 1024;            // larger request bodies get 413
    std::size_t upstream_body_limit_bytes = 64 * 1024 * 1024;  // larger v1 answers get 502
    milliseconds idle_timeout{60'000};        // keep-alive connection with no request in flight
    milliseconds first_byte_timeout{10'000};  // new connection that has sent nothing (<= idle)
    milliseconds request_timeout{15'000};  // whole request (headers and body) must arrive in this
    std::size_t max_connections = 10'000;  // accepted client connections beyond this are closed
};

struct proxy_config {
    endpoint_address listen{"127.0.0.1", 8080};
    int threads = 0;  // 0: one per core
    bool reject_hostile_paths =
        true;  // 400 for user ids/labels with "..", "/", "\", NUL, leading "."
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
    // The zone v1 prints history times in (its server's local zone): "UTC", "local" (this
    // machine's zone) or a fixed offset "+HH:MM" / "-HH:MM". Used when rendering from Dolt.
    zone time_zone;
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

// `shadowgate migrate` defaults (its command-line flags override them).
struct migrate_config {
    migrate_commit dolt_commit = migrate_commit::once_per_run;
    std::size_t batch_size = 100;  // users per transaction
    int readers = 2;               // git reader threads
};

// The mirror of the dualwrite and shadow stages (v1 writes copied into Dolt).
struct mirror_config {
    // Dolt commits of mirrored writes: per_v1_commit (one per v1 commit, with its author, date
    // and message), interval (one per dolt_commit_interval when something changed), off.
    // Nothing is committed on MariaDB.
    mirror_commit dolt_commit = mirror_commit::per_v1_commit;
    milliseconds dolt_commit_interval{10'000};
    // Capture scan: every user's HEAD and pending_diffs/ compared with Dolt's watermark.
    milliseconds scan_interval{30'000};
    // Back-off of a user whose apply failed with a retryable error: doubles from retry_initial
    // up to retry_max, with jitter.
    milliseconds retry_initial{250};
    milliseconds retry_max{30'000};
    // Circuit breaker: after this many consecutive failures to reach Dolt, stop trying for
    // breaker_cooldown (doubling up to retry_max while Dolt stays unreachable).
    int breaker_threshold = 3;
    milliseconds breaker_cooldown{2'000};
    // A parked user is tried again after this long even if nothing changed (in case what parked
    // it was transient after all).
    milliseconds parked_retry{300'000};
    // Memory for the last applied state of recently mirrored users (MiB; 0: none). With it a
    // pass reads only the commits since the last one and compares with what it wrote, instead
    // of reading the user's whole history from git and from Dolt.
    int state_cache_mib = 64;
};

// The read endpoints shadow reads compare (v1::name of each): the keys of shadow.endpoints.
inline constexpr std::string_view shadow_endpoint_names[] = {
    "user_exists",   "list_blocks", "diff_counts", "get_block",
    "block_history", "get_version", "list_diffs"};

// Comparison rules and sampling of one read endpoint (comparator/json_diff.hpp). Paths are JSON
// Pointers in which a "*" segment matches any key or element.
struct shadow_endpoint_config {
    std::optional<double> sample_rate;              // unset: shadow.sample_rate
    std::vector<std::string> ignore;                // paths not compared
    std::map<std::string, std::string> array_keys;  // array path -> element field: as sets
    std::vector<std::string> timestamps;            // paths compared as points in time
    std::int64_t timestamp_precision_ms = 0;        // 1000: whole seconds
    double numeric_tolerance = 0;
    bool status_only = false;  // bodies not compared
};

struct shadow_records_config {
    std::size_t ring = 1000;  // discrepancies kept in memory for GET /admin/discrepancies
    std::string file;         // append-only JSONL of every discrepancy ("": none)
    std::size_t max_file_bytes = 64 * 1024 * 1024;  // then file -> file.1 -> ... (rotation)
    int keep_files = 3;                             // rotated files kept besides the current one
    bool redact_all_strings = false;                // every string in bodies and values
    std::vector<std::string> redact_fields;         // string values under these keys
};

// One step that turns a v2 service's answer into v1's shape: {"move": from, "to": to} or
// {"drop": from}; JSON Pointers in which "*" stands for every element (comparator/mapping).
struct mapping_step {
    bool drop = false;
    std::string from;
    std::string to;
};

// A v2 HTTP service asked the same read as v1 (shadow.targets has "v2_http").
struct v2_http_config {
    endpoint_address address{"127.0.0.1", 0};  // port 0: not configured
    std::string path_prefix;  // put before v1's request-target ("/api/v2": /api/v2/users/...)
    std::map<std::string, std::vector<mapping_step>> endpoints;  // read endpoint -> its map
};

// Shadow reads (stage `shadow`): after v1's answer to a read went to the client, the same
// question is put to Dolt (its tables rendered as v1 answers) and/or a v2 HTTP service, and the
// answers compared.
struct shadow_config {
    std::vector<compare_target> targets{compare_target::dolt};  // what v1 is compared with
    v2_http_config v2_http;
    double sample_rate = 1.0;  // share of reads compared, per endpoint unless overridden
    std::map<std::string, shadow_endpoint_config> endpoints;
    std::vector<std::string> always_users;  // every read of these users is compared
    int workers = 2;                        // comparisons at once (each with a Dolt session)
    std::size_t queue = 1024;               // comparisons waiting; more are skipped
    // A comparison still queued after this is skipped (reason deadline); a Dolt answer slower
    // than this is a v2_timeout; also the timeout of a re-read of v1.
    milliseconds deadline{5'000};
    milliseconds settle_timeout{3'000};  // how long to wait for the mirror when they differ
    // v1 re-reads on their way at once (a settling comparison reads v1 again once the mirror is
    // in step): the most load settling adds to v1. More wait, holding no worker.
    int max_rereads = 2;
    std::size_t max_body_bytes = 1024 * 1024;  // larger v1 answers are not compared (skipped)
    // Comparisons started per second at most (0: no limit); more are skipped (reason budget).
    // Bounds the load shadow reads put on Dolt and v2 whatever the traffic.
    double max_per_second = 0;
    // Comparisons run on spare CPU only: while less than this share of the machine's CPU time is
    // idle (measured every 100 ms), new ones are skipped (reason busy). 0: never.
    double min_idle_cpu = 0.1;
    // ... and while the proxy's threads wait longer than this for a CPU (µs, on average each
    // time they run, over 500 ms: the run-queue delay the kernel counts per thread, which each
    // step of a client's answer picks up). 0: never. At half of v1's capacity on 2 cores the
    // proxy waits 10-40 µs per run with no comparison and 35-50 µs comparing every read (single
    // 500 ms windows up to ~120 µs); CPU burners on every core bring it to 150-350 µs
    // (tests/bench/SHADOW_COST_RESULTS.md).
    double max_proxy_wait_us = 100;
    shadow_records_config records;
};

// The cutover gate: GO only when every criterion passes (GET /admin/gate, `shadowgate gate`).
struct gate_config : comparator::gate::criteria {
    // Where the evidence (comparison counts, when the shadow stage began, the last reconcile)
    // is kept across restarts: a JSON file replaced atomically. "": in memory only (a restart
    // starts the soak again).
    std::string state_file;
    milliseconds flush_interval{10'000};
    // Whose comparisons count (nullopt, "" in the file: the first of shadow.targets).
    std::optional<compare_target> target;
    // The discrepancy rate over time (reports' chart): compared reads and discrepancies per
    // endpoint in buckets of this width, the newest 720 kept with the evidence.
    milliseconds history_bucket{3'600'000};
};

// The control plane: the plan (stages per cohort) every replica reads from the control tables of
// `dolt`, polled so that a change made through any replica is followed by all within a poll.
struct control_config {
    bool enabled = true;
    milliseconds poll_interval{1'000};  // how often the plan row is read (at most 1 s)
    // A replica that has not read the plan for this long fences itself: the freeze windows it
    // knows of do not end, and /readyz fails while any is set.
    milliseconds stale_after{5'000};
    std::string replica_id;  // unique per replica; empty: "<hostname>:<proxy port>"
};

struct log_config {
    log_level level = log_level::info;
};

struct config {
    stage mode = stage::off;
    std::string v1_data_dir;  // v1 storage root (one git repository per user); optional for now
    proxy_config proxy;
    upstream_config v1;
    admin_config admin;
    dolt_config dolt;
    migrate_config migrate;
    mirror_config mirror;
    shadow_config shadow;
    gate_config gate;
    control_config control;
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

// What a valid config asks of this machine that it does not have (`--check-config` runs it after
// `parse`): in the stages that mirror, `v1_data_dir` must be an existing directory.
std::vector<problem> environment_problems(const config& c);

// The defaults as a config document (what an empty "{}" yields); secrets are never included.
std::string dump_json(const config& c);

// "$.a.b: message" lines, one per problem.
std::string format_problems(const std::vector<problem>& problems);

}  // namespace sg::config
