#!/bin/bash
# test_metrics.sh - per-plugin metrics and quarantine in the shared zone, with
# worker_processes 2: after requests served by both workers, the status page (answered by
# either) counts every call of each plugin, in JSON and in Prometheus text (label values
# escaped); a runaway plugin that trips twice in one worker (one keep-alive connection) is
# quarantined there and skipped by the other worker, which never ran it.
. "$(dirname "$0")/lib.sh"

cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [
  {"name": "^m\\.test$", "plugins": [
    {"name": "hello", "phase": "content", "code": "ngx.say('hi')"},
    {"name": "pid", "phase": "header_filter", "code": "ngx.header['X-Pid'] = ngx.worker.pid()"},
    {"name": "we\"ird\\name", "phase": "log", "code": "error('boom')"}]},
  {"name": "^loop\\.test$", "plugins": [
    {"name": "runaway", "phase": "access", "code": "while true do end"},
    {"name": "pid2", "phase": "header_filter", "code": "ngx.header['X-Pid'] = ngx.worker.pid()"}]}]}
EOF
cat >"$T/policy.json" <<'EOF'
{"quota": {"instructions": 1000000, "time_ms": 50, "memory_kb": 4096},
 "quarantine": {"trips": 2, "window_s": 60, "duration_s": 300}}
EOF
echo "static" >"$T/html/index.html"
start_api "$T/bundle.json"

# reuseport: each worker has a listening socket of its own, so new connections go to both
write_conf 2 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_policy $T/policy.json;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT reuseport;
        location = /dynacode-status { dynacode off; dynacode_status; }
        location / { root $T/html; dynacode_content; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: m.test' http://127.0.0.1:$PORT/ | grep -qx hi"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi
[ "$(nginx_workers | wc -l)" -eq 2 ] && ok "two workers" || fail "not two workers"

# requests on new connections until both workers served some (at least 20 requests)
n=0
: >"$T/pids"
while [ "$n" -lt 200 ]; do
    req m.test /
    [ "$STATUS" = 200 ] || fail "m.test: status $STATUS"
    header X-Pid >>"$T/pids"
    n=$((n + 1))
    [ "$n" -ge 20 ] && [ "$(sort -u "$T/pids" | wc -l)" -ge 2 ] && break
done
n=$((n + 1))    # the first request, in the wait above
served=$(sort -u "$T/pids" | grep -c .)
expect_eq "both workers served m.test ($((n - 1)) requests)" "$served" 2

# JSON: the counts of both workers in one set, whichever worker answers
check_json() {
    curl -s --max-time 5 -H "Host: status" "http://127.0.0.1:$PORT/dynacode-status" \
        >"$T/status.json"
    python3 - "$T/status.json" "$1" <<'EOF'
import json, sys
s, n = json.load(open(sys.argv[1])), int(sys.argv[2])
p = {x["plugin"]: x for x in s["plugins"]}
assert set(p) == {"hello", "pid", "we\"ird\\name", "runaway", "pid2"}, sorted(p)
h = p["hello"]
assert h["domain"] == "^m\\.test$" and h["phase"] == "content", h
assert h["runs"] == n and h["errors"] == 0, (n, h)
assert h["quota"] == {"instructions": 0, "time": 0, "memory": 0}, h
assert h["total_ms"] > 0 and h["p99_ms"] > 0 and h["quarantined"] is False, h
assert p["pid"]["runs"] == n and p["pid"]["phase"] == "header_filter", p["pid"]
w = p["we\"ird\\name"]
assert w["runs"] == n and w["errors"] == n and w["phase"] == "log", w
assert p["runaway"]["runs"] == 0, p["runaway"]
EOF
}
# the log phase runs after the answer: give the last one a moment
if wait_until 5 check_json "$n"; then ok "JSON: per-plugin counts of both workers ($n runs)"
else fail "JSON plugins"; check_json "$n"; cat "$T/status.json"; fi
same=1
for _ in 1 2 3 4 5 6; do check_json "$n" >/dev/null 2>&1 || same=0; done
expect_eq "JSON: the same counts from whichever worker answers" "$same" 1

curl -s -o "$T/status.txt" -H "Host: status" \
    "http://127.0.0.1:$PORT/dynacode-status?format=prometheus"
if python3 - "$T/status.txt" "$n" <<'EOF'
import re, sys
text, n = open(sys.argv[1]).read(), int(sys.argv[2])
sample = re.compile(r'^[a-z_][a-z0-9_]*(\{[a-z_]+="([^"\\\n]|\\[\\"n])*"(,[a-z_]+="([^"\\\n]|\\[\\"n])*")*\})? [0-9.e+-]+$')
families = []
for line in text.splitlines():
    assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    if line.startswith("# TYPE "):
        families.append(line.split()[2])
assert len(families) == len(set(families)), "a family twice"
def val(name, labels):
    m = re.search("^" + re.escape(name + "{" + labels + "}") + r" (\S+)$", text, re.M)
    assert m, name + "{" + labels + "}"
    return float(m.group(1))
hello = 'domain="^m\\\\.test$",plugin="hello",phase="content"'
assert val("dynacode_plugin_runs_total", hello) == n
assert val("dynacode_plugin_errors_total", hello) == 0
assert val("dynacode_plugin_quota_trips_total", hello + ',kind="time"') == 0
assert val("dynacode_plugin_time_seconds_bucket", hello + ',le="+Inf"') == n
assert val("dynacode_plugin_time_seconds_bucket", hello + ',le="10"') == n
assert val("dynacode_plugin_time_seconds_sum", hello) > 0
assert val("dynacode_plugin_time_seconds_count", hello) == n
assert val("dynacode_plugin_quarantined", hello) == 0
weird = 'domain="^m\\\\.test$",plugin="we\\"ird\\\\name",phase="log"'
assert val("dynacode_plugin_errors_total", weird) == n
assert "# TYPE dynacode_plugin_runs_total counter" in text
assert "# TYPE dynacode_plugin_time_seconds histogram" in text
EOF
then ok "Prometheus: per-plugin samples, label values escaped"
else fail "Prometheus text"; grep dynacode_plugin "$T/status.txt" | head -30; fi

# the runaway plugin trips twice on one keep-alive connection: one worker, quarantined
curl -s -o /dev/null -D "$T/h2" -H "Host: loop.test" "http://127.0.0.1:$PORT/" \
    "http://127.0.0.1:$PORT/"
tripped_in=$(tr -d '\r' <"$T/h2" | awk -F': ' 'tolower($1) == "x-pid" { print $2 }' | sort -u)
expect_eq "both trips in one worker" "$(printf '%s\n' "$tripped_in" | grep -c .)" 1
expect_log "the quarantine is logged" "rt_plugins_quarantined"

runaway() {
    curl -s --max-time 5 -H "Host: status" "http://127.0.0.1:$PORT/dynacode-status" |
        python3 -c "import json, sys
p = [x for x in json.load(sys.stdin)['plugins'] if x['plugin'] == 'runaway'][0]
print(p['runs'], p['quota']['instructions'] + p['quota']['time'], p['quarantined'], p['quarantines'])"
}
expect_eq "runaway: 2 runs, 2 trips, quarantined once" "$(runaway)" "2 2 True 1"

# new connections until the other worker answers loop.test
other=0
for _ in $(seq 1 100); do
    req loop.test /
    pid=$(header X-Pid)
    if [ -n "$pid" ] && [ "$pid" != "$tripped_in" ]; then other=1; break; fi
done
expect_eq "the other worker served loop.test" "$other" 1
expect_eq "the other worker answered 200" "$STATUS" 200
expect_eq "the other worker skipped the plugin (no run, no trip)" "$(runaway)" "2 2 True 1"
expect_eq "no trip logged by the other worker" \
    "$(grep -F 'plugin "runaway"' "$T/logs/error.log" | grep -F 'result=quota' |
       grep -cF "] $pid#")" 0

curl -s -o "$T/status.txt" -H "Host: status" \
    "http://127.0.0.1:$PORT/dynacode-status?format=prometheus"
expect_contains "Prometheus: quarantined" "$(cat "$T/status.txt")" \
    'dynacode_plugin_quarantined{domain="^loop\\.test$",plugin="runaway",phase="access"} 1'

finish
