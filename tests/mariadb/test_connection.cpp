// tests/mariadb/test_connection: the session against the real MariaDB server of the fixture:
// connecting over TCP and the unix socket, result draining, error classification of real
// failures (data too long, a killed session, a read timeout), reconnecting, with_retry, and that
// the password never shows in an error.
#include "adapters/dolt/connection.hpp"
#include "adapters/dolt/schema.hpp"
#include "adapters/dolt/store.hpp"
#include "tests/mariadb/test_support.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using namespace sg::dolt;
using sg::dolt::testing::scratch_db;

TEST_CASE("connects over TCP and the unix socket, utf8mb4 and strict", "[connection]") {
    scratch_db db;
    for (bool via_socket : {false, true}) {
        INFO("socket: " << via_socket);
        connection conn = db.connect(via_socket);
        CHECK(conn.connected());
        CHECK(conn.max_allowed_packet() >= 1024 * 1024);
        CHECK(conn.thread_id() != 0);
        auto rs = conn.query(
            "SELECT @@character_set_connection, @@sql_mode, @@time_zone, DATABASE(), NULL, "
            "'a\\0b'");
        REQUIRE(rs);
        REQUIRE(rs->data.size() == 1);
        const auto& r = rs->data[0];
        CHECK(r[0] == "utf8mb4");
        CHECK(r[1]->find("STRICT_ALL_TABLES") != std::string::npos);
        CHECK(r[2] == "+00:00");
        CHECK(r[3] == db.name());
        CHECK_FALSE(r[4].has_value());
        CHECK(r[5] == std::string("a\0b", 3));  // lengths, not C strings
        CHECK(conn.describe().find(db.name()) != std::string::npos);
    }
}

TEST_CASE("a data error is permanent and leaves the session usable", "[connection][error]") {
    scratch_db db;
    connection conn = db.connect();
    REQUIRE(migrate(conn));

    auto user = testing::make_user(std::string(300, 'u'), 1, 1);  // user_id is VARCHAR(255)
    auto r = testing::write_states(conn, std::span(&user, 1));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == 1406);
    CHECK(r.error().sqlstate == "22001");
    CHECK(r.error().kind == error_kind::permanent);
    CHECK_FALSE(r.error().retryable());
    CHECK(conn.connected());
    CHECK_FALSE(conn.in_transaction());
    CHECK(conn.stats().permanent_errors == 1);

    auto users = list_users(conn);
    REQUIRE(users);
    CHECK(users->empty());  // rolled back: not even the users row stayed

    auto bad = conn.query("SELECT * FROM no_such_table");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == 1146);
    CHECK(bad.error().kind == error_kind::permanent);

    // A pending diff whose operation is outside the plan's ENUM: strict mode refuses it.
    auto odd = testing::make_user("odd-diff", 1, 1);
    odd.diffs[0].operation = "rewrite_everything";
    auto e1 = testing::write_states(conn, std::span(&odd, 1));
    REQUIRE_FALSE(e1);
    INFO(e1.error().to_string());
    CHECK(e1.error().code == 1265);
    CHECK(e1.error().kind == error_kind::permanent);

    // Bytes that are not UTF-8 do not fit utf8mb4 columns (v1 writes UTF-8; see schema.cpp).
    auto latin1 = testing::make_user("latin1", 1, 1);
    latin1.blocks[0].source = "caf\xe9";
    auto e2 = testing::write_states(conn, std::span(&latin1, 1));
    REQUIRE_FALSE(e2);
    INFO(e2.error().to_string());
    CHECK(e2.error().code == 1366);
    CHECK(e2.error().kind == error_kind::permanent);
    CHECK(conn.connected());
}

TEST_CASE("a killed session is retryable and reconnecting works", "[connection][error]") {
    scratch_db db;
    connection conn = db.connect();
    REQUIRE(migrate(conn));
    connection root(testing::root_options());
    REQUIRE(root.connect());

    auto kill = [&] {
        REQUIRE(root.execute("KILL CONNECTION " + std::to_string(conn.thread_id())));
    };

    SECTION("explicit reconnect") {
        kill();
        auto r = conn.query("SELECT 1");
        REQUIRE_FALSE(r);
        INFO(r.error().to_string());
        CHECK(r.error().kind == error_kind::connection_lost);
        CHECK(r.error().retryable());
        CHECK_FALSE(conn.connected());
        CHECK(conn.stats().connection_lost == 1);

        auto again = conn.ensure_connected();
        REQUIRE(again);
        CHECK(*again);  // a new session was opened: the caller learns its transaction is gone
        CHECK(conn.stats().reconnects == 1);
        auto ok = conn.query("SELECT 1");
        REQUIRE(ok);
        CHECK(ok->data[0][0] == "1");
        auto still = conn.ensure_connected();
        REQUIRE(still);
        CHECK_FALSE(*still);
    }

    SECTION("killed inside a transaction: with_retry runs the whole transaction again") {
        int attempts = 0;
        auto user = testing::make_user("killed-mid-write", 2, 3);
        auto r = with_retry(conn, retry_policy{3, std::chrono::milliseconds(10)},
                            [&](connection& c) -> result<write_stats> {
                                if (++attempts == 1) {
                                    REQUIRE(c.begin());
                                    kill();
                                    auto lost = c.execute("DELETE FROM users");
                                    REQUIRE_FALSE(lost);
                                    CHECK_FALSE(c.in_transaction());
                                    return lost.error();
                                }
                                return testing::write_states(c, std::span(&user, 1));
                            });
        REQUIRE(r);
        CHECK(attempts == 2);
        CHECK(conn.stats().retries == 1);
        CHECK(conn.stats().reconnects == 1);
        auto back = testing::read_state(conn, "killed-mid-write");
        REQUIRE(back);
        REQUIRE(back->has_value());
        testing::require_same(user, **back);
    }

    SECTION("with_retry gives up at once on a permanent error") {
        int attempts = 0;
        auto r = with_retry(conn, retry_policy{}, [&](connection& c) {
            ++attempts;
            return c.execute("SELECT * FROM no_such_table");
        });
        REQUIRE_FALSE(r);
        CHECK(attempts == 1);
    }
}

TEST_CASE("the read timeout bounds a statement", "[connection][error]") {
    scratch_db db;
    options o = db.user_options();
    o.read_timeout = std::chrono::seconds(1);
    connection conn(o);
    REQUIRE(conn.connect());
    // SLEEP(5) would succeed after 5 s: an error means the 1 s read timeout cut it off.
    auto r = conn.query("SELECT SLEEP(5)");
    REQUIRE_FALSE(r);
    INFO(r.error().to_string());
    CHECK(r.error().kind == error_kind::connection_lost);
    CHECK_FALSE(conn.connected());
}

TEST_CASE("the password never appears in errors", "[connection][error]") {
    scratch_db db;
    const std::string real = testing::env().password;

    SECTION("wrong password") {
        options o = db.user_options();
        o.password = "Wr0ng-Pa55word-d0-not-print";
        connection conn(o);
        auto r = conn.connect();
        REQUIRE_FALSE(r);
        const std::string text = r.error().to_string();
        INFO(text);
        CHECK(r.error().code == 1045);
        CHECK(r.error().kind == error_kind::permanent);
        CHECK(text.find(o.password) == std::string::npos);
        CHECK(text.find("Access denied") != std::string::npos);
        CHECK(conn.describe().find(o.password) == std::string::npos);
        CHECK(conn.stats().connect_failures == 1);
    }
    SECTION("unreachable server") {
        options o = db.user_options();
        o.port = 1;  // nothing listens there
        connection conn(o);
        auto r = conn.connect();
        REQUIRE_FALSE(r);
        INFO(r.error().to_string());
        CHECK(r.error().kind == error_kind::connection_lost);
        CHECK(r.error().to_string().find(real) == std::string::npos);
    }
    SECTION("a statement that echoes the password is scrubbed") {
        connection conn = db.connect();
        auto r = conn.query("SELEC '" + real + "'");
        REQUIRE_FALSE(r);
        INFO(r.error().to_string());
        CHECK(r.error().code == 1064);
        CHECK(r.error().to_string().find(real) == std::string::npos);
        CHECK(r.error().message.find("***") != std::string::npos);
    }
}

TEST_CASE("a CALL's results are drained", "[connection]") {
    scratch_db db;
    connection conn = db.connect();
    REQUIRE(conn.execute("CREATE PROCEDURE two_sets() BEGIN SELECT 1; SELECT 2; END"));
    auto r = conn.query("CALL two_sets()");
    REQUIRE(r);
    REQUIRE(r->data.size() == 1);
    CHECK(r->data[0][0] == "1");
    auto next = conn.query("SELECT 3");  // would be error 2014 had the results not been drained
    REQUIRE(next);
    CHECK(next->data[0][0] == "3");
}

TEST_CASE("prepared statements bind text, integers and NULL exactly, and are reused",
          "[connection][prepared]") {
    scratch_db db;
    connection conn = db.connect();
    REQUIRE(
        conn.execute("CREATE TABLE p (k INT NOT NULL PRIMARY KEY, t LONGTEXT, n BIGINT)"
                     " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"));
    const std::string nasty =
        std::string("quote ' \" back \\ nul \0 end", 26) + " \xc3\xa9\xe2\x9c\x93 \r\n?";
    const std::string big(2 * 1024 * 1024, 'x');
    const std::string sql = "INSERT INTO p (k, t, n) VALUES (?,?,?),(?,?,?),(?,?,?)";
    const std::vector<param> rows{
        param::of(std::int64_t{1}),
        param::of(nasty),
        param::of(std::int64_t{-9}),
        param::of(std::int64_t{2}),
        param::null_value(),
        param::flag(true),
        param::of(std::int64_t{3}),
        param::of(std::string_view{}),
        param::of(std::int64_t{1} << 62),
    };
    auto n = conn.execute_prepared(sql, rows);
    REQUIRE(n);
    CHECK(*n == 3);
    const auto statements = conn.stats().statements.load();
    const std::vector<param> more{
        param::of(std::int64_t{4}), param::of(big),        param::null_value(),
        param::of(std::int64_t{5}), param::of("?"),        param::null_value(),
        param::of(std::int64_t{6}), param::of("'),(7,'x"), param::null_value()};
    REQUIRE(conn.execute_prepared(sql, more));
    CHECK(conn.stats().statements == statements + 1);  // executed again, not prepared again

    auto rs = conn.query("SELECT k, t, n FROM p ORDER BY k");
    REQUIRE(rs);
    REQUIRE(rs->data.size() == 6);
    CHECK(rs->data[0][1] == nasty);
    CHECK(rs->data[0][2] == "-9");
    CHECK_FALSE(rs->data[1][1].has_value());
    CHECK(rs->data[1][2] == "1");
    CHECK(rs->data[2][1] == std::string());
    CHECK(rs->data[2][2] == "4611686018427387904");
    CHECK(rs->data[3][1] == big);
    CHECK(rs->data[4][1] == "?");
    CHECK(rs->data[5][1] == "'),(7,'x");  // a value, never SQL

    SECTION("the wrong number of values is an error, nothing is sent") {
        auto bad = conn.execute_prepared(sql, std::span(rows.data(), 4));
        REQUIRE_FALSE(bad);
        CHECK(bad.error().kind == error_kind::permanent);
        CHECK(bad.error().message.find("takes 9 values, given 4") != std::string::npos);
        CHECK(conn.connected());
    }
    SECTION("a duplicate key is a permanent error and the session stays usable") {
        auto dup = conn.execute_prepared(sql, rows);
        REQUIRE_FALSE(dup);
        CHECK(dup.error().code == 1062);
        CHECK(dup.error().kind == error_kind::permanent);
        CHECK(conn.connected());
        CHECK(conn.query("SELECT 1"));
    }
    SECTION("a lost session forgets its statements; after reconnecting they are prepared anew") {
        connection root(testing::root_options());
        REQUIRE(root.connect());
        REQUIRE(root.execute("KILL CONNECTION " + std::to_string(conn.thread_id())));
        const std::vector<param> one{param::of(std::int64_t{10}), param::of("a"),
                                     param::null_value()};
        const std::string single = "INSERT INTO p (k, t, n) VALUES (?,?,?)";
        auto lost = conn.execute_prepared(sql, rows);
        REQUIRE_FALSE(lost);
        CHECK(lost.error().kind == error_kind::connection_lost);
        REQUIRE(conn.ensure_connected());
        REQUIRE(conn.execute_prepared(single, one));
        auto back = conn.query("SELECT t FROM p WHERE k = 10");
        REQUIRE(back);
        REQUIRE(back->data.size() == 1);
        CHECK(back->data[0][0] == "a");
    }
}
