// tests/fuzz/fuzz_routes: libFuzzer target for the route table (adapters/v1/routes): any method
// and request-target, including hostile ids and percent-escapes, classifies without crashing,
// and a route that names a user never carries a hostile id unflagged. The same input read as the
// JSON body of POST /users/init never lets an unsafe user_id through body_problem.
#include "adapters/v1/request_ids.hpp"
#include "adapters/v1/routes.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto sp = in.find(' ');
    const std::string_view method = sp == std::string_view::npos ? "GET" : in.substr(0, sp);
    const std::string_view target = sp == std::string_view::npos ? in : in.substr(sp + 1);
    const auto r = sg::v1::classify(method, target);
    if (!r.hostile_reason && !r.user_id.empty() &&
        (r.user_id.find("..") != std::string::npos || r.user_id.find('/') != std::string::npos)) {
        std::abort();
    }
    if (!sg::v1::body_problem(sg::v1::endpoint::user_init, in)) {
        // Accepted: then it parses, and a top-level string user_id is a safe identifier.
        const auto doc = nlohmann::json::parse(in, nullptr, false);
        if (doc.is_object()) {
            const auto it = doc.find("user_id");
            if (it != doc.end() && it->is_string() &&
                !sg::v1::is_safe_identifier(it->get<std::string>())) {
                std::abort();
            }
        }
    }
    return 0;
}
