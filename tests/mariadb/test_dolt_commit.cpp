// tests/mariadb/test_dolt_commit: the DOLT_COMMIT argument building as pure functions (author
// mapping, date, message, escaping), and the MariaDB side of the policy: a no-op saying
// "not dolt". Real Dolt is not available on the build machines.
#include "adapters/dolt/dolt_commit.hpp"
#include "tests/mariadb/test_support.hpp"

#include <catch2/catch.hpp>

using namespace sg::dolt;

namespace {

std::string offline_sql(const commit_request& req) {
    return dolt_commit_sql(dolt_commit_args(req), append_quoted_offline);
}

}  // namespace

TEST_CASE("v1 authors map to identities Dolt accepts", "[dolt_commit]") {
    struct {
        const char* v1;
        const char* formatted;
    } const cases[] = {
        {"user", "user <user@youlab.local>"},
        {"system", "system <system@youlab.local>"},
        {"agent:tutor", "agent:tutor <agent-tutor@youlab.local>"},
        {"unknown", "unknown <unknown@youlab.local>"},
        {"", "unknown <unknown@youlab.local>"},
        {"   ", "unknown <unknown@youlab.local>"},
        {"agent:(evil) <x@y>", "agent:evil x@y <agent-evil-x-y@youlab.local>"},
        {")", "unknown <unknown@youlab.local>"},
        {"Zoë O'Neil", "Zoë O'Neil <zo-o-neil@youlab.local>"},
        {"line\none\ttab", "line one tab <line-one-tab@youlab.local>"},
        {"..dots..", "..dots.. <dots@youlab.local>"},
        {"YouLab System", "YouLab System <youlab-system@youlab.local>"},
    };
    for (const auto& c : cases) {
        INFO(c.v1);
        const dolt_author a = map_author(c.v1);
        CHECK(format_author(a) == c.formatted);
        CHECK_FALSE(a.name.empty());
        CHECK(a.name.find(')') == std::string::npos);
        CHECK(a.email.find('@') != std::string::npos);
    }
}

TEST_CASE("dates are Dolt's --date form in UTC", "[dolt_commit]") {
    CHECK(dolt_date(0) == "1970-01-01T00:00:00Z");
    CHECK(dolt_date(1768328823) == "2026-01-13T18:27:03Z");
    CHECK(dolt_date(-99999999999) == "1000-01-01T00:00:00Z");  // clamped
    CHECK(dolt_date(999999999999) == "9999-12-31T23:59:59Z");
}

TEST_CASE("messages are never empty and carry no NUL", "[dolt_commit]") {
    CHECK(commit_message("") == "(no message)");
    CHECK(commit_message(" \n\t\r\n") == "(no message)");
    CHECK(commit_message(std::string("a\0b", 3)) == "ab");
    CHECK(commit_message(std::string("\0", 1)) == "(no message)");
    CHECK(commit_message("Update student\n\nAuthor: user") == "Update student\n\nAuthor: user");
}

TEST_CASE("DOLT_COMMIT arguments and their SQL", "[dolt_commit]") {
    commit_request req;
    req.message = "Update student";
    req.author = "user";
    req.time = 1768328823;
    const std::vector<std::string> expected{
        "-a",     "--skip-empty",         "--author", "user <user@youlab.local>",
        "--date", "2026-01-13T18:27:03Z", "-m",       "Update student"};
    CHECK(dolt_commit_args(req) == expected);
    CHECK(offline_sql(req) ==
          "CALL DOLT_COMMIT('-a', '--skip-empty', '--author', 'user <user@youlab.local>', "
          "'--date', '2026-01-13T18:27:03Z', '-m', 'Update student')");

    req.stage_new_tables = true;
    CHECK(dolt_commit_args(req).front() == "-A");

    SECTION("quotes, backslashes, newlines and control bytes are escaped") {
        req.stage_new_tables = false;
        req.message = "it's a \"quote\" \\ back\nslash\r\x1a end";
        req.author = "agent:o'brien";
        const std::string sql = offline_sql(req);
        CHECK(sql.find("'agent:o\\'brien <agent-o-brien@youlab.local>'") != std::string::npos);
        CHECK(sql.find("'it\\'s a \\\"quote\\\" \\\\ back\\nslash\\r\\Z end')") !=
              std::string::npos);
    }
    SECTION("unicode passes through unescaped") {
        req.message = "émoji \xF0\x9F\x98\x80 and RTL \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D";
        CHECK(offline_sql(req).find(req.message) != std::string::npos);
    }
}

TEST_CASE("commit policies parse by name", "[dolt_commit]") {
    for (auto p :
         {commit_policy::per_user_import, commit_policy::once_per_run, commit_policy::off}) {
        CHECK(parse_commit_policy(name(p)) == p);
    }
    CHECK_FALSE(parse_commit_policy("sometimes"));
}

TEST_CASE("on MariaDB, Dolt commits are a no-op that says not_dolt", "[dolt_commit][mariadb]") {
    testing::scratch_db db;
    connection conn = db.connect();
    auto dolt = conn.is_dolt();
    REQUIRE(dolt);
    CHECK_FALSE(*dolt);

    commit_request req{"msg", "user", 1768328823, false};
    auto r = dolt_commit(conn, req);
    REQUIRE(r);
    CHECK(r->outcome == commit_outcome::not_dolt);
    CHECK(conn.stats().dolt_commits_not_dolt == 1);
    CHECK(conn.stats().permanent_errors == 0);  // the probe's failure is an answer, not an error

    const auto users = std::vector<user_rows>{derive_rows(testing::make_user("u1", 1, 2))};
    auto per_user = commit_after_import(conn, commit_policy::per_user_import, users, 0);
    REQUIRE(per_user);
    CHECK(per_user->outcome == commit_outcome::not_dolt);
    auto off = commit_after_import(conn, commit_policy::off, users, 0);
    REQUIRE(off);
    CHECK(off->outcome == commit_outcome::policy_off);
    auto run_end = commit_end_of_run(conn, commit_policy::per_user_import, "x", 0);
    REQUIRE(run_end);
    CHECK(run_end->outcome == commit_outcome::policy_off);
    auto run_end2 = commit_end_of_run(conn, commit_policy::once_per_run, "import", 0, true);
    REQUIRE(run_end2);
    CHECK(run_end2->outcome == commit_outcome::not_dolt);

    // Never inside an open transaction, whatever the server.
    REQUIRE(conn.begin());
    auto inside = dolt_commit(conn, req);
    REQUIRE_FALSE(inside);
    CHECK(inside.error().kind == error_kind::permanent);
    conn.rollback();
}
