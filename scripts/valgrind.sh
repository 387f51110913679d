#!/usr/bin/env bash
# valgrind.sh - runs every unit test binary of a build under Valgrind's memcheck, in one process
# (CK_FORK=no) so that leaks are seen, and fails on any error or leak. PCRE2's JIT is off
# (DC_PCRE2_NO_JIT=1): memcheck cannot follow the machine code it generates. Valgrind can host
# no seccomp filter, so the compiler helper runs unconfined there (DC_VALGRIND_UNCONFINED=1,
# honoured only on Valgrind's CPU); its own inherited-heap reports are silenced.
# test_watchdog and test_crash are left out: their cases end processes on purpose (by exit or by
# a fatal signal, which Valgrind delivers through its own emulation), and run under ASan instead.
set -uo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
export DC_SOURCE_DIR=$PWD CK_FORK=no DC_PCRE2_NO_JIT=1 DC_VALGRIND_UNCONFINED=1
failed=0
passed=0
for t in "$build"/test_*; do
  name=$(basename "$t")
  case "$name" in test_watchdog|test_crash) continue ;; esac
  [ -x "$t" ] || continue
  log=$(mktemp)
  if valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
       --child-silent-after-fork=yes --error-exitcode=1 "$t" >"$log" 2>&1; then
    echo "valgrind: $name clean"
    passed=$((passed + 1))
  else
    echo "valgrind: $name FAILED"
    grep -v '^==[0-9]*== *$' "$log" | head -40
    failed=$((failed + 1))
  fi
  rm -f "$log"
done
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
