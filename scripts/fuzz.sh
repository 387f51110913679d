#!/usr/bin/env bash
# fuzz.sh [SECONDS_PER_TARGET] - builds the libFuzzer targets (clang-14, ASan + UBSan, in
# build-fuzz/), replays every input kept under tests/fuzz/crashes/, then runs each target for a
# bounded time from its seed corpus. Exits 1 when any input crashes, leaks or hangs.
# CI runs it for 12 s per target (scripts/test-all.sh); `scripts/fuzz.sh 600` is a longer run.
# FUZZ_TARGETS="api lpattern" limits the run to those targets.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-12}
case "$secs" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
targets=(${FUZZ_TARGETS:-bundle policy snapshot lpattern api hostset})
cc=${FUZZ_CC:-clang-14}
jobs=$(nproc 2>/dev/null || echo 2)
build=build-fuzz
out=$build/fuzz-out

if ! command -v "$cc" >/dev/null; then
  echo "fuzz: $cc not found (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
  exit 2
fi

echo "== fuzz: build ($cc, libFuzzer + ASan + UBSan, $build)"
# warnings are the gcc builds' business: clang's differ, and must not stop a fuzzing run
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDC_FUZZ=ON -DDC_WERROR=OFF \
  -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$build" -j"$jobs" >/dev/null

# Leaks are failures too. PCRE2 interprets rather than JIT-compiles: JIT code is opaque to the
# sanitizers, and compiling it per input would dominate the run.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export DC_PCRE2_NO_JIT=1

rm -rf "$out/artifacts" "$out/logs"
mkdir -p "$out/artifacts" "$out/logs"
failed=()
summary=()
total_execs=0

for t in "${targets[@]}"; do
  bin=$build/fuzz_$t
  log=$out/logs/$t.log
  crashes=(tests/fuzz/crashes/$t/*)
  [ -e "${crashes[0]}" ] || crashes=()

  # 1. every crash found so far must now pass (each file is run once)
  if [ ${#crashes[@]} -gt 0 ]; then
    if ! "$bin" -rss_limit_mb=2048 -timeout=60 "${crashes[@]}" >"$out/logs/$t.replay.log" 2>&1; then
      echo "fuzz: $t: a kept crash input fails again, see $out/logs/$t.replay.log" >&2
      tail -n 30 "$out/logs/$t.replay.log" >&2
      failed+=("$t(replay)")
      summary+=("$t: REPLAY FAILED")
      continue
    fi
  fi

  # 2. a bounded run; new inputs go to the work corpus under build-fuzz, not the seeds
  work=$out/corpus/$t
  mkdir -p "$work"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  echo "== fuzz: $t for ${secs}s (${#crashes[@]} kept crash inputs replayed)"
  rc=0
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" "${dict[@]}" \
    "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 | sed 's/cov: \([0-9]*\) ft: \([0-9]*\)/\1 edges, \2 features/')
  execs=${execs:-0}
  total_execs=$((total_execs + execs))
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); the input is in $out/artifacts/; keep it under" \
         "tests/fuzz/crashes/$t/ with the fix" >&2
    grep -E 'ERROR|SUMMARY|runtime error|differs|Test unit written' "$log" | head -n 10 >&2 || true
    failed+=("$t")
    summary+=("$t: FAILED")
  else
    summary+=("$t: ok, $execs runs, ${cov:-no coverage figure}")
  fi
done

echo "== fuzz summary (${secs}s per target)"
for s in "${summary[@]}"; do echo "  $s"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAIL (${failed[*]}); logs in $out/logs"
  exit 1
fi
echo "fuzz: PASS: ${#targets[@]} targets, ${secs}s each, $total_execs runs, no crash"
