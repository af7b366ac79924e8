// proxy/main: the shadowgate command line. `serve` runs the proxy and its admin listener; later
// subcommands (migrate, reconcile, report, gate) join it here.
#include "config/config.hpp"
#include "proxy/admin.hpp"
#include "proxy/gate.hpp"
#include "proxy/http_fetch.hpp"
#include "proxy/inspect.hpp"
#include "proxy/metrics.hpp"
#include "proxy/migrate.hpp"
#include "proxy/mirror.hpp"
#include "proxy/reconcile.hpp"
#include "proxy/server.hpp"
#include "proxy/task_failure.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_bad_config = 2;
constexpr int exit_gate_unknown = 3;  // `gate`: the service could not be asked; `reconcile`:
                                      // could not run

// Logs go through spdlog's async logger with overrun-oldest: a slow stderr never stalls a worker.
void setup_logging(const std::string& level) {
    spdlog::init_thread_pool(8192, 1);
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::async_logger>(
        "shadowgate", sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
    logger->set_level(spdlog::level::from_str(level));
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

int serve(const std::string& config_path, const std::string& ready_file) {
    sg::config::load_result loaded = config_path.empty()
                                         ? sg::config::parse("{}")
                                         : sg::config::load_file(config_path);
    if (!loaded.problems.empty()) {
        std::cerr << (config_path.empty() ? "defaults" : config_path) << ": "
                  << sg::config::format_problems(loaded.problems);
        return exit_bad_config;
    }
    const sg::config::config cfg = *loaded.value;
    std::signal(SIGPIPE, SIG_IGN);

    // Block the stop signals before any thread starts (the logger's included) so that only
    // sigwait() below sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    setup_logging(cfg.log.level);

    sg::proxy::metrics metrics;
    try {
        // dualwrite and shadow: every v1 write is mirrored into Dolt; `off` touches nothing.
        std::unique_ptr<sg::proxy::mirror> mirror;
        if (cfg.mode != sg::config::stage::off) {
            mirror = std::make_unique<sg::proxy::mirror>(cfg);
        }
        // shadow: sampled reads are also answered from Dolt and compared.
        std::unique_ptr<sg::proxy::shadow> shadow;
        if (cfg.mode == sg::config::stage::shadow) {
            shadow = std::make_unique<sg::proxy::shadow>(cfg, mirror.get());
        }
        // The cutover gate: its evidence survives restarts (gate.state_file).
        sg::proxy::gate gate(cfg, shadow.get(), mirror.get());
        if (auto e = gate.start(); !e.empty()) {
            spdlog::critical("event=startup_failed error=\"gate: {}\"", e);
            spdlog::shutdown();
            return exit_failure;
        }
        sg::proxy::reconcile_job reconcile(cfg, &gate);
        sg::proxy::server server(cfg, metrics, mirror.get(), shadow.get());
        sg::proxy::admin_server admin(cfg, metrics, mirror.get(), shadow.get(), &gate,
                                      &reconcile);
        if (mirror) mirror->start();
        if (shadow) shadow->start();
        server.start();
        admin.start();
        spdlog::info("event=listening listener=proxy host={} port={} stage={} upstream={}:{}",
                     cfg.proxy.listen.host, server.port(), sg::config::to_string(cfg.mode),
                     cfg.v1.address.host, cfg.v1.address.port);
        spdlog::info("event=listening listener=admin host={} port={} token={}",
                     cfg.admin.listen.host, admin.port(),
                     cfg.admin.token.empty() ? "unset" : "set");
        if (!ready_file.empty()) write_ready_file(ready_file, server.port(), admin.port());

        if (const char* faults = std::getenv("SHADOWGATE_TEST_FAULTS")) {
            spdlog::warn("event=test_faults_enabled faults=\"{}\" (for tests only)", faults);
        }

        int sig = 0;
        sigwait(&stop_signals, &sig);
        if (sg::proxy::process_task_failures().essential_failed.load()) {
            spdlog::critical("event=stopping reason=\"an essential task failed (see "
                             "event=task_failed)\"");
        }
        spdlog::info("event=draining signal={} grace_ms={}", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                     cfg.proxy.shutdown_grace.count());
        server.begin_drain();
        const bool drained = server.wait_drained(cfg.proxy.shutdown_grace);
        server.stop();
        // After the proxy: the last answers' triggers are in; what is not applied yet is found
        // by the next start's capture scan.
        if (shadow) shadow->stop();
        gate.stop();  // after the comparer: its last counts are in the evidence
        // Bounded: a thread inside a hung database call must not hold the exit hostage.
        const bool mirror_stopped = !mirror || mirror->stop(cfg.proxy.shutdown_grace);
        admin.stop();
        spdlog::info("event=stopped drained={} open_connections={} mirror_stopped={}", drained,
                     metrics.open_client_connections.load(), mirror_stopped);
        if (!mirror_stopped) {
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

// GET `path` from the running service's admin listener (admin.listen of the config at
// `config_path`, the token from admin.token_env); nullopt with `exit_code` set when that fails
// (the reason is printed).
std::optional<sg::proxy::fetch_result> ask_admin(const std::string& config_path,
                                                 const std::string& path, int& exit_code) {
    auto loaded = sg::config::load_file(config_path);
    if (!loaded.problems.empty()) {
        std::cerr << config_path << ": " << sg::config::format_problems(loaded.problems);
        exit_code = exit_bad_config;
        return std::nullopt;
    }
    const auto& admin = loaded.value->admin;
    sg::config::endpoint_address where = admin.listen;
    if (where.host == "0.0.0.0" || where.host.empty()) where.host = "127.0.0.1";
    if (where.host == "::") where.host = "::1";
    sg::proxy::header_list headers;
    if (!admin.token.empty()) headers.emplace_back("Authorization", "Bearer " + admin.token);
    auto r = sg::proxy::http_get({.address = where,
                                  .target = path,
                                  .headers = std::move(headers),
                                  .timeout = std::chrono::seconds(30),
                                  .max_body = 256 * 1024 * 1024});
    if (!r.ok || r.status != 200) {
        std::cerr << "cannot ask " << where.host << ":" << where.port << path << ": "
                  << (r.ok ? "HTTP " + std::to_string(r.status) + " " + r.body : r.error) << "\n";
        exit_code = exit_gate_unknown;
        return std::nullopt;
    }
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shadowgate: moves a live API from v1 storage to Dolt behind a shadowing proxy"};
    app.set_version_flag("--version", std::string("shadowgate ") + SHADOWGATE_VERSION);
    app.require_subcommand(1);

    auto* serve_cmd = app.add_subcommand("serve", "run the proxy and the admin listener");
    std::string config_path;
    std::string check_path;
    std::string ready_file;
    bool print_defaults = false;
    serve_cmd->add_option("-c,--config", config_path, "config file (JSON, comments allowed)");
    serve_cmd->add_option("--check-config", check_path,
                          "validate this config file, print every problem and exit "
                          "(0: valid, 2: invalid)");
    serve_cmd->add_flag("--print-defaults", print_defaults,
                        "print the default config document and exit");
    serve_cmd->add_option("--ready-file", ready_file,
                          "once listening, write the bound ports as JSON to this file");

    auto* migrate_cmd = app.add_subcommand(
        "migrate", "copy v1 storage (every user, block, version, pending diff) into Dolt");
    std::string migrate_config;
    sg::proxy::migrate_options mopts;
    std::string commit_policy;
    migrate_cmd
        ->add_option("-c,--config", migrate_config, "config file (v1_data_dir, dolt.*, migrate.*)")
        ->required();
    migrate_cmd->add_option("--user", mopts.users, "only these users (repeatable)");
    migrate_cmd->add_flag("--dry-run", mopts.dry_run,
                          "read v1 storage and print per-table counts; write nothing");
    migrate_cmd->add_flag("--verify", mopts.verify,
                          "afterwards re-read every user from Dolt and compare with v1 storage");
    auto* batch_opt = migrate_cmd
                          ->add_option("--batch-size", mopts.batch_size,
                                       "users per transaction (default: migrate.batch_size, 100)")
                          ->check(CLI::Range(1, 100000));
    auto* readers_opt = migrate_cmd
                            ->add_option("--readers", mopts.readers,
                                         "git reader threads (default: migrate.readers, 2)")
                            ->check(CLI::Range(1, 64));
    migrate_cmd
        ->add_option("--dolt-commit", commit_policy,
                     "Dolt commits: per_user_import, once_per_run or off (no-op on MariaDB; "
                     "default: migrate.dolt_commit, once_per_run)")
        ->check(CLI::IsMember({"per_user_import", "once_per_run", "off"}));

    auto* verify_cmd = app.add_subcommand(
        "verify", "compare Dolt with v1 storage, user by user, field by field; write nothing");
    std::string verify_config;
    std::vector<std::string> verify_users;
    verify_cmd->add_option("-c,--config", verify_config, "config file (v1_data_dir, dolt.*)")
        ->required();
    verify_cmd->add_option("--user", verify_users, "only these users (repeatable)");

    auto* render_cmd = app.add_subcommand(
        "render", "print what Dolt answers to v1 GET requests, rendered in v1's shape");
    std::string render_config;
    std::string render_tz;
    std::vector<std::string> render_targets;
    render_cmd->add_option("-c,--config", render_config, "config file (dolt.*)")->required();
    render_cmd->add_option("--tz", render_tz,
                           "v1's time zone for history times: utc, local or +HH:MM "
                           "(default: v1.time_zone of the config, UTC)");
    render_cmd->add_option("targets", render_targets, "request targets, e.g. /users/u1/blocks")
        ->required();

    auto* gate_cmd = app.add_subcommand(
        "gate", "ask the running service for the cutover gate's verdict (exit 0 only for GO)");
    std::string gate_config;
    bool gate_json = false;
    gate_cmd->add_option("-c,--config", gate_config, "config file (admin.listen, admin.token_env)")
        ->required();
    gate_cmd->add_flag("--json", gate_json, "print GET /admin/gate's JSON as it is");

    auto* reconcile_cmd = app.add_subcommand(
        "reconcile",
        "check every user of v1 storage (and of Dolt) against Dolt: missing, extra, different; "
        "exit 0 clean, 1 drift, 3 could not run");
    std::string reconcile_config;
    sg::proxy::reconcile_options ropts;
    bool reconcile_json = false;
    reconcile_cmd->add_option("-c,--config", reconcile_config, "config file (v1_data_dir, dolt.*)")
        ->required();
    reconcile_cmd->add_option("--user", ropts.users, "only these users (repeatable)");
    reconcile_cmd->add_flag("--repair", ropts.repair,
                            "write each drifted user again as v1 storage has it (users only in "
                            "Dolt are reported, never deleted)");
    reconcile_cmd->add_option("--checkpoint", ropts.checkpoint,
                              "resume from / save progress to this file (removed when complete)");
    reconcile_cmd->add_option("--readers", ropts.readers, "git reader threads (default 2)")
        ->check(CLI::Range(1, 64));
    reconcile_cmd->add_option("--batch", ropts.batch, "users read back from Dolt at once (200)")
        ->check(CLI::Range(1, 10000));
    reconcile_cmd->add_flag("--json", reconcile_json, "print the report as JSON");

    auto* report_cmd = app.add_subcommand(
        "report", "the discrepancy report of the running service (json, md or html)");
    std::string report_config, report_format = "html", report_endpoint, report_from, report_to,
                               report_out;
    report_cmd->add_option("-c,--config", report_config, "config file (admin.listen, admin.token_env)")
        ->required();
    report_cmd->add_option("--format", report_format, "json, md or html (default html)")
        ->check(CLI::IsMember({"json", "md", "html"}));
    report_cmd->add_option("--endpoint", report_endpoint, "one read endpoint only");
    report_cmd->add_option("--from", report_from, "from this time (ISO 8601 or Unix ms)");
    report_cmd->add_option("--to", report_to, "until this time (ISO 8601 or Unix ms)");
    report_cmd->add_option("-o,--out", report_out, "write to this file (default: stdout)");

    CLI11_PARSE(app, argc, argv);

    if (*report_cmd) {
        std::string query = "/admin/report?format=" + report_format;
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
        add("endpoint", report_endpoint);
        add("from", report_from);
        add("to", report_to);
        int code = exit_ok;
        auto r = ask_admin(report_config, query, code);
        if (!r) return code;
        if (report_out.empty()) {
            std::cout << r->body;
            return exit_ok;
        }
        std::ofstream out(report_out, std::ios::binary);
        out << r->body;
        if (!out.flush()) {
            std::cerr << "report: cannot write " << report_out << "\n";
            return exit_failure;
        }
        std::cerr << "report: wrote " << report_out << " (" << r->body.size() << " bytes)\n";
        return exit_ok;
    }

    if (*reconcile_cmd) {
        auto loaded = sg::config::load_file(reconcile_config);
        if (!loaded.problems.empty()) {
            std::cerr << reconcile_config << ": " << sg::config::format_problems(loaded.problems);
            return exit_bad_config;
        }
        auto report = sg::proxy::run_reconcile(*loaded.value, ropts, reconcile_json ? nullptr
                                                                                     : stderr);
        std::cout << (reconcile_json ? sg::proxy::reconcile_report_json(report)
                                     : sg::proxy::format_reconcile_report(report, ropts.repair));
        if (!report.fatal.empty()) return exit_gate_unknown;
        const bool repaired_all = ropts.repair && report.users_failed == 0 &&
                                  report.users_repaired + report.extra_users == report.users_drifted;
        return report.clean() || (repaired_all && report.extra_users == 0) ? exit_ok
                                                                           : exit_failure;
    }

    if (*gate_cmd) {
        int code = exit_ok;
        auto r = ask_admin(gate_config, "/admin/gate", code);
        if (!r) return code;
        std::cout << (gate_json ? r->body : sg::proxy::format_verdict(r->body));
        const auto verdict = nlohmann::json::parse(r->body, nullptr, false);
        if (verdict.is_discarded() || !verdict.contains("go")) {
            std::cerr << "gate: the answer is not a verdict: " << r->body << "\n";
            return exit_gate_unknown;
        }
        return verdict["go"] == true ? exit_ok : exit_failure;
    }

    if (*render_cmd) {
        auto loaded = sg::config::load_file(render_config);
        if (!loaded.problems.empty()) {
            std::cerr << render_config << ": " << sg::config::format_problems(loaded.problems);
            return exit_bad_config;
        }
        if (render_tz.empty()) render_tz = loaded.value->v1.time_zone;
        auto tz = sg::proxy::parse_time_zone(render_tz);
        if (!tz) {
            std::cerr << "--tz: expected utc, local or +HH:MM, got " << render_tz << "\n";
            return exit_bad_config;
        }
        return sg::proxy::run_render(*loaded.value, *tz, render_targets, std::cout);
    }

    if (*verify_cmd) {
        auto loaded = sg::config::load_file(verify_config);
        if (!loaded.problems.empty()) {
            std::cerr << verify_config << ": " << sg::config::format_problems(loaded.problems);
            return exit_bad_config;
        }
        auto report = sg::proxy::run_verify(*loaded.value, verify_users);
        std::cout << sg::proxy::format_verify_report(report);
        return sg::proxy::exit_code(report);
    }

    if (*migrate_cmd) {
        auto loaded = sg::config::load_file(migrate_config);
        if (!loaded.problems.empty()) {
            std::cerr << migrate_config << ": " << sg::config::format_problems(loaded.problems);
            return exit_bad_config;
        }
        const auto& mc = loaded.value->migrate;
        if (commit_policy.empty()) commit_policy = mc.dolt_commit;
        if (batch_opt->count() == 0) mopts.batch_size = mc.batch_size;
        if (readers_opt->count() == 0) mopts.readers = mc.readers;
        mopts.commit_policy = *sg::dolt::parse_commit_policy(commit_policy);
        auto report = sg::proxy::run_migrate(*loaded.value, mopts, stderr);
        std::cout << sg::proxy::format_report(report, mopts);
        return sg::proxy::exit_code(report);
    }

    if (*serve_cmd) {
        if (print_defaults) {
            std::cout << sg::config::dump_json(sg::config::config{}) << "\n";
            return exit_ok;
        }
        if (!check_path.empty()) return check_config(check_path);
        return serve(config_path, ready_file);
    }
    return exit_failure;
}
