// tests/mariadb/test_snapshot: read_snapshot, the shadow comparer's one-statement read of a
// user's watermark and the parts of its state one read endpoint needs, against the real MariaDB
// of the fixture: every read rendered from the parts equals the one rendered from the whole
// state, the state is always the one the watermark names while a writer changes it, and a
// failed read leaves no transaction open behind it.
#include "adapters/dolt/schema.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/v1/v2_render.hpp"
#include "tests/mariadb/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace sg;
using dolt::testing::make_user;
using dolt::testing::scratch_db;

namespace {

// make_user plus what it lacks: a block deleted in the newest commit (its history stays), a
// diff that is no longer pending, one whose JSON is whole, and a label with a space.
v1::user_state rich_user(const std::string& id) {
    v1::user_state u = make_user(id, 4, 5);
    v1::commit del;
    del.sha = dolt::testing::fake_sha(id + "/delete");
    del.parents = {u.head};
    del.message = "Delete journey\n\nAuthor: user";
    del.author = "user";
    del.commit_time = u.commits.front().commit_time + 1;
    for (auto& c : u.commits) ++c.seq;
    u.commits.insert(u.commits.begin(), del);
    u.head = del.sha;
    for (auto& v : u.versions) {
        if (v.label == "journey") ++v.ordinal;
    }
    v1::block_version gone;
    gone.sha = del.sha;
    gone.label = "journey";
    gone.deleted = true;
    gone.message = del.message;
    gone.author = "user";
    gone.commit_time = del.commit_time;
    gone.ordinal = 0;
    u.versions.push_back(gone);
    std::erase_if(u.blocks, [](const v1::block& b) { return b.label == "journey"; });
    // Whole diff files (make_user's are cut short, which v1 skips): two pending for one block,
    // one approved for another.
    auto whole = [&](v1::pending_diff& d, const std::string& label, const std::string& status,
                     const std::string& created) {
        d.block_label = label;
        d.status = status;
        d.raw_json = R"({"id": ")" + d.id + R"(", "user_id": ")" + id +
                     R"(", "agent_id": "tutor", "block_label": ")" + label +
                     R"(", "field": null, "operation": "append", "current_value": "old",)"
                     R"( "proposed_value": "new", "reasoning": "r", "confidence": "high",)"
                     R"( "source_query": null, "status": ")" +
                     status + R"(", "created_at": ")" + created + R"("})";
    };
    whole(u.diffs[0], "student", "approved", "2026-11-22T04:16:24.120548");
    whole(u.diffs[1], "engagement_strategy", "pending", "2026-11-22T04:16:25.000001");
    whole(u.diffs[2], "engagement_strategy", "pending", "2026-11-22T04:16:26.000001");
    return u;
}

std::vector<std::string> targets_for(const v1::user_state& u) {
    const std::string base = "/users/" + u.user_id;
    std::vector<std::string> t = {base + "/exists", base + "/blocks",
                                  base + "/blocks/diffs/counts"};
    std::vector<std::string> labels = {"missing", "student ", "a%20b"};
    for (const auto& v : u.versions) {
        if (std::find(labels.begin(), labels.end(), v.label) == labels.end()) {
            labels.push_back(v.label);
        }
    }
    for (const auto& label : labels) {
        const std::string b = base + "/blocks/" + label;
        t.push_back(b);
        t.push_back(b + "/history");
        t.push_back(b + "/history?limit=1");
        t.push_back(b + "/history?limit=100");
        t.push_back(b + "/history?limit=x");
        t.push_back(b + "/diffs");
        t.push_back(b + "/versions/HEAD");
        t.push_back(b + "/versions/HEAD~1");
        t.push_back(b + "/versions/HEAD~100");
        t.push_back(b + "/versions/nope");
        for (const auto& v : u.versions) {
            t.push_back(b + "/versions/" + v.sha);
            t.push_back(b + "/versions/" + v.sha.substr(0, 7));
        }
    }
    return t;
}

}  // namespace

TEST_CASE("a read rendered from the parts its endpoint needs equals one from the whole state") {
    scratch_db db;
    auto writer = db.connect();
    REQUIRE(dolt::migrate(writer));
    std::vector<v1::user_state> users = {rich_user("rich"), make_user("a b", 3, 2),
                                         make_user("plain", 6, 3)};
    REQUIRE(dolt::testing::write_states(writer, users));
    const auto tz = v1::time_zone::utc();

    {
        dolt::connection conn(db.user_options());
        REQUIRE(conn.connect());
        std::size_t compared = 0;
        for (const auto& u : users) {
            auto everything = dolt::read_snapshot(conn, u.user_id, dolt::read_parts::everything());
            REQUIRE(everything);
            const auto& whole = everything->state;
            REQUIRE(whole.has_value());
            for (const auto& target : targets_for(u)) {
                const auto route = v1::classify("GET", target);
                REQUIRE(route.ep != v1::endpoint::passthrough);
                auto snap = dolt::read_snapshot(conn, route.user_id, dolt::parts_for(route));
                REQUIRE(snap);
                REQUIRE(snap->mark.has_value());
                CHECK(snap->mark->v1_commit == u.head);
                const auto want = v1::render_read(whole, route, target, tz);
                const auto got = v1::render_read(snap->state, route, target, tz);
                REQUIRE(want.has_value());
                REQUIRE(got.has_value());
                INFO(target);
                CHECK(got->status == want->status);
                CHECK(got->body == want->body);
                ++compared;
            }
        }
        CHECK(compared > 200);
        CHECK_FALSE(conn.in_transaction());

        // No such user: no watermark, no state, for any parts.
        auto none = dolt::read_snapshot(conn, "nobody", dolt::read_parts::everything());
        REQUIRE(none);
        CHECK_FALSE(none->mark.has_value());
        CHECK_FALSE(none->state.has_value());
        auto padded = dolt::read_snapshot(conn, "plain ", dolt::read_parts::everything());
        REQUIRE(padded);
        CHECK_FALSE(padded->state.has_value());
    }
}

TEST_CASE("a whole snapshot in one statement, and a failed read leaves no snapshot open") {
    scratch_db db;
    auto writer = db.connect();
    REQUIRE(dolt::migrate(writer));
    auto u = make_user("u", 2, 2);
    REQUIRE(dolt::testing::write_states(writer, std::span(&u, 1)));

    dolt::connection conn(db.user_options());
    REQUIRE(conn.connect());
    const auto before = conn.stats().statements.load();
    auto snap = dolt::read_snapshot(conn, "u", dolt::read_parts::everything());
    REQUIRE(snap);
    REQUIRE(snap->state.has_value());
    // The plan's columns only: versions' first line and author, diffs from their fields.
    dolt::testing::require_same(*snap->state, dolt::rebuild_state(dolt::derive_rows(u)));
    CHECK(conn.stats().statements.load() - before == 1);

    // A table it reads is gone: the error comes back, no transaction is left open with an old
    // snapshot, and the session sees other sessions' commits afterwards.
    REQUIRE(writer.execute("RENAME TABLE pending_diffs TO pending_diffs_away"));
    auto broken = dolt::read_snapshot(conn, "u", dolt::read_parts::everything());
    REQUIRE_FALSE(broken);
    CHECK(broken.error().to_string().find("pending_diffs") != std::string::npos);
    CHECK_FALSE(conn.in_transaction());
    REQUIRE(writer.execute("RENAME TABLE pending_diffs_away TO pending_diffs"));
    REQUIRE(writer.execute("UPDATE mirror_watermarks SET v1_commit = 'again' WHERE user_id = 'u'"));
    auto later = dolt::read_snapshot(conn, "u", dolt::read_parts{});
    REQUIRE(later);
    REQUIRE(later->mark.has_value());
    CHECK(later->mark->v1_commit == "again");
}

TEST_CASE("a snapshot's state is the one its watermark names while a writer changes the user") {
    scratch_db db;
    auto writer = db.connect();
    REQUIRE(dolt::migrate(writer));
    // Two states of one user that differ in head, every block's text, the history and the diffs.
    const auto a = make_user("w", 3, 2);
    const auto b = make_user("w", 3, 4);
    REQUIRE(a.head != b.head);
    REQUIRE(dolt::testing::write_states(writer, std::span(&a, 1)));
    const auto tz = v1::time_zone::utc();
    std::map<std::string, std::string> want;  // head -> the rendered answers of that state
    const std::vector<std::string> targets = {"/users/w/blocks", "/users/w/blocks/student",
                                              "/users/w/blocks/student/history",
                                              "/users/w/blocks/diffs/counts"};
    for (const auto* s : {&a, &b}) {
        const auto whole = dolt::rebuild_state(dolt::derive_rows(*s));
        for (const auto& t : targets) {
            const auto route = v1::classify("GET", t);
            want[s->head + t] = v1::render_read(whole, route, t, tz)->body;
        }
    }

    // The writer flips the user between the two states (each apply one transaction) for as
    // many rounds as the reader needs; the reader checks every snapshot against the state its
    // watermark names.
    constexpr int flips = 60;
    std::atomic<int> applied{0};
    std::atomic<bool> failed{false};
    std::thread flipper([&] {
        for (int i = 0; i < flips && !failed; ++i) {
            if (!dolt::testing::apply_state(writer, i % 2 ? a : b)) failed = true;
            applied = i + 1;
        }
    });
    dolt::connection conn(db.user_options());
    REQUIRE(conn.connect());
    std::size_t checked = 0, mismatched = 0;
    std::set<std::string> heads_seen;
    while (applied < flips && !failed) {
        for (const auto& t : targets) {
            const auto route = v1::classify("GET", t);
            auto snap = dolt::read_snapshot(conn, "w", dolt::parts_for(route));
            REQUIRE(snap);
            REQUIRE(snap->mark.has_value());
            REQUIRE(snap->state.has_value());
            heads_seen.insert(snap->mark->v1_commit);
            const auto got = v1::render_read(snap->state, route, t, tz);
            REQUIRE(got.has_value());
            ++checked;
            if (snap->state->head != snap->mark->v1_commit ||
                got->body != want[snap->mark->v1_commit + t]) {
                ++mismatched;
            }
        }
    }
    flipper.join();
    REQUIRE_FALSE(failed);
    CHECK(checked > 0);
    CHECK(mismatched == 0);
    INFO("heads seen: " << heads_seen.size());
    CHECK(heads_seen.size() <= 2);
}
