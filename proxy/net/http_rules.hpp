// proxy/net/http_rules: the header rules a forwarding proxy applies (RFC 9110 §7.6), kept free of
// I/O so they can be unit-tested: hop-by-hop removal, X-Forwarded-For, X-Request-Id, error bodies.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace sg::proxy {

namespace http = boost::beast::http;

// Removes the hop-by-hop fields: Connection and every field it names, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding and Upgrade. Framing (Content-Length /
// Transfer-Encoding) is re-established by the caller for the next hop.
// With keep_framing = true, Transfer-Encoding and Content-Length are left alone (responses to
// HEAD describe a body that is not there, so their framing fields must pass unchanged).
void strip_hop_by_hop(http::fields& fields, bool keep_framing = false);

// Appends the client address to X-Forwarded-For ("a, b" when one is already present).
void append_forwarded_for(http::fields& fields, std::string_view client_ip);

// Returns the request's X-Request-Id, adding a fresh one first when it has none (or an empty one).
std::string ensure_request_id(http::fields& fields, std::mt19937_64& rng);

// A random id in UUID v4 form.
std::string make_request_id(std::mt19937_64& rng);

// The small JSON body of an error shadowgate itself produces:
// {"error": code, "detail": detail, "request_id": id}. Strings are JSON-escaped.
std::string error_body(std::string_view code, std::string_view detail, std::string_view request_id);

// The start line and header fields, ending with the empty line, exactly as they go on the wire.
// A proxy writes these with the body in one gather write; Beast still does all the parsing.
// The reason phrase is v1's own when it sent one, else the standard one for the status.
std::string serialize_head(const http::request_header<>& h);
std::string serialize_head(const http::response_header<>& h);

// Why a request's Host header breaks RFC 9112 §3.2 (a server answers 400): none in an HTTP/1.1
// request, more than one, or a value that is not a host with an optional port (uri-host per
// RFC 3986: reg-name, IPv4 or an IP literal in brackets). nullopt when it is fine; an HTTP/1.0
// request may have none.
std::optional<std::string> host_problem(const http::request_header<>& h);

// RFC 9112 §3.2: the request-target a server routes. Origin-form ("/path?query") is kept;
// absolute-form with the http or https scheme ("http://host:port/path?query") becomes origin-form
// ("/path?query", "/" for an empty path) and its authority is the request's host (§3.2.2: it
// replaces Host), as nginx and Envoy do; "*" is kept for OPTIONS. Anything else (authority-form,
// another scheme, userinfo, a fragment, a bad authority) is a `problem` (a server answers 400).
// v1's own parser may route an absolute-form path (httptools) or not (h11): normalising makes
// the route table, the hostile-path filter and the mirror see what v1 will see.
struct target_form {
    std::string origin;     // the target to route and forward
    std::string authority;  // non-empty when it came in absolute-form: the new Host
    std::string problem;    // non-empty: not a target this server takes
};
target_form normalise_target(std::string_view method, std::string_view target);

// True for methods that may be retried on a fresh upstream connection when a reused one turned
// out to be dead before any response byte arrived. PUT is excluded on purpose: v1 makes a new
// commit for every PUT, so repeating one is visible.
bool safe_to_retry(http::verb method);

}  // namespace sg::proxy
