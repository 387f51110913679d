#!/bin/bash
# test_reload.sh - a reload (HUP) and a worker restart keep the plugins in force without
# waiting for a poll: the API is stopped before the HUP, so the new
# workers can only have their plugins from the shared zone, which survives the reload. Then a
# reload to another API while an old worker is still busy: the new URL is polled at once (the
# old worker's poller stops when it starts shutting down).
. "$(dirname "$0")/lib.sh"

cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [{"name": "^app\\.test$", "plugins": [
  {"name": "content", "phase": "content", "code": "ngx.say('v1 ', ngx.worker.pid())"},
  {"name": "mark", "phase": "header_filter", "code": "ngx.header['X-Plugin'] = 'on'"}]}]}
EOF
start_api "$T/bundle.json"

conf() {  # conf API_PORT
    write_conf 2 "
    dynacode_api_uri http://127.0.0.1:$1/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode_api_timeout 1s;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT reuseport;
        location = /dynacode-status { dynacode_status; }
        location / { dynacode_content; }
        location /slow { proxy_pass http://127.0.0.1:\$arg_port/bundle; }
    }
"
}
conf "$API_PORT"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: app.test' http://127.0.0.1:$PORT/ | grep -q '^v1 '"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi
gen=$(bundle_gen)

# every answer of the next N requests comes from the plugins
all_plugins() {
    local _
    for _ in $(seq 1 "$1"); do
        req app.test /
        [ "$STATUS" = 200 ] && grep -q '^v1 ' "$T/b" && [ "$(header X-Plugin)" = on ] || return 1
    done
}

stop_api
echo "# API stopped"
reload_nginx && ok "HUP: new workers up" || fail "HUP: the workers were not replaced"
if all_plugins 20; then ok "after HUP, with the API down: the plugins answer at once"; else
    fail "after HUP: a request without the plugins: $STATUS $(head -c 100 "$T/b")"; fi
expect_eq "after HUP: the same bundle generation (the zone survived)" "$(bundle_gen)" "$gen"

# the API is down: the polls fail, the last good bundle stays
expect_log "a failing poll is logged" "bg_fetch_api_generic_error"
if all_plugins 5; then ok "API down: the last good bundle stays"; else
    fail "API down: the plugins are gone"; fi

# a worker killed: nginx starts another, which has the plugins before its first request
victim=$(nginx_workers | head -n 1)
kill -KILL "$victim"
if wait_until 10 sh -c "ps --ppid $NGINX_PID -o pid= | grep -c . | grep -qx 2 &&
                        ! ps --ppid $NGINX_PID -o pid= | tr -d ' ' | grep -qx $victim"
then ok "a killed worker is replaced"; else fail "no replacement for worker $victim"; fi
if all_plugins 20; then ok "after a worker restart: the plugins answer at once"; else
    fail "after a worker restart: a request without the plugins"; fi

# ---- a reload to another API while an old worker is busy ----
sed 's/v1 /v2 /' "$T/bundle.json" >"$T/bundle2.json"
start_api "$T/bundle2.json" api2
EXTRA_PIDS+=("$API_PID")
api2=$API_PORT
start_api "$T/bundle2.json" slow            # an upstream that never answers
EXTRA_PIDS+=("$API_PID")
api_control "mode=hang" >/dev/null
curl -s -o /dev/null --max-time 30 -H "Host: app.test" \
    "http://127.0.0.1:$PORT/slow?port=$API_PORT" &
EXTRA_PIDS+=("$!")
sleep 0.5
API_PID=
conf "$api2"
kill -HUP "$NGINX_PID"
t0=$(now)
if wait_until 10 sh -c "curl -s -H 'Host: app.test' http://127.0.0.1:$PORT/ | grep -q '^v2 '"
then ok "after HUP to a new API: its bundle in force ($(elapsed "$t0") s)"; else
    fail "after HUP to a new API: its bundle is not in force after 10 s"; fi
if grep -q "gracefully shutting down" "$T/logs/error.log" &&
   [ "$(nginx_workers | wc -l)" -gt 2 ]; then
    ok "meanwhile an old worker is still serving its slow request"
else fail "no old worker left busy: the case was not tested"; fi

finish
