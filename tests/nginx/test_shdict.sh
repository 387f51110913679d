#!/bin/bash
# test_shdict.sh - ngx.shared under nginx: the policy's dictionaries live in the shared zone, so
# two workers count into one counter (incr over many requests reaches exactly N); a dictionary
# the request's domain may not use reads nil; a value set with a ttl is gone once it passed; a
# reload keeps the entries, unless the policy renames the dictionaries.
. "$(dirname "$0")/lib.sh"

cat >"$T/policy.json" <<'EOF'
{"shared_dicts": [
  {"name": "counters", "size_kb": 256},
  {"name": "corp", "size_kb": 64, "domains": ["^admin\\."]}
]}
EOF
cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [{"name": "*", "plugins": [
  {"name": "counter", "phase": "content",
   "code": "local c = ngx.shared.counters\nlocal uri = ngx.var.uri\nif uri == '/count' then ngx.say(c:incr('hits', 1, 0), ' ', ngx.worker.pid()) elseif uri == '/total' then ngx.say(c:get('hits')) elseif uri == '/corp' then ngx.say(type(ngx.shared.corp)) elseif uri == '/setttl' then ngx.say(c:set('lasting', 'here', 60), c:set('brief', 'here', 0.05)) elseif uri == '/getttl' then ngx.say(tostring(c:get('lasting')), ' ', tostring(c:get('brief'))) end"}
]}]}
EOF
start_api "$T/bundle.json"

write_conf 2 "
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
if wait_until 10 sh -c "curl -s -H 'Host: www.test' http://127.0.0.1:$PORT/total | grep -q nil"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

# many requests over several connections at once: both workers serve some
N=400
seq "$N" | xargs -P 8 -I{} curl -s -H "Host: www.test" "http://127.0.0.1:$PORT/count" \
    >"$T/counts"
req www.test /total
expect_eq "incr from $N requests reaches exactly $N" "$(cat "$T/b")" "$N"
expect_eq "every request got its own value" "$(awk '{print $1}' "$T/counts" | sort -n | uniq | wc -l)" "$N"
workers=$(awk '{print $2}' "$T/counts" | sort -u | wc -l)
if [ "$workers" -eq 2 ]; then ok "both workers counted into the one dictionary"; else
    fail "requests served by $workers worker(s), expected 2"; fi

# a reload that keeps the policy keeps the zone, and the entries with it
if reload_nginx; then ok "reloaded"; else fail "reload"; fi
req www.test /total
expect_eq "the counter survives a reload" "$(cat "$T/b")" "$N"

# a reload whose policy renames the dictionaries (same total size) starts them empty
sed -i 's/"counters"/"counts"/' "$T/policy.json"
sed -i 's/ngx.shared.counters/ngx.shared.counts/' "$T/bundle.json"
if reload_nginx; then ok "reloaded with renamed dictionaries"; else fail "reload (renamed)"; fi
if wait_until 10 sh -c "curl -s -H 'Host: www.test' http://127.0.0.1:$PORT/total | grep -qx nil"
then ok "a renamed dictionary starts empty"; else fail "renamed dictionary: $(cat "$T/b")"; fi

req www.test /corp
expect_eq "a dictionary this domain may not use is nil" "$(cat "$T/b")" "nil"
req admin.test /corp
expect_eq "the domain its regex names sees it" "$(cat "$T/b")" "table"

# Two values: one with a ttl (60 s) that no run of this test outlasts, one with a ttl (50 ms)
# that every run outlasts (the sleep alone does), so the answer does not depend on how fast
# or busy the machine is. The answer to the sets: the first one's "true" (Lua passes only the
# first value of a call that is not the last argument), then the second one's "true nil false".
req www.test /setttl
expect_eq "set with a ttl" "$(cat "$T/b")" "truetruenilfalse"
sleep 0.3
req www.test /getttl
expect_eq "readable before its ttl, gone once it passed" "$(cat "$T/b")" "here nil"

finish
