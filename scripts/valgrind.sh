#!/usr/bin/env bash
# valgrind.sh - runs every unit test binary of a build under Valgrind's memcheck, in one process
# (CK_FORK=no) so that leaks are seen, and fails on any error or leak. PCRE2's JIT is off
# (DC_PCRE2_NO_JIT=1): memcheck cannot follow the machine code it generates. Valgrind can host
# no seccomp filter, so the compiler helper runs unconfined there (DC_VALGRIND_UNCONFINED=1,
# honoured only on Valgrind's CPU); its own inherited-heap reports are silenced. memcheck runs
# code tens of times slower than the clock: the library itself stretches time quotas there (it
# knows Valgrind's CPU), so a race between the time quota and another quota ends as on a real
# CPU. The variables are read only by the test build of the library (DC_TESTING), which the
# unit tests link. DC_TEST_QUICK=1 makes the two tests that walk thousands of cases walk
# a representative part (test_walk: the access phase; test_confine: 1,000 plugins for its
# figure), so the whole run stays within minutes; test_crash forks its own workers and runs
# under CK_FORK=no as it is.
# test_watchdog is left out: its cases end their process on purpose (Check exit tests need fork).
set -uo pipefail
build=${1:-build}
shift || true
only=" $* " # test names to run (all when none given): valgrind.sh build test_run test_crash
cd "$(dirname "$0")/.."
export DC_SOURCE_DIR=$PWD CK_FORK=no DC_PCRE2_NO_JIT=1 DC_VALGRIND_UNCONFINED=1 DC_TEST_QUICK=1
failed=0
passed=0
for t in "$build"/test_*; do
  name=$(basename "$t")
  case "$name" in test_watchdog) continue ;; esac
  [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || continue
  [ -x "$t" ] || continue
  # test_crash's forked workers die on purpose (a store to address 8, _exit without freeing):
  # valgrind would turn their exit status into --error-exitcode and the test's checks of that
  # status would fail. Its own process is checked instead: with --child-silent-after-fork and
  # -q, any line valgrind prints is an error of the parent.
  exitcode=(--error-exitcode=1)
  case "$name" in test_crash) exitcode=() ;; esac
  log=$(mktemp)
  start=$SECONDS
  if valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
       --child-silent-after-fork=yes "${exitcode[@]}" "$t" >"$log" 2>&1 &&
     { [ ${#exitcode[@]} -gt 0 ] || ! grep -q '^==[0-9]*== .' "$log"; }; then
    if grep -q 'WARNING: unhandled' "$log"; then
      # the run stays quiet: a call valgrind does not know is avoided under valgrind
      echo "valgrind: $name NOISY ($((SECONDS - start)) s): valgrind warned of calls it does not know"
      grep 'WARNING: unhandled' "$log" | sort | uniq -c | head -5
      failed=$((failed + 1))
    else
      echo "valgrind: $name clean ($((SECONDS - start)) s)"
      passed=$((passed + 1))
    fi
  else
    echo "valgrind: $name FAILED ($((SECONDS - start)) s)"
    grep -v '^==[0-9]*== *$' "$log" | head -40
    failed=$((failed + 1))
  fi
  rm -f "$log"
done
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
