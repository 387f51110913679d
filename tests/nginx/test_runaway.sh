#!/bin/bash
# test_runaway.sh - with worker_processes 1, a host whose access plugin is `while true do end`
# still answers (each call stopped by its quota) and another host on the same worker keeps
# answering 200 throughout a bounded wrk run against the first. Quarantine is off in this
# test's policy, so the runaway plugin runs (and trips) on every request.
. "$(dirname "$0")/lib.sh"

cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [
  {"name": "^loop\\.test$", "plugins": [
    {"name": "runaway", "phase": "access", "code": "while true do end"}]},
  {"name": "^ok\\.test$", "plugins": [
    {"name": "fine", "phase": "content", "code": "ngx.say('ok')"}]}]}
EOF
cat >"$T/policy.json" <<'EOF'
{"quota": {"instructions": 1000000, "time_ms": 20, "memory_kb": 4096},
 "quarantine": {"trips": 0, "window_s": 60, "duration_s": 300}}
EOF
echo "static" >"$T/html/index.html"
start_api "$T/bundle.json"

write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_policy $T/policy.json;
    dynacode_poll_interval 1s;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location = /dynacode-status { dynacode_status; }
        location / { root $T/html; dynacode_content; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: ok.test' http://127.0.0.1:$PORT/ | grep -qx ok"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

t0=$(now)
req loop.test /
ms=$(awk -v s="$(elapsed "$t0")" 'BEGIN { printf "%d", s * 1000 }')
expect_eq "the runaway host answers (its plugin stopped by the quota)" "$STATUS" 200
echo "# one request through the runaway plugin: $ms ms"
expect_log "the trip is logged with its kind" 'plugin "runaway" of domain "^loop\\.test$" phase=access result=quota:'

# wrk against the runaway host, curl against the other one, at the same time
wrk -t 1 -c 4 -d 3s -H "Host: loop.test" "http://127.0.0.1:$PORT/" >"$T/wrk.out" 2>&1 &
wrk_pid=$!
sleep 0.3
n=0 bad=0 worst=0
while kill -0 "$wrk_pid" 2>/dev/null && [ "$n" -lt 2000 ]; do
    out=$(curl -s -o /dev/null --max-time 2 -w '%{http_code} %{time_total}' \
          -H "Host: ok.test" "http://127.0.0.1:$PORT/")
    read -r code secs <<<"$out"
    n=$((n + 1))
    [ "$code" = 200 ] || bad=$((bad + 1))
    lt "$worst" "${secs:-9}" && worst=$secs
done
wait "$wrk_pid"
echo "# wrk against loop.test:"; sed -n '/Requests\/sec/p;/Non-2xx/p;/Socket errors/p' "$T/wrk.out"
echo "# ok.test during the run: $n requests, $bad not 200, slowest $worst s"
[ "$n" -ge 5 ] && ok "the other host was asked $n times during the run" ||
    fail "only $n requests to the other host during the run"
expect_eq "the other host answered 200 throughout" "$bad" 0
if lt "$worst" 1; then ok "the other host's slowest answer: $worst s"; else
    fail "the other host's slowest answer took $worst s"; fi
rps=$(awk '/Requests\/sec/ { print int($2) }' "$T/wrk.out")
if [ "${rps:-0}" -ge 5 ]; then ok "the runaway host kept answering ($rps requests/s)"; else
    fail "the runaway host answered ${rps:-0} requests/s"; fi
expect_not_contains "wrk saw no non-2xx answers" "$(cat "$T/wrk.out")" "Non-2xx"

trips=$(status_json 's["events"]["rt_plugins_quota"]')
if [ "${trips:-0}" -ge 5 ]; then ok "rt_plugins_quota counted ($trips)"; else
    fail "rt_plugins_quota: ${trips:-none}"; fi
expect_eq "the worker never restarted" "$(grep -cE 'start worker process [0-9]+' "$T/logs/error.log")" 1

finish
