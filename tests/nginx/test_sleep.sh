#!/bin/bash
# test_sleep.sh - ngx.sleep under nginx: a plugin that sleeps in rewrite, access or content
# does not hold its worker (one worker serves other requests meanwhile, and many requests
# sleep in one plugin at once); the phase goes on after the sleep (output before and after
# it, ngx.exit after it, header filter plugins; after ngx.eof the answer goes out before the
# sleep); time asleep is not quota time; the policy's
# bound refuses a longer sleep; a client that leaves during a sleep, and a reload while
# requests sleep, leave the worker serving and the requests answered.
. "$(dirname "$0")/lib.sh"

cat >"$T/policy.json" <<'EOF'
{"bounds": {"sleep_ms_per_call": 6000, "sleep_ms_per_request": 8000}}
EOF
cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [{"name": "*", "plugins": [
  {"name": "slow rewrite", "phase": "rewrite",
   "code": "local s = ngx.var.arg_rewrite\nif s then ngx.sleep(tonumber(s)) if ngx.var.arg_deny then return ngx.exit(403) end end"},
  {"name": "slow access", "phase": "access",
   "code": "local s = ngx.var.arg_access\nif s then ngx.sleep(tonumber(s)) ngx.header['X-Slept'] = 'access' end\nif ngx.var.arg_eof == 'access' then ngx.say('done') ngx.eof() ngx.sleep(5) ngx.log(ngx.WARN, 'woke-after-eof access') end"},
  {"name": "content", "phase": "content", "quota": {"time_ms": 20},
   "code": "if ngx.var.arg_eof then ngx.say('done') ngx.eof() ngx.sleep(5) ngx.log(ngx.WARN, 'woke-after-eof content') return end\nlocal s = ngx.var.arg_content\nif s then ngx.say('a') ngx.sleep(tonumber(s)) ngx.say('b') else ngx.say('fast') end"},
  {"name": "filter", "phase": "header_filter", "code": "ngx.header['X-Filter'] = 'ran'"}
]}]}
EOF
start_api "$T/bundle.json"

write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_policy $T/policy.json;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location / { dynacode_content; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s http://127.0.0.1:$PORT/ | grep -qx fast"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi
worker=$(nginx_workers)

# content: output before and after the sleep, the header filter, a 20 ms time quota that
# 300 ms asleep does not trip
t0=$(now)
req www.test "/?content=0.3"
took=$(elapsed "$t0")
expect_eq "content sleep: status" "$STATUS" "200"
expect_eq "content sleep: output before and after it" "$(cat "$T/b")" "$(printf 'a\nb')"
expect_eq "content sleep: the header filter ran" "$(header X-Filter)" "ran"
if lt "$took" 0.3; then fail "answered in $took s, before the 0.3 s sleep ended"
else ok "answered once the sleep was over ($took s)"; fi

# ngx.eof, then a sleep: the client has the whole answer while the plugin sleeps on (the
# marker is logged once the 5 s sleep is over; a client waiting for the end would see it)
for where in content access; do
    got=$(curl -s --max-time 20 -D "$T/eof.h" "http://127.0.0.1:$PORT/?eof=$where")
    expect_eq "ngx.eof then ngx.sleep in $where: the answer" "$got" "done"
    expect_eq "ngx.eof then ngx.sleep in $where: its length" \
        "$(tr -d '\r' <"$T/eof.h" | awk -F': ' 'tolower($1) == "content-length" { print $2 }')" "5"
    if grep -q "woke-after-eof $where" "$T/logs/error.log"; then
        fail "ngx.eof then ngx.sleep in $where: the answer came only after the sleep"
    else ok "ngx.eof then ngx.sleep in $where: the answer came while the plugin sleeps"; fi
    if wait_until 15 grep -q "woke-after-eof $where" "$T/logs/error.log"
    then ok "ngx.eof then ngx.sleep in $where: the plugin went on after the sleep"
    else fail "ngx.eof then ngx.sleep in $where: no marker after the sleep"; fi
done

# rewrite: ngx.exit after the sleep ends the request
req www.test "/?rewrite=0.1&deny=1"
expect_eq "rewrite sleep then ngx.exit(403)" "$STATUS" "403"

# one worker: while a request sleeps 5 s in access, others are served (5 requests that take
# milliseconds each: 5 s leaves room for a busy machine)
curl -s --max-time 20 -D "$T/slow.h" -o "$T/slow.b" "http://127.0.0.1:$PORT/?access=5" &
slow=$!
EXTRA_PIDS+=("$slow")
t0=$(now)
sleep 0.2
served=0
for i in $(seq 5); do
    [ "$(curl -s --max-time 10 "http://127.0.0.1:$PORT/")" = fast ] && served=$((served + 1))
done
if kill -0 "$slow" 2>/dev/null; then
    ok "5 requests served while one sleeps in the only worker ($served answered fast)"
else
    fail "the sleeping request ended before the 5 others were served ($(elapsed "$t0") s)"
fi
expect_eq "every request served during the sleep answered" "$served" "5"
wait "$slow"
if grep -qi '^X-Slept: access' "$T/slow.h"; then ok "the sleeping request went on after 5 s"
else fail "the sleeping request: $(head -1 "$T/slow.h")"; fi
if lt "$(elapsed "$t0")" 4.9; then fail "the 5 s sleep ended after $(elapsed "$t0") s"; fi

# many requests asleep in the one plugin at once
seq 30 | xargs -P 30 -I{} curl -s --max-time 20 -o /dev/null -D - "http://127.0.0.1:$PORT/?access=0.5" \
    | tr -d '\r' >"$T/many.h"
expect_eq "30 requests asleep at once all went on" "$(grep -c '^X-Slept: access' "$T/many.h")" "30"

# the policy's bound: a 7 s sleep is refused, the request goes on without it
req www.test "/?access=7"
expect_eq "a sleep over the bound: the request is served" "$STATUS:$(cat "$T/b")" "200:fast"
if grep -q "ngx.sleep: 7 s is over the policy's bound of 6 s per call" "$T/logs/error.log"
then ok "the refusal is logged with the bound"; else fail "no refusal in the error log"; fi

# the client leaves during a sleep: the worker drops the request and serves on
curl -s --max-time 0.5 -o /dev/null "http://127.0.0.1:$PORT/?access=2&leave=1"
sleep 2.3
req www.test /
expect_eq "served after a client left during a sleep" "$(cat "$T/b")" "fast"
expect_eq "the same worker serves (nothing crashed)" "$(nginx_workers)" "$worker"
if grep -E '\[(alert|crit|emerg)\]|exited on signal' "$T/logs/error.log"; then
    fail "alerts in the error log"; else ok "no alert in the error log"; fi

# a reload while a request sleeps: the old worker finishes it
curl -s --max-time 20 -D "$T/reload.h" -o /dev/null "http://127.0.0.1:$PORT/?access=2" &
sleeper=$!
EXTRA_PIDS+=("$sleeper")
sleep 0.3
if reload_nginx; then ok "reloaded while a request sleeps"; else fail "reload"; fi
wait "$sleeper"
if grep -qi '^X-Slept: access' "$T/reload.h"; then ok "the request asleep over the reload was answered"
else fail "the request asleep over the reload: $(head -1 "$T/reload.h")"; fi

finish
