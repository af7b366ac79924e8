// tests/unit/proxy/net/test_http_rules: hop-by-hop stripping, forwarding headers, request ids,
// error bodies and the admin token check.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/admin/admin.hpp"
#include "proxy/net/http_rules.hpp"

namespace http = boost::beast::http;
using namespace sg::proxy;

namespace {

std::multiset<std::string> names(const http::fields& f) {
    std::multiset<std::string> out;
    for (const auto& field : f) {
        std::string n(field.name_string());
        for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.insert(n);
    }
    return out;
}

}  // namespace

TEST_CASE("strip_hop_by_hop removes RFC 9110 hop-by-hop fields and those Connection names") {
    struct hop_case {
        std::vector<std::pair<std::string, std::string>> in;
        bool keep_framing;
        std::multiset<std::string> expected;
    };
    const std::vector<hop_case> cases = {
        {{{"Host", "x"}, {"Connection", "keep-alive"}, {"Keep-Alive", "timeout=5"}},
         false,
         {"host"}},
        {{{"Connection", "X-A, x-b"}, {"X-A", "1"}, {"X-B", "2"}, {"X-C", "3"}}, false, {"x-c"}},
        // Connection can appear several times, not adjacent in the list.
        {{{"Connection", "X-A"},
          {"X-Keep", "1"},
          {"Connection", " X-B ,"},
          {"X-A", "1"},
          {"X-B", "2"}},
         false,
         {"x-keep"}},
        {{{"TE", "trailers"},
          {"Trailer", "X"},
          {"Upgrade", "h2c"},
          {"Proxy-Connection", "x"},
          {"Transfer-Encoding", "chunked"},
          {"Authorization", "Bearer t"}},
         false,
         {"authorization"}},
        // Responses to HEAD keep their framing fields: they describe the body of a GET.
        {{{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}, {"Connection", "close"}},
         true,
         {"transfer-encoding", "content-length"}},
        {{{"Content-Length", "5"}, {"X-Request-Id", "r"}},
         false,
         {"content-length", "x-request-id"}},
    };
    for (const auto& c : cases) {
        http::fields f;
        for (const auto& [n, v] : c.in) f.insert(n, v);
        strip_hop_by_hop(f, c.keep_framing);
        CHECK(names(f) == c.expected);
    }
}

TEST_CASE("X-Forwarded-For is set, appended to, and folded from several lines") {
    http::fields f;
    append_forwarded_for(f, "127.0.0.1");
    CHECK(f["X-Forwarded-For"] == "127.0.0.1");
    append_forwarded_for(f, "10.0.0.2");
    CHECK(f["X-Forwarded-For"] == "127.0.0.1, 10.0.0.2");

    http::fields g;
    g.insert("X-Forwarded-For", "1.1.1.1");
    g.insert("Host", "h");
    g.insert("x-forwarded-for", "2.2.2.2");
    append_forwarded_for(g, "::1");
    CHECK(g["X-Forwarded-For"] == "1.1.1.1, 2.2.2.2, ::1");
    CHECK(std::distance(g.begin(), g.end()) == 2);
}

TEST_CASE("request ids are UUID v4, kept when given, added when absent or empty") {
    std::mt19937_64 rng(42);
    const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto id = make_request_id(rng);
        CHECK(std::regex_match(id, uuid));
        seen.insert(id);
    }
    CHECK(seen.size() == 1000);

    http::fields given;
    given.set("X-Request-Id", "abc");
    CHECK(ensure_request_id(given, rng) == "abc");
    http::fields empty;
    empty.set("X-Request-Id", "");
    auto made = ensure_request_id(empty, rng);
    CHECK(std::regex_match(made, uuid));
    CHECK(empty["X-Request-Id"] == made);
}

TEST_CASE("error bodies are JSON with code, detail and request id, even for odd input") {
    auto body = error_body("upstream_timeout", "v1 said \"no\"\n\xff", "id-1");
    auto j = nlohmann::json::parse(body);
    CHECK(j["error"] == "upstream_timeout");
    CHECK(j["request_id"] == "id-1");
    CHECK(j["detail"].get<std::string>().starts_with("v1 said \"no\"\n"));
}

TEST_CASE("only methods without side effects are retried") {
    CHECK(safe_to_retry(http::verb::get));
    CHECK(safe_to_retry(http::verb::head));
    CHECK_FALSE(safe_to_retry(http::verb::put));
    CHECK_FALSE(safe_to_retry(http::verb::post));
    CHECK_FALSE(safe_to_retry(http::verb::delete_));
    CHECK(status_class(204) == 2);
    CHECK(status_class(99) == 0);
    CHECK(status_class(600) == 0);
}

TEST_CASE("a request has exactly one Host header holding a host and an optional port") {
    auto req = [](unsigned version, std::initializer_list<std::string_view> hosts) {
        http::request_header<> h;
        h.version(version);
        for (auto v : hosts) h.insert(http::field::host, v);
        return h;
    };
    CHECK_FALSE(host_problem(req(11, {"example.com"})));
    CHECK_FALSE(host_problem(req(11, {"example.com:8080"})));
    CHECK_FALSE(host_problem(req(11, {"example.com:"})));  // RFC 3986: port = *DIGIT
    CHECK_FALSE(host_problem(req(11, {"10.0.0.1:1"})));
    CHECK_FALSE(host_problem(req(11, {"[::1]:80"})));
    CHECK_FALSE(host_problem(req(11, {"[fe80::1%25eth0]"})));
    CHECK_FALSE(host_problem(req(11, {"xn--caf-dma.example"})));
    CHECK_FALSE(host_problem(req(10, {})));  // HTTP/1.0 may leave it out
    CHECK(*host_problem(req(11, {})) == "an HTTP/1.1 request needs a Host header");
    CHECK(host_problem(req(11, {"a", "a"}))->find("has 2") != std::string::npos);
    CHECK(host_problem(req(10, {"a", "b"})));
    for (auto bad : {"", "a b", "a/b", "u@a", "a:8x", "a:123456", "[::1", "[::1]x", "a\tb", "a\"",
                     "caf\xc3\xa9"}) {
        INFO(bad);
        CHECK(host_problem(req(11, {bad})));
    }
}

TEST_CASE("absolute-form targets become origin-form; other forms are refused") {
    using sg::proxy::normalise_target;
    auto origin = [](std::string_view method, std::string_view target) {
        const auto f = normalise_target(method, target);
        INFO(target << ": " << f.problem);
        CHECK(f.problem.empty());
        return std::pair(f.origin, f.authority);
    };
    using p = std::pair<std::string, std::string>;
    CHECK(origin("GET", "/users/u/blocks?x=1") == p{"/users/u/blocks?x=1", ""});
    CHECK(origin("GET", "http://evil/users/../blocks") == p{"/users/../blocks", "evil"});
    CHECK(origin("PUT", "HTTP://v1.local:8080/users/u/blocks/s") ==
          p{"/users/u/blocks/s", "v1.local:8080"});
    CHECK(origin("GET", "https://[::1]:443?q") == p{"/?q", "[::1]:443"});
    CHECK(origin("GET", "http://a") == p{"/", "a"});
    CHECK(origin("OPTIONS", "*") == p{"*", ""});
    for (auto bad :
         {"", "*", "users/u", "example.com:443", "ftp://a/users/u", "http://user@evil/users/u",
          "http:///users/u", "http://a b/", "http://a/x#f", "http://a:99x/"}) {
        INFO(bad);
        CHECK_FALSE(
            normalise_target(bad == std::string_view("example.com:443") ? "CONNECT" : "GET", bad)
                .problem.empty());
    }
}

TEST_CASE("the admin bearer token must match exactly, the scheme in any case") {
    CHECK(bearer_token_matches("Bearer s3cret", "s3cret"));
    CHECK(bearer_token_matches("bearer s3cret", "s3cret"));
    CHECK(bearer_token_matches("BEARER   s3cret", "s3cret"));
    CHECK_FALSE(bearer_token_matches("Bearer S3cret", "s3cret"));  // the token itself is exact
    CHECK_FALSE(bearer_token_matches("Bearers3cret", "s3cret"));
    CHECK_FALSE(bearer_token_matches("Basic s3cret", "s3cret"));
    CHECK_FALSE(bearer_token_matches("Bearer  ", "s3cret"));
    CHECK_FALSE(bearer_token_matches("Bearer s3cre", "s3cret"));
    CHECK_FALSE(bearer_token_matches("Bearer s3cretX", "s3cret"));
    CHECK_FALSE(bearer_token_matches("s3cret", "s3cret"));
    CHECK_FALSE(bearer_token_matches("Bearer ", ""));  // no token configured: never matches
    CHECK_FALSE(bearer_token_matches("", ""));
}

TEST_CASE("serialize_head writes what Beast's own serializer writes") {
    http::request<http::string_body> req{http::verb::put, "/users/u1/blocks/a?x=%20y", 11};
    req.set(http::field::host, "v1:8000");
    req.insert("X-Custom", "a, b");
    req.insert("x-custom", "c");
    req.set(http::field::content_length, "5");
    std::ostringstream beast_req;
    beast_req << req.base();
    CHECK(serialize_head(req) == beast_req.str());

    http::request<http::string_body> odd;
    odd.method_string("PROPFIND");
    odd.target("/");
    odd.version(10);
    std::ostringstream beast_odd;
    beast_odd << odd.base();
    CHECK(serialize_head(odd) == beast_odd.str());
    CHECK(serialize_head(odd).starts_with("PROPFIND / HTTP/1.0\r\n"));

    http::response<http::string_body> res{http::status::not_found, 11};
    res.set(http::field::content_type, "application/json");
    std::ostringstream beast_res;
    beast_res << res.base();
    CHECK(serialize_head(res) == beast_res.str());
    CHECK(serialize_head(res).starts_with("HTTP/1.1 404 Not Found\r\n"));

    // v1's own reason phrase survives, and unknown codes keep their number.
    res.result(499);
    res.reason("Client Closed Request");
    CHECK(serialize_head(res).starts_with("HTTP/1.1 499 Client Closed Request\r\n"));
    CHECK(serialize_head(res).ends_with("\r\n\r\n"));
}
