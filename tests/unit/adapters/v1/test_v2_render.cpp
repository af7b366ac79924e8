// tests/unit/adapters/v1/test_v2_render: query decoding as Starlette does it, time zone flags, and
// which routes render_read answers.
#include <catch2/catch.hpp>

#include "adapters/v1/query.hpp"
#include "adapters/v1/v2_render.hpp"
#include "proxy/common/time_zone.hpp"

using sg::v1::query_param;

TEST_CASE("query parameters are decoded like Starlette, the last one wins") {
    CHECK(query_param("/h?limit=2", "limit") == "2");
    CHECK(query_param("/h?limit=2&limit=5", "limit") == "5");
    CHECK(query_param("/h?a=1&limit=%31%30", "limit") == "10");
    CHECK(query_param("/h?limit=+3", "limit") == " 3");
    CHECK(query_param("/h?limit", "limit") == "");
    CHECK(query_param("/h?limit=%zz", "limit") == "%zz");
    CHECK(query_param("/h?li%6dit=7", "limit") == "7");
    CHECK_FALSE(query_param("/h", "limit").has_value());
    CHECK_FALSE(query_param("/h?limits=1&&x=2", "limit").has_value());
}

TEST_CASE("time zone flags") {
    CHECK(sg::proxy::parse_time_zone("utc")->offset_minutes == 0);
    CHECK(sg::proxy::parse_time_zone("+05:30")->offset_minutes == 330);
    CHECK(sg::proxy::parse_time_zone("-08:00")->offset_minutes == -480);
    CHECK(sg::proxy::parse_time_zone("local")->k == sg::v1::time_zone::kind::process_local);
    CHECK_FALSE(sg::proxy::parse_time_zone("+5:30").has_value());
    CHECK_FALSE(sg::proxy::parse_time_zone("+25:00").has_value());
    CHECK_FALSE(sg::proxy::parse_time_zone("Europe/Paris").has_value());
}

TEST_CASE("render_read answers reads, and nothing else") {
    sg::v1::user_state state;
    state.user_id = "u1";
    const auto tz = sg::v1::time_zone::utc();
    auto read = [&](const char* method, const char* target,
                    const std::optional<sg::v1::user_state>& s) {
        return sg::v1::render_read(s, sg::v1::classify(method, target), target, tz);
    };
    CHECK(read("GET", "/users/u1/exists", state)->body == R"({"exists":true})");
    CHECK(read("GET", "/users/u1/exists", std::nullopt)->body == R"({"exists":false})");
    CHECK(read("GET", "/users/u1/blocks", std::nullopt)->status == 404);
    CHECK(read("GET", "/users/u1/blocks", state)->body == "[]");
    CHECK(read("GET", "/users/u1/blocks/x", state)->status == 404);
    CHECK(read("GET", "/users/u1/blocks/x/history", state)->body == "[]");
    // The query is validated before the user is looked up, as FastAPI does.
    CHECK(read("GET", "/users/u1/blocks/x/history?limit=101", std::nullopt)->status == 422);
    CHECK_FALSE(read("PUT", "/users/u1/blocks/x", state).has_value());
    CHECK_FALSE(read("GET", "/somewhere/else", state).has_value());
    CHECK_FALSE(read("GET", "/users/..%2Fx/blocks", state).has_value());
}
