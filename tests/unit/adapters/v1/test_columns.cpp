// tests/unit/adapters/v1/test_columns: v1 texts as the plan's columns and back
// (adapters/v1/columns), and whole users as rows of the v2 tables and back (adapters/dolt/rows): on
// hand-made texts, and on every block and version of the v1 sample storage in the fixtures, whose
// answers rendered from the rows alone must be v1's answers byte for byte.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "adapters/dolt/rows.hpp"
#include "adapters/git/reader.hpp"
#include "adapters/v1/columns.hpp"
#include "adapters/v1/render.hpp"

namespace fs = std::filesystem;
using sg::v1::join_text;
using sg::v1::split_text;

namespace {

// split then join gives the text back, and the split is as expected.
void round_trip(const std::string& text) {
    INFO(text);
    const auto s = split_text(text);
    CHECK(s.unrepresentable.empty());
    CHECK(join_text(s.columns) == text);
}

}  // namespace

TEST_CASE("columns: a file v1 wrote splits into the plan's columns and joins back", "[columns]") {
    const std::string file =
        "---\nblock: student\nupdated_at: '2026-01-13T18:27:03.150665+00:00'\ntitle: Student\n"
        "---\n\nMarkdown body...\n";
    const auto s = split_text(file);
    CHECK(s.unrepresentable.empty());
    CHECK(s.columns.frontmatter);
    CHECK(s.columns.content == "Markdown body...\n");
    CHECK(s.columns.blank_lines == 1);
    CHECK(
        s.columns.metadata ==
        R"({"block":"student","updated_at":"2026-01-13T18:27:03.150665+00:00","title":"Student"})");
    CHECK(s.columns.metadata_keys == R"(["/block","/updated_at","/title"])");
    CHECK(join_text(s.columns) == file);

    // Leading blank lines of the body, CRLF in a version's body, no frontmatter at all, an empty
    // body, nested values, quoting, non-ASCII (escaped by yaml.dump), a multi-line string.
    round_trip("---\nblock: a\n---\n\n\n\nbody after blank lines\n");
    round_trip("---\nblock: a\n---\n\nline one\r\nline two\rthree\r\n");
    round_trip("no frontmatter\r\n---\nat all\n");
    round_trip("");
    round_trip("---\nblock: a\n---\n\n");
    round_trip(
        "---\nblock: a\ntags:\n- x\n- 'yes'\nnested:\n  z: 1\n  a:\n  - k: 2.5\n    b: null\n"
        "---\n\nbody");
    round_trip(
        "---\ntitle: \"caf\\xE9 \\u2603\"\nnote: 'a: b # c'\nempty: ''\nn: '0123'\n---\n\nx");
    round_trip("---\ntext: 'first\n\n  second'\n---\n\nx");
}

TEST_CASE("columns: the split follows v1's parse_frontmatter", "[columns]") {
    const auto s = split_text("---\nblock: student\n---\n\n\nMarkdown body...\n---\nnot fm\n");
    CHECK(s.columns.content == "Markdown body...\n---\nnot fm\n");
    CHECK(s.columns.blank_lines == 2);
    // The opening newline cannot close the frontmatter; CRLF files do not match (v1's regex
    // wants '\n'); without a match the whole text is the body, leading newlines kept.
    for (const char* plain : {"---\n---\nbody", "---\r\nblock: x\r\n---\r\nbody", "\n\nplain"}) {
        const auto p = split_text(plain);
        CHECK_FALSE(p.columns.frontmatter);
        CHECK(p.columns.content == plain);
        CHECK_FALSE(p.columns.metadata);
    }
    // Only newlines after the frontmatter: an empty body.
    const auto empty = split_text("---\nblock: x\n---\n\n\n");
    CHECK(empty.columns.content.empty());
    CHECK(empty.columns.blank_lines == 2);
    CHECK(empty.unrepresentable.empty());
}

TEST_CASE("columns: key order comes back from metadata_keys, whatever order the JSON has",
          "[columns]") {
    sg::v1::text_columns c;
    c.frontmatter = true;
    c.blank_lines = 1;
    c.content = "x";
    // Sorted, as Dolt keeps JSON.
    c.metadata = R"({"a":[{"x":2,"y":1}],"block":"b","z":{"a":2,"b":1}})";
    c.metadata_keys = R"(["/block","/z","/z/b","/z/a","/a","/a/0/y","/a/0/x"])";
    CHECK(join_text(c) == "---\nblock: b\nz:\n  b: 1\n  a: 2\na:\n- y: 1\n  x: 2\n---\n\nx");
    // Keys the list misses follow the listed ones.
    c.metadata_keys = R"(["/z"])";
    CHECK(join_text(c) == "---\nz:\n  a: 2\n  b: 1\na:\n- x: 2\n  y: 1\nblock: b\n---\n\nx");
    // Columns that make no text.
    c.metadata = "[1]";
    CHECK_FALSE(join_text(c));
    c.metadata = std::nullopt;
    CHECK_FALSE(join_text(c));
    c.metadata = "{}";
    c.blank_lines = -1;
    CHECK_FALSE(join_text(c));
}

TEST_CASE("columns: texts the columns cannot give back are reported with the reason", "[columns]") {
    struct one {
        std::string text;
        std::string reason;  // a part of the reason
        std::optional<std::string> metadata;
    };
    const one cases[] = {
        {"---\nd: 2026-01-01\n---\n\nb", "a date", R"({"d":"2026-01-01"})"},
        {"---\na:   1\n---\n\nb", "not spelt", R"({"a":1})"},
        {"---\na: [unclosed\n---\n\nb", "not valid YAML", "{}"},
        {"---\n\n---\n\nb", "not spelt", "{}"},
        {"---\n- 1\n- 2\n---\n\nb", "not a mapping", "[1,2]"},
        {"---\n1: a\n---\n\nb", "key that is not a string", std::nullopt},
        {"---\nblock: a\n---\n\nnot \xff UTF-8", "not UTF-8", R"({"block":"a"})"},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        const auto s = split_text(c.text);
        CHECK_THAT(s.unrepresentable, Catch::Contains(c.reason));
        if (c.metadata) CHECK(s.columns.metadata == c.metadata);
        CHECK(s.columns.frontmatter);
    }
}

namespace {

std::string shared_dir() {
    const char* d = std::getenv("SHADOWGATE_SHARED");
    return d != nullptr ? d : "../shared";
}

struct temp_dir {
    std::string path;
    temp_dir() {
        std::string t = (fs::temp_directory_path() / "sg-columns-XXXXXX").string();
        REQUIRE(mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// Every read answer of `state` that the columns decide.
std::map<std::string, sg::v1::rendered> answers(const sg::v1::user_state& state,
                                                const std::set<std::string>& labels,
                                                const std::vector<std::string>& shas) {
    std::map<std::string, sg::v1::rendered> out;
    out["list"] = sg::v1::render_list_blocks(state);
    out["counts"] = sg::v1::render_diff_counts(state);
    for (const auto& l : labels) {
        out["get " + l] = sg::v1::render_get_block(state, l);
        out["history " + l] = sg::v1::render_history(state, l, "100");
        out["diffs " + l] = sg::v1::render_list_diffs(state, l);
        for (const auto& sha : shas) {
            out["version " + l + "@" + sha] = sg::v1::render_get_version(state, l, sha);
            out["version " + l + "@" + sha.substr(0, 8)] =
                sg::v1::render_get_version(state, l, sha.substr(0, 8));
        }
        out["version " + l + "@HEAD~1"] = sg::v1::render_get_version(state, l, "HEAD~1");
    }
    return out;
}

void same_answers(const sg::v1::user_state& v1, const sg::v1::user_state& v2) {
    std::set<std::string> labels;
    std::vector<std::string> shas;
    for (const auto& b : v1.blocks) labels.insert(b.label);
    for (const auto& v : v1.versions) labels.insert(v.label);
    for (const auto& c : v1.commits) shas.push_back(c.sha);
    const auto a = answers(v1, labels, shas);
    const auto b = answers(v2, labels, shas);
    for (const auto& [what, r] : a) {
        INFO(v1.user_id << ": " << what);
        const auto& other = b.at(what);
        CHECK(other.status == r.status);
        CHECK(other.body == r.body);
    }
}

}  // namespace

TEST_CASE("rows: every answer for the v1 sample storage rebuilt from the plan's columns alone",
          "[columns]") {
    temp_dir tmp;
    const auto tarball = shared_dir() + "/fixtures/youlab-v1-sample.tar.gz";
    REQUIRE(fs::exists(tarball));
    REQUIRE(std::system(("tar -xzf '" + tarball + "' -C '" + tmp.path + "'").c_str()) == 0);
    auto reader = sg::git::storage_reader::open(tmp.path);
    REQUIRE(reader.has_value());
    const auto users = reader->list_users();
    REQUIRE(users.has_value());
    REQUIRE(users->users.size() == 13);
    std::size_t versions = 0;
    for (const auto& user : users->users) {
        auto read = reader->read_user(user);
        REQUIRE(read.has_value());
        const auto& state = read->state;
        const auto rows = sg::dolt::derive_rows(state);
        INFO(user);
        CHECK(rows.unrepresentable.empty());
        CHECK(sg::dolt::diff_rows(rows, rows).empty());
        same_answers(state, sg::dolt::rebuild_state(rows));
        // Derived again from an earlier derivation: the same rows.
        CHECK(sg::dolt::diff_rows(sg::dolt::derive_rows(state, &rows), rows).empty());
        versions += rows.versions.size();
    }
    CHECK(versions > 100);
}

TEST_CASE("rows: a change to any column changes an answer, and diff_rows names it", "[columns]") {
    sg::v1::user_state s;
    s.user_id = "u1";
    s.head = std::string(40, 'b');
    sg::v1::commit c0{std::string(40, 'a'), {}, "Initialize user storage", "unknown", 1000, 0, 1};
    sg::v1::commit c1{s.head, {c0.sha}, "Update student\n\nAuthor: user", "user", 1001, 60, 0};
    s.commits = {c1, c0};
    const std::string text = "---\nblock: student\ntitle: Student\n---\n\nline one\r\nline two\n";
    s.blocks = {{"student", text, c1.sha}};
    sg::v1::block_version v;
    v.sha = c1.sha;
    v.label = "student";
    v.source = text;
    v.message = c1.message;
    v.author = "user";
    v.commit_time = 1001;
    v.commit_tz_offset_minutes = 60;
    s.versions = {v};
    sg::v1::pending_diff d;
    d.id = "d1";
    d.agent_id = "tutor";
    d.block_label = "student";
    d.operation = "append";
    d.proposed_value = "more";
    d.reasoning = "because";
    d.confidence = "high";
    d.status = "pending";
    d.created_at = "2026-01-13T18:27:03.150665";
    s.diffs = {d};

    const auto rows = sg::dolt::derive_rows(s);
    REQUIRE(rows.unrepresentable.empty());
    // GET block reads text mode (\r\n -> \n); the version keeps the blob's line ends.
    CHECK(rows.blocks.at(0).text.content == "line one\nline two\n");
    CHECK(rows.versions.at(0).text.content == "line one\r\nline two\n");
    CHECK(rows.versions.at(0).message == "Update student");
    CHECK(rows.diffs.at(0).created_at == "2026-01-13 18:27:03.150665");
    same_answers(s, sg::dolt::rebuild_state(rows));

    using mutate = void (*)(sg::dolt::user_rows&);
    struct planted {
        const char* column;
        mutate change;
        const char* answer;  // an answer that must change ("" when none renders the column)
    };
    const planted cases[] = {
        {"content", [](auto& r) { r.blocks[0].text.content = "changed"; }, "get student"},
        {"metadata", [](auto& r) { r.blocks[0].text.metadata = R"({"block":"x"})"; },
         "get student"},
        {"blank_lines", [](auto& r) { r.blocks[0].text.blank_lines = 2; }, "get student"},
        {"updated_at", [](auto& r) { r.blocks[0].updated_at = "2020-01-01 00:00:00.000000"; }, ""},
        {"content", [](auto& r) { r.versions[0].text.content = "changed"; },
         "version student@bbbbbbbb"},
        {"metadata", [](auto& r) { r.versions[0].text.metadata = R"({"block":"x"})"; },
         "version student@bbbbbbbb"},
        {"author", [](auto& r) { r.versions[0].author = "agent:x"; }, "history student"},
        {"message", [](auto& r) { r.versions[0].message = "other"; }, "history student"},
        {"created_at", [](auto& r) { r.versions[0].created_at = 5000; }, "history student"},
        {"is_current", [](auto& r) { r.versions[0].is_current = false; }, "history student"},
        {"reasoning", [](auto& r) { r.diffs[0].fields.reasoning = "x"; }, "diffs student"},
        {"proposed_value", [](auto& r) { r.diffs[0].fields.proposed_value = "x"; }, ""},
        {"created_at", [](auto& r) { r.diffs[0].created_at = "2020-01-01 00:00:00.000000"; },
         "diffs student"},
        {"status", [](auto& r) { r.diffs[0].fields.status = "approved"; }, "counts"},
    };
    const std::set<std::string> labels{"student"};
    const std::vector<std::string> shas{c1.sha};
    const auto before = answers(sg::dolt::rebuild_state(rows), labels, shas);
    for (const auto& p : cases) {
        INFO(p.column << " / " << p.answer);
        auto changed = rows;
        p.change(changed);
        const auto drift = sg::dolt::diff_rows(rows, changed);
        REQUIRE(drift.size() == 1);
        CHECK(drift[0].column == p.column);
        CHECK(drift[0].v1 != drift[0].v2);
        if (std::string(p.answer).empty()) continue;
        const auto after = answers(sg::dolt::rebuild_state(changed), labels, shas);
        CHECK(after.at(p.answer).body != before.at(p.answer).body);
    }
}
