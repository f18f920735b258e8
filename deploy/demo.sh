#!/bin/sh
# The README's first command: install what is missing, build, and run the
# main job on embedded defaults (no broker, no Redis needed).
set -eu
cd "$(dirname "$0")/.."
sh deploy/install-deps.sh
cmake -S . -B build -DWB_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target wabot-worker >/dev/null
exec ./build/wabot-worker demo "$@"
