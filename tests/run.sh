#!/usr/bin/env bash
# Runs every test: installs what is missing (Debian packages), builds once, then ctest runs the
# unit tests, the v1 conformance replay and the integration suites against real processes.
# Usage: bash tests/run.sh [ctest args...]   (BUILD_DIR=build by default)
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
# ctest prints each entry's time as it ends; the same times, slowest first, close the run.
log="$BUILD_DIR/ctest-output.log"
set +e
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
echo "== time per ctest entry, slowest first =="
sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) .* ([0-9.]+) sec$/\2 \1/p' "$log" \
    | sort -rn \
    | awk '{ printf "%9.1f s  %s\n", $1, $2; sum += $1 } END { printf "%9.1f s  sum\n", sum }'
exit "$rc"
