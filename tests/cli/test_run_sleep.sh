#!/bin/bash
# test_run_sleep.sh - `dynacode run` really waits for a plugin asleep in ngx.sleep (nothing
# else could run meanwhile), the output before and after the sleep is the answer, and the
# trace line says the call slept; strict.json allows no sleep.
. "$(dirname "$0")/lib.sh"

cat >"$TMP/b.json" <<'JSON'
{"general": {"status": "enabled"}, "domains": [{"name": "*", "plugins": [
  {"name": "latency", "phase": "access", "code": "ngx.sleep(0.4)"},
  {"name": "page", "phase": "content", "code": "ngx.say('a') ngx.sleep(0.1) ngx.say('b')"}
]}]}
JSON

t0=$(date +%s%N)
expect_exit "run a bundle whose plugins sleep" 0 -- "$DYNACODE" run --host a.com "$TMP/b.json"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -ge 500 ]; then ok "the command waited the 0.5 s asleep (took $ms ms)"
else fail "the command took $ms ms, less than the 500 ms asleep"; fi
body=$(tr -d '\r' <"$TMP/out" | grep -x '[ab]' | tr '\n' ' ')   # the chunks' data lines
if [ "$body" = "a b " ]; then ok "output before and after the sleep"; else fail "body: $body"; fi
expect_in "the trace says the call slept" "$TMP/err" 'plugin="latency" domain="*" phase=access result=ok'
expect_in "... with a note" "$TMP/err" 'msg="slept"'

expect_exit "strict.json: no sleep" 0 -- "$DYNACODE" run --policy "$DC_SOURCE_DIR/policy/strict.json" \
    --host a.com "$TMP/b.json"
expect_in "the sleep is refused by the bound" "$TMP/err" "over the policy's bound of 0 s per call"

finish
