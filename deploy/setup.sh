#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing, benchmarking and the demo need.
# Idempotent: packages already present are skipped, and apt is not touched when nothing is missing.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake ninja-build ccache pkg-config git
    libboost1.81-dev libgit2-dev libmariadb-dev nlohmann-json3-dev libyaml-cpp-dev
    libspdlog-dev libfmt-dev libcli11-dev catch2 prometheus-cpp-dev
    # tests, the v1 reference service, the demo
    python3 python3-fastapi python3-uvicorn python3-git python3-yaml python3-pytest
    python3-requests curl mariadb-server mariadb-client
    # deploy/prometheus: promtool (check and unit-test the alert rules)
    prometheus
    # reports: the HTML report is rendered by headless Chromium in the tests
    chromium
    # fuzz targets (libFuzzer); the format check (.clang-format)
    clang-14 libclang-rt-14-dev clang-format-14
    # benchmarks
    wrk nginx-light
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# policy-rc.d keeps Debian from starting the system nginx/mariadb services: tests start their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
