#!/bin/bash
# bench_pipeline.sh - the figures of the pipeline and of memory: 10,000 plugins from the API to
# served, worker memory with 10,002 domains after 1,000 hosts ran their plugins, the shared
# zone a bundle needs, and what a runaway plugin costs another host on the same worker.
# Prints figures; never passes or fails on timing.
#
# usage: tests/bench/bench_pipeline.sh [BUILD_DIR]   (default: $DC_BUILD_DIR or build)
# env:   BENCH_QUICK=1 (fewer repetitions, 2 s wrk runs), BENCH_D=seconds per wrk run (5),
#        BENCH_R=repetitions (3), DC_KEEP=1 (keep the temporary folder).
# PORT_<name> and API_PORT_<name> are set by bench_lib.sh (printf -v).
# shellcheck source=tests/bench/bench_lib.sh disable=SC2154
. "$(dirname "$0")/bench_lib.sh"

if [ -n "${BENCH_QUICK:-}" ]; then D=${BENCH_D:-2} R=${BENCH_R:-1}
else D=${BENCH_D:-5} R=${BENCH_R:-3}; fi
N=10002   # domains: the bench domain (3 plugins) and 10,001 fillers (1 plugin each)

echo "# bench_pipeline: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
     "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
     "$("$NGINX" -v 2>&1 | sed 's/.*: //'), $R repetitions"

for n in 2 1002 $N; do
    python3 "$BENCH/bench_bundle.py" --domains "$n" --version 1 "$T/v1-$n.json"
    python3 "$BENCH/bench_bundle.py" --domains "$n" --version 2 "$T/v2-$n.json"
done
echo "# bundle of $N domains: $(stat -c %s "$T/v1-$N.json") bytes of JSON"

# secs CMD...: wall seconds CMD takes (3 decimals); its output in $T/secs.out
secs() {
    local t0
    t0=$(now)
    "$@" >"$T/secs.out" 2>&1
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'
}

# ---- 1. 10,000 plugins: validate and compile (the command line), then API to served (nginx) ----

echo
echo "## 10,000 plugins from the API to served"
echo
: >"$T/check" ; : >"$T/watch"
for i in $(seq 1 "$R"); do
    secs "$CLI" check "$T/v1-$N.json" >>"$T/check"; echo >>"$T/check"
    # watch: one poll of a file:// URL; the events' timestamps give fetch -> published
    "$CLI" watch --count 1 "file://$T/v1-$N.json" >"$T/watch.out" 2>&1
    python3 - "$T/watch.out" >>"$T/watch" <<'EOF'
import json, sys
ev = {}
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    ev.setdefault(o.get("event"), o.get("ts"))
a, b = ev.get("bg_fetch_api_success"), ev.get("bg_updated_plugins")
print("%.3f" % (b - a) if a and b else "nan")
EOF
done
echo "- \`dynacode check\` (validate + compile $N domains, 10,004 plugins): median $(median "$T/check" 1) s wall"
echo "- \`dynacode watch --count 1 file://...\`: fetched -> published $(median "$T/watch" 1) s (median)"

# nginx, 2 workers, polling every second: the API's bundle flips between two versions that
# differ in site1's plugin; "served" = 20 new connections in a row answer the new text.
# reuseport: the kernel spreads connections over both workers (without it, an idle worker
# often takes every new connection), so both are probed and both run the 1,000 hosts below.
start_api pipe "$T/bundle.json"
cp "$T/v1-$N.json" "$T/bundle.json"
new_instance pipe 2 "load_module $MODULE;" "
    dynacode_api_uri http://127.0.0.1:$API_PORT_pipe/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode_shm_size 64m;
    dynacode on;
    server {
        listen 127.0.0.1:@PORT@ reuseport;
        location = /dynacode-status { dynacode off; dynacode_status; }
        location / { root @PREFIX@/html; dynacode_content; }
    }"
t0=$(now)
start_instance pipe
site1() { curl -s --max-time 5 -H "Host: site1.example.com" "http://127.0.0.1:$PORT_pipe/"; }
# served_all TEXT: 20 requests on new connections in a row answer TEXT
served_all() {
    local i
    for i in $(seq 1 20); do [ "$(site1)" = "$1" ] || return 1; done
}
if ! wait_until 120 served_all "site 1 v1"; then
    echo "the $N-domain bundle is not served after 120 s" >&2; tail -n 20 "$T/pipe/logs/error.log" >&2; exit 1
fi
echo "- nginx start to the first bundle served by both workers: $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') s"
: >"$T/served"
v=2
for i in $(seq 1 $((R + 2))); do
    g0=$(generation_of pipe)
    sleep 0.$((RANDOM % 10))   # not in step with the poller
    t0=$(now)
    cp "$T/v$v-$N.json" "$T/bundle.json.tmp" && mv "$T/bundle.json.tmp" "$T/bundle.json"
    if wait_until 30 served_all "site 1 v$v"; then
        t1=$(now)
        fa=$(status_of pipe 's["bundle"]["fetched_at"]')
        g1=$(generation_of pipe)
        awk -v a="$t0" -v b="$t1" -v f="$fa" -v g="$((g1 - g0))" \
            'BEGIN { printf "%.3f %.3f %d\n", b - a, b - f, g }' >>"$T/served"
    else
        echo "# change $i: not served after 30 s" >&2
    fi
    v=$((3 - v))
done
echo "- change on the API -> new code answering on 20 new connections in a row (poll interval 1 s):" \
     "median $(median "$T/served" 1) s, worst $(sort -g "$T/served" | tail -n 1 | awk '{ print $1 }') s over $(wc -l <"$T/served") changes"
echo "- of which fetched (status page's fetched_at) -> served: median $(median "$T/served" 2) s"

# ---- 2. worker memory with 10,002 domains, before and after 1,000 hosts ran their plugins ----

echo
echo "## Worker memory, $N domains"
echo
rss0=$(worker_rss_kb pipe)
# 1,000 filler hosts, each on 8 keep-alive connections (spread over both workers by reuseport)
python3 - "$PORT_pipe" >"$T/hosts.out" <<'EOF'
import http.client, sys
port = int(sys.argv[1])
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(8)]
bad = 0
for n in range(1, 1001):
    for c in conns:
        c.request("GET", "/", headers={"Host": "site%d.example.com" % n})
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or not body.startswith(b"site %d" % n):
            bad += 1
print(bad)
EOF
rss1=$(worker_rss_kb pipe)
states=$(for i in $(seq 1 20); do status_of pipe '"%d:%d" % (s["worker"]["pid"], s["worker"]["live_states"])' 2>/dev/null; done | sort -u | tr '\n' ' ')
echo "- RSS of the 2 workers (KiB), bundle in force, before: $rss0; after 1,000 hosts x 8 requests: $rss1" \
     "($(cat "$T/hosts.out") wrong answers)"
echo "- live sandboxed states per worker (pid:states, from the status page): $states"
echo "- master RSS: $(awk '/^VmRSS/ { print $2 }' "/proc/$(master_pid pipe)/status") KiB"
stop_instance pipe

# ---- 3. the shared zone a bundle needs ----

echo
echo "## Shared zone"
echo
# snapshot_bytes: the snapshot in force, in the zone; the zone holds two slots (the one in
# force and the next) besides counters and per-plugin metrics.
for n in 2 1002 $N; do
    cp "$T/v1-$n.json" "$T/bundle.json"
    name=z$n
    new_instance "$name" 1 "load_module $MODULE;" "
    dynacode_api_uri http://127.0.0.1:$API_PORT_pipe/bundle;
    dynacode_poll_interval 1s;
    dynacode_shm_size 64m;
    dynacode on;
    server {
        listen 127.0.0.1:@PORT@;
        location = /dynacode-status { dynacode off; dynacode_status; }
        location / { root @PREFIX@/html; dynacode_content; }
    }"
    start_instance "$name"
    wait_until 120 sh -c "[ \"\$(curl -s -H 'Host: status' http://127.0.0.1:$(eval echo "\$PORT_$name")/dynacode-status |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[\"bundle\"][\"generation\"])')\" -ge 1 ]"
    snap=$(status_of "$name" 's["bundle"]["snapshot_bytes"]')
    plugins=$(status_of "$name" 's["bundle"]["plugins"]')
    echo "$n $plugins $snap" >>"$T/zone"
    echo "- $n domains, $plugins plugins: snapshot $snap bytes"
    stop_instance "$name"
done
awk 'NR == 1 { p0 = $2; s0 = $3 } END { printf "- per 1,000 plugins (%d -> %d plugins): %.0f KiB of snapshot\n",
     p0, $2, ($3 - s0) / ($2 - p0) * 1000 / 1024 }' "$T/zone"

# The smallest dynacode_shm_size (256 KiB steps, from just above one snapshot) that takes the bundle,
# then a change of it (both slots used); for 1,002 and 10,002 domains.
zone_fits() {   # zone_fits DOMAINS KIB: the bundle and a change of it served
    local n=$1 kb=$2 name=s$1_$2 port ok=
    cp "$T/v1-$n.json" "$T/bundle.json"
    new_instance "$name" 1 "load_module $MODULE;" "
    dynacode_api_uri http://127.0.0.1:$API_PORT_pipe/bundle;
    dynacode_poll_interval 1s;
    dynacode_shm_size ${kb}k;
    dynacode on;
    server {
        listen 127.0.0.1:@PORT@;
        location = /dynacode-status { dynacode off; dynacode_status; }
        location / { root @PREFIX@/html; dynacode_content; }
    }"
    start_instance "$name"
    port=$(eval echo "\$PORT_$name")
    s1() { curl -s --max-time 5 -H "Host: site1.example.com" "http://127.0.0.1:$port/"; }
    # served, or an error on the status page
    settled() { [ "$(s1)" = "$1" ] || [ -n "$(status_of "$name" 's["bundle"]["last_error"]')" ]; }
    if wait_until 60 settled "site 1 v1" && [ "$(s1)" = "site 1 v1" ]; then
        cp "$T/v2-$n.json" "$T/bundle.json.tmp" && mv "$T/bundle.json.tmp" "$T/bundle.json"
        wait_until 30 settled "site 1 v2" && [ "$(s1)" = "site 1 v2" ] && ok=1
    fi
    ZONE_ERR=$(status_of "$name" 's["bundle"]["last_error"]' 2>/dev/null)
    stop_instance "$name"
    [ -n "$ok" ]
}
: >"$T/zone-min"
for n in 1002 $N; do
    snap=$(awk -v n="$n" '$1 == n { print $3 }' "$T/zone")
    kb=$(( (snap / 1024 / 256 + 1) * 256 ))   # just above one snapshot
    found=
    for i in $(seq 1 40); do
        if zone_fits "$n" "$kb"; then found=$kb; break; fi
        echo "- $n domains, dynacode_shm_size ${kb}k: refused (${ZONE_ERR:-no error reported})"
        kb=$((kb + 256))
    done
    if [ -n "$found" ]; then
        echo "- $n domains: smallest dynacode_shm_size (256 KiB steps) taking the bundle and a change: ${found} KiB"
        echo "$n $found" >>"$T/zone-min"
    fi
done
[ "$(wc -l <"$T/zone-min")" = 2 ] && awk 'NR == 1 { n0 = $1; k0 = $2 } END {
    printf "- zone needed per 1,000 plugins (%d -> %d domains): %.0f KiB\n", n0, $1, ($2 - k0) / ($1 - n0) * 1000 }' "$T/zone-min"

# ---- 4. a runaway plugin (5 ms time quota, infinite loop) and another host on the same worker ----

echo
echo "## Runaway plugin, 1 worker, time quota 5 ms"
echo
python3 "$BENCH/bench_bundle.py" --runaway "$T/bundle.json"
cat >"$T/policy.json" <<'EOF'
{"quota": {"instructions": 0, "time_ms": 5, "memory_kb": 4096},
 "ceiling": {"instructions": 0, "time_ms": 5, "memory_kb": 4096},
 "quarantine": {"trips": 0, "window_s": 60, "duration_s": 300}}
EOF
new_instance run 1 "load_module $MODULE;" "
    dynacode_api_uri http://127.0.0.1:$API_PORT_pipe/bundle;
    dynacode_policy $T/policy.json;
    dynacode_poll_interval 1s;
    dynacode on;
    server {
        listen 127.0.0.1:@PORT@;
        location = /dynacode-status { dynacode off; dynacode_status; }
        location / { root @PREFIX@/html; dynacode_content; }
    }"
start_instance run
if ! wait_until 20 sh -c "curl -s -H 'Host: ok.test' http://127.0.0.1:$PORT_run/ | grep -qx ok"; then
    echo "the runaway bundle is not served" >&2; tail -n 20 "$T/run/logs/error.log" >&2; exit 1
fi
# one request through the runaway plugin: its time
: >"$T/trip"
for i in $(seq 1 20); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "Host: loop.test" "http://127.0.0.1:$PORT_run/" >>"$T/trip"
done
echo "- one request to the runaway host alone: median $(awk '{ print $1 * 1000 }' "$T/trip" | sort -g | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] }') ms," \
     "max $(awk '{ print $1 * 1000 }' "$T/trip" | sort -g | tail -n 1) ms (curl, 20 requests)"

latency_figures() {
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                          if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
         /^ +Latency / && !max { max = ms($4) }
         /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
         END { printf "%.2f %.2f %.2f\n", p50, p99, max }' "$1"
}
for i in $(seq 1 "$R"); do
    for kind in alone runaway; do
        lp=
        if [ "$kind" = runaway ]; then
            wrk -t1 -c1 -d"$((D + 1))s" -H "Host: loop.test" "http://127.0.0.1:$PORT_run/" >"$T/loop.out" 2>&1 &
            lp=$!; PIDS+=("$lp")
            sleep 0.5
        fi
        wrk -t1 -c4 -d"${D}s" --latency -H "Host: ok.test" "http://127.0.0.1:$PORT_run/" >"$T/ok.out" 2>&1
        [ -n "$lp" ] && wait "$lp" 2>/dev/null
        echo "$(latency_figures "$T/ok.out") $(awk '/^Requests\/sec/ { print $2 }' "$T/ok.out") $([ -n "$lp" ] && awk '/^Requests\/sec/ { print $2 }' "$T/loop.out")" >>"$T/run-$kind"
    done
done
for kind in alone runaway; do
    f=$T/run-$kind
    echo "- ok.test (wrk -t1 -c4 --latency, ${D} s), $([ $kind = alone ] && echo 'alone' || echo 'while loop.test is hit back to back'):" \
         "p50 $(median "$f" 1) ms, p99 $(median "$f" 2) ms, max $(median "$f" 3) ms, $(median "$f" 4) req/s" \
         "$([ $kind = runaway ] && echo "(loop.test: $(median "$f" 5) req/s)")"
done
echo "- quota trips counted: $(status_of run 's["events"]["rt_plugins_quota"]')"
grep -o 'result=quota:time ms=[0-9.]*' "$T/run/logs/error.log" | sed 's/.*ms=//' | sort -g >"$T/trips"
[ -s "$T/trips" ] && awk '{ v[NR] = $1 } END { q = int(NR * 0.99); if (q < 1) q = 1; printf "- time quota trips (5 ms quota), from the log: %d trips, min %.2f ms, median %.2f ms, p99 %.2f ms, max %.2f ms\n",
    NR, v[1], v[int((NR + 1) / 2)], v[q], v[NR] }' "$T/trips"
grep -m1 'result=quota' "$T/run/logs/error.log" | sed 's/^.*plugin/- a trip in the log: plugin/' | cut -c1-200
stop_instance run

echo
for n in "${INSTANCES[@]}"; do
    c=$(log_problems "$n" | grep -vc 'result=quota')
    if [ "$c" -gt 0 ]; then
        echo "# $n: $c error lines in its error log (quota trips left out), the first ones:"
        log_problems "$n" | grep -v 'result=quota' | head -n 5 | cut -c1-300 | sed 's/^/#    | /'
    fi
done
