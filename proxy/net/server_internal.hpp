// proxy/net/server_internal: what the files behind server.hpp (server, session, upstream) share:
// the Asio and Beast aliases with the completion token every wait uses, the upstream connection,
// the deadline watch, and the worker whose members they define (server: the sweep and the drain;
// session: client sessions; upstream: the pool and the exchange). Only those files include it;
// everyone else includes server.hpp.
#pragma once

#include "config/config.hpp"
#include "proxy/common/metrics.hpp"
#include "proxy/common/worker_thread.hpp"
#include "proxy/net/http_rules.hpp"
#include "proxy/routing/router.hpp"
#include "proxy/routing/sinks.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sg::proxy::server_detail {

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

inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable_t<executor_t>{});
inline constexpr auto relaxed = std::memory_order_relaxed;

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
    std::vector<conn_ptr> pool;            // idle upstream connections, LIFO
    std::vector<deadline_watch*> watches;  // one per open client connection
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
                        std::string body, const std::string& request_id, bool keep_alive,
                        std::uint32_t retry_after_s = 0);  // 0: no Retry-After
    task<void> linger(socket_t& client, deadline_watch& dw);
    void drain();
};

}  // namespace sg::proxy::server_detail
