// proxy/admin/admin_client: asking the running service, and `shadowgate stage`.
#include "proxy/admin/admin_client.hpp"

#include "proxy/control/plan_json.hpp"

#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

namespace sg::proxy {

namespace {

using nlohmann::json;

std::string default_who() {
    const char* user = std::getenv("USER");
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return std::string(user != nullptr && *user != '\0' ? user : "someone") + "@" +
           (host[0] != '\0' ? host : "localhost") + " via shadowgate stage";
}

// Prints a refusal or an error answer; returns its exit code.
int report_failure(const http_answer& a) {
    const json j = json::parse(a.body, nullptr, false);
    const std::string detail =
        !j.is_discarded() && j.contains("detail") ? j["detail"].get<std::string>() : a.body;
    std::cerr << "stage: refused (HTTP " << a.status << "): " << detail << "\n";
    return a.status == 409 || a.status == 400 ? admin_exit_refused : admin_exit_unknown;
}

std::string cohort_line(const json& c) {
    std::ostringstream out;
    out << "  " << c["name"].get<std::string>() << ": " << c["stage"].get<std::string>();
    if (c.contains("percent")) {
        const auto bp = std::lround(c["percent"].get<double>() * 100);
        out << "  (" << control::percent_text(static_cast<std::uint32_t>(bp))
            << "% of users by a sticky hash)";
    } else {
        const auto& users = c["users"];
        out << "  (" << users.size() << " user" << (users.size() == 1 ? "" : "s");
        for (std::size_t i = 0; i < users.size() && i < 5; ++i) {
            out << (i == 0 ? ": " : ", ") << users[i].get<std::string>();
        }
        out << (users.size() > 5 ? ", ...)" : ")");
    }
    return out.str();
}

void print_plan(const json& status) {
    const json& plan = status["plan"];
    std::cout << "plan version " << status["version"] << " on replica "
              << status["replica_id"].get<std::string>() << "\n";
    for (const auto& c : plan["cohorts"]) std::cout << cohort_line(c) << "\n";
    std::cout << "  default (everyone else): " << plan["default"].get<std::string>() << "\n";
    if (status.contains("freeze")) {
        const auto& f = status["freeze"];
        std::cout << "freeze: " << (f["active"].get<bool>() ? "ACTIVE" : "ended") << " until "
                  << f["until"].get<std::string>() << ", cohorts "
                  << (f["cohorts"].empty() ? std::string("all") : f["cohorts"].dump()) << " ("
                  << f["reason"].get<std::string>() << ")\n";
    }
    if (status.value("fenced", false)) {
        std::cout << "FENCED: this replica has not read the plan for "
                  << status["seconds_since_plan_read"].get<double>()
                  << " s: " << status["last_error"].get<std::string>() << "\n";
    }
    for (const auto& r : status["replicas"]) {
        std::cout << "replica " << r["replica_id"].get<std::string>() << ": applies version "
                  << r["applied_version"] << ", polled " << r["seconds_since_poll"].get<double>()
                  << " s ago\n";
    }
}

void print_history(const json& rows) {
    if (rows.empty()) std::cout << "no changes recorded\n";
    for (const auto& r : rows) {
        std::cout << r["at"].get<std::string>() << "  v" << r["version"] << "  "
                  << r["event"].get<std::string>() << "  " << r["cohort"].get<std::string>();
        if (r["event"] == "stage") {
            std::cout << ": " << r["from"].get<std::string>() << " -> "
                      << r["to"].get<std::string>() << (r["forced"].get<bool>() ? " FORCED" : "");
        }
        const auto& gate = r["gate"];
        if (gate.is_object() && gate.contains("go")) {
            std::cout << "  gate " << (gate["go"].get<bool>() ? "GO" : "NO-GO");
        }
        std::cout << "  by " << r["who"].get<std::string>();
        if (!r["why"].get<std::string>().empty()) std::cout << ": " << r["why"].get<std::string>();
        if (!r["tag"].get<std::string>().empty())
            std::cout << "  [" << r["tag"].get<std::string>() << "]";
        std::cout << "\n";
    }
}

}  // namespace

std::optional<http_answer> ask_admin(const config::config& cfg, const std::string& path,
                                     std::optional<std::string> post_body) {
    const auto& admin = cfg.admin;
    config::endpoint_address where = admin.listen;
    if (where.host == "0.0.0.0" || where.host.empty()) where.host = "127.0.0.1";
    if (where.host == "::") where.host = "::1";
    header_list headers;
    if (!admin.token.empty()) headers.emplace_back("Authorization", "Bearer " + admin.token);
    const get_request req{.address = where,
                          .target = path,
                          .headers = std::move(headers),
                          .timeout = std::chrono::seconds(30),
                          .max_body = 256 * 1024 * 1024};
    auto r = post_body ? http_post(req, std::move(*post_body)) : http_get(req);
    if (!r) {
        std::cerr << "cannot ask " << where.host << ":" << where.port << path << ": "
                  << r.error().what << "\n";
        return std::nullopt;
    }
    return std::move(*r);
}

result<std::vector<std::string>> read_user_list(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot read the user list " + path);
    std::stringstream text;
    text << in.rdbuf();
    std::vector<std::string> users;
    if (path.ends_with(".json")) {
        const json j = json::parse(text.str(), nullptr, false);
        if (j.is_discarded() || !j.is_array()) {
            return fail(path + ": expected a JSON array of user ids");
        }
        for (std::size_t i = 0; i < j.size(); ++i) {
            if (!j[i].is_string()) {
                return fail(path + ": $[" + std::to_string(i) + "]: expected a string");
            }
            users.push_back(j[i].get<std::string>());
        }
    } else if (path.ends_with(".txt")) {
        std::string line;
        while (std::getline(text, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty() || line.front() == '#') continue;
            users.push_back(line);
        }
    } else {
        return fail(path +
                    ": unknown user list format (expected .json, an array of ids, or "
                    ".txt, one id per line)");
    }
    if (users.empty()) return fail(path + ": the list names no user");
    return users;
}

void add_stage_command(CLI::App& app, stage_cli& out, std::string& config_path) {
    auto* stage = app.add_subcommand(
        "stage", "show or change the running service's plan: the stage of each cohort");
    stage->require_subcommand(1);
    auto config_opt = [&](CLI::App* cmd) {
        cmd->add_option("-c,--config", config_path, "config file (admin.listen, admin.token_env)")
            ->required();
        cmd->add_flag("--json", out.json, "print the service's JSON as it is");
    };
    auto* show = stage->add_subcommand("show", "the plan in force, the freeze, the replicas");
    config_opt(show);
    auto* set = stage->add_subcommand(
        "set",
        "move a cohort (or the default) to a stage: forward one stage at a time, back at "
        "any time");
    config_opt(set);
    set->add_option("stage", out.stage, "off, dualwrite or shadow")->required();
    set->add_option("--cohort", out.cohort, "the cohort (default: the default, everyone else)");
    set->add_option("--users", out.users, "the cohort's users (comma-separated)")->delimiter(',');
    set->add_option("--users-file", out.users_file, "the cohort's users: a .json array or .txt");
    set->add_option("--percent", out.percent, "the cohort is this percentage of users (0-100)");
    set->add_flag("--remove", out.remove, "drop the cohort: its users follow the rest");
    set->add_flag("--force", out.force, "pass a gate that does not say GO (needs --reason)");
    set->add_option("--reason", out.reason, "why (recorded in the history)");
    set->add_option("--who", out.who, "who (default: $USER@host)");
    auto* history = stage->add_subcommand("history", "the recorded changes, newest first");
    config_opt(history);
    history->add_option("--limit", out.limit, "how many (default 20)")
        ->check(CLI::Range(1, 100000));
    auto* freeze = stage->add_subcommand(
        "freeze", "answer writes with 503 + Retry-After for N minutes (reads are served)");
    config_opt(freeze);
    freeze->add_option("--minutes", out.minutes, "the window's length")->required();
    freeze->add_option("--cohort", out.freeze_cohorts, "only these cohorts (repeatable)");
    freeze->add_option("--reason", out.reason, "why (recorded in the history)");
    freeze->add_option("--who", out.who, "who (default: $USER@host)");
    auto* unfreeze = stage->add_subcommand("unfreeze", "lift the freeze window now");
    config_opt(unfreeze);
    unfreeze->add_option("--reason", out.reason, "why (recorded in the history)");
    unfreeze->add_option("--who", out.who, "who (default: $USER@host)");
    for (auto* sub : {show, set, history, freeze, unfreeze}) {
        sub->callback([&out, sub] { out.action = sub->get_name(); });
    }
}

int run_stage_command(const config::config& cfg, const stage_cli& cli) {
    const std::string who = cli.who.empty() ? default_who() : cli.who;
    std::optional<http_answer> a;
    if (cli.action == "show") {
        a = ask_admin(cfg, "/admin/stage");
    } else if (cli.action == "history") {
        a = ask_admin(cfg, "/admin/stage/history?limit=" + std::to_string(cli.limit));
    } else if (cli.action == "set") {
        json body{{"stage", cli.stage}, {"who", who}, {"reason", cli.reason}};
        if (!cli.cohort.empty()) body["cohort"] = cli.cohort;
        if (!cli.users.empty() && !cli.users_file.empty()) {
            std::cerr << "stage set: give --users or --users-file, not both\n";
            return admin_exit_refused;
        }
        if (!cli.users.empty()) body["users"] = cli.users;
        if (!cli.users_file.empty()) {
            auto users = read_user_list(cli.users_file);
            if (!users) {
                std::cerr << "stage set: " << users.error().what << "\n";
                return admin_exit_refused;
            }
            body["users"] = *users;
        }
        if (!cli.percent.empty()) body["percent"] = cli.percent;
        if (cli.remove) body["remove"] = true;
        if (cli.force) body["force"] = true;
        a = ask_admin(cfg, "/admin/stage", body.dump());
    } else if (cli.action == "freeze") {
        json body{{"minutes", cli.minutes}, {"who", who}, {"reason", cli.reason}};
        if (!cli.freeze_cohorts.empty()) body["cohorts"] = cli.freeze_cohorts;
        a = ask_admin(cfg, "/admin/freeze", body.dump());
    } else if (cli.action == "unfreeze") {
        a = ask_admin(cfg, "/admin/unfreeze", json{{"who", who}, {"reason", cli.reason}}.dump());
    }
    if (!a) return admin_exit_unknown;
    if (a->status != 200) return report_failure(*a);
    if (cli.json) {
        std::cout << a->body;
        return admin_exit_ok;
    }
    const json j = json::parse(a->body, nullptr, false);
    if (j.is_discarded()) {
        std::cerr << "stage: the answer is not JSON: " << a->body << "\n";
        return admin_exit_unknown;
    }
    if (cli.action == "show") {
        print_plan(j);
    } else if (cli.action == "history") {
        print_history(j);
    } else if (!j.value("changed", false)) {
        std::cout << "unchanged: the plan (version " << j["version"] << ") already says so\n";
    } else {
        std::cout << "plan version " << j["version"] << "\n";
        for (const auto& c : j["changes"]) {
            std::cout << "  " << c["event"].get<std::string>() << " "
                      << c["cohort"].get<std::string>();
            if (c["event"] == "stage") {
                std::cout << ": " << c["from"].get<std::string>() << " -> "
                          << c["to"].get<std::string>()
                          << (c["forced"].get<bool>() ? " (forced)" : "");
            }
            if (!c["tag"].get<std::string>().empty())
                std::cout << "  tag " << c["tag"].get<std::string>();
            std::cout << "\n";
        }
    }
    return admin_exit_ok;
}

}  // namespace sg::proxy
