"""adapters/v1/yaml_emit held against PyYAML itself (Debian's python3-yaml, the library v1 uses).

A generated corpus of several thousand JSON values (strings that look like numbers, booleans,
dates, nulls, indicators, blanks, line breaks, non-ASCII, long text; numbers, nested lists and
mappings, empty ones, keys that need quotes) goes through tests/tools/yaml_emit_tool; every text
must equal yaml.dump(value, default_flow_style=False, sort_keys=False) byte for byte and load back
with yaml.safe_load to the same value.
"""

import json
import os
import random
import subprocess

import yaml

TOOL = os.environ.get("SG_YAML_EMIT_TOOL", "build/tests/yaml_emit_tool")

FRAGMENTS = [
    "", "a", "word", "Hello World", "0", "1", "-1", "+1", "012", "0x1F", "0o17", "0b101", "1_000",
    "1.5", "-.5", ".5", "1e3", "1.0e+3", "6.8523015e+5", ".inf", "-.Inf", ".nan", "190:20:30",
    "12:30", "true", "True", "FALSE", "yes", "No", "on", "OFF", "y", "n", "null", "Null", "~",
    "NULL", "2026-01-01", "2026-1-1", "2026-01-13T18:27:03.150665+00:00", "2001-12-14 21:59:43.10 -5",
    "<<", "=", "-", "--", "---", "...", "- ", "? ", ": ", ":", "?", "#", " #", "# c", "a # b", "a#b",
    "&a", "*a", "!tag", "!!str", "%", "@", "`", "|", ">", "'", '"', "''", "\\", "[", "]", "{", "}",
    ",", "a: b", "a:b", "key:", " ", "  ", "\t", "\n", "\n\n", " \n", "\n ", "\r", "\r\n", "\x00",
    "\x07", "\x1b", "\x7f", "\x85", "\xa0", "é", "naïve", "日本語", "\u2028", "\u2029", "\ufeff",
    "😀", "\U0010fffe", "\U0010ffff", "\ud7ff", "\ue000", "\ufffd", "Ω", "x" * 90,
]

WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "a", "bb", "ccc", "é", "'q'",
         '"d"', "x:", "#h", "-", "\\", "tab\t", "line\nbreak"]


def rand_string(r: random.Random) -> str:
    kind = r.random()
    if kind < 0.45:
        return "".join(r.choice(FRAGMENTS) for _ in range(r.randint(1, 4)))
    if kind < 0.6:
        # long text with spaces: the emitter folds lines at 80 columns
        sep = r.choice([" ", "  ", " ", "\n", " \n "])
        return sep.join(r.choice(WORDS) for _ in range(r.randint(10, 60)))
    if kind < 0.7:
        return r.choice(["x", "ab ", "é", "a'b", 'a"b', "\\n"]) * r.randint(20, 400)
    if kind < 0.85:
        return "".join(chr(r.choice([r.randint(32, 126), r.randint(0, 31), r.randint(127, 0x2FF),
                                     r.randint(0x2000, 0x206F), r.randint(0x1F300, 0x1F64F)]))
                       for _ in range(r.randint(0, 30)))
    return r.choice(FRAGMENTS)


def rand_scalar(r: random.Random):
    k = r.random()
    if k < 0.55:
        return rand_string(r)
    if k < 0.65:
        return r.choice([0, 1, -1, 42, 10**15, -(2**63), 2**63 - 1, 2**64 - 1, 7])
    if k < 0.8:
        return r.choice([0.0, -0.0, 1.0, 1.5, -2.25, 1e16, 1e-5, 1.5e300, 5e-324, 0.1, 123456.789,
                         r.uniform(-1e6, 1e6), r.random() * 10 ** r.randint(-30, 30)])
    if k < 0.9:
        return r.choice([True, False])
    return None


def rand_value(r: random.Random, depth: int = 0):
    k = r.random()
    if depth > 3 or k < 0.55:
        return rand_scalar(r)
    if k < 0.75:
        return [rand_value(r, depth + 1) for _ in range(r.randint(0, 4))]
    return {rand_key(r): rand_value(r, depth + 1) for _ in range(r.randint(0, 4))}


def rand_key(r: random.Random) -> str:
    k = r.random()
    if k < 0.6:
        return r.choice(["block", "title", "updated_at", "schema", "tags", "k", "a b", "ü"])
    if k < 0.95:
        return rand_string(r)
    return "k" * r.randint(120, 140)  # around the 128-character limit of a simple key


def corpus():
    r = random.Random(20261205)
    values = []
    # each fragment alone, as a value and as a key
    for f in FRAGMENTS + WORDS:
        values.append({"k": f})
        values.append({f: "v"})
        values.append([f])
    # what v1 writes, and what users put in their frontmatter
    values.append({"block": "student", "updated_at": "2026-01-13T18:27:03.150665+00:00",
                   "title": "Student"})
    values.append({"block": "x", "tags": ["a", "b"], "nested": {"a": {"b": [1, {"c": None}]}},
                   "empty_list": [], "empty_map": {}, "n": 3, "f": 2.5, "ok": True})
    for _ in range(4000):
        values.append({rand_key(r): rand_value(r) for _ in range(r.randint(1, 5))})
    for _ in range(600):
        values.append(rand_value(r))
    return values


def run_tool(values):
    text = "".join(json.dumps(v, ensure_ascii=True) + "\n" for v in values)
    out = subprocess.run([TOOL], input=text.encode(), capture_output=True, check=True).stdout
    lines = [json.loads(l) for l in out.decode().splitlines()]
    assert len(lines) == len(values)
    return [l["dump"] for l in lines]


def test_emitter_equals_pyyaml_on_a_generated_corpus():
    values = corpus()
    assert len(values) > 4000
    ours = run_tool(values)
    mismatches = []
    for value, mine in zip(values, ours):
        theirs = yaml.dump(value, default_flow_style=False, sort_keys=False)
        if mine != theirs:
            mismatches.append((value, theirs, mine))
    for value, theirs, mine in mismatches[:10]:
        print("value:", repr(value))
        print("pyyaml:", repr(theirs))
        print("ours:  ", repr(mine))
    assert not mismatches, f"{len(mismatches)} of {len(values)} values differ from PyYAML"


def test_emitter_output_loads_back_to_the_same_value():
    values = corpus()
    for value, mine in zip(values, run_tool(values)):
        assert yaml.safe_load(mine) == value, (value, mine)


def test_known_answers():
    # non-ASCII is escaped (allow_unicode=False); a list at the root is a block sequence
    out = subprocess.run([TOOL], input=b'{"k": "\\u00e9"}\n["a"]\n', capture_output=True,
                         check=True).stdout.decode().splitlines()
    assert json.loads(out[0])["dump"] == 'k: "\\xE9"\n'
    assert json.loads(out[1])["dump"] == "- a\n"
