// adapters/v1/query: Starlette's reading of a request-target's query string.
#include "adapters/v1/query.hpp"

namespace sg::v1 {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// application/x-www-form-urlencoded decoding as Python's unquote_plus does it: a malformed
// escape stays as it is. That leniency is why this is not Boost.URL's decoder (which the route
// table uses): Boost.URL refuses a malformed escape, and v1 reads "%zz" as the text "%zz".
std::string form_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
                   hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> query_params(std::string_view target, std::string_view name) {
    std::vector<std::string> found;
    const auto q = target.find('?');
    if (q == std::string_view::npos) return found;
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        std::string key = form_decode(pair.substr(0, eq));
        if (key != name) continue;
        found.push_back(eq == std::string_view::npos ? std::string()
                                                     : form_decode(pair.substr(eq + 1)));
    }
    return found;
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    auto all = query_params(target, name);
    if (all.empty()) return std::nullopt;
    return std::move(all.back());
}

}  // namespace sg::v1
