// tests/unit/proxy/routing/test_router: what each stage decides for reads and writes, and that a
// plan installed at run time is what the next decision follows, with a new version each time.
#include "proxy/routing/router.hpp"

#include <catch2/catch.hpp>

using sg::config::stage;
using sg::routing::plan;
using sg::routing::router;
using sg::routing::side;

namespace {

sg::v1::route route_of(const char* method, const char* target) {
    return sg::v1::classify(method, target);
}

}  // namespace

TEST_CASE("each stage's decision for a read and a write") {
    const auto read = route_of("GET", "/users/alice/blocks/persona");
    const auto write = route_of("PUT", "/users/alice/blocks/persona");
    const auto health = route_of("GET", "/health");
    REQUIRE(write.write);
    REQUIRE_FALSE(read.write);

    SECTION("off forwards only") {
        const plan p{0, stage::off};
        for (const auto& r : {read, write, health}) {
            const auto d = sg::routing::decide(p, r);
            CHECK(d.reads_from == side::v1);
            CHECK(d.writes_to == side::v1);
            CHECK_FALSE(d.mirrored);
            CHECK_FALSE(d.compared);
            CHECK_FALSE(d.frozen);
        }
        CHECK_FALSE(sg::routing::mirrors_writes(p));
        CHECK_FALSE(sg::routing::compares_reads(p));
    }
    SECTION("dualwrite mirrors writes, compares nothing") {
        const plan p{0, stage::dualwrite};
        CHECK(sg::routing::decide(p, write).mirrored);
        CHECK_FALSE(sg::routing::decide(p, read).mirrored);
        CHECK_FALSE(sg::routing::decide(p, read).compared);
        CHECK(sg::routing::mirrors_writes(p));
        CHECK_FALSE(sg::routing::compares_reads(p));
    }
    SECTION("shadow mirrors writes and compares the block API's reads, v1 still answers") {
        const plan p{0, stage::shadow};
        CHECK(sg::routing::decide(p, write).mirrored);
        CHECK_FALSE(sg::routing::decide(p, write).compared);
        CHECK(sg::routing::decide(p, read).compared);
        CHECK_FALSE(sg::routing::decide(p, read).mirrored);
        CHECK(sg::routing::decide(p, read).reads_from == side::v1);
        CHECK_FALSE(sg::routing::decide(p, health).compared);  // not a read of the block API
        CHECK(sg::routing::compares_reads(p));
    }
}

TEST_CASE("a plan installed at run time decides the next request") {
    const auto write = route_of("PUT", "/users/alice/blocks/persona");
    router r(plan{0, stage::off});
    CHECK(r.current().version == 0);
    CHECK_FALSE(r.decide(write).mirrored);

    const auto& installed = r.install(plan{99, stage::dualwrite});
    CHECK(installed.version == 1);  // counted by the router, not taken from the caller
    CHECK(&r.current() == &installed);
    CHECK(r.decide(write).mirrored);

    r.install(plan{0, stage::off});
    CHECK(r.current().version == 2);
    CHECK_FALSE(r.decide(write).mirrored);
}
