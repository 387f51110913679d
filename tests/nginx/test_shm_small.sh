#!/bin/bash
# test_shm_small.sh - a dynacode_shm_size too small for the bundle: the message names the
# directive and the size that would do, the poller keeps trying (no validator kept for a bundle
# that was not published: every poll downloads it again, none is answered 304), a policy with
# "until_loaded": "refuse" answers 503 while nothing is loaded, and nginx started again with
# the size the message gave has the bundle (the token check) in force.
. "$(dirname "$0")/lib.sh"

# A bundle of about 2 MB of snapshot: a token check, and plugins carrying 48 KiB strings.
python3 - "$T/bundle.json" <<'EOF'
import json, sys
plugins = [{"name": "token", "phase": "access",
            "code": "if ngx.var.arg_token ~= 'secret' then return ngx.exit(403) end"},
           {"name": "hello", "phase": "content", "code": "ngx.say('hello')"}]
for i in range(44):
    plugins.append({"name": "big%d" % i, "phase": "log",
                    "code": "local s = '%s' if #s == 0 then ngx.log(ngx.ERR, s) end"
                            % ((chr(97 + i % 26)) * 48 * 1024)})
json.dump({"general": {"status": "enabled"},
           "domains": [{"name": "^app\\.test$", "plugins": plugins}]}, open(sys.argv[1], "w"))
EOF
echo '{"until_loaded": "refuse"}' >"$T/policy.json"
start_api "$T/bundle.json"

conf() { # conf SHM_SIZE
    write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode_api_timeout 5s;
    dynacode_shm_size $1;
    dynacode_policy $T/policy.json;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location = /dynacode-status { dynacode off; dynacode_status; }
        location / { dynacode_content; }
    }
"
}
count() {
    curl -s --max-time 5 "http://127.0.0.1:$API_PORT/control?count" |
        python3 -c "import json, sys; c = json.load(sys.stdin); print($1)"
}

conf 1m
start_nginx
expect_log "the message names the directive and a size" "dynacode_shm_size must be at least"
line=$(grep -F "dynacode_shm_size must be at least" "$T/logs/error.log" | head -n 1)
echo "# $line"
need=$(printf '%s\n' "$line" | sed -n 's/.*dynacode_shm_size must be at least \([0-9]*m\).*/\1/p')
if [ -n "$need" ]; then ok "a size is given: $need"; else fail "no size in: $line"; fi
expect_contains "the message says what does not fit" "$line" "does not fit the shared store"

req app.test "/?token=secret"
expect_eq "nothing loaded, until_loaded refuse: 503" "$STATUS" 503
req app.test "/"
expect_eq "nothing loaded: no request passes without the token check" "$STATUS" 503

# the poller keeps trying: each poll downloads the bundle again (200), never a 304
if wait_until 15 sh -c "[ \$(grep -cF 'dynacode_shm_size must be at least' '$T/logs/error.log') -ge 3 ]"
then ok "the poller keeps trying (three attempts logged)"; else
    fail "no retry: $(grep -cF 'dynacode_shm_size must be at least' "$T/logs/error.log") attempt(s)"; fi
expect_eq "no 304 for the unpublished bundle" "$(count 'c["statuses"].get("304", 0)')" 0
expect_eq "status: nothing in force" "$(bundle_gen)" 0
expect_contains "status: last_error names the directive" \
    "$(status_json 's["bundle"]["last_error"]')" "dynacode_shm_size"

# the size the message gave is enough
stop_nginx
conf "$need"
start_nginx
if wait_until 20 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: app.test' \
        'http://127.0.0.1:$PORT/?token=secret')\" = 200 ]"
then ok "with dynacode_shm_size $need the bundle is in force"; else
    fail "not in force with $need: $(tail -n 3 "$T/logs/error.log")"; fi
req app.test "/"
expect_eq "the token check applies" "$STATUS" 403
req app.test "/?token=secret"
expect_eq "with the token: the content plugin" "$(cat "$T/b")" "hello"

finish
