// proxy/net/server: client sessions and the upstream exchange, as Asio coroutines. Each worker
// thread runs its own single-threaded io_context, so a connection (and its upstream pool) lives on
// one thread: the io_context is the connection's strand and the pool needs no lock.
//
// The hot path is kept lean on purpose (see tests/bench): Beast's parser is fed by hand from a
// buffer the connection keeps, headers are serialized once and written with the body in one
// gather write, sockets and awaitables use the concrete io_context executor (no type erasure),
// and deadlines are plain stores swept by one timer per worker instead of a timer per operation.
//
// This file holds the listener, the workers' deadline sweep and drain, and server's public
// methods; client sessions are in session.cpp, the upstream pool and exchange in upstream.cpp,
// and what they share (the worker) in server_internal.hpp.
#include "proxy/net/server.hpp"

#include "proxy/common/task_failure.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/net/server_internal.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sg::proxy {

using namespace server_detail;

namespace {

// How often a worker looks for expired deadlines: the precision of every timeout.
constexpr std::chrono::milliseconds sweep_interval{50};

}  // namespace

task<void> worker::sweep() {
    timer_t timer(ioc);
    for (;;) {
        timer.expires_after(sweep_interval);
        auto [ec] = co_await timer.async_wait(nothrow);
        if (ec) co_return;
        if (sweep_armed_to_throw) {
            throw std::runtime_error("test fault: the sweep threw (SHADOWGATE_TEST_FAULTS)");
        }
        const auto now = steady::now();
        for (auto* w : watches) {
            if (w->deadline > now) continue;
            w->deadline = steady::time_point::max();
            w->timed_out = true;
            beast::error_code ignored;
            if (w->target) w->target->cancel(ignored);
        }
    }
}

void worker::drain() {
    draining = true;
    pool.clear();
    for (auto* w : watches) {
        beast::error_code ignored;
        if (w->idle && w->target) w->target->cancel(ignored);
    }
}

struct server::impl {
    impl(const config::config& c, metrics& mm) : cfg(c), m(mm) {}

    const config::config& cfg;
    metrics& m;
    std::vector<tcp::endpoint> upstream_endpoints;
    std::vector<std::unique_ptr<worker>> workers;
    std::unique_ptr<acceptor_t> acceptor;  // lives on workers[0]
    std::size_t next_worker = 0;
    std::atomic<bool> stopped{false};

    task<void> accept_loop();
};

task<void> server::impl::accept_loop() {
    timer_t backoff(workers[0]->ioc);
    for (;;) {
        worker& target = *workers[next_worker++ % workers.size()];
        auto [ec, socket] = co_await acceptor->async_accept(target.ioc.get_executor(), nothrow);
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        if (ec) {
            // EMFILE and friends: count, pause briefly instead of spinning.
            m.accept_errors.fetch_add(1, relaxed);
            backoff.expires_after(std::chrono::milliseconds(20));
            co_await backoff.async_wait(nothrow);
            continue;
        }
        m.accepted_connections.fetch_add(1, relaxed);
        if (static_cast<std::size_t>(m.open_client_connections.load(relaxed)) >=
            cfg.proxy.limits.max_connections) {
            m.count(reject_reason::max_connections);
            beast::error_code ignored;
            socket.close(ignored);
            continue;
        }
        asio::co_spawn(target.ioc, target.session(std::move(socket)),
                       on_task_end(process_task_failures(), task_kind::session));
    }
}

server::server(const config::config& cfg, metrics& m, const routing::router& router,
               routing::sinks sinks)
    : impl_(std::make_unique<impl>(cfg, m)) {
    int threads = cfg.proxy.threads > 0 ? cfg.proxy.threads
                                        : static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;

    asio::io_context resolve_ctx;
    tcp::resolver resolver(resolve_ctx);
    beast::error_code ec;
    auto results = resolver.resolve(cfg.v1.address.host, std::to_string(cfg.v1.address.port), ec);
    if (ec) {
        throw std::runtime_error("cannot resolve upstream " + cfg.v1.address.host + ": " +
                                 ec.message());
    }
    for (const auto& r : results) impl_->upstream_endpoints.push_back(r.endpoint());

    for (int i = 0; i < threads; ++i) {
        impl_->workers.push_back(
            std::make_unique<worker>(cfg, m, impl_->upstream_endpoints, router, sinks));
    }

    auto listen_results =
        resolver.resolve(cfg.proxy.listen.host, std::to_string(cfg.proxy.listen.port), ec);
    if (ec || listen_results.empty()) {
        throw std::runtime_error("cannot resolve listen address " + cfg.proxy.listen.host);
    }
    tcp::endpoint ep = listen_results.begin()->endpoint();
    auto acc = std::make_unique<acceptor_t>(impl_->workers[0]->ioc);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        throw std::runtime_error("cannot listen on " + cfg.proxy.listen.host + ":" +
                                 std::to_string(cfg.proxy.listen.port) + ": " + ec.message());
    }
    impl_->acceptor = std::move(acc);
}

server::~server() { stop(); }

std::uint16_t server::port() const {
    beast::error_code ec;
    return impl_->acceptor->local_endpoint(ec).port();
}

void server::start() {
    asio::co_spawn(impl_->workers[0]->ioc, impl_->accept_loop(),
                   on_task_end(process_task_failures(), task_kind::accept_loop));
    for (auto& w : impl_->workers) {
        worker* wp = w.get();
        asio::co_spawn(wp->ioc, wp->sweep(),
                       on_task_end(process_task_failures(), task_kind::sweep));
        w->thread.start("sg-proxy", task_kind::worker_thread,
                        [wp](const std::stop_token&) { wp->ioc.run(); });
    }
}

void server::begin_drain() {
    auto* acceptor = impl_->acceptor.get();
    asio::post(impl_->workers[0]->ioc, [acceptor] {
        beast::error_code ec;
        acceptor->close(ec);
    });
    for (auto& w : impl_->workers) {
        worker* wp = w.get();
        asio::post(wp->ioc, [wp] { wp->drain(); });
    }
}

bool server::wait_drained(std::chrono::milliseconds deadline) {
    const auto until = steady::now() + deadline;
    while (impl_->m.open_client_connections.load(relaxed) > 0) {
        if (steady::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

void server::stop() {
    if (impl_->stopped.exchange(true)) return;
    for (auto& w : impl_->workers) {
        w->guard.reset();
        w->ioc.stop();
    }
    for (auto& w : impl_->workers) w->thread.join();
}

}  // namespace sg::proxy
