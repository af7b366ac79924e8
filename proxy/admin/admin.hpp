// proxy/admin/admin: the operator's listener (loopback by default): /healthz, /readyz, /metrics,
// and token-protected /admin/* endpoints. It runs on its own thread so that a scrape or a slow
// admin client never competes with the proxy's workers.
#pragma once

#include "config/config.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/control/control_plane.hpp"
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
    // /metrics is the exposition of `reg`, after `m`, the modules and the gate refreshed the
    // series they read from their state.
    // `mir`, while active (the stage mirrors), serves GET /admin/mirror and
    // POST /admin/mirror/retry[?user=ID].
    // `sh`, while active (the stage compares), serves GET /admin/shadow and
    // GET /admin/discrepancies?endpoint=&limit=.
    // `g` (the cutover gate) serves GET /admin/gate and /admin/report; `rec` serves
    // POST /admin/reconcile[?repair=1&user=ID...] and GET /admin/reconcile. A path that exists
    // answers another method with 405 and Allow.
    // `ctl` (the control plane) serves GET /admin/stage, GET /admin/stage/history?limit=,
    // POST /admin/stage, /admin/freeze and /admin/unfreeze; the changes run on its thread.
    admin_server(const config::config& cfg, const prometheus::Registry& reg, const metrics& m,
                 mirror& mir, shadow& sh, const gate& g, reconcile_job& rec,
                 control::control_plane& ctl);
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
