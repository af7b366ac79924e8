// proxy/jobs/inspect: the render command.
#include "proxy/jobs/inspect.hpp"

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/v1/routes.hpp"
#include "adapters/v1/v2_render.hpp"
#include "proxy/common/dolt_session.hpp"

#include <nlohmann/json.hpp>

#include <iostream>
#include <map>

namespace sg::proxy {

int run_render(const config::config& cfg, const v1::time_zone& tz,
               const std::vector<std::string>& targets, std::ostream& out) {
    dolt::connection conn(dolt_options(cfg));
    if (auto c = conn.connect(); !c) {
        std::cerr << "render: cannot connect to " << conn.describe() << ": "
                  << c.error().to_string() << "\n";
        return 1;
    }
    std::map<std::string, std::optional<v1::user_state>> cache;
    for (const auto& target : targets) {
        const v1::route route = v1::classify("GET", target);
        nlohmann::json line;
        line["target"] = target;
        if (route.ep == v1::endpoint::passthrough || route.hostile_reason) {
            line["status"] = nullptr;
            line["error"] = "not a v1 read route";
            out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
            continue;
        }
        auto it = cache.find(route.user_id);
        if (it == cache.end()) {
            // What the v2 side answers from: the plan's columns (never the audit copies).
            auto read = dolt::read_snapshot(conn, route.user_id, dolt::read_parts::everything());
            if (!read) {
                std::cerr << "render: reading " << route.user_id << ": " << read.error().to_string()
                          << "\n";
                return 1;
            }
            it = cache.emplace(route.user_id, std::move(read->state)).first;
        }
        auto answer = v1::render_read(it->second, route, target, tz);
        if (!answer) {
            line["status"] = nullptr;
            line["error"] = "not a v1 read route";
        } else {
            line["status"] = answer->status;
            line["content_type"] = answer->content_type;
            line["body"] = answer->body;
        }
        out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
    return 0;
}

}  // namespace sg::proxy
