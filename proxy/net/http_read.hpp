// proxy/net/http_read: reading one HTTP message with Beast's parser so that the header limit bounds
// the whole header section, for the proxy's client side, its upstream side and the admin listener.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <cstddef>
#include <cstdint>

namespace sg::proxy {

// Feeds `parser` from `buf`, reading more from `s` as needed, until the message is complete (or,
// with header_only, until its header is). Bytes after the message stay in `buf`.
// `header_limit` bounds the whole header section (start line included) however its bytes arrive:
// Beast applies its own limit to the bytes of one `put` only, and a header sent in small writes
// is consumed field by field, so the limit left is given to the parser before each `put`.
template <class Stream, class Parser>
boost::asio::awaitable<boost::beast::error_code, typename Stream::executor_type> read_message(
    Stream& s, boost::beast::flat_buffer& buf, Parser& parser, bool header_only,
    std::size_t header_limit) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    using boost::beast::error_code;
    constexpr std::size_t read_chunk = 16 * 1024;
    using awaitable_token = asio::use_awaitable_t<typename Stream::executor_type>;
    constexpr auto nothrow = asio::as_tuple(awaitable_token{});
    std::size_t header_seen = 0;
    for (;;) {
        if (buf.size() > 0) {
            error_code ec;
            const bool in_header = !parser.is_header_done();
            if (in_header) {
                parser.header_limit(static_cast<std::uint32_t>(header_limit - header_seen));
            }
            std::size_t n = parser.put(buf.data(), ec);
            buf.consume(n);
            if (in_header && !parser.is_header_done()) {
                header_seen += n;
                if (header_seen >= header_limit) co_return http::error::header_limit;
            }
            if (!ec) {
                if (parser.is_done() || (header_only && parser.is_header_done())) co_return ec;
                if (buf.size() > 0) continue;  // the parser stopped at an element boundary
            } else if (ec != http::error::need_more) {
                co_return ec;
            }
        }
        auto [ec, n] = co_await s.async_read_some(buf.prepare(read_chunk), nothrow);
        if (ec == asio::error::eof) {
            if (!parser.got_some()) co_return http::error::end_of_stream;
            if (!parser.is_header_done()) co_return http::error::partial_message;
            error_code eof_ec;
            parser.put_eof(eof_ec);  // a body delimited by the end of the connection ends here
            if (!eof_ec && parser.is_done()) co_return eof_ec;
            co_return eof_ec ? eof_ec : error_code(http::error::partial_message);
        }
        if (ec) co_return ec;
        buf.commit(n);
    }
}

}  // namespace sg::proxy
