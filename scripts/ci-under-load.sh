#!/usr/bin/env bash
# ci-under-load.sh - runs .ci/run N times in a row (default 3) on clean clones of one commit
# while clean Release builds of the same tree keep both cores busy, as a CI machine shared with
# other jobs would be; stops at the first failure. Logs and the summary go to OUT.
#
#   scripts/ci-under-load.sh [N] [OUT]     (OUT: /tmp/ci-under-load)
set -u
n=${1:-3}
out=${2:-/tmp/ci-under-load}
top=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$top" rev-parse HEAD)
rm -rf "$out" && mkdir -p "$out"
echo "commit $commit" > "$out/summary"

# the load: clean Release builds one after the other, bounded by the runs (and 3 hours)
(
  git clone -q "$top" "$out/load" && git -C "$out/load" checkout -q "$commit"
  end=$(( $(date +%s) + 10800 ))
  k=0
  while [ "$(date +%s)" -lt "$end" ] && [ ! -e "$out/done" ]; do
    rm -rf "$out/load/b"
    cmake -S "$out/load" -B "$out/load/b" -DCMAKE_BUILD_TYPE=Release >/dev/null 2>&1
    cmake --build "$out/load/b" -j2 >/dev/null 2>&1
    k=$((k + 1))
    echo "load build $k $(date -u +%H:%M:%S)" >> "$out/load.log"
  done
) &
loader=$!

rc=0
for i in $(seq 1 "$n"); do
  git clone -q "$top" "$out/run$i" && git -C "$out/run$i" checkout -q "$commit"
  start=$(date +%s)
  (cd "$out/run$i" && CI=true bash .ci/run > "$out/run$i.log" 2>&1)
  rc=$?
  echo "run $i rc=$rc $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)" \
    >> "$out/summary"
  [ "$rc" -ne 0 ] && break
done
touch "$out/done"
wait "$loader"
cat "$out/summary"
exit "$rc"
