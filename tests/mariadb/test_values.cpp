// tests/mariadb/test_values: pure tests of the column conversions (adapters/dolt/values) and of
// error classification (adapters/dolt/error). No server needed.
#include "adapters/dolt/error.hpp"
#include "adapters/dolt/values.hpp"

#include <catch2/catch.hpp>

using namespace sg::dolt;

TEST_CASE("utc_datetime formats and parses DATETIME text exactly", "[values]") {
    struct {
        std::int64_t t;
        const char* text;
    } const cases[] = {
        {0, "1970-01-01 00:00:00"},
        {1795000000, "2026-11-18 11:06:40"},
        {951782400, "2000-02-29 00:00:00"},  // leap day
        {-1, "1969-12-31 23:59:59"},         // before the epoch
        {min_datetime_epoch, "1000-01-01 00:00:00"},
        {max_datetime_epoch, "9999-12-31 23:59:59"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        CHECK(utc_datetime(c.t) == std::optional<std::string>(c.text));
        CHECK(parse_utc_datetime(c.text) == std::optional<std::int64_t>(c.t));
    }
    CHECK_FALSE(utc_datetime(min_datetime_epoch - 1));
    CHECK_FALSE(utc_datetime(max_datetime_epoch + 1));
    CHECK(parse_utc_datetime("2026-11-18 11:06:40.000000") == 1795000000);
    CHECK_FALSE(parse_utc_datetime("2026-02-30 00:00:00"));
    CHECK_FALSE(parse_utc_datetime("2026-11-18T11:06:40"));
    CHECK_FALSE(parse_utc_datetime("garbage"));
}

TEST_CASE("iso_to_datetime6 takes Python's naive isoformat only", "[values]") {
    CHECK(iso_to_datetime6("2026-11-22T04:16:24.125199") == "2026-11-22 04:16:24.125199");
    CHECK(iso_to_datetime6("2026-11-22T04:16:24") == "2026-11-22 04:16:24.000000");
    CHECK(iso_to_datetime6("2026-11-22T04:16:24.5") == "2026-11-22 04:16:24.500000");
    CHECK_FALSE(iso_to_datetime6("2026-11-22T04:16:24+00:00"));
    CHECK_FALSE(iso_to_datetime6("2026-11-22"));
    CHECK_FALSE(iso_to_datetime6("2026-11-22 04:16:24"));
    CHECK_FALSE(iso_to_datetime6("2026-13-22T04:16:24"));
    CHECK_FALSE(iso_to_datetime6("2026-11-22T04:16:24.1234567"));
    CHECK_FALSE(iso_to_datetime6(""));
}

TEST_CASE("DATETIME(6) values come back in one spelling and print as isoformat()", "[values]") {
    CHECK(normal_datetime6("2026-11-22 04:16:24") == "2026-11-22 04:16:24.000000");
    CHECK(normal_datetime6("2026-11-22 04:16:24.5") == "2026-11-22 04:16:24.500000");
    CHECK_FALSE(normal_datetime6("2026-11-22T04:16:24"));
    CHECK(datetime6_to_iso("2026-11-22 04:16:24.000000") == "2026-11-22T04:16:24");
    CHECK(datetime6_to_iso("2026-11-22 04:16:24.125199") == "2026-11-22T04:16:24.125199");
    CHECK_FALSE(datetime6_to_iso("garbage"));
}

TEST_CASE("summary_line cuts at the first newline and at 500 code points", "[values]") {
    CHECK(summary_line("Update student\n\nAuthor: user") == "Update student");
    CHECK(summary_line("no newline") == "no newline");
    CHECK(summary_line("") == "");
    CHECK(summary_line("\nsecond") == "");
    const std::string emoji = "\xF0\x9F\x98\x80";  // U+1F600, four bytes
    std::string long_line;
    for (int i = 0; i < 600; ++i) {
        long_line += emoji;
    }
    CHECK(summary_line(long_line).size() == 500 * 4);
    CHECK(summary_line("ab" + emoji + "cd", 3) == "ab" + emoji);
}

TEST_CASE("parents join and split", "[values]") {
    CHECK(join_parents({}) == "");
    CHECK(split_parents("").empty());
    const std::vector<std::string> two{"a1", "b2"};
    CHECK(join_parents(two) == "a1 b2");
    CHECK(split_parents("a1 b2") == two);
}

TEST_CASE("errors are classified for the mirror", "[error]") {
    struct {
        unsigned code;
        const char* state;
        const char* message;
        error_kind kind;
    } const cases[] = {
        {2006, "HY000", "Server has gone away", error_kind::connection_lost},
        {2013, "HY000", "Lost connection to server during query", error_kind::connection_lost},
        {2014, "HY000", "Commands out of sync", error_kind::connection_lost},
        {2027, "HY000", "Malformed packet", error_kind::connection_lost},
        {2031, "HY000", "No data supplied for parameters in prepared statement",
         error_kind::permanent},
        {2002, "HY000", "Can't connect", error_kind::connection_lost},
        {4031, "HY000", "disconnected by the server because of inactivity",
         error_kind::connection_lost},
        {1927, "70100", "Connection was killed", error_kind::connection_lost},
        {1105, "HY000",
         "this connection was established when this server performed an online garbage "
         "collection. this connection can no longer be used. please reconnect.",
         error_kind::connection_lost},
        {1213, "40001", "Deadlock found when trying to get lock", error_kind::retryable},
        {1205, "HY000", "Lock wait timeout exceeded", error_kind::retryable},
        {1105, "HY000", "Merge conflict detected, @autocommit transaction rolled back",
         error_kind::retryable},
        {1317, "70100", "Query execution was interrupted", error_kind::retryable},
        {9999, "40001", "serialization failure", error_kind::retryable},
        {1406, "22001", "Data too long for column 'user_id' at row 1", error_kind::permanent},
        {1366, "22007", "Incorrect string value", error_kind::permanent},
        {1062, "23000", "Duplicate entry", error_kind::permanent},
        {1064, "42000", "You have an error in your SQL syntax", error_kind::permanent},
        {1045, "28000", "Access denied for user", error_kind::permanent},
        {1105, "HY000", "some other unknown error", error_kind::permanent},
    };
    for (const auto& c : cases) {
        INFO(c.code << " " << c.message);
        CHECK(classify(c.code, c.state, c.message) == c.kind);
    }
    CHECK(error{1213, "40001", "x", error_kind::retryable}.retryable());
    CHECK(error{2013, "HY000", "x", error_kind::connection_lost}.retryable());
    CHECK_FALSE(error{1406, "22001", "x", error_kind::permanent}.retryable());
    CHECK(error{1406, "22001", "Data too long", error_kind::permanent}.to_string() ==
          "code=1406 sqlstate=22001 kind=permanent: Data too long");
}
