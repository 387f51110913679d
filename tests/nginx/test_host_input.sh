#!/bin/bash
# test_host_input.sh - what plugins hand to a real nginx is checked as nginx checks its own
# input: ngx.req.set_uri with "..", encoded dots and slashes, backslashes or NUL is refused and
# never serves a file outside the root; CR/LF written into $args never reaches the upstream;
# ngx.exit(2147483647) is refused; a relative Location stays relative; a header set thousands
# of times in a call leaves one header; log lines and error messages with control bytes stay
# one line.
. "$(dirname "$0")/lib.sh"

UPORT=$(free_port)

python3 - "$T/bundle.json" <<'EOF'
import json, sys

def p(name, phase, code):
    return {"name": name, "phase": phase, "code": code}

bundle = {"general": {"status": "enabled"}, "domains": [
    {"name": "^trav\\.test$", "plugins": [
        p("trav", "rewrite", """
local to = ngx.var.http_x_to
if to then ngx.req.set_uri(to, ngx.var.http_x_jump == "1") end
"""),
    ]},
    {"name": "^smuggle\\.test$", "plugins": [
        p("smuggle", "rewrite", """
if ngx.var.arg_how == "var" then
  ngx.var.args = "a=1 HTTP/1.1\\r\\nHost: smuggled\\r\\n\\r\\nGET /smuggled-var?x=1"
elseif ngx.var.arg_how == "lf" then
  ngx.var.args = "a=1\\nGET /smuggled-lf"
elseif ngx.var.arg_how == "uri_args" then
  ngx.req.set_uri_args("a=1 HTTP/1.1\\r\\nGET /smuggled-uri-args")
end
"""),
    ]},
    {"name": "^exit\\.test$", "plugins": [
        p("huge", "access", "ngx.exit(2147483647)"),
    ]},
    {"name": "^redir\\.test$", "plugins": [
        p("rel", "access", 'ngx.redirect("/elsewhere?x=1")'),
    ]},
    {"name": "^loop\\.test$", "plugins": [
        p("reqloop", "rewrite", """
for i = 1, 3000 do ngx.req.set_header("X-Same", "v" .. i) end
"""),
        p("respset", "header_filter", """
for i = 1, 3000 do ngx.header["X-Same"] = "w" .. i end
ngx.header["X-Req-Seen"] = ngx.var.http_x_same
ngx.header["X-Multi"] = {"a", "b", "c"}
ngx.header["X-Multi"] = {"d", "e"}
"""),
    ]},
    {"name": "^grow\\.test$", "plugins": [
        p("same", "rewrite", """
local base = string.rep("a", 249)
for i = 1, 10000 do ngx.req.set_header("X-Same", base .. (i % 10)) end
"""),
        p("same_out", "header_filter", """
local base = string.rep("b", 249)
for i = 1, 10000 do ngx.header["X-Same"] = base .. (i % 10) end
ngx.header["X-Req-Len"] = #ngx.var.http_x_same
"""),
    ]},
    {"name": "^many\\.test$", "plugins": [
        p("many", "header_filter", """
local v = string.rep("m", 250)
for i = 1, 10000 do ngx.header["X-M" .. i] = v end
"""),
    ]},
    {"name": "^log\\.test$", "plugins": [
        p("forger", "access", """
ngx.log(ngx.ERR, "host-input-marker\\n2026/01/01 00:00:00 [emerg] 1#1: FORGED-LINE\\r\\27[2J")
"""),
        p("varname", "access", """
pcall(function() ngx.var["nope\\n2026/01/01 00:00:00 [emerg] 1#1: FORGED-VAR"] = "x" end)
"""),
        p("thrower", "access", """
error("thrown-marker\\n2026/01/01 00:00:00 [emerg] 1#1: FORGED-ERROR", 0)
"""),
    ]},
]}
json.dump(bundle, open(sys.argv[1], "w"), indent=1)
EOF

start_api "$T/bundle.json"
printf 'the index\n' >"$T/html/index.html"
printf 'the target\n' >"$T/html/target.txt"
printf 'top-secret outside the root\n' >"$T/secret.txt"
chmod 644 "$T/secret.txt"

# no per-call bound on header bytes and roomy quotas: what bounds a header set in a loop is
# then the module's reuse of its buffers, and its per-request bound on what plugins take from
# the pool
cat >"$T/policy.json" <<'JSON'
{"bounds": {"header_bytes": 0},
 "quota": {"instructions": 50000000, "time_ms": 5000, "memory_kb": 16384},
 "ceiling": {"instructions": 50000000, "time_ms": 5000, "memory_kb": 16384}}
JSON

write_conf 1 "
    dynacode_policy $T/policy.json;
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;

    log_format upstream_req '[\$request]';

    server {
        listen 127.0.0.1:$PORT;
        location = /dynacode-status { dynacode_status; }
        location / {
            root $T/html;
        }
        location /p {
            proxy_pass http://127.0.0.1:$UPORT;
            proxy_http_version 1.1;
        }
    }

    # the upstream: says which request line it got, and logs each one
    server {
        listen 127.0.0.1:$UPORT;
        dynacode off;
        access_log $T/logs/upstream.log upstream_req;
        location / { return 200 'upstream-got [\$request]\n'; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -o /dev/null -w '%{http_code}' -H 'Host: redir.test' \
        http://127.0.0.1:$PORT/ | grep -q 302"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

# ---- set_uri: traversal refused, the root never left ----
req trav.test / -H "X-To: /target.txt"
expect_eq "set_uri to a plain path works" "$(cat "$T/b")" "the target"

for to in "/../secret.txt" "/a/../../secret.txt" "/../../../../../../etc/passwd" \
          "/%2e%2e/secret.txt" "/%2E%2e/%2e%2E/etc/passwd" "/a%2f..%2f..%2fsecret.txt" \
          "/.%2e/secret.txt" "//../secret.txt" "/..%5csecret.txt" "/..\\secret.txt" \
          "/target.txt%00.png" "/a/./../secret.txt"; do
    for jump in 0 1; do
        req trav.test / -H "X-To: $to" -H "X-Jump: $jump"
        body=$(cat "$T/b")
        expect_not_contains "set_uri \"$to\" (jump $jump): nothing outside the root" \
            "$body" "top-secret"
        expect_not_contains "set_uri \"$to\" (jump $jump): not /etc/passwd" "$body" "root:"
        expect_eq "set_uri \"$to\" (jump $jump): the request keeps its URI" "$body" "the index"
    done
done
expect_log "set_uri: the plugin fails, naming the problem" \
    'plugin "trav" of domain "^trav\\.test$" phase=rewrite result=error'
expect_log "set_uri: the message says why" 'ngx.req.set_uri: bad uri "/../secret.txt": ".." segment'
expect_log "set_uri: encoded dots are named too" 'bad uri "/%2e%2e/secret.txt": ".." segment'

# ---- CR/LF in $args never reaches the upstream ----
for how in var lf; do
    req smuggle.test "/p/orig?how=$how"
    expect_eq "args ($how): the request goes on" "$STATUS" 200
    expect_eq "args ($how): the upstream got the request line unchanged" \
        "$(cat "$T/b")" "upstream-got [GET /p/orig?how=$how HTTP/1.1]"
done
req smuggle.test "/p/orig?how=uri_args"
expect_eq "set_uri_args(string) with CR/LF: escaped into the one request line" \
    "$(cat "$T/b")" \
    "upstream-got [GET /p/orig?a=1%20HTTP/1.1%0D%0AGET%20/smuggled-uri-args HTTP/1.1]"
expect_eq "the upstream saw one request per request, none smuggled" \
    "$(grep -c . "$T/logs/upstream.log"),$(grep -c '^\[GET /smuggled' "$T/logs/upstream.log")" \
    "3,0"
expect_log "ngx.var.args with CR/LF: the plugin fails" \
    'plugin "smuggle" of domain "^smuggle\\.test$" phase=rewrite result=error'
expect_log "ngx.var.args with CR/LF: named" 'ngx.var: control byte 0x0d in value "a=1 HTTP/1.1\r\nHost'
expect_log "ngx.var.args with LF: named" 'ngx.var: control byte 0x0a in value "a=1\nGET'

# ---- ngx.exit out of range ----
req exit.test /
expect_eq "ngx.exit(2147483647): refused, the request goes on" "$STATUS" 200
expect_log "ngx.exit(2147483647): the plugin fails" "status code 0 to 999"

# ---- a relative Location stays relative ----
req redir.test /
expect_eq "ngx.redirect: 302" "$STATUS" 302
expect_eq "ngx.redirect: a relative Location stays relative" "$(header Location)" "/elsewhere?x=1"

# ---- a header set 3000 times: one header, the last value ----
req loop.test /
expect_eq "header loop: 200" "$STATUS" 200
expect_eq "header loop: one X-Same" "$(tr -d '\r' <"$T/h" | grep -ci '^x-same:')" 1
expect_eq "header loop: the last value" "$(header X-Same)" "w3000"
expect_eq "request header loop: the last value" "$(header X-Req-Seen)" "v3000"
expect_eq "multi-value header replaced" "$(tr -d '\r' <"$T/h" | grep -i '^x-multi:' | tr '\n' ' ')" \
    "X-Multi: d X-Multi: e "

# ---- 10,000 sets of a 250-byte header in one call: the value's buffer is reused (copies
# would take 2.5 MB of the request's pool, over the module's bound of 2 MiB) ----
req grow.test /
expect_eq "same header 10,000 times: 200" "$STATUS" 200
expect_eq "same header 10,000 times: one X-Same" "$(tr -d '\r' <"$T/h" | grep -ci '^x-same:')" 1
expect_eq "same header 10,000 times: the last value" "$(header X-Same)" \
    "$(python3 -c 'print("b" * 249 + "0")')"
expect_eq "same request header 10,000 times: the last value" "$(header X-Req-Len)" "250"
if grep -q 'plugin "same' "$T/logs/error.log"; then
    fail "same header 10,000 times: a plugin failed"
    grep 'plugin "same' "$T/logs/error.log" | head -3 | sed 's/^/    | /'
else ok "same header 10,000 times: the plugins succeeded"; fi

# 10,000 distinct headers of 250 bytes: the request's bound stops them, the worker lives on
req many.test /
expect_eq "10,000 distinct headers: the response still goes out" "$STATUS" 200
expect_log "10,000 distinct headers: the module's bound is named" \
    "plugins set over 2097152 bytes of values in this request"
expect_log "10,000 distinct headers: the plugin fails" \
    'plugin "many" of domain "^many\\.test$" phase=header_filter result=error'
req trav.test /
expect_eq "the worker serves on" "$(cat "$T/b")" "the index"

# ---- log lines stay one line ----
req log.test /
expect_log "log: control bytes escaped" \
    'host-input-marker\n2026/01/01 00:00:00 [emerg] 1#1: FORGED-LINE\r\x1b[2J'
expect_log "a variable's name: escaped in nginx's own line about it" \
    'variable "nope\n2026/01/01 00:00:00 [emerg] 1#1: forged-var" is not changeable'
expect_log "an error message: control bytes escaped in the plugin's run line" \
    'thrown-marker\n2026/01/01 00:00:00 [emerg] 1#1: FORGED-ERROR'
if grep -q '^2026/01/01 00:00:00 \[emerg\] 1#1: FORGED-' "$T/logs/error.log"; then
    fail "log: a forged line starts a line of error.log"
else ok "log: no forged line in error.log"; fi

finish
