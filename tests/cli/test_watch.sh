#!/usr/bin/env bash
# test_watch.sh - `dynacode watch` against a real HTTP server on 127.0.0.1 (tests/tools/
# api_server.py) that the test steers: first fetch and update, a change picked up within one
# interval, 304 without recompilation, a 500 and invalid JSON keeping the last good bundle, and
# the offline file loaded when the server is down. Every wait is bounded.
. "$(dirname "$0")/lib.sh"

SERVER_PID=
WATCH_PID=
cleanup() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

bundle() { # bundle FILE HEADER_VALUE
  cat > "$1" <<JSON
{"general":{"status":"enabled"},"domains":[{"name":"*","plugins":[
 {"name":"marker","phase":"header_filter","code":"ngx.header['X-Version'] = '$2'"}]}]}
JSON
}

start_server() {
  python3 "$SRC/tests/tools/api_server.py" --bundle "$TMP/served.json" --port 0 --max-seconds 120 \
    > "$TMP/server.out" 2>"$TMP/server.err" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    PORT=$(head -n1 "$TMP/server.out" 2>/dev/null)
    [ -n "$PORT" ] && break
    sleep 0.05
  done
  [ -n "$PORT" ] || { echo "api_server did not start"; cat "$TMP/server.err"; exit 1; }
  URL="http://127.0.0.1:$PORT/bundle"
}

control() { curl -s -o /dev/null "http://127.0.0.1:$PORT/control?$1"; }

# wait_event NAME N [SECONDS]: until the watch output holds N lines with event NAME
wait_event() {
  local deadline=$((SECONDS + ${3:-10}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(grep -c "\"event\":\"$1\"" "$TMP/events" 2>/dev/null)" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 1
}

check_event() { # check_event DESCRIPTION NAME N [SECONDS]
  if wait_event "$2" "$3" "${4:-10}"; then ok "$1"; else
    fail "$1: fewer than $3 \"$2\" events"; sed 's/^/    | /' "$TMP/events" | tail -15; fi
}

bundle "$TMP/served.json" one
start_server

# --- a long watch steered between polls
"$DYNACODE" watch --interval 0.5 --count 40 --offline-file "$TMP/offline.json" "$URL" \
  > "$TMP/events" 2>"$TMP/watch.err" &
WATCH_PID=$!
check_event "first poll fetches" bg_fetch_api_success 1
check_event "then updates the plugins" bg_updated_plugins 1
expect_in "the update counts the plugin" "$TMP/events" '"event":"bg_updated_plugins","count":1'
check_event "unchanged bundle: 304" bg_fetch_not_modified 1
expect_not_in "no compile on 304" "$TMP/events" '"event":"bg_compile_error"'
[ "$(grep -c '"event":"bg_compile_success"' "$TMP/events")" -eq 1 ] && ok "compiled once" || fail "compiled more than once"
[ -s "$TMP/offline.json" ] && grep -q "'one'" "$TMP/offline.json" && ok "offline file written" || fail "offline file not written"

bundle "$TMP/served.json" two
changed=$(date +%s.%N)
check_event "a change is fetched" bg_updated_plugins 2 3
seen=$(date +%s.%N)
# a figure, not a verdict (timing goals live in tests/bench): the change was seen (above)
echo "# the change was fetched $(awk -v a="$changed" -v b="$seen" 'BEGIN{printf "%.2f", b-a}') s after it was made (interval 0.5 s)"
grep -q "'two'" "$TMP/offline.json" && ok "offline file follows" || fail "offline file not updated"

control "mode=status:500"
check_event "a 500 is reported" bg_fetch_api_status_code_error 1 3
expect_in "with its status" "$TMP/events" '"status":500'
control "mode=notjson"
check_event "text that is not JSON is refused" bg_didnt_update_plugins 1 3
expect_in "saying why" "$TMP/events" 'not JSON'
control "mode=wrongstructure"
check_event "a bundle without general is refused" bg_didnt_update_plugins 2 3
grep -q "'two'" "$TMP/offline.json" && ok "last good bundle kept on disk" || fail "offline file overwritten by a refused bundle"
control "mode=normal"
kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null; WATCH_PID=

# --- redirects: followed only with --follow-redirects, and then the final URL is said
control "mode=redirect:1"
expect_exit "check: a redirect is not followed" 2 -- "$DYNACODE" check "$URL"
expect_in "check: saying where it led" "$TMP/err" "a redirect to http://127.0.0.1:$PORT/hop/1/1, not followed"
expect_exit "check --follow-redirects" 0 -- "$DYNACODE" check --follow-redirects "$URL"
expect_exit "run: a redirect is not followed" 2 -- "$DYNACODE" run --host a.com "$URL"
expect_exit "run --follow-redirects" 0 -- "$DYNACODE" run --follow-redirects --host a.com "$URL"
expect_exit "watch: a redirect is not followed" 0 -- "$DYNACODE" watch --count 1 "$URL"
expect_in "watch: a status code error" "$TMP/out" '"event":"bg_fetch_api_status_code_error","status":302'
expect_not_in "watch: nothing loaded" "$TMP/out" '"event":"bg_updated_plugins"'
expect_exit "watch --follow-redirects" 0 -- "$DYNACODE" watch --count 1 --follow-redirects "$URL"
expect_in "watch: the final URL said" "$TMP/out" "\"message\":\"redirected to http://127.0.0.1:$PORT/hop/1/1\""
control "mode=normal"

# --- server stopped: the offline file
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
expect_exit "watch with the server down" 0 -- "$DYNACODE" watch --count 1 --offline-file "$TMP/offline.json" "$URL"
expect_in "fetch error reported" "$TMP/out" '"event":"bg_fetch_api_generic_error"'
expect_in "offline file loaded" "$TMP/out" '"event":"bg_offline_loaded","count":1'

printf '{"general": broken' > "$TMP/corrupt.json"
expect_exit "a corrupt offline file does not stop the start" 0 -- "$DYNACODE" watch --count 1 --offline-file "$TMP/corrupt.json" "$URL"
expect_in "refusal named" "$TMP/out" 'offline file'
expect_not_in "nothing loaded" "$TMP/out" '"event":"bg_offline_loaded"'

# --- options
expect_exit "watch without URL" 2 -- "$DYNACODE" watch
expect_exit "watch with a bad interval" 2 -- "$DYNACODE" watch --interval soon "$URL"
expect_exit "watch --help" 0 -- "$DYNACODE" watch --help

finish
