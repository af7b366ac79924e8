#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer targets with clang (ASan + UBSan), replays the named
# regression inputs of tests/fuzz/regressions/<target>/ (each a crash found once, kept so that it
# stays fixed), then runs each target for a fixed number of executions (FUZZ_RUNS, default 60000)
# with a fixed seed (FUZZ_SEED, default 1) from the committed corpus tests/fuzz/corpus/<target>/
# and seeds made of the v1 fixtures (transcript answers for the comparator, block files for
# frontmatter, request lines for the route table). New units go to a working copy in
# build/fuzz/work/, never into the repository; FUZZ_UPDATE_CORPUS=1 merges that copy back into
# tests/fuzz/corpus/ minimised (libFuzzer -merge=1), for a developer to review and commit.
# A finding fails the run; its reproducer is kept in build/fuzz/<target>.findings/ (crash-*):
# copy it to tests/fuzz/regressions/<target>/<what-it-is> with the fix.
#   tests/fuzz/run.sh [BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=$(cd "${1:-$src/build}" && pwd)
out=$build_dir/fuzz
shared=${SHADOWGATE_SHARED:-$src/../shared}
runs=${FUZZ_RUNS:-60000}
seed=${FUZZ_SEED:-1}
cxx=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$cxx" ]; then
    echo "fuzz: clang++ not found (deploy/setup.sh installs clang-14)" >&2
    exit 1
fi
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src")

build() {  # name sources... [-- libs...]
    local name=$1; shift
    local bin=$out/$name
    local newest
    newest=$(ls -t "$@" "$src"/comparator/*.hpp "$src"/adapters/v1/*.hpp 2>/dev/null | head -1)
    if [ ! -x "$bin" ] || [ "$newest" -nt "$bin" ]; then
        echo "fuzz: building $name"
        "$cxx" "${flags[@]}" "$@" -o "$bin" $LIBS
    fi
}

# The PyYAML-compatible loader, in its parts (adapters/v1/model.cmake lists the same).
yaml_loader=("$src"/adapters/v1/yaml_{json,numbers,resolve,scalars,compose,construct,encode}.cpp)

LIBS="" build fuzz_comparator "$src/tests/fuzz/fuzz_comparator.cpp" \
    "$src/comparator/json_diff.cpp" "$src/comparator/compare.cpp" "$src/comparator/record.cpp"
LIBS="-lyaml-cpp" build fuzz_frontmatter "$src/tests/fuzz/fuzz_frontmatter.cpp" \
    "$src/adapters/v1/frontmatter.cpp" "${yaml_loader[@]}" "$src/adapters/v1/utf8.cpp"
LIBS="" build fuzz_routes "$src/tests/fuzz/fuzz_routes.cpp" "$src/adapters/v1/routes.cpp" \
    "$src/adapters/v1/request_ids.cpp" "$src/adapters/v1/utf8.cpp" "$src/adapters/v1/boost_url.cpp"
LIBS="-lyaml-cpp" build fuzz_yaml_emit "$src/tests/fuzz/fuzz_yaml_emit.cpp" \
    "$src/adapters/v1/yaml_emit.cpp" "$src/adapters/v1/yaml_exact.cpp" "${yaml_loader[@]}" \
    "$src/adapters/v1/utf8.cpp"

# Seed corpora from the fixtures (once).
if [ ! -d "$out/seeds/fuzz_yaml_emit" ]; then
    python3 - "$shared/fixtures/v1-transcript.jsonl" "$out/seeds" <<'PY'
import json, sys, pathlib
steps = [json.loads(l) for l in open(sys.argv[1])]
root = pathlib.Path(sys.argv[2])
for name in ("fuzz_comparator", "fuzz_frontmatter", "fuzz_routes", "fuzz_yaml_emit"):
    (root / name).mkdir(parents=True, exist_ok=True)
bodies = [json.dumps(s["response"]) for s in steps if s["response"] is not None]
for i in range(0, min(len(bodies) - 1, 200)):
    (root / "fuzz_comparator" / f"s{i}").write_bytes(
        bodies[i].encode() + b"\0" + bodies[i + 1].encode())
n = 0
for s in steps:
    (root / "fuzz_routes" / f"s{s['step']}").write_bytes(f"{s['method']} {s['path']}".encode())
    body = s.get("body") or {}
    if isinstance(body, dict) and isinstance(body.get("content"), str):
        (root / "fuzz_frontmatter" / f"s{n}").write_bytes(body["content"].encode())
        n += 1
    resp = s.get("response")
    if isinstance(resp, dict) and isinstance(resp.get("metadata"), dict):
        (root / "fuzz_yaml_emit" / f"m{n}").write_bytes(json.dumps(resp["metadata"]).encode())
    if isinstance(resp, dict) and isinstance(resp.get("content"), str):
        (root / "fuzz_frontmatter" / f"r{n}").write_bytes(resp["content"].encode())
        n += 1
PY
fi

status=0
for name in fuzz_comparator fuzz_frontmatter fuzz_routes fuzz_yaml_emit; do
    regressions=$src/tests/fuzz/regressions/$name
    if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
        if ! "$out/$name" -runs=1 "$regressions"/* > "$out/$name.regressions.log" 2>&1; then
            echo "fuzz: $name FAILS A REGRESSION INPUT of $regressions (log: $out/$name.regressions.log)"
            tail -40 "$out/$name.regressions.log"
            status=1
            continue
        fi
        echo "fuzz: $name replayed $(ls "$regressions" | wc -l) regression inputs"
    fi
    work=$out/work/$name
    rm -rf "$work"
    mkdir -p "$work" "$out/$name.findings"
    if [ -d "$src/tests/fuzz/corpus/$name" ]; then cp -r "$src/tests/fuzz/corpus/$name/." "$work/"; fi
    echo "fuzz: $name for $runs runs, seed $seed"
    # -max_total_time only bounds a hang; the run is the fixed number of executions.
    if ! (cd "$out/$name.findings" &&
          "$out/$name" -runs="$runs" -seed="$seed" -max_total_time=600 -max_len=65536 \
              -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
              "$work" "$out/seeds/$name" > "$out/$name.log" 2>&1); then
        echo "fuzz: $name FOUND A PROBLEM (log: $out/$name.log, reproducer in $out/$name.findings)"
        tail -40 "$out/$name.log"
        status=1
    else
        grep -E "stat::number_executed_units|cov:" "$out/$name.log" | tail -2 | sed 's/^/  /'
    fi
    if [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ]; then
        merged=$out/merged/$name
        rm -rf "$merged" && mkdir -p "$merged"
        "$out/$name" -merge=1 -max_len=4096 "$merged" "$work" "$out/seeds/$name" \
            > "$out/$name.merge.log" 2>&1
        rm -rf "$src/tests/fuzz/corpus/$name" && mkdir -p "$src/tests/fuzz/corpus/$name"
        cp "$merged"/* "$src/tests/fuzz/corpus/$name/"
        echo "fuzz: $name corpus merged: $(ls "$merged" | wc -l) units in tests/fuzz/corpus/$name"
    fi
done
# The emitter's corpus through PyYAML itself: our text must be yaml.dump's and load back with
# yaml.safe_load to the same value (the target checked our own loader).
tool=$build_dir/tests/yaml_emit_tool
if [ -x "$tool" ]; then
    if ! find "$out/work/fuzz_yaml_emit" "$out/seeds/fuzz_yaml_emit" -type f -print0 |
            xargs -0 -r -n 500 "$tool" --inputs |
            /usr/bin/python3 "$src/tests/fuzz/check_emit_corpus.py"; then
        echo "fuzz: fuzz_yaml_emit corpus DIFFERS FROM PYYAML"
        status=1
    fi
else
    echo "fuzz: $tool not built: cannot hold the emitter's corpus against PyYAML" >&2
    status=1
fi
exit $status
