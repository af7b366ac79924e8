// tests/fuzz/fuzz_routes: libFuzzer target for the route table (adapters/v1/routes): any method
// and request-target, including hostile ids and percent-escapes, classifies without crashing,
// and a route that names a user never carries a hostile id unflagged.
#include "adapters/v1/routes.hpp"

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
    return 0;
}
