// proxy/inspect: the render command.
#include "proxy/inspect.hpp"

#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/v1/routes.hpp"
#include "proxy/dolt_session.hpp"
#include "proxy/v2_render.hpp"

#include <nlohmann/json.hpp>

#include <iostream>
#include <map>

namespace sg::proxy {

std::optional<v1::time_zone> parse_time_zone(std::string_view s) {
    if (s == "utc" || s == "UTC") return v1::time_zone::utc();
    if (s == "local") return v1::time_zone::local();
    if (s.size() == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':') {
        auto digit = [&](std::size_t i) { return s[i] >= '0' && s[i] <= '9'; };
        if (!digit(1) || !digit(2) || !digit(4) || !digit(5)) return std::nullopt;
        const int hours = (s[1] - '0') * 10 + (s[2] - '0');
        const int minutes = (s[4] - '0') * 10 + (s[5] - '0');
        if (hours > 14 || minutes > 59) return std::nullopt;
        const int total = hours * 60 + minutes;
        return v1::time_zone::fixed(s[0] == '-' ? -total : total);
    }
    return std::nullopt;
}

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
            auto read = dolt::read_user(conn, route.user_id);
            if (!read) {
                std::cerr << "render: reading " << route.user_id << ": "
                          << read.error().to_string() << "\n";
                return 1;
            }
            it = cache.emplace(route.user_id, std::move(*read)).first;
        }
        auto answer = render_read(it->second, route, target, tz);
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
