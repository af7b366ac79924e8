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
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
