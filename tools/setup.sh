#!/usr/bin/env bash
# Installs the build dependencies (Debian), fetches the test models into ~/.cache/osprey
# (or $OSPREY_CACHE) and builds Osprey into ./build. Safe to re-run: every step is cached.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
# dict-devil: The Devil's Dictionary (public domain), the text bench/quant_quality.py scores.
# googletest: GoogleTest's sources, which the aarch64 engine build under qemu compiles for
# the target (tests/CMakeLists.txt, golden_neon_qemu*).
PKGS="cmake ninja-build g++ ccache python3 python3-pip python3-venv libgtest-dev googletest nlohmann-json3-dev libcli11-dev libstb-dev libcpp-httplib-dev libssl-dev pkg-config g++-aarch64-linux-gnu qemu-user dict-devil bible-kjv"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
python3 tools/fetch_models.py
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
