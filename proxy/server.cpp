// proxy/server: client sessions and the upstream exchange, as Asio coroutines. Each worker thread
// runs its own single-threaded io_context, so a connection (and its upstream pool) lives on one
// thread: the io_context is the connection's strand and the pool needs no lock.
#include "proxy/server.hpp"

#include "adapters/v1/routes.hpp"
#include "proxy/http_rules.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

namespace sg::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using asio::awaitable;
using steady = std::chrono::steady_clock;
using request_t = http::request<http::string_body>;
using response_t = http::response<http::string_body>;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::size_t upstream_header_limit = 64 * 1024;

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

// A connection to the upstream; keeps the open-connections gauge honest however it dies.
struct upstream_conn {
    upstream_conn(beast::tcp_stream s, metrics& m) : stream(std::move(s)), m_(m) {
        m_.open_upstream_connections.fetch_add(1, relaxed);
    }
    ~upstream_conn() { m_.open_upstream_connections.fetch_sub(1, relaxed); }
    upstream_conn(const upstream_conn&) = delete;
    upstream_conn& operator=(const upstream_conn&) = delete;

    beast::tcp_stream stream;
    beast::flat_buffer buffer;  // kept with the connection: its capacity is reused
    steady::time_point idle_since{};

private:
    metrics& m_;
};
using conn_ptr = std::unique_ptr<upstream_conn>;

// True when a pooled connection still looks usable: no EOF, no error, no stray bytes waiting.
bool looks_alive(tcp::socket& s) {
    char c;
    ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

struct upstream_result {
    std::optional<response_t> response;
    upstream_error error = upstream_error::bad_response;
};

struct acquire_result {
    conn_ptr conn;
    bool reused = false;
    upstream_error error = upstream_error::connect_refused;
};

upstream_error classify_exchange_error(const beast::error_code& ec) {
    if (ec == beast::error::timeout) return upstream_error::response_timeout;
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
std::optional<read_failure> classify_read_error(const beast::error_code& ec) {
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
    if (ec == beast::error::timeout) {
        return read_failure{408, reject_reason::request_timeout, "request_timeout",
                            "the request did not arrive completely in time"};
    }
    return read_failure{400, reject_reason::bad_request, "bad_request",
                        "the request is not valid HTTP/1.1"};
}

bool has_no_body(unsigned status) {
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

}  // namespace

// One thread, one io_context, one upstream pool.
struct worker {
    worker(const config::config& c, metrics& mm, const std::vector<tcp::endpoint>& upstream)
        : cfg(c), m(mm), upstream_endpoints(upstream), rng(std::random_device{}()) {}

    const config::config& cfg;
    metrics& m;
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
    const std::vector<tcp::endpoint>& upstream_endpoints;
    std::vector<conn_ptr> pool;                          // idle upstream connections, LIFO
    std::unordered_set<beast::tcp_stream*> idle_clients;  // sessions waiting for a request
    bool draining = false;
    std::mt19937_64 rng;
    std::thread thread;

    awaitable<acquire_result> acquire(bool probe_pooled);
    void release(conn_ptr c);
    awaitable<upstream_result> exchange(request_t& req, bool head);
    awaitable<void> session(tcp::socket socket);
    awaitable<void> linger(beast::tcp_stream& stream);
    awaitable<bool> handle_one(beast::tcp_stream& stream, beast::flat_buffer& buf,
                               const std::string& client_ip);
    awaitable<bool> send_own(beast::tcp_stream& stream, unsigned version, unsigned status,
                             std::string body, const std::string& request_id, bool keep_alive);
    void drain();
};

// probe_pooled: check a pooled connection with a non-blocking peek before using it. Requests that
// may be resent (GET, HEAD...) skip that syscall, since a dead connection only costs them a retry;
// writes pay it, because a write that meets a connection v1 closed (say, v1 restarted) cannot be
// resent and would turn into a 502.
awaitable<acquire_result> worker::acquire(bool probe_pooled) {
    const auto max_idle = cfg.v1.idle_keepalive;
    while (!pool.empty()) {
        conn_ptr c = std::move(pool.back());
        pool.pop_back();
        if (steady::now() - c->idle_since > max_idle ||
            (probe_pooled && !looks_alive(c->stream.socket()))) {
            continue;  // closed by the destructor
        }
        m.upstream_reuses.fetch_add(1, relaxed);
        acquire_result r;
        r.conn = std::move(c);
        r.reused = true;
        co_return r;
    }
    beast::tcp_stream s(ioc);
    s.expires_after(cfg.v1.connect_timeout);
    auto [ec, ep] = co_await s.async_connect(upstream_endpoints, nothrow);
    acquire_result r;
    if (ec) {
        r.error = ec == beast::error::timeout ? upstream_error::connect_timeout
                                              : upstream_error::connect_refused;
        co_return r;
    }
    beast::error_code ignored;
    s.socket().set_option(tcp::no_delay(true), ignored);
    m.upstream_connects.fetch_add(1, relaxed);
    r.conn = std::make_unique<upstream_conn>(std::move(s), m);
    co_return r;
}

void worker::release(conn_ptr c) {
    if (draining || pool.size() >= cfg.v1.max_idle_per_thread) return;
    c->stream.expires_never();
    c->idle_since = steady::now();
    pool.push_back(std::move(c));
}

awaitable<upstream_result> worker::exchange(request_t& req, bool head) {
    const bool may_retry = safe_to_retry(req.method());
    for (int attempt = 0;; ++attempt) {
        acquire_result a = co_await acquire(!may_retry);
        upstream_result out;
        if (!a.conn) {
            out.error = a.error;
            co_return out;
        }
        auto& stream = a.conn->stream;
        stream.expires_after(cfg.v1.response_timeout);
        auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
        if (wec) {
            // A write that failed never delivered a whole request, so resending is safe for
            // any method; only a reused connection gets that second chance.
            if (a.reused && attempt == 0) {
                m.upstream_retries.fetch_add(1, relaxed);
                continue;
            }
            out.error = classify_exchange_error(wec);
            co_return out;
        }
        http::response_parser<http::string_body> parser;
        parser.header_limit(upstream_header_limit);
        parser.body_limit(cfg.proxy.limits.upstream_body_limit_bytes);
        if (head) parser.skip(true);
        auto& ubuf = a.conn->buffer;
        ubuf.consume(ubuf.size());
        auto [rec, rn] = co_await http::async_read(stream, ubuf, parser, nothrow);
        if (rec) {
            const bool nothing_back = !parser.got_some() && ubuf.size() == 0;
            if (a.reused && attempt == 0 && may_retry && nothing_back &&
                rec != beast::error::timeout) {
                m.upstream_retries.fetch_add(1, relaxed);
                continue;
            }
            out.error = classify_exchange_error(rec);
            co_return out;
        }
        out.response.emplace(parser.release());
        // Stray bytes after a complete answer mean the framing can't be trusted: don't reuse.
        if (out.response->keep_alive() && ubuf.size() == 0) release(std::move(a.conn));
        co_return out;
    }
}

awaitable<bool> worker::send_own(beast::tcp_stream& stream, unsigned version, unsigned status,
                                 std::string body, const std::string& request_id,
                                 bool keep_alive) {
    response_t res{static_cast<http::status>(status), version};
    res.set(http::field::content_type, "application/json");
    if (!request_id.empty()) res.set("X-Request-Id", request_id);
    res.body() = std::move(body);
    res.keep_alive(keep_alive && !draining);
    res.prepare_payload();
    stream.expires_after(cfg.proxy.limits.request_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, nothrow);
    if (ec) m.client_write_errors.fetch_add(1, relaxed);
    co_return !ec && res.keep_alive();
}

// Reads one request, forwards it, writes the answer. Returns whether the connection may carry
// another request.
awaitable<bool> worker::handle_one(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                   const std::string& client_ip) {
    const auto t0 = steady::now();
    const auto& limits = cfg.proxy.limits;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.header_limit_bytes));
    parser.body_limit(limits.body_limit_bytes);

    // The whole request must arrive within request_timeout (slowloris). tcp_stream's own expiry
    // would close the socket and lose the chance to answer 408, so a timer cancels the read
    // instead; its state is shared because the handler may run after this frame is gone.
    stream.expires_never();
    struct read_watch {
        tcp::socket* socket;  // cleared once reading is over: the handler must not touch it
        bool timed_out = false;
    };
    auto watch = std::make_shared<read_watch>(read_watch{&stream.socket()});
    asio::steady_timer read_deadline(ioc, limits.request_timeout);
    read_deadline.async_wait([watch](beast::error_code ec) {
        if (ec || watch->socket == nullptr) return;  // the request arrived in time
        watch->timed_out = true;
        beast::error_code ignored;
        watch->socket->cancel(ignored);
    });

    auto [hec, hn] = co_await http::async_read_header(stream, buf, parser, nothrow);
    if (!hec && !parser.is_done()) {
        auto& head = parser.get();
        auto expect = head.find(http::field::expect);
        if (expect != head.end() && beast::iequals(expect->value(), "100-continue")) {
            // Answer the interim response ourselves so v1 never sees Expect (the body comes
            // to us first, within the limits above).
            static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
            auto cont_buf = asio::buffer(cont.data(), cont.size());
            auto [cec, cn] = co_await asio::async_write(stream, cont_buf, nothrow);
            if (cec) co_return false;
        }
        auto [bec, bn] = co_await http::async_read(stream, buf, parser, nothrow);
        hec = bec;
    }
    watch->socket = nullptr;
    read_deadline.cancel();
    if (hec && watch->timed_out) hec = beast::error::timeout;
    if (hec) {
        auto failure = classify_read_error(hec);
        if (!failure) co_return false;
        m.count(failure->reason);
        std::string id = make_request_id(rng);
        unsigned version = parser.is_header_done() ? parser.get().version() : 11;
        std::string body = error_body(failure->code, failure->detail, id);
        co_await send_own(stream, version, failure->status, std::move(body), id, false);
        m.count_request(v1::endpoint::passthrough, failure->status, seconds_since(t0));
        co_return false;
    }

    request_t req = parser.release();
    const unsigned client_version = req.version();
    const bool client_keep_alive = req.keep_alive();
    const bool head = req.method() == http::verb::head;
    const v1::route route = v1::classify(std::string_view(req.method_string()),
                                         std::string_view(req.target()));

    strip_hop_by_hop(req);
    req.erase(http::field::expect);
    append_forwarded_for(req, client_ip);
    const std::string request_id = ensure_request_id(req, rng);

    if (route.hostile_reason && cfg.proxy.reject_hostile_paths) {
        m.count(reject_reason::hostile_path);
        std::string body = error_body("hostile_path", *route.hostile_reason, request_id);
        bool keep = co_await send_own(stream, client_version, 400, std::move(body), request_id,
                                      client_keep_alive);
        m.count_request(route.ep, 400, seconds_since(t0));
        co_return keep;
    }

    if (req.find(http::field::host) == req.end()) {
        req.set(http::field::host, cfg.v1.address.host + ":" + std::to_string(cfg.v1.address.port));
    }
    req.version(11);
    req.keep_alive(true);
    req.prepare_payload();

    const auto t_up = steady::now();
    upstream_result up = co_await exchange(req, head);
    m.upstream_seconds[static_cast<std::size_t>(route.ep)].observe(seconds_since(t_up));

    if (!up.response) {
        m.count(up.error);
        const bool timeout = up.error == upstream_error::connect_timeout ||
                             up.error == upstream_error::response_timeout;
        const unsigned status = timeout ? 504 : 502;
        std::string detail = cfg.v1.name + ": " + std::string(name(up.error));
        std::string body =
            error_body(timeout ? "upstream_timeout" : "upstream_error", detail, request_id);
        bool keep = co_await send_own(stream, client_version, status, std::move(body), request_id,
                                      client_keep_alive);
        m.count_request(route.ep, status, seconds_since(t0));
        co_return keep;
    }

    response_t& res = *up.response;
    const unsigned status = res.result_int();
    const bool bodiless = head || has_no_body(status);
    strip_hop_by_hop(res, /*keep_framing=*/bodiless);
    res.version(client_version);
    res.keep_alive(client_keep_alive && !draining);
    if (!bodiless) res.prepare_payload();

    stream.expires_after(limits.request_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, nothrow);
    if (wec) {
        m.client_write_errors.fetch_add(1, relaxed);
        m.count_request(route.ep, 0, seconds_since(t0));
        co_return false;
    }
    m.count_request(route.ep, status, seconds_since(t0));
    co_return res.keep_alive();
}

awaitable<void> worker::session(tcp::socket socket) {
    m.open_client_connections.fetch_add(1, relaxed);
    struct gauge_guard {
        metrics& m;
        ~gauge_guard() { m.open_client_connections.fetch_sub(1, relaxed); }
    } guard{m};

    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    auto remote = socket.remote_endpoint(ec);
    const std::string client_ip = ec ? std::string("unknown") : remote.address().to_string();

    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buf;
    const auto idle = cfg.proxy.limits.idle_timeout;
    bool peer_closed = false;
    while (!draining) {
        if (buf.size() == 0) {
            // Idle between requests: bounded by idle_timeout, and cancellable by a drain.
            stream.expires_after(idle);
            idle_clients.insert(&stream);
            auto [rec, n] = co_await stream.async_read_some(buf.prepare(16 * 1024), nothrow);
            idle_clients.erase(&stream);
            if (rec) {
                peer_closed = rec == asio::error::eof;
                break;
            }
            buf.commit(n);
        }
        m.in_flight_requests.fetch_add(1, relaxed);
        bool keep = co_await handle_one(stream, buf, client_ip);
        m.in_flight_requests.fetch_sub(1, relaxed);
        if (!keep) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (!peer_closed && !draining) co_await linger(stream);
    stream.close();
}

// Lingering close: after our FIN, read and discard what the client still sends for a moment.
// Closing with unread input makes the kernel send RST, which can destroy the error response
// (408, 413, 431) the client has not read yet.
awaitable<void> worker::linger(beast::tcp_stream& stream) {
    static constexpr std::size_t max_discard = 16 * 1024 * 1024;
    std::array<char, 16 * 1024> sink;
    std::size_t discarded = 0;
    stream.expires_after(std::chrono::seconds(2));
    while (discarded < max_discard) {
        auto sink_buf = asio::buffer(sink);
        auto [ec, n] = co_await stream.async_read_some(sink_buf, nothrow);
        if (ec) break;
        discarded += n;
    }
}

void worker::drain() {
    draining = true;
    pool.clear();
    for (auto* s : idle_clients) s->cancel();
}

struct server::impl {
    impl(const config::config& c, metrics& mm) : cfg(c), m(mm) {}

    const config::config& cfg;
    metrics& m;
    std::vector<tcp::endpoint> upstream_endpoints;
    std::vector<std::unique_ptr<worker>> workers;
    std::unique_ptr<tcp::acceptor> acceptor;  // lives on workers[0]
    std::size_t next_worker = 0;
    std::atomic<bool> stopped{false};

    awaitable<void> accept_loop();
};

awaitable<void> server::impl::accept_loop() {
    asio::steady_timer backoff(workers[0]->ioc);
    for (;;) {
        worker& target = *workers[next_worker++ % workers.size()];
        asio::any_io_executor target_ex = target.ioc.get_executor();
        auto [ec, socket] = co_await acceptor->async_accept(target_ex, nothrow);
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
        asio::co_spawn(target.ioc, target.session(std::move(socket)), asio::detached);
    }
}

server::server(const config::config& cfg, metrics& m) : impl_(std::make_unique<impl>(cfg, m)) {
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
        impl_->workers.push_back(std::make_unique<worker>(cfg, m, impl_->upstream_endpoints));
    }

    auto listen_results =
        resolver.resolve(cfg.proxy.listen.host, std::to_string(cfg.proxy.listen.port), ec);
    if (ec || listen_results.empty()) {
        throw std::runtime_error("cannot resolve listen address " + cfg.proxy.listen.host);
    }
    tcp::endpoint ep = listen_results.begin()->endpoint();
    auto acc = std::make_unique<tcp::acceptor>(impl_->workers[0]->ioc);
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
    asio::co_spawn(impl_->workers[0]->ioc, impl_->accept_loop(), asio::detached);
    for (auto& w : impl_->workers) {
        worker* wp = w.get();
        w->thread = std::thread([wp] {
            try {
                wp->ioc.run();
            } catch (const std::exception& e) {
                spdlog::critical("event=worker_crashed error=\"{}\"", e.what());
                std::abort();  // a broken invariant: let the supervisor restart us
            }
        });
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
    for (auto& w : impl_->workers) {
        if (w->thread.joinable()) w->thread.join();
    }
}

}  // namespace sg::proxy
