// tests/unit/adapters/v1/test_frontmatter: v1's parse_frontmatter and text-mode newlines
// (adapters/v1/frontmatter). The table's expectations come from v1's own parse_frontmatter
// (tests/v1ref/v1ref_storage.py, the same code as YouLab's storage/git.py) run by Debian's Python,
// with the metadata encoded as FastAPI does.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "adapters/v1/frontmatter.hpp"

using sg::v1::frontmatter_outcome;

namespace {

struct fm_case {
    std::string what;
    std::string text;
    frontmatter_outcome outcome;
    std::string metadata_json;  // empty when v1 raises
    std::string body;
};

const std::vector<fm_case> fm_cases = {
    {"no frontmatter", "Just a body.\n", frontmatter_outcome::no_frontmatter, R"j({})j",
     "Just a body.\n"},
    {"v1's own format",
     "---\nblock: student\nupdated_at: '2026-01-13T18:27:03.150665+00:00'\ntitle: "
     "Student\n---\n\nMarkdown body...\n",
     frontmatter_outcome::ok,
     R"j({"block":"student","updated_at":"2026-01-13T18:27:03.150665+00:00","title":"Student"})j",
     "Markdown body...\n"},
    {"empty frontmatter", "---\n\n---\nbody", frontmatter_outcome::ok, R"j({})j", "body"},
    {"two fences, nothing between", "---\n---\nbody", frontmatter_outcome::no_frontmatter,
     R"j({})j", "---\n---\nbody"},
    {"invalid YAML", "---\na: [unclosed\n---\nbody", frontmatter_outcome::invalid_yaml, R"j({})j",
     "body"},
    {"block overriding", "---\nblock: other\ntitle: X\n---\nbody", frontmatter_outcome::ok,
     R"j({"block":"other","title":"X"})j", "body"},
    {"--- inside the body", "---\na: 1\n---\nx\n---\ny\n", frontmatter_outcome::ok, R"j({"a":1})j",
     "x\n---\ny\n"},
    {"the first closing fence wins", "---\na: 1\n---\nb: 2\n---\n", frontmatter_outcome::ok,
     R"j({"a":1})j", "b: 2\n---\n"},
    {"CRLF file", "---\r\na: 1\r\n---\r\nbody\r\n", frontmatter_outcome::no_frontmatter, R"j({})j",
     "---\r\na: 1\r\n---\r\nbody\r\n"},
    {"leading newlines stripped, spaces kept", "---\na: 1\n---\n\n\n\n \nbody",
     frontmatter_outcome::ok, R"j({"a":1})j", " \nbody"},
    {"no blank line after the fence", "---\na: 1\n---\nbody", frontmatter_outcome::ok,
     R"j({"a":1})j", "body"},
    {"unicode", "---\ntitle: Ünïcödé ✓ 😀\n日本: 語\n---\n\nbödy ✓\n", frontmatter_outcome::ok,
     R"j({"title":"Ünïcödé ✓ 😀","日本":"語"})j", "bödy ✓\n"},
    {"list frontmatter", "---\n- 1\n- 2\n---\nbody", frontmatter_outcome::not_mapping, R"j([1,2])j",
     "body"},
    {"scalar frontmatter", "---\n42\n---\nbody", frontmatter_outcome::not_mapping, R"j(42)j",
     "body"},
    {"falsy frontmatter", "---\n0\n---\nbody", frontmatter_outcome::ok, R"j({})j", "body"},
    {"null frontmatter", "---\nnull\n---\nbody", frontmatter_outcome::ok, R"j({})j", "body"},
    {"bad date", "---\nd: 2026-02-30\n---\nbody", frontmatter_outcome::crash, R"j()j", ""},
    {"only the opening fence", "---\n", frontmatter_outcome::no_frontmatter, R"j({})j", "---\n"},
    {"no newline after the closing fence", "---\na: 1\n---", frontmatter_outcome::no_frontmatter,
     R"j({})j", "---\na: 1\n---"},
    {"BOM first", "\xEF\xBB\xBF---\na: 1\n---\nbody", frontmatter_outcome::no_frontmatter,
     R"j({})j", "\xEF\xBB\xBF---\na: 1\n---\nbody"},
    {"empty text", "", frontmatter_outcome::no_frontmatter, R"j({})j", ""},
    {"timestamp-like strings",
     "---\nupdated_at: '2026-01-13T18:27:03.150665+00:00'\nraw: "
     "2026-01-13T18:27:03.150665+00:00\n---\n",
     frontmatter_outcome::ok,
     R"j({"updated_at":"2026-01-13T18:27:03.150665+00:00","raw":"2026-01-13T18:27:03.150665+00:00)j"
     R"j("})j",
     ""},
    {"body is only newlines", "---\na: 1\n---\n\n\n", frontmatter_outcome::ok, R"j({"a":1})j", ""},
};

}  // namespace

TEST_CASE("parse_frontmatter splits like v1", "[frontmatter]") {
    for (const auto& c : fm_cases) {
        INFO(c.what);
        const auto f = sg::v1::parse_frontmatter(c.text);
        CHECK(static_cast<int>(f.outcome) == static_cast<int>(c.outcome));
        if (c.outcome == frontmatter_outcome::crash) continue;
        CHECK(f.body == c.body);
        const auto meta = sg::v1::python_json(f.metadata, f.metadata.root);
        REQUIRE(meta.outcome == sg::v1::yaml_outcome::ok);
        CHECK(meta.text == c.metadata_json);
    }
}

TEST_CASE("parse_frontmatter keeps a 1 MB body intact", "[frontmatter]") {
    std::string body;
    while (body.size() < (1u << 20)) body += "line with ünïcödé and --- dashes\n";
    const auto f = sg::v1::parse_frontmatter("---\ntitle: Big\n---\n\n" + body);
    CHECK(f.outcome == frontmatter_outcome::ok);
    CHECK(f.body == body);
    const auto none = sg::v1::parse_frontmatter(body);
    CHECK(none.outcome == frontmatter_outcome::no_frontmatter);
    CHECK(none.body == body);
}

TEST_CASE("parse_frontmatter reports hostile YAML without throwing", "[frontmatter]") {
    const std::string deep = "---\na: " + std::string(100000, '[') + "\n---\nbody";
    CHECK(sg::v1::parse_frontmatter(deep).outcome == frontmatter_outcome::crash);
    std::string bomb = "---\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i < 12; ++i) {
        const std::string p = "*a" + std::to_string(i - 1);
        bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p + ", " + p + ", " +
                p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p +
                "]\n";
    }
    bomb += "---\nbody";
    // Loading shares the aliases (as PyYAML does); only encoding would blow up.
    const auto f = sg::v1::parse_frontmatter(bomb);
    CHECK(f.outcome == frontmatter_outcome::ok);
    CHECK(sg::v1::python_json(f.metadata, f.metadata.root).outcome ==
          sg::v1::yaml_outcome::too_large);
}

TEST_CASE("universal_newlines reads like Python's text mode", "[frontmatter]") {
    CHECK(sg::v1::universal_newlines("a\r\nb\rc\nd\r\r\n\n") == "a\nb\nc\nd\n\n\n");
    CHECK(sg::v1::universal_newlines("") == "");
    CHECK(sg::v1::universal_newlines("\r") == "\n");
    CHECK(sg::v1::universal_newlines("no breaks") == "no breaks");
    // A CRLF file has no frontmatter as stored (GET versions), but has one once read in text mode
    // (GET block).
    const std::string crlf = "---\r\ntitle: T\r\n---\r\n\r\nbody\r\n";
    CHECK(sg::v1::parse_frontmatter(crlf).outcome == frontmatter_outcome::no_frontmatter);
    const auto text = sg::v1::parse_frontmatter(sg::v1::universal_newlines(crlf));
    CHECK(text.outcome == frontmatter_outcome::ok);
    CHECK(text.body == "body\n");
}

TEST_CASE("python_truthy follows Python", "[frontmatter]") {
    for (const char* falsy :
         {"null", "false", "0", "0.0", "-0.0", "''", "[]", "{}", "!!binary ''"}) {
        auto g = sg::v1::load_yaml(falsy);
        REQUIRE(g.outcome == sg::v1::yaml_outcome::ok);
        CHECK_FALSE(sg::v1::python_truthy(g.graph, g.graph.root));
    }
    for (const char* truthy : {"true", "1", ".nan", "' '", "[0]", "{a: 1}", "2026-01-13", "0x1"}) {
        auto g = sg::v1::load_yaml(truthy);
        REQUIRE(g.outcome == sg::v1::yaml_outcome::ok);
        CHECK(sg::v1::python_truthy(g.graph, g.graph.root));
    }
}
