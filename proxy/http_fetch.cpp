// proxy/http_fetch: see the header.
#include "proxy/http_fetch.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace sg::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

fetch_result http_get(const config::endpoint_address& address, const std::string& target,
                      const header_list& headers, std::chrono::milliseconds timeout,
                      std::size_t max_body) {
    fetch_result out;
    asio::io_context ioc{1};
    beast::tcp_stream stream(ioc);
    tcp::resolver resolver(ioc);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    bool host_set = false;
    for (const auto& [name, value] : headers) {
        req.insert(name, value);
        if (beast::iequals(name, "host")) host_set = true;
    }
    if (!host_set) req.set(http::field::host, address.host + ":" + std::to_string(address.port));
    req.set(http::field::connection, "close");
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body);
    beast::error_code failure;
    const char* stage = "resolve";

    stream.expires_after(timeout);
    resolver.async_resolve(
        address.host, std::to_string(address.port),
        [&](beast::error_code ec, tcp::resolver::results_type results) {
            if (ec) {
                failure = ec;
                return;
            }
            stage = "connect";
            stream.async_connect(results, [&](beast::error_code cec, const tcp::endpoint&) {
                if (cec) {
                    failure = cec;
                    return;
                }
                stage = "write";
                http::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
                    if (wec) {
                        failure = wec;
                        return;
                    }
                    stage = "read";
                    http::async_read(stream, buffer, parser,
                                     [&](beast::error_code rec, std::size_t) {
                                         if (rec) {
                                             failure = rec;
                                             return;
                                         }
                                         stage = "done";
                                     });
                });
            });
        });
    // The resolver has no deadline of its own: bound the whole run as well.
    ioc.run_for(timeout + std::chrono::milliseconds(100));
    if (std::string_view(stage) == "done" && !failure) {
        out.ok = true;
        out.status = parser.get().result_int();
        out.body = std::move(parser.get().body());
        return out;
    }
    out.timed_out = failure == beast::error::timeout || !failure;
    out.error = std::string(stage) + ": " +
                (failure ? failure.message() : std::string("no answer within the deadline"));
    return out;
}

}  // namespace sg::proxy
