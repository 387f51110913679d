#!/bin/bash
# test_directives.sh - the http-level directives in a running nginx: dynacode_api_header sent
# with every poll, dynacode_poll_at_init off (the first poll waits an interval: 5 s, so that a
# slow start on a busy machine still checks before it),
# dynacode_shm_size, dynacode_api_timeout against an API that hangs, dynacode_harden's filter
# on the workers.
. "$(dirname "$0")/lib.sh"

cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [{"name": "^d\\.test$", "plugins": [
  {"name": "content", "phase": "content", "code": "ngx.say('in force')"}]}]}
EOF
start_api "$T/bundle.json"

write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_api_header 'Authorization: Bearer t0k3n';
    dynacode_api_header 'X-Fleet: eu-1';
    dynacode_poll_at_init off;
    dynacode_poll_interval 5s;
    dynacode_poll_jitter 0;
    dynacode_api_timeout 1s;
    dynacode_shm_size 256k;
    dynacode_harden on;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location = /dynacode-status { dynacode_status; }
        location / { root $T/html; dynacode_content; }
    }
"
nginx_test
expect_eq "dynacode_harden on: nginx -t accepts it" "$?" 0

t0=$(now)
start_nginx
for w in $(nginx_workers); do
    expect_eq "dynacode_harden on: worker $w runs under a seccomp filter" \
        "$(awk '/^Seccomp:/ { print $2 }' /proc/"$w"/status)" 2
done
sleep 0.8
expect_eq "poll_at_init off: no poll in the first 0.8 s" "$(api_count)" 0
req d.test /x
expect_eq "poll_at_init off: no plugins yet" "$STATUS" 404
if wait_until 15 sh -c "curl -s -H 'Host: d.test' http://127.0.0.1:$PORT/x | grep -qx 'in force'"
then ok "poll_at_init off: plugins after the first interval ($(elapsed "$t0") s from start)"
else fail "poll_at_init off: no plugins 15 s after start"; fi

headers=$(api_control last_headers)
expect_contains "dynacode_api_header: sent" "$headers" '"authorization": "Bearer t0k3n"'
expect_contains "dynacode_api_header: repeatable" "$headers" '"x-fleet": "eu-1"'
expect_eq "dynacode_shm_size 256k: the store works" \
    "$(status_json 's["bundle"]["snapshot_bytes"] > 0')" "True"

# the API hangs: each poll gives up after dynacode_api_timeout, the plugins stay
api_control "mode=hang" >/dev/null
before=$(status_json 's["events"]["bg_fetch_api_generic_error"]')
if wait_until 20 sh -c "[ \$(curl -s -H 'Host: status' http://127.0.0.1:$PORT/dynacode-status |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[\"events\"][\"bg_fetch_api_generic_error\"])') -gt $before ]"
then ok "dynacode_api_timeout: a hanging API is given up on"; else
    fail "dynacode_api_timeout: no fetch error within 20 s"; fi
expect_log "dynacode_api_timeout: the error says why" "bg_fetch_api_generic_error"
req d.test /x
expect_eq "API hanging: the plugins stay" "$(cat "$T/b")" "in force"

finish
