// tests/unit/proxy/common/test_progress: the progress bar and line formats.
#include <catch2/catch.hpp>

#include "proxy/common/progress.hpp"

using namespace sg::proxy;

TEST_CASE("thousands are grouped") {
    CHECK(group_thousands(0) == "0");
    CHECK(group_thousands(999) == "999");
    CHECK(group_thousands(1000) == "1,000");
    CHECK(group_thousands(1234567) == "1,234,567");
}

TEST_CASE("the bar shows fraction, counts, rate and ETA") {
    CHECK(format_bar(0, 100, 0.0, 10, "users") == "[>         ] 0/100 users  0.0/s  ETA ?");
    CHECK(format_bar(50, 100, 5.0, 10, "users") == "[=====>    ] 50/100 users  10.0/s  ETA 0:05");
    CHECK(format_bar(100, 100, 10.0, 10, "users") ==
          "[==========] 100/100 users  10.0/s  ETA 0:00");
    CHECK(format_bar(4210, 10000, 6.0, 20, "users").find("4,210/10,000 users  701.7/s  ETA 0:08") !=
          std::string::npos);
    CHECK(format_bar(1, 10000, 1.0, 4, "users").ends_with("ETA 2:46:39"));
    CHECK(format_bar(0, 0, 0.0, 4, "users") == "[====] 0/0 users  0.0/s  ETA ?");
}

TEST_CASE("the plain line is key=value") {
    CHECK(format_line(50, 100, 5.0) ==
          "progress done=50 total=100 rate=10.0 eta_s=5 elapsed_s=5.0");
    CHECK(format_line(0, 100, 0.0) ==
          "progress done=0 total=100 rate=0.0 eta_s=unknown elapsed_s=0.0");
}
