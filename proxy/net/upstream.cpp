// proxy/net/upstream: the worker's upstream pool and the exchange with v1 (connect or reuse,
// write the request, read the answer), retried once where that is safe.
#include "proxy/net/server_internal.hpp"

#include "proxy/net/http_read.hpp"
#include "proxy/net/http_rules.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <memory>
#include <string>

namespace sg::proxy {

using namespace server_detail;

namespace {

constexpr std::size_t upstream_header_limit = 64 * 1024;

// True when a pooled connection still looks usable: no EOF, no error, no stray bytes waiting.
bool looks_alive(socket_t& s) {
    char c;
    ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

upstream_error classify_exchange_error(const beast::error_code& ec, bool timed_out) {
    if (timed_out) return upstream_error::response_timeout;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe || ec == asio::error::connection_aborted) {
        return upstream_error::connection_lost;
    }
    return upstream_error::bad_response;
}

}  // namespace

// probe_pooled: check a pooled connection with a non-blocking peek before using it. Requests that
// may be resent (GET, HEAD...) skip that syscall, since a dead connection only costs them a retry;
// writes pay it, because a write that meets a connection v1 closed (say, v1 restarted) cannot be
// resent and would turn into a 502.
task<acquire_result> worker::acquire(deadline_watch& dw, bool probe_pooled) {
    const auto max_idle = cfg.v1.idle_keepalive;
    while (!pool.empty()) {
        conn_ptr c = std::move(pool.back());
        pool.pop_back();
        if (steady::now() - c->idle_since > max_idle) {
            m.upstream_dropped_idle.fetch_add(1, relaxed);
            continue;  // closed by the destructor
        }
        if (probe_pooled && !looks_alive(c->socket)) {
            m.upstream_dropped_stale.fetch_add(1, relaxed);
            continue;
        }
        m.upstream_reuses.fetch_add(1, relaxed);
        acquire_result r;
        r.conn = std::move(c);
        r.reused = true;
        co_return r;
    }
    socket_t s(ioc);
    dw.arm(s, after(cfg.v1.connect_timeout));
    auto [ec, ep] = co_await asio::async_connect(s, upstream_endpoints, nothrow);
    const bool timed_out = dw.timed_out;
    dw.disarm();
    acquire_result r;
    if (ec) {
        r.error = timed_out ? upstream_error::connect_timeout : upstream_error::connect_refused;
        co_return r;
    }
    beast::error_code ignored;
    s.set_option(tcp::no_delay(true), ignored);
    m.upstream_connects.fetch_add(1, relaxed);
    r.conn = std::make_unique<upstream_conn>(std::move(s), m);
    co_return r;
}

void worker::release(conn_ptr c) {
    if (draining || pool.size() >= cfg.v1.max_idle_per_thread) return;
    c->idle_since = steady::now();
    pool.push_back(std::move(c));
}

task<upstream_result> worker::exchange(deadline_watch& dw, request_t& req, bool head) {
    const bool may_retry = safe_to_retry(req.method());
    const std::string req_head = serialize_head(req);
    for (int attempt = 0;; ++attempt) {
        acquire_result a = co_await acquire(dw, !may_retry);
        upstream_result out;
        if (!a.conn) {
            out.error = a.error;
            co_return out;
        }
        upstream_conn& conn = *a.conn;
        dw.arm(conn.socket, after(cfg.v1.response_timeout));
        std::array<asio::const_buffer, 2> wire{asio::buffer(req_head), asio::buffer(req.body())};
        auto [wec, wn] = co_await asio::async_write(conn.socket, wire, nothrow);
        if (wec) {
            dw.disarm();
            // A write that failed never delivered a whole request, so resending is safe for
            // any method; only a reused connection gets that second chance.
            if (a.reused && attempt == 0 && !dw.timed_out) {
                m.upstream_retries.fetch_add(1, relaxed);
                continue;
            }
            out.error = classify_exchange_error(wec, dw.timed_out);
            co_return out;
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(cfg.proxy.limits.upstream_body_limit_bytes);
        parser.eager(true);
        if (head) parser.skip(true);
        conn.buffer.consume(conn.buffer.size());
        beast::error_code rec =
            co_await read_message(conn.socket, conn.buffer, parser, false, upstream_header_limit);
        const bool timed_out = dw.timed_out;
        dw.disarm();
        if (rec) {
            const bool nothing_back = !parser.got_some();
            if (a.reused && attempt == 0 && may_retry && nothing_back && !timed_out) {
                m.upstream_retries.fetch_add(1, relaxed);
                continue;
            }
            out.error = classify_exchange_error(rec, timed_out);
            co_return out;
        }
        // Stray bytes after a complete answer mean the framing can't be trusted: don't reuse.
        // Nor after a 5xx: a server failing may close the connection right after its answer
        // without a `Connection: close` (uvicorn does after an unhandled exception), and a write
        // sent on it in that moment is lost with the connection.
        const bool failed = parser.get().result_int() >= 500;
        const bool reusable =
            parser.keep_alive() && !parser.need_eof() && conn.buffer.size() == 0 && !failed;
        if (failed) m.upstream_dropped_5xx.fetch_add(1, relaxed);
        out.response.emplace(parser.release());
        if (reusable) release(std::move(a.conn));
        co_return out;
    }
}

}  // namespace sg::proxy
