// proxy/net/server: client sessions and the upstream exchange, as Asio coroutines. Each worker
// thread runs its own single-threaded io_context, so a connection (and its upstream pool) lives on
// one thread: the io_context is the connection's strand and the pool needs no lock.
//
// The hot path is kept lean on purpose (see tests/bench): Beast's parser is fed by hand from a
// buffer the connection keeps, headers are serialized once and written with the body in one
// gather write, sockets and awaitables use the concrete io_context executor (no type erasure),
// and deadlines are plain stores swept by one timer per worker instead of a timer per operation.
#include "proxy/net/server.hpp"

#include "adapters/v1/request_ids.hpp"
#include "adapters/v1/routes.hpp"
#include "proxy/common/task_failure.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/net/http_read.hpp"
#include "proxy/net/http_rules.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sg::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using executor_t = asio::io_context::executor_type;
using socket_t = asio::basic_stream_socket<tcp, executor_t>;
using acceptor_t = asio::basic_socket_acceptor<tcp, executor_t>;
using timer_t = asio::basic_waitable_timer<steady, asio::wait_traits<steady>, executor_t>;
template <class T>
using task = asio::awaitable<T, executor_t>;
using request_t = http::request<http::string_body>;
using response_t = http::response<http::string_body>;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable_t<executor_t>{});
constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::size_t upstream_header_limit = 64 * 1024;
constexpr std::size_t read_chunk = 16 * 1024;
// How often a worker looks for expired deadlines: the precision of every timeout.
constexpr std::chrono::milliseconds sweep_interval{50};

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

// A connection to the upstream; keeps the open-connections gauge honest however it dies.
struct upstream_conn {
    upstream_conn(socket_t s, metrics& m) : socket(std::move(s)), m_(m) {
        m_.open_upstream_connections.fetch_add(1, relaxed);
    }
    ~upstream_conn() { m_.open_upstream_connections.fetch_sub(1, relaxed); }
    upstream_conn(const upstream_conn&) = delete;
    upstream_conn& operator=(const upstream_conn&) = delete;

    socket_t socket;
    beast::flat_buffer buffer;  // kept with the connection: its capacity is reused
    steady::time_point idle_since{};

private:
    metrics& m_;
};
using conn_ptr = std::unique_ptr<upstream_conn>;

// True when a pooled connection still looks usable: no EOF, no error, no stray bytes waiting.
bool looks_alive(socket_t& s) {
    char c;
    ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// A connection's current deadline. Setting one is a store; the worker's sweep cancels the
// operations of `target` once `deadline` has passed and marks the watch timed out.
struct deadline_watch {
    socket_t* target = nullptr;
    steady::time_point deadline = steady::time_point::max();
    bool timed_out = false;
    bool idle = false;  // waiting for the next request: a drain may close it
    std::size_t slot = 0;

    void arm(socket_t& s, steady::time_point at) {
        target = &s;
        deadline = at;
        timed_out = false;
    }
    void disarm() {
        target = nullptr;
        deadline = steady::time_point::max();
    }
};

struct upstream_result {
    std::optional<response_t> response;
    upstream_error error = upstream_error::bad_response;
};

struct acquire_result {
    conn_ptr conn;
    bool reused = false;
    upstream_error error = upstream_error::connect_refused;
};

upstream_error classify_exchange_error(const beast::error_code& ec, bool timed_out) {
    if (timed_out) return upstream_error::response_timeout;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe || ec == asio::error::connection_aborted) {
        return upstream_error::connection_lost;
    }
    return upstream_error::bad_response;
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

// An io_context whose pending work can be destroyed before its owner's other members are.
struct owned_context : asio::io_context {
    using asio::io_context::io_context;
    void destroy_pending() { shutdown(); }  // idempotent; the destructor calls it again
};

// One thread, one io_context, one upstream pool, one deadline sweep.
struct worker {
    worker(const config::config& c, metrics& mm, const std::vector<tcp::endpoint>& upstream,
           const routing::router& r, routing::sinks s)
        : cfg(c),
          m(mm),
          upstream_endpoints(upstream),
          router(r),
          sinks(s),
          rng(std::random_device{}()) {}
    // Sessions still suspended when the loop stopped (the shutdown grace ran out) are coroutine
    // frames owned by the io_context; their destructors unwatch and release into this worker,
    // so they go first, while `watches` and `pool` still exist.
    ~worker() { ioc.destroy_pending(); }
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    const config::config& cfg;
    metrics& m;
    owned_context ioc{1};
    asio::executor_work_guard<executor_t> guard{ioc.get_executor()};
    const std::vector<tcp::endpoint>& upstream_endpoints;
    const routing::router& router;
    routing::sinks sinks;
    std::vector<conn_ptr> pool;               // idle upstream connections, LIFO
    std::vector<deadline_watch*> watches;     // one per open client connection
    bool draining = false;
    std::mt19937_64 rng;
    worker_thread thread;
    // Faults a test can switch on (env SHADOWGATE_TEST_FAULTS, comma-separated; main logs a
    // warning when it is set): `session_throw` makes a request for throw_target throw out of
    // its session, to show that the barrier logs and counts it; `sweep_throw` makes a request for
    // sweep_target arm this worker's deadline sweep to throw at its next tick (an essential
    // task: the service drains and exits 1). Nothing else reads these.
    struct fault_switches {
        static constexpr std::string_view throw_target = "/_shadowgate_test/throw";
        static constexpr std::string_view sweep_target = "/_shadowgate_test/throw-sweep";
        bool session_throw = false;
        bool sweep_throw = false;
    };
    static fault_switches read_test_faults() {
        fault_switches f;
        if (const char* env = std::getenv("SHADOWGATE_TEST_FAULTS")) {
            f.session_throw = std::string_view(env).find("session_throw") != std::string_view::npos;
            f.sweep_throw = std::string_view(env).find("sweep_throw") != std::string_view::npos;
        }
        return f;
    }
    const fault_switches test_faults = read_test_faults();
    bool sweep_armed_to_throw = false;  // sweep_throw, armed by a request on this worker

    void watch(deadline_watch& w) {
        w.slot = watches.size();
        watches.push_back(&w);
    }
    void unwatch(deadline_watch& w) {
        watches[w.slot] = watches.back();
        watches[w.slot]->slot = w.slot;
        watches.pop_back();
    }
    static steady::time_point after(std::chrono::milliseconds d) { return steady::now() + d; }

    task<void> sweep();
    task<acquire_result> acquire(deadline_watch& dw, bool probe_pooled);
    void release(conn_ptr c);
    task<upstream_result> exchange(deadline_watch& dw, request_t& req, bool head);
    task<void> session(socket_t socket);
    task<bool> handle_one(socket_t& client, deadline_watch& dw, beast::flat_buffer& buf,
                          const std::string& client_ip, steady::time_point first_byte);
    task<bool> write_response(socket_t& client, deadline_watch& dw, response_t& res);
    task<bool> send_own(socket_t& client, deadline_watch& dw, unsigned version, unsigned status,
                        std::string body, const std::string& request_id, bool keep_alive);
    task<void> linger(socket_t& client, deadline_watch& dw);
    void drain();
};

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
        beast::error_code rec = co_await read_message(conn.socket, conn.buffer, parser, false,
                                                         upstream_header_limit);
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

task<bool> worker::write_response(socket_t& client, deadline_watch& dw, response_t& res) {
    const std::string res_head = serialize_head(res);
    dw.arm(client, after(cfg.proxy.limits.request_timeout));
    std::array<asio::const_buffer, 2> wire{asio::buffer(res_head), asio::buffer(res.body())};
    auto [ec, n] = co_await asio::async_write(client, wire, nothrow);
    dw.disarm();
    if (ec) m.client_write_errors.fetch_add(1, relaxed);
    co_return !ec;
}

task<bool> worker::send_own(socket_t& client, deadline_watch& dw, unsigned version,
                            unsigned status, std::string body, const std::string& request_id,
                            bool keep_alive) {
    response_t res{static_cast<http::status>(status), version};
    res.set(http::field::content_type, "application/json");
    if (!request_id.empty()) res.set("X-Request-Id", request_id);
    res.body() = std::move(body);
    res.keep_alive(keep_alive && !draining);
    res.content_length(res.body().size());
    bool ok = co_await write_response(client, dw, res);
    co_return ok && res.keep_alive();
}

// Reads one request, forwards it, writes the answer. Returns whether the connection may carry
// another request.
task<bool> worker::handle_one(socket_t& client, deadline_watch& dw, beast::flat_buffer& buf,
                              const std::string& client_ip, steady::time_point first_byte) {
    const auto t0 = steady::now();
    const auto& limits = cfg.proxy.limits;
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits.body_limit_bytes);

    // The whole request must arrive within request_timeout of its first byte (slowloris).
    dw.arm(client, first_byte + limits.request_timeout);
    beast::error_code ec = co_await read_message(client, buf, parser, /*header_only=*/true,
                                                limits.header_limit_bytes);
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
    v1::route route = v1::classify(std::string_view(req.method_string()),
                                   std::string_view(req.target()));
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
        bool keep = co_await send_own(client, dw, client_version, 400, std::move(body),
                                      request_id, client_keep_alive);
        m.count_request(route.ep, 400, seconds_since(t0));
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
        asio::co_spawn(wp->ioc, wp->sweep(), on_task_end(process_task_failures(), task_kind::sweep));
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
