// proxy/admin/admin_client: the command line's side of the admin API: asking the running service
// (admin.listen of the config, the token from admin.token_env), and `shadowgate stage`, which
// shows and changes the plan through it (so every change goes through the service's rules and
// its control plane, like a change made with curl).
#pragma once

#include "config/config.hpp"
#include "proxy/net/http_fetch.hpp"

#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace sg::proxy {

// Exit codes of the commands that ask the service.
inline constexpr int admin_exit_ok = 0;
inline constexpr int admin_exit_refused = 1;  // the service refused (a rule; nothing changed)
inline constexpr int admin_exit_unknown = 3;  // the service could not be asked, or did not know

// GET `path` (or POST `post_body` to it) on the running service's admin listener. Any answer is
// returned (the caller looks at its status); nullopt when nothing answered, with the reason
// printed on stderr.
std::optional<http_answer> ask_admin(const config::config& cfg, const std::string& path,
                                     std::optional<std::string> post_body = std::nullopt);

struct stage_cli {
    std::string action;  // show, set, history, freeze, unfreeze
    std::string stage;
    std::string cohort;
    std::vector<std::string> users;
    std::string users_file;
    std::string percent;
    bool remove = false;
    bool force = false;
    std::string reason;
    std::string who;
    unsigned limit = 20;
    double minutes = 0;
    std::vector<std::string> freeze_cohorts;
    bool json = false;
};

// Adds `stage` and its subcommands to `app`, filling `out`; `config_path` gets -c.
void add_stage_command(CLI::App& app, stage_cli& out, std::string& config_path);
// Runs the parsed `stage` command; prints for people (or the JSON with --json). Returns the exit
// code.
int run_stage_command(const config::config& cfg, const stage_cli& cli);

// The users of a --users-file: ".json" (an array of strings) or ".txt" (one per line, blank lines
// and "#" comments skipped); any other format is refused with a message.
result<std::vector<std::string>> read_user_list(const std::string& path);

}  // namespace sg::proxy
