#!/usr/bin/env bash
# test-all.sh - installs what is missing, builds, and runs every test: the normal build, then
# the AddressSanitizer + UBSan build, a Release build, Valgrind, and a short fuzzing run (12 s
# per target).
# The README's second quick-start command.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
# Warnings fail the build in CI (CI=true); a user's build only prints them.
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON

echo "== build (RelWithDebInfo) and test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDC_WERROR=$werror >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build (AddressSanitizer + UBSan) and test"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDC_SANITIZE=ON -DDC_WERROR=$werror >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== build (Release): the optimiser's warnings differ from the other builds'"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DDC_WERROR=$werror >/dev/null
cmake --build build-release -j"$jobs"

echo "== Valgrind (memcheck) on the unit tests"
bash scripts/valgrind.sh build

echo "== Fuzzing (libFuzzer + ASan + UBSan), 12 s per target"
bash scripts/fuzz.sh 12
