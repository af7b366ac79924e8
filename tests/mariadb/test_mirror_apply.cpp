// tests/mariadb/test_mirror_apply: the mirror's commit-by-commit apply (what Dolt's per_v1_commit
// policy runs) against real git repositories (built with the git CLI) and the real MariaDB of the
// fixture: after every step the database holds exactly the user as v1 had it right after that
// commit, and a failing step leaves the steps before it applied.
#include "adapters/dolt/schema.hpp"
#include "adapters/dolt/store.hpp"
#include "adapters/git/reader.hpp"
#include "proxy/mirror/mirror_apply.hpp"
#include "proxy/mirror/mirror_logic.hpp"
#include "tests/mariadb/test_support.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace sg;
using dolt::testing::require_same;
using dolt::testing::scratch_db;
namespace fs = std::filesystem;

namespace {

class repo {
public:
    explicit repo(fs::path dir) : dir_(std::move(dir)) {
        fs::create_directories(dir_);
        sh("git init -q -b master");
    }
    void write(const std::string& rel, const std::string& text) {
        fs::create_directories((dir_ / rel).parent_path());
        std::ofstream(dir_ / rel, std::ios::binary) << text;
    }
    void remove(const std::string& rel) { fs::remove(dir_ / rel); }
    std::string commit(const std::string& message, long t) {
        write(".git/SG_MSG", message);
        sh("git add -A -- . ':!pending_diffs'");
        const std::string date = "'@" + std::to_string(t) + " +0000'";
        sh("GIT_AUTHOR_DATE=" + date + " GIT_COMMITTER_DATE=" + date +
           " git -c user.name=YouLab -c user.email=y@l commit -q --allow-empty "
           "--cleanup=verbatim -F .git/SG_MSG");
        return head();
    }
    std::string head() {
        sh("git rev-parse HEAD > .git/SG_HEAD");
        std::ifstream in(dir_ / ".git/SG_HEAD");
        std::string s;
        in >> s;
        return s;
    }

private:
    void sh(const std::string& cmd) {
        const std::string full = "cd '" + dir_.string() + "' && (" + cmd + ") >/dev/null 2>&1";
        REQUIRE(std::system(full.c_str()) == 0);
    }
    fs::path dir_;
};

struct temp_dir {
    fs::path path = fs::temp_directory_path() / ("sg-mirror-apply-" + std::to_string(::getpid()) +
                                                 "-" + std::to_string(std::rand()));
    temp_dir() { fs::create_directories(path); }
    ~temp_dir() { fs::remove_all(path); }
};

// Dolt holds user "u" as of `watermark`; returns v1's full read and the commits after it.
struct behind {
    git::user_read full;
    std::vector<const v1::commit*> steps;  // point into full.state.commits
};

behind mirror_up_to(const git::storage_reader& reader, dolt::connection& conn,
                    const std::string& watermark) {
    REQUIRE(dolt::migrate(conn));
    auto at = reader.read_user_at_commit("u", watermark);
    REQUIRE(at.has_value());
    REQUIRE(dolt::testing::apply_state(conn, at->state));
    auto full = reader.read_user("u");
    REQUIRE(full.has_value());
    behind b{std::move(*full), {}};
    const auto plan = proxy::mirror_logic::plan_history(b.full.state, watermark);
    REQUIRE_FALSE(plan.rewritten);
    b.steps = plan.new_commits;
    return b;
}

v1::user_state read_back(dolt::connection& conn, const std::string& user) {
    auto r = dolt::testing::read_state(conn, user);
    REQUIRE(r);
    REQUIRE(r->has_value());
    return **r;
}

}  // namespace

TEST_CASE("commit-by-commit apply: every step is v1 as of that commit", "[mirror]") {
    temp_dir tmp;
    repo r(tmp.path / "u");
    r.write(".gitignore", "*.pyc\n");
    r.commit("Initialize user storage", 1795320000);
    r.write("memory-blocks/student.md", "---\nblock: student\n---\n\nA\n");
    const auto c1 = r.commit("Initialize student block\n\nAuthor: system", 1795320001);
    r.write("memory-blocks/student.md", "---\nblock: student\n---\n\nB\n");
    r.write("memory-blocks/journey.md", "J\n");
    const auto c2 = r.commit("Two blocks\n\nAuthor: user", 1795320001);  // same second
    r.remove("memory-blocks/journey.md");
    const auto c3 = r.commit("Drop journey\n\nAuthor: agent:tutor", 1795320002);
    r.write("memory-blocks/student.md", "C\r\n");
    const auto c4 = r.commit("CRLF\n\nAuthor: user", 1795320003);
    r.write("pending_diffs/d1.json",
            R"({"id": "d1", "agent_id": "tutor", "block_label": "student", "field": null,)"
            R"( "operation": "append", "current_value": null, "proposed_value": "x",)"
            R"( "reasoning": "r", "confidence": "low", "status": "pending",)"
            R"( "created_at": "2026-11-22T04:16:24", "reviewed_at": null,)"
            R"( "applied_commit": null, "source_query": null})");

    auto reader = git::storage_reader::open(tmp.path.string());
    REQUIRE(reader.has_value());
    scratch_db db;
    dolt::connection conn = db.connect();
    const behind b = mirror_up_to(*reader, conn, c1);  // the watermark: c1
    REQUIRE(b.steps.size() == 3);

    std::vector<std::string> seen;
    auto failed =
        proxy::apply_one_by_one(conn, *reader, dolt::derive_rows(b.full.state), b.steps, {},
                                [&](const v1::commit& c, const dolt::apply_stats& st) {
                                    seen.push_back(c.sha);
                                    CHECK(st.watermark_moved);
                                    CHECK(st.commits_added == 1);
                                    auto expected = reader->read_user_at_commit("u", c.sha);
                                    REQUIRE(expected.has_value());
                                    INFO("after " << c.sha);
                                    require_same(expected->state, read_back(conn, "u"));
                                    auto mark = dolt::read_watermark(conn, "u");
                                    REQUIRE(mark);
                                    REQUIRE(mark->has_value());
                                    CHECK((*mark)->v1_commit == c.sha);
                                });
    CHECK_FALSE(failed);
    CHECK(seen == std::vector<std::string>{c2, c3, c4});
    require_same(b.full.state, read_back(conn, "u"));
}

TEST_CASE("commit-by-commit apply stops at a failing step, the steps before stay", "[mirror]") {
    temp_dir tmp;
    repo r(tmp.path / "u");
    r.write("memory-blocks/student.md", "A\n");
    const auto c1 = r.commit("One\n\nAuthor: user", 1795320000);
    r.write("memory-blocks/student.md", "B\n");
    const auto c2 = r.commit("Two\n\nAuthor: user", 1795320001);
    r.write("memory-blocks/student.md", "C\n");
    r.commit("Three\n\nAuthor: " + std::string(300, 'a'), 1795320002);  // author > VARCHAR(255)
    r.write("memory-blocks/student.md", "D\n");
    r.commit("Four\n\nAuthor: user", 1795320003);

    auto reader = git::storage_reader::open(tmp.path.string());
    REQUIRE(reader.has_value());
    scratch_db db;
    dolt::connection conn = db.connect();
    const behind b = mirror_up_to(*reader, conn, c1);
    REQUIRE(b.steps.size() == 3);

    int steps = 0;
    auto failed =
        proxy::apply_one_by_one(conn, *reader, dolt::derive_rows(b.full.state), b.steps, {},
                                [&](const v1::commit&, const dolt::apply_stats&) { ++steps; });
    REQUIRE(failed);
    CHECK(failed->from == proxy::step_failure::source::dolt);
    CHECK(failed->dolt_error.code == 1406);
    CHECK(steps == 1);
    auto at_c2 = reader->read_user_at_commit("u", c2);
    REQUIRE(at_c2.has_value());
    require_same(at_c2->state, read_back(conn, "u"));
}
