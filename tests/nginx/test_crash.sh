#!/bin/bash
# test_crash.sh - crash containment on a real nginx with worker_processes 2 and the test variant
# of the module (crash_in_c in every plugin environment): a plugin that crashes its worker kills
# at most one worker whatever the number of requests; the crash is logged, the plugin is marked
# quarantined in the shared zone before the worker dies, later requests on both workers are
# served without it, and the status page shows it quarantined. The product module has no
# crash_in_c.
DC_NGINX_MODULE=${DC_NGINX_TEST_MODULE:?set DC_NGINX_TEST_MODULE to ngx_http_dynacode_module_test.so}
PRODUCT_MODULE=${DC_NGINX_MODULE_PRODUCT:-$(dirname "$DC_NGINX_MODULE")/ngx_http_dynacode_module.so}
. "$(dirname "$0")/lib.sh"
ulimit -c 0 2>/dev/null   # the crash is the point: no core files in the test's prefix

cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [
  {"name": "^crash\\.test$", "plugins": [
    {"name": "boom", "phase": "access", "code": "crash_in_c('segv')"},
    {"name": "pid", "phase": "header_filter", "code": "ngx.header['X-Pid'] = ngx.worker.pid()"}]},
  {"name": "^ok\\.test$", "plugins": [
    {"name": "fine", "phase": "content", "code": "ngx.say('ok')"}]}]}
EOF
cat >"$T/policy.json" <<'EOF'
{"quarantine": {"trips": 3, "window_s": 60, "duration_s": 300}}
EOF
echo "static" >"$T/html/index.html"
start_api "$T/bundle.json"

# reuseport: new connections go to both workers
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
if wait_until 10 sh -c "curl -s -H 'Host: ok.test' http://127.0.0.1:$PORT/ | grep -qx ok"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi
[ "$(nginx_workers | wc -l)" -eq 2 ] && ok "two workers" || fail "not two workers"
workers_before=$(nginx_workers | sort | tr '\n' ' ')

signals() { grep -c 'exited on signal' "$T/logs/error.log"; }
expect_eq "no worker died yet" "$(signals)" 0

# N requests on new connections (both workers take some): only the first may meet the plugin
N=30
codes=""
for _ in $(seq 1 "$N"); do
    req crash.test /
    codes="$codes $STATUS"
done
echo "# statuses of the $N requests to crash.test:$codes"
# the master logs the death once it reaped the worker: wait for the first line, then count
wait_until 5 sh -c "grep -q 'exited on signal' '$T/logs/error.log'"
expect_eq "exactly one worker died ($N requests)" "$(signals)" 1
expect_log "it died by SIGSEGV" "exited on signal 11"
if grep -qF 'dynacode: plugin "boom" of domain "^crash\\.test$" crashed the process with SIGSEGV during its access call' \
        "$T/logs/error.log" "$T/logs/stdout.log"; then
    ok "the worker logged the crash before it ended"
else
    fail "no crash line from the worker"; tail -n 5 "$T/logs/stdout.log" | sed 's/^/    | /'
fi
if grep -qF 'quarantined in the shared store for 300 s' "$T/logs/error.log" "$T/logs/stdout.log"
then ok "the crash line says the plugin is quarantined (the policy's 300 s)"
else fail "the crash line does not say quarantined"; fi

bad=$(printf '%s\n' $codes | tail -n +2 | grep -vc '^200$')
expect_eq "every request after the first was served 200" "$bad" 0

# both workers now serve crash.test without the plugin: count distinct X-Pid answers
wait_until 10 sh -c "[ \$(ps --ppid $NGINX_PID -o pid= | wc -l) -eq 2 ]" &&
    ok "nginx started a fresh worker" || fail "not two workers after the crash"
: >"$T/pids"
n=0 bad=0
while [ "$n" -lt 200 ]; do
    req crash.test /
    [ "$STATUS" = 200 ] || bad=$((bad + 1))
    header X-Pid >>"$T/pids"
    n=$((n + 1))
    [ "$n" -ge 20 ] && [ "$(sort -u "$T/pids" | grep -c .)" -ge 2 ] && break
done
expect_eq "both workers served crash.test after the crash ($n requests)" \
    "$(sort -u "$T/pids" | grep -c .)" 2
expect_eq "all of them 200" "$bad" 0
expect_eq "still exactly one worker death" "$(signals)" 1
workers_after=$(nginx_workers | sort | tr '\n' ' ')
survivors=0
for w in $workers_before; do
    case " $workers_after " in *" $w "*) survivors=$((survivors + 1)) ;; esac
done
expect_eq "one of the first two workers is still the same process" "$survivors" 1
req ok.test /
expect_eq "the other host is served" "$(cat "$T/b")" "ok"

boom() {
    curl -s --max-time 5 -H "Host: status" "http://127.0.0.1:$PORT/dynacode-status" |
        python3 -c "import json, sys
p = [x for x in json.load(sys.stdin)['plugins'] if x['plugin'] == 'boom'][0]
print(p['quarantined'], p['quarantines'], p['quarantined_until'] > 0)"
}
expect_eq "status page: boom quarantined (once)" "$(boom)" "True 1 True"
curl -s -o "$T/status.txt" -H "Host: status" \
    "http://127.0.0.1:$PORT/dynacode-status?format=prometheus"
expect_contains "Prometheus: quarantined" "$(cat "$T/status.txt")" \
    'dynacode_plugin_quarantined{domain="^crash\\.test$",plugin="boom",phase="access"} 1'

# the product module never has the test-only function
if [ -f "$PRODUCT_MODULE" ]; then
    if nm "$PRODUCT_MODULE" 2>/dev/null | grep -q crash_in_c; then
        fail "the product module contains crash_in_c"
    elif nm "$DC_NGINX_MODULE" 2>/dev/null | grep -q crash_in_c; then
        ok "crash_in_c only in the test module"
    else
        fail "the test module has no crash_in_c symbol (cannot tell the two apart)"
    fi
fi

finish
