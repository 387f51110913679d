#!/bin/bash
# test_offline.sh - dynacode_offline_file: the poller keeps the last good bundle on disk, and
# an nginx started while the API is down has the plugins of that file in force in every worker
# from its first request: a start with the API unreachable still serves the last good bundle.
. "$(dirname "$0")/lib.sh"

cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [{"name": "^app\\.test$", "plugins": [
  {"name": "content", "phase": "content", "code": "ngx.say('from the bundle')"}]}]}
EOF
mkdir -p "$T/state"
start_api "$T/bundle.json"
api=$API_PORT

conf() {
    write_conf 2 "
    dynacode_api_uri http://127.0.0.1:$api/bundle;
    dynacode_offline_file $T/state/bundle.json;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode_api_timeout 1s;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT reuseport;
        location = /dynacode-status { dynacode_status; }
        location / { dynacode_content; }
    }
"
}

# all_plugins N: N requests in a row answered by the plugin (new connections: both workers)
all_plugins() {
    local _
    for _ in $(seq 1 "$1"); do
        req app.test /
        [ "$STATUS" = 200 ] && [ "$(cat "$T/b")" = "from the bundle" ] || return 1
    done
}

# ---- 1. the API is up: the offline file is written ----
conf
start_nginx
if wait_until 10 all_plugins 1; then ok "plugins in force from the API"; else
    fail "plugins not in force after 10 s"; fi
if wait_until 5 cmp -s "$T/bundle.json" "$T/state/bundle.json"; then
    ok "the offline file holds the bundle"; else fail "offline file missing or different"; fi
stop_nginx
stop_api
echo "# nginx and the API stopped"

# ---- 2. a fresh start (new shared zone) with the API down ----
: >"$T/logs/error.log"
start_nginx
if all_plugins 20; then ok "API down at start: the offline file's plugins, from the first request"
else fail "API down at start: a request without the plugins: $STATUS $(head -c 100 "$T/b")"; fi
expect_eq "status: source offline" "$(status_json 's["bundle"]["source"]')" "offline"
expect_eq "status: bg_offline_loaded counted once" \
    "$(status_json 's["events"]["bg_offline_loaded"]')" 1
expect_log "the offline load is logged" "bg_offline_loaded"
expect_log "the failed poll is logged" "bg_fetch_api_generic_error"
if wait_until 5 sh -c "curl -s -H 'Host: status' http://127.0.0.1:$PORT/dynacode-status |
        python3 -c 'import json,sys; sys.exit(not json.load(sys.stdin)[\"bundle\"][\"last_error\"])'"
then ok "status: the last error is shown"; else fail "status: no last error"; fi

finish
