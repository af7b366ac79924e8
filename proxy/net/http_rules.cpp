// proxy/net/http_rules: hop-by-hop header handling, forwarding headers and error bodies.
#include "proxy/net/http_rules.hpp"

#include <boost/beast/core/string.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

namespace sg::proxy {

namespace {

// Splits a comma-separated header value into trimmed, non-empty tokens.
std::vector<std::string> list_tokens(std::string_view value) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= value.size()) {
        std::size_t comma = value.find(',', pos);
        if (comma == std::string_view::npos) comma = value.size();
        std::string_view tok = value.substr(pos, comma - pos);
        while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
        while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
        if (!tok.empty()) out.emplace_back(tok);
        pos = comma + 1;
    }
    return out;
}

}  // namespace

void strip_hop_by_hop(http::fields& fields, bool keep_framing) {
    // Fields named by Connection are hop-by-hop too; collect them before erasing Connection.
    std::vector<std::string> named;
    // Same-name fields need not be adjacent in the field list, so scan all of them.
    for (const auto& f : fields) {
        if (f.name() != http::field::connection) continue;
        for (auto& tok : list_tokens(f.value())) named.push_back(std::move(tok));
    }
    for (const auto& name : named) {
        if (keep_framing && (boost::beast::iequals(name, "transfer-encoding") ||
                             boost::beast::iequals(name, "content-length"))) {
            continue;
        }
        fields.erase(name);
    }
    static constexpr std::array always{http::field::connection,       http::field::keep_alive,
                                       http::field::proxy_connection, http::field::te,
                                       http::field::trailer,          http::field::upgrade};
    for (auto f : always) fields.erase(f);
    if (!keep_framing) fields.erase(http::field::transfer_encoding);
}

void append_forwarded_for(http::fields& fields, std::string_view client_ip) {
    // Several X-Forwarded-For lines are one list (RFC 9110 §5.3): fold them, then append.
    std::string merged;
    for (const auto& f : fields) {
        if (!boost::beast::iequals(f.name_string(), "X-Forwarded-For") || f.value().empty()) {
            continue;
        }
        if (!merged.empty()) merged += ", ";
        merged.append(f.value().data(), f.value().size());
    }
    if (!merged.empty()) merged += ", ";
    merged += client_ip;
    fields.set("X-Forwarded-For", merged);
}

std::string make_request_id(std::mt19937_64& rng) {
    std::uint64_t hi = rng();
    std::uint64_t lo = rng();
    hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
    lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    auto put = [&](std::uint64_t v, int nibbles) {
        for (int i = nibbles - 1; i >= 0; --i) out.push_back(hex[(v >> (i * 4)) & 0xf]);
    };
    put(hi >> 32, 8);
    out.push_back('-');
    put(hi >> 16, 4);
    out.push_back('-');
    put(hi, 4);
    out.push_back('-');
    put(lo >> 48, 4);
    out.push_back('-');
    put(lo, 12);
    return out;
}

std::string ensure_request_id(http::fields& fields, std::mt19937_64& rng) {
    auto it = fields.find("X-Request-Id");
    if (it != fields.end() && !it->value().empty()) return std::string(it->value());
    std::string id = make_request_id(rng);
    fields.set("X-Request-Id", id);
    return id;
}

std::string error_body(std::string_view code, std::string_view detail,
                       std::string_view request_id) {
    nlohmann::json j;
    j["error"] = code;
    j["detail"] = detail;
    j["request_id"] = request_id;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

void append_fields(std::string& out, const http::fields& f) {
    for (const auto& field : f) {
        auto name = field.name_string();
        auto value = field.value();
        out.append(name.data(), name.size());
        out += ": ";
        out.append(value.data(), value.size());
        out += "\r\n";
    }
    out += "\r\n";
}

void append_version(std::string& out, unsigned version) {
    out += "HTTP/";
    out += static_cast<char>('0' + version / 10);
    out += '.';
    out += static_cast<char>('0' + version % 10);
}

}  // namespace

std::string serialize_head(const http::request_header<>& h) {
    std::string out;
    out.reserve(256);
    auto method = h.method_string();
    auto target = h.target();
    out.append(method.data(), method.size());
    out += ' ';
    out.append(target.data(), target.size());
    out += ' ';
    append_version(out, h.version());
    out += "\r\n";
    append_fields(out, h);
    return out;
}

std::string serialize_head(const http::response_header<>& h) {
    std::string out;
    out.reserve(256);
    append_version(out, h.version());
    const unsigned code = h.result_int();
    out += ' ';
    out += static_cast<char>('0' + code / 100 % 10);
    out += static_cast<char>('0' + code / 10 % 10);
    out += static_cast<char>('0' + code % 10);
    out += ' ';
    auto reason = h.reason();
    if (reason.empty()) reason = http::obsolete_reason(h.result());
    out.append(reason.data(), reason.size());
    out += "\r\n";
    append_fields(out, h);
    return out;
}

namespace {

// Why `v` is not a uri-host with an optional port (RFC 3986 §3.2.2-3), for the Host header or the
// authority of an absolute-form target (`what`); nullopt when it is one.
std::optional<std::string> authority_problem(std::string_view v, std::string_view what) {
    const std::string w(what);
    // RFC 3986 §3.2.2-3: unreserved, pct-encoded and sub-delims in a reg-name or IPv4, an IP
    // literal in brackets, then ":" and digits.
    auto reg_char = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("-._~%!$&'()*+,;=").find(c) != std::string_view::npos;
    };
    std::size_t host_end = 0;
    if (!v.empty() && v.front() == '[') {
        host_end = v.find(']');
        if (host_end == v.npos) return w + "'s IP literal has no closing ']'";
        for (char c : v.substr(1, host_end - 1)) {  // hex digits, '.' and ':' (IPvFuture too)
            if (c != ':' && !reg_char(c)) {
                return w + "'s IP literal has a character it may not have";
            }
        }
        ++host_end;
    } else {
        while (host_end < v.size() && reg_char(v[host_end])) ++host_end;
    }
    if (host_end == 0) return w + " is empty";
    std::string_view rest = v.substr(host_end);
    if (rest.empty()) return std::nullopt;
    if (rest.front() == ':' && rest.size() <= 6 &&
        std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    return w + " is not a host with an optional port";
}

}  // namespace

std::optional<std::string> host_problem(const http::request_header<>& h) {
    const auto count = h.count(http::field::host);
    if (count == 0) {
        if (h.version() >= 11) return "an HTTP/1.1 request needs a Host header";
        return std::nullopt;
    }
    if (count > 1) return "a request has one Host header, this one has " + std::to_string(count);
    return authority_problem(h[http::field::host], "the Host header");
}

target_form normalise_target(std::string_view method, std::string_view target) {
    target_form out;
    if (!target.empty() && target.front() == '/') {
        out.origin = std::string(target);
        return out;
    }
    if (target == "*" && method == "OPTIONS") {
        out.origin = "*";
        return out;
    }
    auto starts_with_nocase = [&](std::string_view prefix) {
        return target.size() >= prefix.size() &&
               std::equal(prefix.begin(), prefix.end(), target.begin(), [](char a, char b) {
                   return a == std::tolower(static_cast<unsigned char>(b));
               });
    };
    std::string_view rest;
    if (starts_with_nocase("http://")) {
        rest = target.substr(7);
    } else if (starts_with_nocase("https://")) {
        rest = target.substr(8);
    } else {
        out.problem = "the request-target is neither origin-form (\"/path\") nor an http(s) URL";
        return out;
    }
    const auto authority_end = std::min(rest.find_first_of("/?#"), rest.size());
    const auto authority = rest.substr(0, authority_end);
    rest.remove_prefix(authority_end);
    if (authority.find('@') != std::string_view::npos) {
        out.problem = "the request-target has userinfo (RFC 9110 §4.2.4)";
        return out;
    }
    if (auto p = authority_problem(authority, "the request-target's authority")) {
        out.problem = std::move(*p);
        return out;
    }
    if (rest.find('#') != std::string_view::npos) {
        out.problem = "the request-target has a fragment";
        return out;
    }
    out.origin = rest.empty() || rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
    out.authority = std::string(authority);
    return out;
}

bool safe_to_retry(http::verb method) {
    switch (method) {
        case http::verb::get:
        case http::verb::head:
        case http::verb::options:
        case http::verb::trace: return true;
        default: return false;
    }
}

}  // namespace sg::proxy
