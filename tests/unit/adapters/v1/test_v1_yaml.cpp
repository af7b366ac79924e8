// tests/unit/adapters/v1/test_v1_yaml: PyYAML safe_load semantics and FastAPI's JSON encoding of
// the result (adapters/v1/yaml_json). Every expected answer in the table below was produced by
// Debian's PyYAML 6.0 + FastAPI 0.92 (yaml.safe_load, then json.dumps(jsonable_encoder(v),
// ensure_ascii=False, allow_nan=False, separators=(",", ":"))); "crash" means Python raised
// something other than a YAMLError, "invalid" means a YAMLError.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "adapters/v1/yaml_json.hpp"

using sg::v1::yaml_outcome;

namespace {

struct yaml_case {
    std::string yaml;
    yaml_outcome outcome;
    std::string json;  // python_json text when outcome is ok
};

// Generated from PyYAML; U+0085/U+2028/U+2029 as line breaks in plain scalars are a known gap and
// left out.
const std::vector<yaml_case> yaml_cases = {
    {"a: ~", yaml_outcome::ok, R"j({"a":null})j"},
    {"a: null", yaml_outcome::ok, R"j({"a":null})j"},
    {"a: Null", yaml_outcome::ok, R"j({"a":null})j"},
    {"a: NULL", yaml_outcome::ok, R"j({"a":null})j"},
    {"a:", yaml_outcome::ok, R"j({"a":null})j"},
    {"a: nULL", yaml_outcome::ok, R"j({"a":"nULL"})j"},
    {"a: [yes, Yes, YES, no, No, NO, true, True, TRUE, false, False, FALSE, on, On, ON, off, Off, "
     "OFF]",
     yaml_outcome::ok,
     R"j({"a":[true,true,true,false,false,false,true,true,true,false,false,false,true,true,true,f)j"
     R"j(alse,false,false]})j"},
    {"a: [y, n, tRue, yES]", yaml_outcome::ok, R"j({"a":["y","n","tRue","yES"]})j"},
    {"a: [0, +0, -0, 12, -12, 1_000, 0x1F, 0x_1f, -0x1F, 017, 0_17, 0b101, -0b1_01, 1:20, -1:20, "
     "190:20:30, 00]",
     yaml_outcome::ok, R"j({"a":[0,0,0,12,-12,1000,31,31,-31,15,15,5,-5,80,-80,685230,0]})j"},
    {"a: [08, 0o17, 1__0, 0x1G, 1:60, 12e3]", yaml_outcome::ok,
     R"j({"a":["08","0o17",10,"0x1G","1:60","12e3"]})j"},
    {"a: 123456789012345678901234567890", yaml_outcome::ok,
     R"j({"a":123456789012345678901234567890})j"},
    {"a: 0x123456789abcdef0123456789abcdef", yaml_outcome::ok,
     R"j({"a":1512366075204170929049582354406559215})j"},
    {"a: [1.5, -1.5, +1.5, 1., 0., .5, 1_0.5, 1.0e+3, 1.0E-3, 1:20.5, 100.0, 1e16, 1.0e+16, 0.1, "
     "0.0001, 0.00001, 123456789.123456789, -0.0]",
     yaml_outcome::ok,
     R"j({"a":[1.5,-1.5,1.5,1.0,0.0,0.5,10.5,1000.0,0.001,80.5,100.0,"1e16",1e+16,0.1,0.0001,1e-0)j"
     R"j(5,123456789.12345679,-0.0]})j"},
    {"a: [1e3, 1.0e3, -.5, +.5, 1.e, .e1]", yaml_outcome::ok,
     R"j({"a":["1e3","1.0e3","-.5","+.5","1.e",".e1"]})j"},
    {"a: .inf", yaml_outcome::crash, ""},
    {"a: -.Inf", yaml_outcome::crash, ""},
    {"a: .NaN", yaml_outcome::crash, ""},
    {"a: 1.0e+400", yaml_outcome::crash, ""},
    {"a: [2026-01-13, 2026-01-13T18:27:03.150665+00:00, 2026-01-13 18:27:03, 2026-01-13t1:02:03Z, "
     "2026-01-13 18:27:03.1234567 -05, 2026-01-13   1:02:03.5 +5:30, 2026-1-13]",
     yaml_outcome::ok,
     R"j({"a":["2026-01-13","2026-01-13T18:27:03.150665+00:00","2026-01-13T18:27:03","2026-01-13T)j"
     R"j(01:02:03+00:00","2026-01-13T18:27:03.123456-05:00","2026-01-13T01:02:03.500000+05:30)j"
     R"j(","2026-1-13"]})j"},
    {"a: 2026-02-30", yaml_outcome::crash, ""},
    {"a: 2026-01-13 24:00:00", yaml_outcome::crash, ""},
    {"a: 2020-01-01 00:00:00 +24", yaml_outcome::crash, ""},
    {"a: 0000-01-01", yaml_outcome::crash, ""},
    {"a: '2026-01-13T18:27:03.150665+00:00'", yaml_outcome::ok,
     R"j({"a":"2026-01-13T18:27:03.150665+00:00"})j"},
    {"a: ['1', \"true\", 'null', '~', ! 5, ! '5', !!str 12, !!str ~, !!str]", yaml_outcome::invalid,
     ""},
    {"a: [!!int '12', !!int ' 12 ', !!float '1', !!float '1e5', !!bool 'YeS', !!null 'x', "
     "!!timestamp 2020-1-2, !!binary aGVsbG8=]",
     yaml_outcome::ok, R"j({"a":[12,12,1.0,100000.0,true,null,"2020-01-02","hello"]})j"},
    {"a: !!int 08", yaml_outcome::crash, ""},
    {"a: !!bool maybe", yaml_outcome::crash, ""},
    {"a: !!timestamp nope", yaml_outcome::crash, ""},
    {"a: !!float abc", yaml_outcome::crash, ""},
    {"a: !foo x", yaml_outcome::invalid, ""},
    {"a: !!python/tuple [1, 2]", yaml_outcome::invalid, ""},
    {"a: !!str [1]", yaml_outcome::invalid, ""},
    {"a: !!map [1]", yaml_outcome::invalid, ""},
    {"a: !!binary wg==", yaml_outcome::crash, ""},
    {"a: !!binary aGk", yaml_outcome::invalid, ""},
    {"a: !!binary 'é'", yaml_outcome::invalid, ""},
    {"a: [!!set {x}, !!omap [a: 1, b: 2], !!pairs [a: 1, a: 2]]", yaml_outcome::ok,
     R"j({"a":[["x"],[["a",1],["b",2]],[["a",1],["a",2]]]})j"},
    {"a: !!omap [a: 1, [b]]", yaml_outcome::invalid, ""},
    {"a: \"\\x41\\u00e9\\U0001F600 \\t\\n\\\\ \\\" \\/ \\0 \\a \\e \\N \\_ \\L \\P\"",
     yaml_outcome::ok, R"j({"a":"Aé😀 \t\n\\ \" / \u0000 \u0007 \u001b       "})j"},
    {"a: 'it''s'", yaml_outcome::ok, R"j({"a":"it's"})j"},
    {"a: \"\\ud800\"", yaml_outcome::crash, ""},
    {"a: \"\\U00110000\"", yaml_outcome::crash, ""},
    {"a: \"\\q\"", yaml_outcome::invalid, ""},
    {"a: \"multi\n  line\n\n  para\"", yaml_outcome::ok, R"j({"a":"multi line\npara"})j"},
    {"a: 'x\n\n\n  y'", yaml_outcome::ok, R"j({"a":"x\n\ny"})j"},
    {"a: \"esc\\\n   aped\"", yaml_outcome::ok, R"j({"a":"escaped"})j"},
    {"a: plain\n  continued\n\n  more", yaml_outcome::ok, R"j({"a":"plain continued\nmore"})j"},
    {"a: héllo wörld ✓ 😀", yaml_outcome::ok, R"j({"a":"héllo wörld ✓ 😀"})j"},
    {"a: \"\\x00 \\x7f \\x1f\"", yaml_outcome::ok, R"j({"a":"\u0000  \u001f"})j"},
    {"a: |\n  lit\n   more\n\nb: >-\n  folded\n  text\n\n  para\nc: |+\n  keep\n\n",
     yaml_outcome::ok, R"j({"a":"lit\n more\n","b":"folded text\npara","c":"keep\n\n"})j"},
    {"a: >\n  x\n\n   indented\n  y\n", yaml_outcome::ok, R"j({"a":"x\n\n indented\ny\n"})j"},
    {"a: |2\n   two\n", yaml_outcome::ok, R"j({"a":" two\n"})j"},
    {"a: |-\n  x\n  ", yaml_outcome::ok, R"j({"a":"x"})j"},
    {"a: >+\n    y\n  \n  \nb: 1", yaml_outcome::ok, R"j({"a":"y\n\n\n","b":1})j"},
    {"{a: 1, b: 2, a: 3}", yaml_outcome::ok, R"j({"a":3,"b":2})j"},
    {"{true: a, 1: b, 1.0: c, null: d, 2020-01-01: e, \"2020-01-01\": f, \"1\": g, 1.5: h, _sa_x: "
     "i, ~: j}",
     yaml_outcome::ok, R"j({"true":"c","null":"j","2020-01-01":"f","1":"g","1.5":"h"})j"},
    {"{1: a, '1': b}", yaml_outcome::ok, R"j({"1":"a","1":"b"})j"},
    {"[a]: 1", yaml_outcome::invalid, ""},
    {"{a: 1}: 1", yaml_outcome::invalid, ""},
    {"? a\n: 1", yaml_outcome::ok, R"j({"a":1})j"},
    {"? [a]\n: 1", yaml_outcome::invalid, ""},
    {"a: {_sa_b: 1, c: {_sa_d: 2}, _s: 3}", yaml_outcome::ok, R"j({"a":{"c":{},"_s":3}})j"},
    {"a: {b: !!binary X3Nh, !!binary X3Nh: 2}", yaml_outcome::ok, R"j({"a":{"b":"_sa","_sa":2}})j"},
    {"{.inf: a}", yaml_outcome::crash, ""},
    {"{.nan: a}", yaml_outcome::crash, ""},
    {"{2026-01-13T01:00:00+01:00: a, 2026-01-13T00:00:00Z: b}", yaml_outcome::ok,
     R"j({"2026-01-13T01:00:00+01:00":"b"})j"},
    {"x: &a {p: 1, q: 1}\ny: {<<: *a, q: 2}\nz: {q: 2, <<: [*a, {p: 5, r: 6}]}", yaml_outcome::ok,
     R"j({"x":{"p":1,"q":1},"y":{"p":1,"q":2},"z":{"p":1,"r":6,"q":2}})j"},
    {"x: &a {p: 1}\ny:\n  <<: *a\n  <<: {r: 2}", yaml_outcome::ok,
     R"j({"x":{"p":1},"y":{"p":1,"r":2}})j"},
    {"a: {<<: 1}", yaml_outcome::invalid, ""},
    {"a: {<<: [1]}", yaml_outcome::invalid, ""},
    {"a: &s {<<: *s}", yaml_outcome::ok, R"j({"a":{}})j"},
    {"{=: 1}", yaml_outcome::ok, R"j({"=":1})j"},
    {"a: =", yaml_outcome::invalid, ""},
    {"a: '<<'", yaml_outcome::ok, R"j({"a":"<<"})j"},
    {"{'<<': {p: 1}}", yaml_outcome::ok, R"j({"<<":{"p":1}})j"},
    {"a: &x 1\nb: *x", yaml_outcome::ok, R"j({"a":1,"b":1})j"},
    {"a: &x 1\nb: &x 2", yaml_outcome::invalid, ""},
    {"a: *nope", yaml_outcome::invalid, ""},
    {"a: &a [*a]", yaml_outcome::crash, ""},
    {"&a a: &b b\n*b : *a", yaml_outcome::ok, R"j({"a":"b","b":"a"})j"},
    {"&a: 1", yaml_outcome::ok, R"j({"null":1})j"},
    {"", yaml_outcome::ok, R"j(null)j"},
    {"# only a comment", yaml_outcome::ok, R"j(null)j"},
    {"---", yaml_outcome::ok, R"j(null)j"},
    {"...", yaml_outcome::invalid, ""},
    {"a: 1\n...", yaml_outcome::ok, R"j({"a":1})j"},
    {"a: 1\n--- b", yaml_outcome::invalid, ""},
    {"a: 1\n---", yaml_outcome::invalid, ""},
    {"%YAML 1.1\n--- a", yaml_outcome::ok, R"j("a")j"},
    {"%YAML 2.0\n--- a", yaml_outcome::invalid, ""},
    {"%FOO bar\n--- a", yaml_outcome::ok, R"j("a")j"},
    {"%FOO bar\na: 1", yaml_outcome::invalid, ""},
    {"a: 1\n%x", yaml_outcome::invalid, ""},
    {"a:\t1", yaml_outcome::invalid, ""},
    {"a: x\ty", yaml_outcome::invalid, ""},
    {"\ta: 1", yaml_outcome::invalid, ""},
    {"a: 1 # c\td", yaml_outcome::ok, R"j({"a":1})j"},
    {"a: 'x\ty'", yaml_outcome::ok, R"j({"a":"x\ty"})j"},
    {"a: |\n  x\ty\n", yaml_outcome::ok, R"j({"a":"x\ty\n"})j"},
    {"a: |\n\tx\n", yaml_outcome::invalid, ""},
    {"a: 1\nb", yaml_outcome::invalid, ""},
    {"a:\n{x: 1}", yaml_outcome::invalid, ""},
    {"key\n: v", yaml_outcome::invalid, ""},
    {"[a, , b]", yaml_outcome::invalid, ""},
    {"{a, , b}", yaml_outcome::invalid, ""},
    {"[a, b, ]", yaml_outcome::ok, R"j(["a","b"])j"},
    {"{: x}", yaml_outcome::invalid, ""},
    {"a: 1\n: 2", yaml_outcome::invalid, ""},
    {"a: !{b: 1}", yaml_outcome::invalid, ""},
    {"a: &x[1]", yaml_outcome::invalid, ""},
    {"&@x a: 1", yaml_outcome::invalid, ""},
    {"a: \x07", yaml_outcome::invalid, ""},
    {"a: ￾", yaml_outcome::invalid, ""},
    {"﻿a: 1", yaml_outcome::ok, R"j({"a":1})j"},
    {"- 1\n- 2", yaml_outcome::ok, R"j([1,2])j"},
    {"42", yaml_outcome::ok, R"j(42)j"},
    {"\"text\"", yaml_outcome::ok, R"j("text")j"},
    {"[]", yaml_outcome::ok, R"j([])j"},
    {"{}", yaml_outcome::ok, R"j({})j"},
    {"- [k, v]\n- [k2, v2]", yaml_outcome::ok, R"j([["k","v"],["k2","v2"]])j"},
    {"a: [1, 2", yaml_outcome::invalid, ""},
    {"a: 'unterminated", yaml_outcome::invalid, ""},
    {"a: b: c", yaml_outcome::invalid, ""},
    {"- a\n b: 1", yaml_outcome::invalid, ""},
};

// The whole pipeline for one text: load, then encode.
std::pair<yaml_outcome, std::string> run(const std::string& text,
                                         const sg::v1::yaml_limits& limits = {}) {
    auto loaded = sg::v1::load_yaml(text, limits);
    if (loaded.outcome != yaml_outcome::ok) return {loaded.outcome, ""};
    auto enc = sg::v1::python_json(loaded.graph, loaded.graph.root, limits);
    return {enc.outcome, enc.text};
}

const char* name(yaml_outcome o) {
    switch (o) {
        case yaml_outcome::ok: return "ok";
        case yaml_outcome::invalid: return "invalid";
        case yaml_outcome::crash: return "crash";
        case yaml_outcome::too_large: return "too_large";
    }
    return "?";
}

}  // namespace

TEST_CASE("YAML loads and encodes as PyYAML and FastAPI do", "[yaml]") {
    for (const auto& c : yaml_cases) {
        INFO("yaml: " << c.yaml);
        const auto [outcome, json] = run(c.yaml);
        CHECK(std::string(name(outcome)) == name(c.outcome));
        if (c.outcome == yaml_outcome::ok) CHECK(json == c.json);
    }
}

TEST_CASE("yaml_to_json gives the parsed form of the same text", "[yaml]") {
    auto r = sg::v1::yaml_to_json("b: 1\na: [x, 2026-01-13, {c: ~}]\n_sa: 1\n1: one");
    REQUIRE(r.outcome == yaml_outcome::ok);
    CHECK(r.value.dump() == R"({"b":1,"a":["x","2026-01-13",{"c":null}],"1":"one"})");
    CHECK(sg::v1::yaml_to_json("a: [1").outcome == yaml_outcome::invalid);
    CHECK(sg::v1::yaml_to_json("a: .nan").outcome == yaml_outcome::crash);
    CHECK(sg::v1::yaml_to_json("a: 2026-02-30").outcome == yaml_outcome::crash);
}

TEST_CASE("hostile YAML gives an answer quickly, never a crash of ours", "[yaml]") {
    SECTION("deep flow nesting") {
        const std::string deep = "a: " + std::string(200000, '[') + std::string(200000, ']');
        CHECK(run(deep).first == yaml_outcome::crash);  // Python: RecursionError
    }
    SECTION("deep block nesting") {
        std::string deep;
        for (int i = 0; i < 5000; ++i)
            deep += std::string(static_cast<std::size_t>(i), ' ') + "k:\n";
        CHECK(run(deep).first == yaml_outcome::crash);
    }
    SECTION("nesting right at PyYAML's recursion limit (measured on the v1 reference)") {
        auto nested = [](std::size_t n) {
            return "a: " + std::string(n, '[') + std::string(n, ']');
        };
        CHECK(run(nested(481)).first == yaml_outcome::ok);
        CHECK(run(nested(482)).first == yaml_outcome::crash);
    }
    SECTION("billion laughs") {
        std::string bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
        for (int i = 1; i < 12; ++i) {
            const std::string p = "*a" + std::to_string(i - 1);
            bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p;
            for (int k = 0; k < 9; ++k) bomb += ", " + p;
            bomb += "]\n";
        }
        CHECK(run(bomb).first == yaml_outcome::too_large);
        CHECK(sg::v1::yaml_to_json(bomb).outcome == yaml_outcome::too_large);
    }
    SECTION("a cycle through an alias") {
        CHECK(run("a: &a [*a]").first == yaml_outcome::crash);
        CHECK(run("a: &a {b: *a}").first == yaml_outcome::crash);
    }
    SECTION("many nodes") {
        std::string many = "a: [";
        for (int i = 0; i < 300000; ++i) many += "1,";
        many += "1]";
        CHECK(run(many).first == yaml_outcome::too_large);
    }
    SECTION("a long merge chain") {
        std::string chain = "m0: &m0 {k0: 0}\n";
        for (int i = 1; i < 1000; ++i) {
            chain += "m" + std::to_string(i) + ": &m" + std::to_string(i) + " {<<: *m" +
                     std::to_string(i - 1) + ", k" + std::to_string(i) + ": 0}\n";
        }
        const auto r = run(chain).first;
        CHECK((r == yaml_outcome::ok || r == yaml_outcome::too_large));
    }
    SECTION("huge scalars") {
        const std::string big = "k: " + std::string(2'000'000, 'x');
        const auto r = run(big);
        CHECK(r.first == yaml_outcome::ok);
        CHECK(r.second.size() == 2'000'000 + 8);
        CHECK(run("a: " + std::string(5000, '1')).first ==
              yaml_outcome::crash);  // int() > 4300 digits
        CHECK(run("a: 0x" + std::string(5000, 'f')).first == yaml_outcome::crash);  // str() of it
    }
    SECTION("not UTF-8") { CHECK(run("a: \xff").first == yaml_outcome::crash); }
}

TEST_CASE("Python helpers match CPython", "[yaml]") {
    using sg::v1::python_float_repr;
    const std::vector<std::pair<double, std::string>> floats = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {1.5, "1.5"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {1.5e300, "1.5e+300"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {123456789.123456789, "123456789.12345679"},
        {-2.5e-7, "-2.5e-07"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    for (const auto& [v, s] : floats) CHECK(python_float_repr(v) == s);

    CHECK(sg::v1::python_json_string("a\"b\\c\n\t\x01\x7f/é") ==
          "\"a\\\"b\\\\c\\n\\t\\u0001\x7f/é\"");
    CHECK(sg::v1::utf8_decode_replace("a\xff"
                                      "b\xe2\x82"
                                      "c") ==
          "a\xEF\xBF\xBD"
          "b\xEF\xBF\xBD"
          "c");
    CHECK(sg::v1::utf8_decode_replace("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(sg::v1::is_valid_utf8("héllo ✓ 😀"));
    CHECK_FALSE(sg::v1::is_valid_utf8("\xc0\xaf"));          // overlong
    CHECK_FALSE(sg::v1::is_valid_utf8("\xed\xa0\x80"));      // surrogate
    CHECK_FALSE(sg::v1::is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
    CHECK(sg::v1::python_strip(" \t\xc2\xa0x y\xe3\x80\x80\n") == "x y");
    CHECK(sg::v1::python_len("h\xc3\xa9\xf0\x9f\x98\x80") == 3);
}
