// proxy/main: the composition root and the command line. `serve` builds the service from its
// parts (router, mirror, comparer, gate, listeners) and runs it until SIGTERM; the batch commands
// (migrate, verify, render, reconcile) run a job of proxy/jobs; gate and report ask the running
// service. Each command's config is loaded once, by load_config.
#include "config/config.hpp"
#include "proxy/admin/admin.hpp"
#include "proxy/admin/admin_client.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/common/task_failure.hpp"
#include "proxy/common/time_zone.hpp"
#include "proxy/control/control_plane.hpp"
#include "proxy/gate/gate.hpp"
#include "proxy/jobs/inspect.hpp"
#include "proxy/jobs/migrate.hpp"
#include "proxy/jobs/reconcile.hpp"
#include "proxy/mirror/mirror.hpp"
#include "proxy/net/http_fetch.hpp"
#include "proxy/net/server.hpp"
#include "proxy/routing/router.hpp"
#include "proxy/shadow/shadow.hpp"

#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_bad_config = 2;
constexpr int exit_gate_unknown = 3;  // `gate`: the service could not be asked; `reconcile`:
                                      // could not run

// The config at `path` (the defaults when there is none: `serve` may run without one), or nullopt
// once every problem has been printed with its JSON path. Every command loads its config here.
std::optional<sg::config::config> load_config(const std::string& path) {
    sg::config::load_result loaded =
        path.empty() ? sg::config::parse("{}") : sg::config::load_file(path);
    if (!loaded.problems.empty()) {
        std::cerr << (path.empty() ? "defaults" : path) << ": "
                  << sg::config::format_problems(loaded.problems);
        return std::nullopt;
    }
    return std::move(*loaded.value);
}

// Logs go through spdlog's async logger with overrun-oldest: a slow stderr never stalls a worker.
spdlog::level::level_enum spdlog_level(sg::config::log_level level) {
    using sg::config::log_level;
    switch (level) {
        case log_level::trace: return spdlog::level::trace;
        case log_level::debug: return spdlog::level::debug;
        case log_level::info: return spdlog::level::info;
        case log_level::warn: return spdlog::level::warn;
        case log_level::error: return spdlog::level::err;
        case log_level::off: break;
    }
    return spdlog::level::off;
}

void setup_logging(sg::config::log_level level) {
    spdlog::init_thread_pool(8192, 1);
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::async_logger>(
        "shadowgate", sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
    logger->set_level(spdlog_level(level));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

// Writes {"proxy_port":..,"admin_port":..,"pid":..} atomically (temp file + rename), so that
// scripts can wait for the file and then read a complete document.
void write_ready_file(const std::string& path, std::uint16_t proxy_port, std::uint16_t admin_port) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << "{\"proxy_port\": " << proxy_port << ", \"admin_port\": " << admin_port
            << ", \"pid\": " << ::getpid() << "}\n";
    }
    std::filesystem::rename(tmp, path);
}

int check_config(const std::string& path) {
    auto result = sg::config::load_file(path);
    if (result.value) result.problems = sg::config::environment_problems(*result.value);
    if (!result.problems.empty()) {
        std::cerr << path << ": " << result.problems.size() << " problem"
                  << (result.problems.size() == 1 ? "" : "s") << "\n"
                  << sg::config::format_problems(result.problems);
        return exit_bad_config;
    }
    std::cout << path << ": ok\n";
    return exit_ok;
}

// A service that stopped because an essential task failed exits non-zero (after its drain).
int serve_exit_code() {
    return sg::proxy::process_task_failures().essential_failed.load() ? exit_failure : exit_ok;
}

// Blocks SIGTERM and SIGINT in the calling thread (and the threads it starts); returns the set.
sigset_t block_stop_signals() {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    return stop_signals;
}

void log_listening(const sg::config::config& cfg, std::uint16_t proxy_port,
                   std::uint16_t admin_port) {
    spdlog::info("event=listening listener=proxy host={} port={} stage={} upstream={}:{}",
                 cfg.proxy.listen.host, proxy_port, sg::config::to_string(cfg.mode),
                 cfg.v1.address.host, cfg.v1.address.port);
    spdlog::info("event=listening listener=admin host={} port={} token={}", cfg.admin.listen.host,
                 admin_port, cfg.admin.token.empty() ? "unset" : "set");
}

// Waits for SIGTERM or SIGINT (an essential task that fails raises one); returns which.
int wait_for_stop(const sigset_t& stop_signals) {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sg::proxy::process_task_failures().essential_failed.load()) {
        spdlog::critical(
            "event=stopping reason=\"an essential task failed (see "
            "event=task_failed)\"");
    }
    return sig;
}

// Why this process cannot serve plan `p`, or nullopt: a plan that mirrors needs v1's storage.
std::optional<std::string> plan_unservable(const sg::config::config& cfg,
                                           const sg::routing::plan& p) {
    if (!sg::routing::mirrors_writes(p)) return std::nullopt;
    std::error_code ec;
    if (cfg.v1_data_dir.empty() || !std::filesystem::is_directory(cfg.v1_data_dir, ec)) {
        return "the plan mirrors writes into Dolt, which needs v1's storage: set v1_data_dir to "
               "an existing directory (it is \"" +
               cfg.v1_data_dir + "\")";
    }
    return std::nullopt;
}

// The shutdown, in the order the parts depend on each other: the proxy drains (within
// shutdown_grace) and stops first. False when the mirror did not stop within shutdown_grace.
bool drain_and_stop(const sg::config::config& cfg, const sg::proxy::metrics& metrics, int sig,
                    sg::proxy::server& server, sg::proxy::shadow& shadow, sg::proxy::gate& gate,
                    sg::proxy::mirror& mirror, sg::control::control_plane& control,
                    sg::proxy::admin_server& admin) {
    spdlog::info("event=draining signal={} grace_ms={}", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 cfg.proxy.shutdown_grace.count());
    server.begin_drain();
    const bool drained = server.wait_drained(cfg.proxy.shutdown_grace);
    server.stop();
    // After the proxy: the last answers' triggers are in; what is not applied yet is found
    // by the next start's capture scan.
    shadow.stop();
    gate.stop();  // after the comparer: its last counts are in the evidence
    // Bounded: a thread inside a hung database call must not hold the exit hostage.
    const bool mirror_stopped = mirror.stop(cfg.proxy.shutdown_grace);
    // Before the admin listener: the changes it queued are answered first.
    const bool control_stopped = control.stop(cfg.proxy.shutdown_grace);
    admin.stop();
    spdlog::info(
        "event=stopped drained={} open_connections={} mirror_stopped={} control_stopped={}",
        drained, metrics.open_client_connections.load(), mirror_stopped, control_stopped);
    return mirror_stopped && control_stopped;
}

int serve(const sg::config::config& cfg, const std::string& ready_file) {
    std::signal(SIGPIPE, SIG_IGN);

    // Before any thread starts (the logger's included), so that only sigwait() below sees them.
    const sigset_t stop_signals = block_stop_signals();
    setup_logging(cfg.log.level);

    // What /metrics publishes: every module registers its families here.
    prometheus::Registry registry;
    try {
        sg::proxy::metrics metrics(registry, cfg.v1.name);
        // Where each request goes: the configured stage until the control plane has read the
        // stored plan (the configured stage is only the plan of an empty database).
        sg::routing::router router(sg::routing::plan::of(cfg.mode));
        // The forward mirror and the shadow comparer always exist; each starts when a plan
        // first has a use for it (`off` touches nothing) and then runs until the service stops.
        sg::proxy::mirror mirror(cfg, registry);
        sg::proxy::shadow shadow(cfg, &mirror, registry);
        // The cutover gate: its evidence survives restarts (gate.state_file).
        sg::proxy::gate gate(cfg, shadow, mirror, registry);
        if (auto started = gate.start(); !started) {
            spdlog::critical("event=startup_failed error=\"gate: {}\"", started.error().what);
            spdlog::shutdown();
            return exit_failure;
        }
        sg::proxy::reconcile_job reconcile(cfg, &gate);
        sg::proxy::server server(cfg, metrics, router, sg::routing::sinks{mirror, shadow});
        auto start_what_plan_needs = [&mirror, &shadow](const sg::routing::plan& p) {
            if (sg::routing::mirrors_writes(p) && !mirror.active()) mirror.start();
            if (sg::routing::compares_reads(p) && !shadow.active()) shadow.start();
        };
        sg::control::control_plane control(
            cfg, router, registry,
            {.gate_verdict = [&gate] { return gate.verdict_json(); },
             .installed = start_what_plan_needs,
             .refuse = [&cfg](const sg::routing::plan& p) { return plan_unservable(cfg, p); }});
        sg::proxy::admin_server admin(cfg, registry, metrics, mirror, shadow, gate, reconcile,
                                      control);
        if (cfg.control.enabled) control.start();  // the stored plan, before any request
        start_what_plan_needs(router.current());
        server.start();
        admin.start();
        log_listening(cfg, server.port(), admin.port());
        if (!ready_file.empty()) write_ready_file(ready_file, server.port(), admin.port());

        if (const char* faults = std::getenv("SHADOWGATE_TEST_FAULTS")) {
            spdlog::warn("event=test_faults_enabled faults=\"{}\" (for tests only)", faults);
        }

        const int sig = wait_for_stop(stop_signals);
        const bool all_stopped =
            drain_and_stop(cfg, metrics, sig, server, shadow, gate, mirror, control, admin);
        if (!all_stopped) {
            // A thread is still blocked in the client library: leave without running the
            // destructors it could be using (what it has not committed is rolled back).
            spdlog::shutdown();
            std::fflush(nullptr);
            std::_Exit(serve_exit_code());
        }
    } catch (const std::exception& e) {
        spdlog::critical("event=startup_failed error=\"{}\"", e.what());
        spdlog::shutdown();
        return exit_failure;
    }
    spdlog::shutdown();
    return serve_exit_code();
}

// GET `path` from the running service's admin listener; nullopt with `exit_code` set when that
// fails or the answer is not 200 (the reason is printed).
std::optional<sg::proxy::http_answer> ask_admin(const sg::config::config& cfg,
                                                const std::string& path, int& exit_code) {
    auto r = sg::proxy::ask_admin(cfg, path);
    if (r && r->status != 200) {
        std::cerr << "cannot ask " << path << ": HTTP " << r->status << " " << r->body << "\n";
    }
    if (!r || r->status != 200) {
        exit_code = exit_gate_unknown;
        return std::nullopt;
    }
    return r;
}

// The command line: every command's options, filled by CLI11.
struct command_line {
    std::string config_path;  // -c of whichever command runs
    // serve
    std::string check_path;
    std::string ready_file;
    bool print_defaults = false;
    // migrate
    sg::proxy::migrate_options migrate;
    std::optional<sg::config::migrate_commit> commit_policy;  // --dolt-commit
    CLI::Option* batch_opt = nullptr;
    CLI::Option* readers_opt = nullptr;
    // verify
    std::vector<std::string> verify_users;
    // render
    std::string render_tz;
    std::vector<std::string> render_targets;
    // gate, reconcile
    bool gate_json = false;
    sg::proxy::reconcile_options reconcile;
    bool reconcile_json = false;
    // stage
    sg::proxy::stage_cli stage;
    // report
    std::string report_format = "html";
    std::string report_endpoint, report_from, report_to, report_out;
};

// --dolt-commit's spellings, read into the config's enum by CLI11.
std::map<std::string, sg::config::migrate_commit> migrate_commit_names() {
    std::map<std::string, sg::config::migrate_commit> names;
    using sg::config::migrate_commit;
    for (const auto c :
         {migrate_commit::per_user_import, migrate_commit::once_per_run, migrate_commit::off}) {
        names.emplace(sg::config::to_string(c), c);
    }
    return names;
}

void add_config_option(CLI::App* cmd, command_line& cl, const char* what, bool required) {
    auto* opt =
        cmd->add_option("-c,--config", cl.config_path, std::string("config file (") + what + ")");
    if (required) opt->required();
}

void add_serve(CLI::App& app, command_line& cl) {
    auto* cmd = app.add_subcommand("serve", "run the proxy and the admin listener");
    add_config_option(cmd, cl, "JSON, comments allowed", false);
    cmd->add_option("--check-config", cl.check_path,
                    "validate this config file, print every problem and exit "
                    "(0: valid, 2: invalid)");
    cmd->add_flag("--print-defaults", cl.print_defaults,
                  "print the default config document and exit");
    cmd->add_option("--ready-file", cl.ready_file,
                    "once listening, write the bound ports as JSON to this file");
}

void add_migrate(CLI::App& app, command_line& cl) {
    auto* cmd = app.add_subcommand(
        "migrate", "copy v1 storage (every user, block, version, pending diff) into Dolt");
    add_config_option(cmd, cl, "v1_data_dir, dolt.*, migrate.*", true);
    cmd->add_option("--user", cl.migrate.users, "only these users (repeatable)");
    cmd->add_flag("--dry-run", cl.migrate.dry_run,
                  "read v1 storage and print per-table counts; write nothing");
    cmd->add_flag("--verify", cl.migrate.verify,
                  "afterwards re-read every user from Dolt and compare with v1 storage");
    cl.batch_opt = cmd->add_option("--batch-size", cl.migrate.batch_size,
                                   "users per transaction (default: migrate.batch_size, 100)")
                       ->check(CLI::Range(1, 100000));
    cl.readers_opt = cmd->add_option("--readers", cl.migrate.readers,
                                     "git reader threads (default: migrate.readers, 2)")
                         ->check(CLI::Range(1, 64));
    cmd->add_option("--dolt-commit", cl.commit_policy,
                    "Dolt commits: per_user_import, once_per_run or off (no-op on MariaDB; "
                    "default: migrate.dolt_commit, once_per_run)")
        ->transform(CLI::CheckedTransformer(migrate_commit_names()));
}

void add_verify_and_render(CLI::App& app, command_line& cl) {
    auto* verify = app.add_subcommand(
        "verify", "compare Dolt with v1 storage, user by user, field by field; write nothing");
    add_config_option(verify, cl, "v1_data_dir, dolt.*", true);
    verify->add_option("--user", cl.verify_users, "only these users (repeatable)");

    auto* render = app.add_subcommand(
        "render", "print what Dolt answers to v1 GET requests, rendered in v1's shape");
    add_config_option(render, cl, "dolt.*", true);
    render->add_option("--tz", cl.render_tz,
                       "v1's time zone for history times: utc, local or +HH:MM "
                       "(default: v1.time_zone of the config, UTC)");
    render->add_option("targets", cl.render_targets, "request targets, e.g. /users/u1/blocks")
        ->required();
}

void add_gate_and_reconcile(CLI::App& app, command_line& cl) {
    auto* gate = app.add_subcommand(
        "gate", "ask the running service for the cutover gate's verdict (exit 0 only for GO)");
    add_config_option(gate, cl, "admin.listen, admin.token_env", true);
    gate->add_flag("--json", cl.gate_json, "print GET /admin/gate's JSON as it is");

    auto* rec = app.add_subcommand(
        "reconcile",
        "check every user of v1 storage (and of Dolt) against Dolt: missing, extra, different; "
        "exit 0 clean, 1 drift, 3 could not run");
    auto& ro = cl.reconcile;
    add_config_option(rec, cl, "v1_data_dir, dolt.*", true);
    rec->add_option("--user", ro.users, "only these users (repeatable)");
    rec->add_flag("--repair", ro.repair,
                  "write each drifted user again as v1 storage has it (users only in Dolt are "
                  "reported, never deleted)");
    rec->add_option("--checkpoint", ro.checkpoint,
                    "resume from / save progress to this file (removed when complete)");
    rec->add_option("--readers", ro.readers, "git reader threads (default 2)")
        ->check(CLI::Range(1, 64));
    rec->add_option("--batch", ro.batch, "users read back from Dolt at once (200)")
        ->check(CLI::Range(1, 10000));
    rec->add_flag("--json", cl.reconcile_json, "print the report as JSON");
}

void add_report(CLI::App& app, command_line& cl) {
    auto* cmd = app.add_subcommand(
        "report", "the discrepancy report of the running service (json, md or html)");
    add_config_option(cmd, cl, "admin.listen, admin.token_env", true);
    cmd->add_option("--format", cl.report_format, "json, md or html (default html)")
        ->check(CLI::IsMember({"json", "md", "html"}));
    cmd->add_option("--endpoint", cl.report_endpoint, "one read endpoint only");
    cmd->add_option("--from", cl.report_from, "from this time (ISO 8601 or Unix ms)");
    cmd->add_option("--to", cl.report_to, "until this time (ISO 8601 or Unix ms)");
    cmd->add_option("-o,--out", cl.report_out, "write to this file (default: stdout)");
}

int run_report(const sg::config::config& cfg, const command_line& cl) {
    std::string query = "/admin/report?format=" + cl.report_format;
    auto add = [&](const char* key, const std::string& v) {
        if (v.empty()) return;
        query += std::string("&") + key + "=";
        for (const unsigned char c : v) {
            if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':') {
                query += static_cast<char>(c);
            } else {
                query += fmt::format("%{:02X}", c);
            }
        }
    };
    add("endpoint", cl.report_endpoint);
    add("from", cl.report_from);
    add("to", cl.report_to);
    int code = exit_ok;
    auto r = ask_admin(cfg, query, code);
    if (!r) return code;
    if (cl.report_out.empty()) {
        std::cout << r->body;
        return exit_ok;
    }
    std::ofstream out(cl.report_out, std::ios::binary);
    out << r->body;
    if (!out.flush()) {
        std::cerr << "report: cannot write " << cl.report_out << "\n";
        return exit_failure;
    }
    std::cerr << "report: wrote " << cl.report_out << " (" << r->body.size() << " bytes)\n";
    return exit_ok;
}

int run_reconcile_command(const sg::config::config& cfg, const command_line& cl) {
    const auto& ro = cl.reconcile;
    auto report = sg::proxy::run_reconcile(cfg, ro, cl.reconcile_json ? nullptr : stderr);
    std::cout << (cl.reconcile_json ? sg::proxy::reconcile_report_json(report)
                                    : sg::proxy::format_reconcile_report(report, ro.repair));
    if (!report.fatal.empty()) return exit_gate_unknown;
    const bool repaired_all = ro.repair && report.users_failed == 0 &&
                              report.users_repaired + report.extra_users == report.users_drifted;
    return report.clean() || (repaired_all && report.extra_users == 0) ? exit_ok : exit_failure;
}

int run_gate_command(const sg::config::config& cfg, const command_line& cl) {
    int code = exit_ok;
    auto r = ask_admin(cfg, "/admin/gate", code);
    if (!r) return code;
    std::cout << (cl.gate_json ? r->body : sg::proxy::format_verdict(r->body));
    const auto verdict = nlohmann::json::parse(r->body, nullptr, false);
    if (verdict.is_discarded() || !verdict.contains("go")) {
        std::cerr << "gate: the answer is not a verdict: " << r->body << "\n";
        return exit_gate_unknown;
    }
    return verdict["go"] == true ? exit_ok : exit_failure;
}

int run_render_command(const sg::config::config& cfg, const command_line& cl) {
    auto tz = cl.render_tz.empty() ? sg::proxy::to_v1_zone(cfg.v1.time_zone)
                                   : sg::proxy::parse_time_zone(cl.render_tz);
    if (!tz) {
        std::cerr << "--tz: expected utc, local or +HH:MM, got " << cl.render_tz << "\n";
        return exit_bad_config;
    }
    return sg::proxy::run_render(cfg, *tz, cl.render_targets, std::cout);
}

int run_verify_command(const sg::config::config& cfg, const command_line& cl) {
    auto report = sg::proxy::run_verify(cfg, cl.verify_users);
    std::cout << sg::proxy::format_verify_report(report);
    return sg::proxy::exit_code(report);
}

int run_migrate_command(const sg::config::config& cfg, command_line& cl) {
    const auto& mc = cfg.migrate;
    auto& mopts = cl.migrate;
    if (cl.batch_opt->count() == 0) mopts.batch_size = mc.batch_size;
    if (cl.readers_opt->count() == 0) mopts.readers = mc.readers;
    mopts.commit_policy = sg::proxy::to_commit_policy(cl.commit_policy.value_or(mc.dolt_commit));
    auto report = sg::proxy::run_migrate(cfg, mopts, stderr);
    std::cout << sg::proxy::format_report(report, mopts);
    return sg::proxy::exit_code(report);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shadowgate: moves a live API from v1 storage to Dolt behind a shadowing proxy"};
    app.set_version_flag("--version", std::string("shadowgate ") + SHADOWGATE_VERSION);
    app.require_subcommand(1);
    command_line cl;
    add_serve(app, cl);
    add_migrate(app, cl);
    add_verify_and_render(app, cl);
    add_gate_and_reconcile(app, cl);
    add_report(app, cl);
    sg::proxy::add_stage_command(app, cl.stage, cl.config_path);
    CLI11_PARSE(app, argc, argv);

    const std::string command = app.get_subcommands().front()->get_name();
    if (command == "serve") {
        if (cl.print_defaults) {
            std::cout << sg::config::dump_json(sg::config::config{}) << "\n";
            return exit_ok;
        }
        if (!cl.check_path.empty()) return check_config(cl.check_path);
    }
    const auto cfg = load_config(cl.config_path);
    if (!cfg) return exit_bad_config;
    if (command == "serve") return serve(*cfg, cl.ready_file);
    if (command == "migrate") return run_migrate_command(*cfg, cl);
    if (command == "verify") return run_verify_command(*cfg, cl);
    if (command == "render") return run_render_command(*cfg, cl);
    if (command == "gate") return run_gate_command(*cfg, cl);
    if (command == "reconcile") return run_reconcile_command(*cfg, cl);
    if (command == "report") return run_report(*cfg, cl);
    if (command == "stage") return sg::proxy::run_stage_command(*cfg, cl.stage);
    return exit_failure;
}
