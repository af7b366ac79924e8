// proxy/net/server: the client-facing listener. Accepts connections, reads requests within the
// configured limits, forwards each to the v1 upstream over pooled keep-alive connections and
// writes v1's answer back unchanged. Beast and Asio stay behind this header (pimpl) so that only
// the net/ files behind it (server, session, upstream) pay for them at compile time.
#pragma once

#include "config/config.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/routing/router.hpp"
#include "proxy/routing/sinks.hpp"

#include <chrono>
#include <cstdint>
#include <memory>

namespace sg::proxy {

class server {
public:
    // Resolves the upstream and binds the listen address. Throws std::runtime_error when either
    // fails: that is a start-up error, reported once and fatal. Each request is decided by
    // `router`; once its answer has been sent it is reported to the sinks its decision names.
    // Both outlive the server.
    server(const config::config& cfg, metrics& m, const routing::router& router,
           routing::sinks sinks);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // The bound port (the OS's choice when the config says 0).
    std::uint16_t port() const;

    // Starts the worker threads; returns at once.
    void start();

    // Stops accepting, closes idle keep-alive connections and pooled upstream connections, and
    // lets requests in flight finish (their responses carry "Connection: close").
    void begin_drain();

    // Waits until every client connection is closed or `deadline` passes; true when drained.
    bool wait_drained(std::chrono::milliseconds deadline);

    // Stops the workers (abandoning whatever is still running) and joins them. Idempotent.
    void stop();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace sg::proxy
