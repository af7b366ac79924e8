// proxy/net/http_fetch: see the header.
#include "proxy/net/http_fetch.hpp"

#include "proxy/common/task_failure.hpp"
#include "proxy/common/worker_thread.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace sg::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

using executor_t = asio::io_context::executor_type;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable_t<executor_t>{});

fetch_result failed(const char* stage, beast::error_code ec, bool timed_out) {
    return fail(std::string(stage) + ": " +
                    (timed_out ? std::string("no answer within the deadline") : ec.message()),
                timed_out);
}

// GCC 12 inlines Asio's frame allocator (aligned_new) into this coroutine and then reports its
// matching delete as mismatched: a known false positive (erigontech/silkworm#2046 silences it
// for the same Boost 1.81 frames). Scoped to this one function.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
// The whole exchange. The stream's own timer bounds connect, write and read; the resolver has
// none, so a timer of its own cancels it (a shared resolver: the timer may fire after the
// coroutine has ended).
asio::awaitable<fetch_result, executor_t> exchange(get_request r,
                                                   std::optional<std::string> post_body = {}) {
    const auto deadline = steady::now() + r.timeout;
    auto ex = co_await asio::this_coro::executor;
    auto resolver = std::make_shared<asio::ip::basic_resolver<tcp, executor_t>>(ex);
    asio::basic_waitable_timer<steady, asio::wait_traits<steady>, executor_t> resolve_limit(
        ex, r.timeout);
    resolve_limit.async_wait([resolver](beast::error_code ec) {
        if (!ec) resolver->cancel();
    });
    auto [rec, results] =
        co_await resolver->async_resolve(r.address.host, std::to_string(r.address.port), nothrow);
    resolve_limit.cancel();
    if (rec) co_return failed("resolve", rec, steady::now() >= deadline);

    beast::basic_stream<tcp, executor_t> stream(ex);
    stream.expires_at(deadline);
    auto [cec, ep] = co_await stream.async_connect(results, nothrow);
    if (cec) co_return failed("connect", cec, cec == beast::error::timeout);

    http::request<http::string_body> req{post_body ? http::verb::post : http::verb::get, r.target,
                                         11};
    if (post_body) {
        req.set(http::field::content_type, "application/json");
        req.body() = std::move(*post_body);
        req.prepare_payload();
    }
    bool host_set = false;
    for (const auto& [name, value] : r.headers) {
        req.insert(name, value);
        if (beast::iequals(name, "host")) host_set = true;
    }
    if (!host_set)
        req.set(http::field::host, r.address.host + ":" + std::to_string(r.address.port));
    req.set(http::field::connection, "close");
    auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
    if (wec) co_return failed("write", wec, wec == beast::error::timeout);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(r.max_body);
    auto [xec, xn] = co_await http::async_read(stream, buffer, parser, nothrow);
    if (xec) co_return failed("read", xec, xec == beast::error::timeout);
    co_return http_answer{parser.get().result_int(), std::move(parser.get().body())};
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

fetch_result stopped() { return fail("stopping"); }

}  // namespace

namespace {
fetch_result run_exchange(const get_request& req, std::optional<std::string> post_body) {
    asio::io_context ioc{1};
    fetch_result out;
    std::exception_ptr thrown;
    asio::co_spawn(ioc, exchange(req, std::move(post_body)),
                   [&](std::exception_ptr e, fetch_result r) {
                       thrown = e;
                       out = std::move(r);
                   });
    ioc.run();
    if (thrown) std::rethrow_exception(thrown);  // std::bad_alloc
    return out;
}
}  // namespace

fetch_result http_get(const get_request& req) { return run_exchange(req, std::nullopt); }

fetch_result http_post(const get_request& req, std::string json_body) {
    return run_exchange(req, std::move(json_body));
}

struct http_client::impl {
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
    mutable std::mutex mu;
    bool stopping = false;
    std::uint64_t next = 0;
    std::unordered_map<std::uint64_t, done_fn> pending;  // under mu
    worker_thread thread;

    // The exchange `id` ended: its done(), unless stop() took it first.
    void finish(std::uint64_t id, fetch_result r) {
        done_fn done;
        {
            std::lock_guard lock(mu);
            auto it = pending.find(id);
            if (it == pending.end()) return;
            done = std::move(it->second);
            pending.erase(it);
        }
        done(std::move(r));
    }
};

http_client::http_client(const char* thread_name, int nice) : impl_(std::make_unique<impl>()) {
    impl_->thread.start(thread_name, task_kind::http_client, [this, nice](const std::stop_token&) {
        (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
        for (;;) {
            try {
                impl_->ioc.run();
                return;
            } catch (...) {  // a done() threw: log it, count it, keep serving
                task_end(process_task_failures(), task_kind::http_client, std::current_exception());
            }
        }
    });
}

http_client::~http_client() { stop(); }

void http_client::get(get_request req, done_fn done) {
    std::uint64_t id = 0;
    bool accepted = false;
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->stopping) {
            id = impl_->next++;
            impl_->pending.emplace(id, std::move(done));
            accepted = true;
        }
    }
    if (accepted) {
        asio::co_spawn(impl_->ioc, exchange(std::move(req)),
                       [this, id](std::exception_ptr e, fetch_result r) {
                           if (e) r = fail("internal: the exchange threw");
                           impl_->finish(id, std::move(r));
                       });
        return;
    }
    done(stopped());
}

void http_client::stop() {
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopping) return;
        impl_->stopping = true;
    }
    impl_->work.reset();
    impl_->ioc.stop();
    impl_->thread.join();
    std::unordered_map<std::uint64_t, done_fn> left;
    {
        std::lock_guard lock(impl_->mu);
        left.swap(impl_->pending);
    }
    for (auto& [id, done] : left) done(stopped());
}

std::size_t http_client::in_flight() const {
    std::lock_guard lock(impl_->mu);
    return impl_->pending.size();
}

}  // namespace sg::proxy
