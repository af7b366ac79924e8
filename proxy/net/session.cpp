// proxy/net/session: client sessions: reading each request within the limits, classifying and
// deciding it, forwarding it upstream, answering the client, and the lingering close.
#include "proxy/net/server_internal.hpp"

#include "adapters/v1/request_ids.hpp"
#include "adapters/v1/routes.hpp"
#include "proxy/net/http_read.hpp"
#include "proxy/net/http_rules.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sg::proxy {

using namespace server_detail;

namespace {

constexpr std::size_t read_chunk = 16 * 1024;

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

struct read_failure {
    unsigned status;
    reject_reason reason;
    std::string_view code;
    std::string_view detail;
};

// How to answer a request that could not be read; nullopt: the client is gone, just close.
std::optional<read_failure> classify_read_error(const beast::error_code& ec, bool timed_out) {
    if (timed_out) {
        return read_failure{408, reject_reason::request_timeout, "request_timeout",
                            "the request did not arrive completely in time"};
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == http::error::partial_message || ec == asio::error::broken_pipe) {
        return std::nullopt;
    }
    if (ec == http::error::header_limit) {
        return read_failure{431, reject_reason::header_too_large, "header_too_large",
                            "request header fields exceed the configured limit"};
    }
    if (ec == http::error::body_limit) {
        return read_failure{413, reject_reason::body_too_large, "body_too_large",
                            "request body exceeds the configured limit"};
    }
    return read_failure{400, reject_reason::bad_request, "bad_request",
                        "the request is not valid HTTP/1.1"};
}

bool has_no_body(unsigned status) {
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

}  // namespace

task<bool> worker::write_response(socket_t& client, deadline_watch& dw, response_t& res) {
    const std::string res_head = serialize_head(res);
    dw.arm(client, after(cfg.proxy.limits.request_timeout));
    std::array<asio::const_buffer, 2> wire{asio::buffer(res_head), asio::buffer(res.body())};
    auto [ec, n] = co_await asio::async_write(client, wire, nothrow);
    dw.disarm();
    if (ec) m.client_write_errors.fetch_add(1, relaxed);
    co_return !ec;
}

task<bool> worker::send_own(socket_t& client, deadline_watch& dw, unsigned version, unsigned status,
                            std::string body, const std::string& request_id, bool keep_alive,
                            std::uint32_t retry_after_s) {
    response_t res{static_cast<http::status>(status), version};
    res.set(http::field::content_type, "application/json");
    if (retry_after_s != 0) res.set(http::field::retry_after, std::to_string(retry_after_s));
    if (!request_id.empty()) res.set("X-Request-Id", request_id);
    res.body() = std::move(body);
    res.keep_alive(keep_alive && !draining);
    res.content_length(res.body().size());
    bool ok = co_await write_response(client, dw, res);
    co_return ok&& res.keep_alive();
}

// GCC 12 inlines Asio's frame allocator (aligned_new) into this coroutine once it is in a file
// of its own, and then reports the matching delete as mismatched: the false positive that
// http_fetch.cpp silences for its exchange. Scoped to this one function.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
// Reads one request, forwards it, writes the answer. Returns whether the connection may carry
// another request.
// Stays one coroutine: its steps share a dozen locals; a split adds frames on the hot path.
task<bool> worker::handle_one(socket_t& client, deadline_watch& dw, beast::flat_buffer& buf,
                              const std::string& client_ip, steady::time_point first_byte) {
    const auto t0 = steady::now();
    const auto& limits = cfg.proxy.limits;
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits.body_limit_bytes);

    // The whole request must arrive within request_timeout of its first byte (slowloris).
    dw.arm(client, first_byte + limits.request_timeout);
    beast::error_code ec =
        co_await read_message(client, buf, parser, /*header_only=*/true, limits.header_limit_bytes);
    if (!ec && !parser.is_done()) {
        auto& head = parser.get();
        auto expect = head.find(http::field::expect);
        if (expect != head.end() && beast::iequals(expect->value(), "100-continue")) {
            // Answer the interim response ourselves so v1 never sees Expect (the body comes
            // to us first, within the limits above).
            static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
            auto cont_buf = asio::buffer(cont.data(), cont.size());
            auto [cec, cn] = co_await asio::async_write(client, cont_buf, nothrow);
            if (cec) co_return false;
        }
        parser.eager(true);
        ec = co_await read_message(client, buf, parser, /*header_only=*/false,
                                   limits.header_limit_bytes);
    }
    const bool read_timed_out = dw.timed_out;
    dw.disarm();
    if (ec) {
        auto failure = classify_read_error(ec, read_timed_out);
        if (!failure) {
            if (parser.got_some()) m.client_read_aborts.fetch_add(1, relaxed);
            co_return false;
        }
        m.count(failure->reason);
        std::string id = make_request_id(rng);
        unsigned version = parser.is_header_done() ? parser.get().version() : 11;
        std::string body = error_body(failure->code, failure->detail, id);
        co_await send_own(client, dw, version, failure->status, std::move(body), id, false);
        m.count_request(v1::endpoint::passthrough, failure->status, seconds_since(t0));
        co_return false;
    }

    request_t req = parser.release();
    const unsigned client_version = req.version();
    const bool client_keep_alive = req.keep_alive();
    const bool head = req.method() == http::verb::head;
    const bool body_framed = req.chunked() || req.has_content_length();
    const auto form = normalise_target(req.method_string(), req.target());
    if (form.problem.empty() && !form.authority.empty()) {
        req.target(form.origin);
        req.set(http::field::host, form.authority);  // RFC 9112 §3.2.2: the target's wins
    }
    if (test_faults.session_throw && req.target() == fault_switches::throw_target) {
        throw std::runtime_error("test fault: a session threw (SHADOWGATE_TEST_FAULTS)");
    }
    if (test_faults.sweep_throw && req.target() == fault_switches::sweep_target) {
        sweep_armed_to_throw = true;
    }
    v1::route route =
        v1::classify(std::string_view(req.method_string()), std::string_view(req.target()));
    if (!route.hostile_reason) route.hostile_reason = v1::body_problem(route.ep, req.body());
    const routing::decision decided = router.decide(route);

    // Before Connection could name Host.
    const auto bad_host =
        form.problem.empty() ? host_problem(req) : std::optional<std::string>(form.problem);
    strip_hop_by_hop(req);
    req.erase(http::field::expect);
    append_forwarded_for(req, client_ip);
    const std::string request_id = ensure_request_id(req, rng);

    if (bad_host) {
        m.count(reject_reason::bad_request);
        std::string body = error_body("bad_request", *bad_host, request_id);
        co_await send_own(client, dw, client_version, 400, std::move(body), request_id, false);
        m.count_request(route.ep, 400, seconds_since(t0));
        co_return false;
    }

    if (route.hostile_reason && cfg.proxy.reject_hostile_paths) {
        m.count(reject_reason::hostile_path);
        std::string body = error_body("hostile_path", *route.hostile_reason, request_id);
        bool keep = co_await send_own(client, dw, client_version, 400, std::move(body), request_id,
                                      client_keep_alive);
        m.count_request(route.ep, 400, seconds_since(t0));
        co_return keep;
    }

    if (decided.frozen) {
        // The freeze window of a cutover: the write never reaches v1, and the client is told when
        // to come back. Reads are served as usual.
        m.count(reject_reason::frozen);
        std::string body = error_body(
            "frozen", "writes are frozen for a cutover; retry after the window ends", request_id);
        bool keep = co_await send_own(client, dw, client_version, 503, std::move(body), request_id,
                                      client_keep_alive, decided.retry_after_s);
        m.count_request(route.ep, 503, seconds_since(t0));
        co_return keep;
    }

    if (req.find(http::field::host) == req.end()) {
        req.set(http::field::host, cfg.v1.address.host + ":" + std::to_string(cfg.v1.address.port));
    }
    req.version(11);
    // A chunked body was de-chunked while reading: announce its length instead.
    if (body_framed) req.content_length(req.body().size());

    const auto t_up = steady::now();
    upstream_result up = co_await exchange(dw, req, head);
    const double upstream_seconds = seconds_since(t_up);
    m.upstream_seconds[static_cast<std::size_t>(route.ep)].observe(upstream_seconds);

    if (!up.response) {
        m.count(up.error);
        const bool timeout = up.error == upstream_error::connect_timeout ||
                             up.error == upstream_error::response_timeout;
        const unsigned status = timeout ? 504 : 502;
        std::string detail = cfg.v1.name + ": " + std::string(name(up.error));
        std::string body =
            error_body(timeout ? "upstream_timeout" : "upstream_error", detail, request_id);
        bool keep = co_await send_own(client, dw, client_version, status, std::move(body),
                                      request_id, client_keep_alive);
        m.count_request(route.ep, status, seconds_since(t0));
        co_return keep;
    }

    response_t& res = *up.response;
    const unsigned status = res.result_int();
    const bool bodiless = head || has_no_body(status);
    strip_hop_by_hop(res, /*keep_framing=*/bodiless);
    res.version(client_version);
    res.keep_alive(client_keep_alive && !draining);
    if (!bodiless) res.content_length(res.body().size());

    const bool sent = co_await write_response(client, dw, res);
    // After the answer went out (or the client left: v1 made the change all the same).
    if (decided.mirrored) sinks.writes.written(route, status, res.body());
    if (decided.compared && sinks.reads.wants(route, std::string_view(req.method_string()))) {
        routing::read_answer job;
        job.route = route;
        job.target = std::string(req.target());
        for (const auto& f : req) {
            if (f.name() == http::field::content_length) continue;
            job.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        }
        job.request_id = request_id;
        job.v1_status = status;
        job.v1_body = std::move(res.body());  // already sent
        job.v1_seconds = upstream_seconds;
        sinks.reads.offer(std::move(job));
    }
    if (!sent) {
        m.count_request(route.ep, 0, seconds_since(t0));
        co_return false;
    }
    m.count_request(route.ep, status, seconds_since(t0));
    co_return res.keep_alive();
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

task<void> worker::session(socket_t client) {
    m.open_client_connections.fetch_add(1, relaxed);
    deadline_watch dw;
    watch(dw);
    struct session_guard {
        worker& w;
        deadline_watch& dw;
        ~session_guard() {
            w.unwatch(dw);
            w.m.open_client_connections.fetch_sub(1, relaxed);
        }
    } guard{*this, dw};

    beast::error_code ec;
    client.set_option(tcp::no_delay(true), ec);
    auto remote = client.remote_endpoint(ec);
    const std::string client_ip = ec ? std::string("unknown") : remote.address().to_string();

    beast::flat_buffer buf;
    const auto idle = cfg.proxy.limits.idle_timeout;
    // A connection that has sent nothing yet gets less time than one between requests (it costs
    // a slot and gives nothing; nginx's client_header_timeout does the same).
    const auto first = std::min(cfg.proxy.limits.first_byte_timeout, idle);
    bool peer_closed = false;
    bool fresh = true;
    while (!draining) {
        if (buf.size() == 0) {
            // Idle between requests: bounded by idle_timeout, and cancellable by a drain.
            dw.arm(client, after(fresh ? first : idle));
            dw.idle = true;
            auto [rec, n] = co_await client.async_read_some(buf.prepare(read_chunk), nothrow);
            dw.idle = false;
            const bool idle_timed_out = dw.timed_out;
            dw.disarm();
            if (rec) {
                if (idle_timed_out && !draining) {
                    (fresh ? m.client_timeouts_first_byte : m.client_timeouts_idle)
                        .fetch_add(1, relaxed);
                }
                peer_closed = rec == asio::error::eof;
                break;
            }
            buf.commit(n);
        }
        fresh = false;
        m.in_flight_requests.fetch_add(1, relaxed);
        bool keep = co_await handle_one(client, dw, buf, client_ip, steady::now());
        m.in_flight_requests.fetch_sub(1, relaxed);
        if (!keep) break;
    }
    client.shutdown(tcp::socket::shutdown_send, ec);
    if (!peer_closed && !draining) co_await linger(client, dw);
    client.close(ec);
}

// Lingering close: after our FIN, read and discard what the client still sends for a moment.
// Closing with unread input makes the kernel send RST, which can destroy the error response
// (408, 413, 431) the client has not read yet.
task<void> worker::linger(socket_t& client, deadline_watch& dw) {
    static constexpr std::size_t max_discard = 16 * 1024 * 1024;
    std::array<char, 16 * 1024> sink;
    std::size_t discarded = 0;
    dw.arm(client, after(std::chrono::seconds(2)));
    while (discarded < max_discard) {
        auto sink_buf = asio::buffer(sink);
        auto [ec, n] = co_await client.async_read_some(sink_buf, nothrow);
        if (ec) break;
        discarded += n;
    }
    dw.disarm();
}

}  // namespace sg::proxy
