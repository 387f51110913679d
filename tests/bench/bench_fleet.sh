#!/bin/bash
# bench_fleet.sh - what a fleet costs its API and how fast a change reaches it: S nginx servers
# (2 workers each, signed bundles, one verify key) poll one API server; measured: requests the
# API gets per server and per interval while nothing changes (one poll per server, not per
# worker: the lease; all answered 304 by ETag, no signature fetched), the bytes of such an
# answer, then a signed change: the full downloads and signature fetches it costs, and the time
# until every server serves it, against the interval. Prints figures only.
#
# usage: tests/bench/bench_fleet.sh [BUILD_DIR]
# env:   BENCH_SERVERS (8), BENCH_INTERVAL (2, seconds), BENCH_JITTER (2), BENCH_STEADY (20,
#        seconds of unchanged bundle counted)
# shellcheck source=tests/bench/bench_lib.sh disable=SC2154
. "$(dirname "$0")/bench_lib.sh"

S=${BENCH_SERVERS:-8}
I=${BENCH_INTERVAL:-2}
J=${BENCH_JITTER:-2}
D=${BENCH_STEADY:-20}

"$CLI" keygen --out "$T/fleet" >/dev/null
bundle() {  # bundle VERSION: a signed bundle whose content plugin answers "vVERSION"
    cat >"$T/bundle.json.new" <<EOF
{"general": {"status": "enabled", "version": $1}, "domains": [{"name": "*", "plugins": [
  {"name": "page", "phase": "content", "code": "ngx.say('v$1')"}]}]}
EOF
    "$CLI" sign --key "$T/fleet.key" "$T/bundle.json.new" >/dev/null
    # the signature first: a poll between the two moves sees the old bundle with a new .sig
    # at worst, which it refuses and takes again at the next poll
    mv "$T/bundle.json.new.sig" "$T/bundle.json.sig"
    mv "$T/bundle.json.new" "$T/bundle.json"
}
bundle 1
python3 "$API_SERVER" --bundle "$T/bundle.json" --sig --port 0 --max-seconds 3600 \
    >"$T/api-f.out" 2>"$T/api-f.err" &
PIDS+=($!)
wait_until 10 test -s "$T/api-f.out" || { echo "the API server did not start" >&2; exit 1; }
API=$(head -n 1 "$T/api-f.out")
api() { curl -s "http://127.0.0.1:$API/control?$1"; }

for s in $(seq "$S"); do
    new_instance "s$s" 2 "load_module $MODULE;" "
    dynacode_api_uri http://127.0.0.1:$API/bundle.json;
    dynacode_verify_key $T/fleet.pub;
    dynacode_poll_interval ${I}s;
    dynacode_poll_jitter ${J}s;
    server { listen 127.0.0.1:@PORT@; location / { dynacode on; dynacode_content; } }"
    start_instance "s$s"
done
serving() {  # serving VERSION: every server answers vVERSION
    local s port
    for s in $(seq "$S"); do
        port=$(eval echo "\$PORT_s$s")
        [ "$(curl -s --max-time 2 "http://127.0.0.1:$port/")" = "v$1" ] || return 1
    done
}
wait_until 60 serving 1 || { echo "the fleet did not load the first bundle" >&2; exit 1; }

# steady: nothing changes for D seconds
api reset >/dev/null
sleep "$D"
steady=$(api count)
bytes304=$(curl -s -o /dev/null -w '%{size_header}' -H "If-None-Match: $(curl -sI \
    "http://127.0.0.1:$API/bundle.json" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" { print $2 }')" \
    "http://127.0.0.1:$API/bundle.json")
bundle_bytes=$(wc -c <"$T/bundle.json")

# a change: the time until every server serves it
api reset >/dev/null
t0=$(now)
bundle 2
last=0
while ! serving 2; do
    sleep 0.05
    last=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
    lt "$last" 120 || { echo "the change did not reach every server in 120 s" >&2; break; }
done
spread=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
sleep "$I"
change=$(api count)

echo "# bench_fleet: $(date -u '+%Y-%m-%d %H:%M UTC'), $S servers x 2 workers, interval ${I}s, jitter ${J}s"
python3 - "$S" "$I" "$D" "$bytes304" "$bundle_bytes" "$spread" "$steady" "$change" <<'EOF'
import json, sys
S, I, D = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
b304, bundle_bytes, spread = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
steady, change = json.loads(sys.argv[7]), json.loads(sys.argv[8])
polls = steady["bundle"]
per = polls / (S * D / I)
print("| figure | value |")
print("|---|---|")
print("| API requests per server per interval, bundle unchanged | %.2f (%d in %gs) |" % (per, polls, D))
print("| answers while unchanged | %s |" % ", ".join("%s: %d" % kv for kv in sorted(steady.get("statuses", {}).items())))
print("| signature fetches while unchanged | %d |" % steady.get("sig", 0))
print("| bytes of a 304 answer (headers) | %d |" % b304)
print("| a change: full downloads / signature fetches | %d / %d (for %d servers) |" % (
    change.get("statuses", {}).get("200", 0) - change.get("sig", 0), change.get("sig", 0), S))
print("| a change served by every server after | %.2f s (interval %gs + fetch) |" % (spread, I))
for interval in (15.0,):
    rpm = 1000 * 60.0 / interval * per
    print("| per 1,000 servers at the default %gs interval | %.0f requests/min (%.1f/s), %.0f KB/min of 304s |" % (
        interval, rpm, rpm / 60, rpm * b304 / 1024))
    print("| per 1,000 servers, one change of this %d-byte bundle | %.1f MB downloaded, %d signature fetches |" % (
        bundle_bytes, 1000 * bundle_bytes / 1e6, 1000))
EOF
