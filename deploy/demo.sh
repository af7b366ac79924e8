#!/usr/bin/env bash
# The main job on a self-contained default: installs what is missing, builds shadowgate, starts
# the v1 reference service with a few users and a local MariaDB, backfills, runs shadowgate in
# the shadow stage in front of v1 with traffic through it, and reports: what passed, the mirror's
# verdict (Dolt == v1), Dolt's answers vs v1's, metrics.
# Usage: bash deploy/demo.sh [--users N] [--requests N]
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
# Relative to the checkout, or absolute.
BUILD_DIR=$(realpath -m "$BUILD_DIR")
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target shadowgate -j"$(nproc)"
SHADOWGATE_BIN="$BUILD_DIR/proxy/shadowgate" exec /usr/bin/python3 deploy/demo.py "$@"
