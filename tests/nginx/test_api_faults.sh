#!/bin/bash
# test_api_faults.sh - what the poller makes of an API's faults, in a real nginx: a redirect
# to another server is not followed unless dynacode_api_follow_redirects allows it (then the
# final URL is logged); a body cut mid-transfer is a refused bundle (bg_didnt_update_plugins),
# not a fetch error; the status page's last_error goes once a poll succeeds; a refused bundle
# is not downloaded again while the API answers 304 to its validator, and the last good bundle
# stays in force until a changed one comes; an oversized bundle (chunked, its size unknown until
# the limit) is likewise downloaded once, then named by its validator.
. "$(dirname "$0")/lib.sh"

bundle() { # bundle FILE TEXT: a bundle whose content plugin says TEXT
    cat >"$1" <<EOF
{"general": {"status": "enabled"}, "domains": [{"name": "^app\\\\.test\$", "plugins": [
  {"name": "content", "phase": "content", "code": "ngx.say('$2')"}]}]}
EOF
}

bundle "$T/a.json" "from A"
bundle "$T/b.json" "from B"
start_api "$T/b.json" api_b
api_b=$API_PORT
api_b_pid=$API_PID
EXTRA_PIDS+=("$api_b_pid")
start_api "$T/a.json"
api=$API_PORT

conf() { # conf EXTRA_DIRECTIVES
    write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$api/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode_api_timeout 2s;
    $1
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location = /dynacode-status { dynacode_status; }
        location / { dynacode_content; }
    }
"
}

says() { req app.test / && [ "$STATUS" = 200 ] && [ "$(cat "$T/b")" = "$1" ]; }
last_error() { status_json 's["bundle"]["last_error"]'; }
no_last_error() { [ -z "$(last_error)" ]; }
has_last_error() { [ -n "$(last_error)" ]; }
# count KEY [API_PORT]: a number from the API server's /control?count (KEY: a Python path)
count() {
    curl -s --max-time 5 "http://127.0.0.1:${2:-$api}/control?count" |
        python3 -c "import json, sys; c = json.load(sys.stdin); print($1)"
}
log_lines() { grep -cF -- "$1" "$T/logs/error.log"; }

conf ""
start_nginx
if wait_until 10 says "from A"; then ok "the API's bundle is in force"; else
    fail "no plugins from the API: $STATUS $(head -c 100 "$T/b")"; fi

# ---- a redirect to another port is not followed by default ----
api_control "mode=location:http://127.0.0.1:$api_b/bundle?token=secret" >/dev/null
expect_log "the redirect is a status code error naming where it led" \
    "bg_fetch_api_status_code_error: answered 302, a redirect to http://127.0.0.1:$api_b/bundle, not followed"
expect_eq "the other server was never asked" "$(count 'c["bundle"]' "$api_b")" 0
if says "from A"; then ok "the last good bundle stays"; else fail "plugins changed: $(cat "$T/b")"; fi
if wait_until 5 has_last_error; then ok "status: last_error shows the redirect"; else
    fail "status: no last_error"; fi
expect_contains "status: last_error names the redirect" "$(last_error)" "redirect to"
expect_not_contains "no query (secrets) in the log" "$(cat "$T/logs/error.log")" "secret"

# ---- a good poll clears last_error ----
api_control "mode=normal" >/dev/null
if wait_until 10 no_last_error; then ok "status: last_error cleared by a good poll (304)"; else
    fail "status: last_error still \"$(last_error)\""; fi
expect_eq "status: last_error_at back to 0" "$(status_json 's["bundle"]["last_error_at"]')" 0.0

# ---- a body cut mid-transfer is a refused bundle ----
generic_before=$(log_lines "bg_fetch_api_generic_error")
api_control "mode=truncate" >/dev/null
expect_log "a truncated body is bg_didnt_update_plugins with the reason" \
    "bg_didnt_update_plugins: bundle refused: truncated: the connection closed after"
expect_eq "not a generic fetch error" "$(log_lines "bg_fetch_api_generic_error")" \
    "$generic_before"
if says "from A"; then ok "the last good bundle stays after a truncated body"; else
    fail "plugins changed: $(cat "$T/b")"; fi
if wait_until 5 sh -c "curl -s -H 'Host: status' http://127.0.0.1:$PORT/dynacode-status |
        grep -q '\"last_error\":\"bundle refused: truncated'"
then ok "status: last_error says truncated"; else fail "status: last_error \"$(last_error)\""; fi
api_control "mode=normal" >/dev/null
if wait_until 10 no_last_error; then ok "status: last_error cleared again"; else
    fail "status: last_error still \"$(last_error)\""; fi

# ---- a refused bundle is fetched once, then 304 ----
refused_before=$(log_lines "bundle refused (")
api_control "reset" >/dev/null
echo '{"domains": "not a list"}' >"$T/new.json"
mv "$T/new.json" "$T/a.json"   # at once: the API never serves half a file
expect_log "the broken bundle is refused" "bundle refused ("
if wait_until 15 sh -c "[ \"\$(curl -s http://127.0.0.1:$api/control?count |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[\"statuses\"].get(\"304\", 0))')\" -ge 4 ]"
then ok "four polls more answered 304"; else fail "no 304s: $(api_control count)"; fi
expect_eq "the refused bundle was downloaded once" "$(count 'c["statuses"].get("200", 0)')" 1
expect_eq "and refused (parsed) once" "$(log_lines "bundle refused (")" \
    "$((refused_before + 1))"
expect_contains "the 304s say the refused bundle stays refused" "$(cat "$T/logs/error.log")" \
    "the refused bundle did not change: the last good bundle stays"
if says "from A"; then ok "the last good bundle stays in force"; else
    fail "plugins changed: $(cat "$T/b")"; fi
expect_contains "status: last_error still shows the refusal" "$(last_error)" "bundle refused"

# a reload: the new workers know nothing of the refusal; they fetch the bundle whole once,
# refuse it again, and keep the last good one (the zone kept it) in force
oks_before=$(count 'c["statuses"].get("200", 0)')
reload_nginx
if says "from A"; then ok "after a reload: the last good bundle in force"; else
    fail "after a reload: $(cat "$T/b")"; fi
if wait_until 10 sh -c "[ \$(grep -cF 'bundle refused (' '$T/logs/error.log') -ge $((refused_before + 2)) ]"
then ok "after a reload: the refused bundle fetched and refused again"; else
    fail "after a reload: not refused again"; fi
notmod=$(count 'c["statuses"].get("304", 0)')
if wait_until 10 sh -c "[ \"\$(curl -s http://127.0.0.1:$api/control?count |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[\"statuses\"].get(\"304\", 0))')\" -ge $((notmod + 2)) ]"
then ok "after a reload: 304 again"; else fail "after a reload: no 304s: $(api_control count)"; fi
expect_eq "after a reload: one download more" "$(count 'c["statuses"].get("200", 0)')" \
    "$((oks_before + 1))"
if says "from A"; then ok "after a reload: still the last good bundle"; else
    fail "after a reload: $(cat "$T/b")"; fi

# ---- a changed bundle is fetched normally ----
bundle "$T/new.json" "from A2"
mv "$T/new.json" "$T/a.json"
if wait_until 10 says "from A2"; then ok "the fixed bundle is in force"; else
    fail "fixed bundle not in force: $(cat "$T/b")"; fi
if wait_until 10 no_last_error; then ok "status: last_error cleared by the fixed bundle"; else
    fail "status: last_error still \"$(last_error)\""; fi

# ---- an oversized bundle sent chunked (no size announced) is downloaded once, then 304 ----
api_control "reset" >/dev/null
api_control "mode=bigchunked" >/dev/null
expect_log "the oversized bundle is refused" "body over the limit of"
if wait_until 60 sh -c "[ \"\$(curl -s http://127.0.0.1:$api/control?count |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[\"statuses\"].get(\"304\", 0))')\" -ge 3 ]"
then ok "oversized: three polls more answered 304"; else fail "oversized: no 304s: $(api_control count)"; fi
expect_eq "oversized: downloaded (up to the limit) once" "$(count 'c["statuses"].get("200", 0)')" 1
if says "from A2"; then ok "oversized: the last good bundle stays in force"; else
    fail "oversized: plugins changed: $(cat "$T/b")"; fi
expect_contains "oversized: last_error still says so" "$(last_error)" "over the limit"
api_control "mode=normal" >/dev/null
if wait_until 60 no_last_error; then ok "oversized: gone from the API, last_error cleared"; else
    fail "oversized: last_error still \"$(last_error)\""; fi
if says "from A2"; then ok "oversized: the same bundle in force after"; else
    fail "oversized: after: $(cat "$T/b")"; fi

# ---- with dynacode_api_follow_redirects on, the redirect is followed and logged ----
api_control "mode=location:http://127.0.0.1:$api_b/bundle" >/dev/null
conf "dynacode_api_follow_redirects on;"
if nginx_test; then ok "nginx -t accepts dynacode_api_follow_redirects"; else
    fail "nginx -t: $(cat "$T/t.out")"; fi
reload_nginx
if wait_until 10 says "from B"; then ok "redirect followed: the other server's bundle"; else
    fail "redirect not followed: $(cat "$T/b")"; fi
expect_log "the final URL is logged" \
    "bg_updated_plugins: 1 plugins, redirected to http://127.0.0.1:$api_b/bundle"

conf "dynacode_api_follow_redirects maybe;"
if nginx_test; then fail "nginx -t accepted a bad flag"; else
    expect_contains "a bad flag names the directive" "$(cat "$T/t.out")" \
        "dynacode_api_follow_redirects"; fi

finish
