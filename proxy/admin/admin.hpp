// proxy/admin/admin: the operator's listener (loopback by default): /healthz, /readyz, /metrics,
// and token-protected /admin/* endpoints. It runs on its own thread so that a scrape or a slow
// admin client never competes with the proxy's workers.
#pragma once

#include "config/config.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/mirror/mirror.hpp"
#include "proxy/shadow/shadow.hpp"

#include <cstdint>
#include <memory>
#include <string_view>

namespace sg::proxy {

// True when `authorization` is exactly "Bearer <token>" for a non-empty configured token.
// Compares in constant time so the token cannot be guessed byte by byte.
bool bearer_token_matches(std::string_view authorization, std::string_view token);

class gate;
class reconcile_job;

class admin_server {
public:
    // Binds the admin listen address; throws std::runtime_error on failure (start-up error).
    // `mir`, while active (the stage mirrors), adds shadowgate_mirror_* to /metrics and serves
    // GET /admin/mirror and POST /admin/mirror/retry[?user=ID].
    // `sh`, while active (the stage compares), adds shadowgate_compare_* and serves
    // GET /admin/shadow and GET /admin/discrepancies?endpoint=&limit=.
    // `g` (the cutover gate) adds shadowgate_gate_* and serves GET /admin/gate and
    // /admin/report; `rec` serves POST /admin/reconcile[?repair=1&user=ID...] and
    // GET /admin/reconcile. A path that exists answers another method with 405 and Allow.
    admin_server(const config::config& cfg, metrics& m, mirror& mir, shadow& sh, const gate& g,
                 reconcile_job& rec);
    ~admin_server();
    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    std::uint16_t port() const;
    void start();
    void stop();  // idempotent

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sg::proxy
