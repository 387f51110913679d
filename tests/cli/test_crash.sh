#!/usr/bin/env bash
# test_crash.sh - `dynacode run` when a plugin call crashes the process: a result=crash trace
# line for that call and exit 3. The crash comes from crash_in_c, which only the test build of
# the command (DYNACODE_CRASHTEST) has; the product command must not know it.
. "$(dirname "$0")/lib.sh"
CRASHTEST=${DYNACODE_CRASHTEST:?set DYNACODE_CRASHTEST to the test build of the command}

bundle() { # bundle KIND: "fine" (rewrite), "bo\"om" (access, crashes), "after" (content)
  cat >"$TMP/b.json" <<JSON
{"general":{"status":"enabled"},"domains":[{"name":"*","plugins":[
 {"name":"fine","phase":"rewrite","code":"local x = 1"},
 {"name":"bo\"om","phase":"access","code":"crash_in_c('$1')"},
 {"name":"after","phase":"content","code":"ngx.say('served')"}]}]}
JSON
}

for kind in segv stack abort fpe; do
  bundle "$kind"
  expect_exit "$kind: exit 3" 3 -- "$CRASHTEST" run --host a.com "$TMP/b.json"
  expect_in "$kind: the earlier call's trace line" "$TMP/err" \
    'plugin="fine" domain="*" phase=rewrite result=ok ms='
  expect_in "$kind: the crash trace line" "$TMP/err" \
    'plugin="bo\"om" domain="*" phase=access result=crash ms='
  case $kind in
    segv|stack) sig=SIGSEGV ;; abort) sig=SIGABRT ;; fpe) sig=SIGFPE ;;
  esac
  expect_in "$kind: the signal in msg" "$TMP/err" "msg=\"$sig: the plugin call crashed the process\""
  if [ "$(grep -c 'result=crash' "$TMP/err")" -eq 1 ]; then ok "$kind: one crash line"; else
    fail "$kind: expected one result=crash line"; cat "$TMP/err"; fi
  if grep -qE '^plugin=.*result=crash ms=[0-9]+\.[0-9]{3} msg=' "$TMP/err"; then
    ok "$kind: ms as in the other trace lines"; else fail "$kind: ms format"; fi
  expect_not_in "$kind: no later plugin ran" "$TMP/err" 'plugin="after"'
  if [ ! -s "$TMP/out" ]; then ok "$kind: no response printed"; else
    fail "$kind: a response was printed"; fi
done

# a plugin error in the test build is still an error, not a crash
bundle nosuchkind
expect_exit "unknown kind: an ordinary error, exit 0" 0 -- "$CRASHTEST" run --host a.com "$TMP/b.json"
expect_in "unknown kind: result=error" "$TMP/err" 'phase=access result=error'
expect_in "unknown kind: the request went on" "$TMP/out" "served"

# the product command has no crash_in_c: the same plugin is a Lua error there
bundle segv
expect_exit "product command: exit 0" 0 -- "$DYNACODE" run --host a.com "$TMP/b.json"
expect_in "product command: crash_in_c is nil" "$TMP/err" "attempt to call global 'crash_in_c'"
expect_not_in "product command: no crash" "$TMP/err" "result=crash"
if nm -C "$DYNACODE" 2>/dev/null | grep -q crash_in_c; then
  fail "product command contains crash_in_c"; else ok "product command has no crash_in_c symbol"; fi

finish
