#!/bin/bash
# test_phases.sh - every phase on a real nginx: rewrite, access, content (dynacode_content),
# header_filter, body_filter (changing the body, with Content-Length and ranges handled) and
# log (into error.log); ngx.var with arg_/cookie_/http_ variables and a `set` variable written
# by a plugin; ngx.exit and ngx.redirect; ngx.req.set_uri and set_uri_args; a failing plugin;
# `dynacode off` in a location; content written in many pieces, whole and in order.
. "$(dirname "$0")/lib.sh"

python3 - "$T/bundle.json" <<'EOF'
import json, sys

def p(name, phase, code):
    return {"name": name, "phase": phase, "code": code}

bundle = {"general": {"status": "enabled"}, "domains": [
    {"name": "^vars\\.test$", "plugins": [
        p("rw", "rewrite", """
ngx.req.set_header("X-From-Rewrite", "r1")
ngx.req.clear_header("X-Remove-Me")
ngx.var.myvar = "set-by-plugin"
ngx.ctx.seen = "rewrite"
"""),
        p("acc", "access", """
if ngx.var.arg_deny == "1" then return ngx.exit(401) end
if ngx.var.arg_go then return ngx.redirect("http://elsewhere.test/x", 301) end
ngx.ctx.seen = ngx.ctx.seen .. ",access"
"""),
        p("show", "content", """
ngx.say("arg=", ngx.var.arg_name or "nil")
ngx.say("cookie=", ngx.var.cookie_flavour or "nil")
ngx.say("http=", ngx.var.http_x_custom or "nil")
ngx.say("rewrite_header=", ngx.req.get_headers()["x-from-rewrite"] or "nil")
ngx.say("http_rewrite=", ngx.var.http_x_from_rewrite or "nil")
ngx.say("removed=", ngx.var.http_x_remove_me or "nil")
ngx.say("myvar=", ngx.var.myvar or "nil")
ngx.say("method=", ngx.req.get_method())
ngx.say("uri=", ngx.var.uri)
ngx.say("host=", ngx.var.host)
ngx.say("ctx=", ngx.ctx.seen)
local ok = pcall(function() ngx.var.uri = "/x" end)
ngx.say("uri_write=", ok and "allowed" or "refused")
"""),
        p("hf", "header_filter", """
ngx.header["X-Phase-HF"] = "hf-" .. ngx.status
ngx.header["X-Ctx"] = ngx.ctx.seen
"""),
        p("lg", "log", """
ngx.log(ngx.WARN, "dynacode-log-marker uri=", ngx.var.uri, " status=", ngx.var.status)
"""),
    ]},
    {"name": "^filter\\.test$", "plugins": [
        p("oo", "body_filter", 'ngx.arg[1] = (ngx.arg[1]:gsub("o", "00"))'),
    ]},
    {"name": "^pieces\\.test$", "plugins": [
        p("many", "content", """
for i = 1, 40 do ngx.say(string.format("%03d:", i), string.rep("x", i * 7)) end
ngx.print(string.rep("y", 1500))
ngx.say("end")
"""),
    ]},
    {"name": "^pieces-filtered\\.test$", "plugins": [
        p("many", "content", """
for i = 1, 40 do ngx.say(string.format("%03d:", i), string.rep("x", i * 7)) end
ngx.print(string.rep("y", 1500))
ngx.say("end")
"""),
        p("upper", "body_filter", 'ngx.arg[1] = (ngx.arg[1]:gsub("[xy]", string.upper))'),
    ]},
    {"name": "^bytes\\.test$", "plugins": [
        p("bytes", "content", 'for i = 1, 3000 do ngx.print("a") end ngx.say("")'),
    ]},
    {"name": "^cut\\.test$", "plugins": [
        p("cut", "body_filter", 'ngx.arg[1] = ngx.arg[1]:sub(1, 5)\nngx.arg[2] = true'),
    ]},
    {"name": "^exit\\.test$", "plugins": [
        p("ex", "access", """
if ngx.var.arg_say then ngx.say("early") end
local code = tonumber(ngx.var.arg_code)
if code then return ngx.exit(code) end
"""),
        p("st", "content", 'ngx.status = 202\nngx.say("accepted")'),
    ]},
    {"name": "^uri\\.test$", "plugins": [
        p("jump", "rewrite", 'if ngx.var.uri == "/" then ngx.req.set_uri("/target.txt", true) end'),
    ]},
    {"name": "^args\\.test$", "plugins": [
        p("args", "rewrite", 'ngx.req.set_uri_args({a = "1"})'),
        p("show", "content", 'ngx.say("args=", ngx.var.args)'),
    ]},
    {"name": "^host\\.test$", "plugins": [
        p("host", "rewrite", 'ngx.req.set_header("Host", "Other.Test:8080")'),
        p("show", "content", 'ngx.say(ngx.var.host, " ", ngx.var.http_host)'),
    ]},
    {"name": "^err\\.test$", "plugins": [
        p("boom", "content", 'error("boom-marker")'),
        p("after", "content", 'ngx.say("after")'),
    ]},
    {"name": "^off\\.test$", "plugins": [
        p("mark", "header_filter", 'ngx.header["X-Dynacode"] = "yes"'),
    ]},
]}
json.dump(bundle, open(sys.argv[1], "w"), indent=1)
EOF

start_api "$T/bundle.json"
printf 'hello world, once more\n' >"$T/html/index.html"
printf 'the target\n' >"$T/html/target.txt"
printf 'denied page\n' >"$T/html/denied.txt"
python3 -c 'import sys; sys.stdout.write("foo bar\n" * 262144)' >"$T/html/big.txt"   # 2 MiB

write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location = /dynacode-status { dynacode_status; }
        location / {
            root $T/html;
            set \$myvar orig;
            dynacode_content;
        }
        location /off { dynacode off; return 200 'off\n'; }
        location /guarded { error_page 401 /denied.txt; dynacode_content; }
        location = /denied.txt { root $T/html; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: vars.test' http://127.0.0.1:$PORT/ | grep -q arg="
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

# ---- rewrite, access, content, header_filter, log; variables ----
req vars.test "/?name=joe" -H "Cookie: a=b; flavour=mint" -H "X-Custom: c1" -H "X-Remove-Me: x"
expect_eq "vars: 200" "$STATUS" 200
body=$(cat "$T/b")
expect_contains "ngx.var.arg_name" "$body" "arg=joe"
expect_contains "ngx.var.cookie_flavour" "$body" "cookie=mint"
expect_contains "ngx.var.http_x_custom" "$body" "http=c1"
expect_contains "rewrite: ngx.req.set_header seen by get_headers" "$body" "rewrite_header=r1"
expect_contains "rewrite: ngx.req.set_header seen by \$http_" "$body" "http_rewrite=r1"
expect_contains "rewrite: ngx.req.clear_header" "$body" "removed=nil"
expect_contains "rewrite: a \`set\` variable written by a plugin" "$body" "myvar=set-by-plugin"
expect_contains "ngx.req.get_method" "$body" "method=GET"
expect_contains "ngx.var.uri" "$body" "uri=/"
expect_contains "ngx.var.host" "$body" "host=vars.test"
expect_contains "ngx.ctx across rewrite and access" "$body" "ctx=rewrite,access"
expect_contains "a read-only variable is refused" "$body" "uri_write=refused"
expect_eq "header_filter: header with the status" "$(header X-Phase-HF)" "hf-200"
expect_eq "header_filter: ngx.ctx from earlier phases" "$(header X-Ctx)" "rewrite,access"
expect_log "log phase: ngx.log into error.log" "dynacode-log-marker uri=/ status=200"

req vars.test "/?deny=1"
expect_eq "access: ngx.exit(401)" "$STATUS" 401
expect_eq "access: header_filter runs on the error page" "$(header X-Phase-HF)" "hf-401"

req vars.test "/?go=1"
expect_eq "access: ngx.redirect 301" "$STATUS" 301
expect_eq "access: Location" "$(header Location)" "http://elsewhere.test/x"

# an internal redirect (error_page) keeps the request's plugins run once
req vars.test "/guarded?deny=1"
expect_eq "error_page after ngx.exit(401): status" "$STATUS" 401
expect_eq "error_page after ngx.exit(401): the page" "$(cat "$T/b")" "denied page"
expect_eq "error_page: header_filter ran (once) with the request's ngx.ctx" \
    "$(header X-Phase-HF)" "hf-401"
expect_eq "error_page: one log phase for the request" \
    "$(grep -c 'dynacode-log-marker uri=/denied.txt status=401' "$T/logs/error.log")" 1

# ---- body_filter ----
req filter.test /
expect_eq "body_filter: 200" "$STATUS" 200
expect_eq "body_filter: the body changed" "$(cat "$T/b")" "hell00 w00rld, 00nce m00re"
cl=$(header Content-Length)
if [ -z "$cl" ] || [ "$cl" = "$(stat -c %s "$T/b")" ]; then
    ok "body_filter: no stale Content-Length (\"$cl\")"
else fail "body_filter: Content-Length $cl for $(stat -c %s "$T/b") bytes"; fi
expect_eq "body_filter: no Accept-Ranges" "$(header Accept-Ranges)" ""

req filter.test / -H "Range: bytes=0-3"
expect_eq "body_filter: a range request gets the whole filtered body" \
    "$(cat "$T/b")" "hell00 w00rld, 00nce m00re"

STATUS=$(curl -s --http1.0 -o "$T/b" -w '%{http_code}' -H "Host: filter.test" \
         "http://127.0.0.1:$PORT/")
expect_eq "body_filter over HTTP/1.0 (no chunking): whole body" \
    "$(cat "$T/b")" "hell00 w00rld, 00nce m00re"

req filter.test /big.txt
want=$(python3 -c 'import sys, hashlib; print(hashlib.md5(b"f0000 bar\n" * 262144).hexdigest())')
expect_eq "body_filter on 2 MiB, chunk by chunk: the whole body changed" \
    "$(md5sum <"$T/b" | cut -d' ' -f1)" "$want"

# many pieces of output in one phase: gathered into few buffers, none lost or reordered
pieces='import sys; sys.stdout.write("".join("%03d:%s\n" % (i, "x" * (i * 7)) for i in range(1, 41)) + "y" * 1500 + "end\n")'
req pieces.test /
expect_eq "41 ngx.say and a long ngx.print: the body, byte for byte" \
    "$(md5sum <"$T/b" | cut -d' ' -f1)" "$(python3 -c "$pieces" | md5sum | cut -d' ' -f1)"
expect_eq "41 ngx.say and a long ngx.print: Content-Length" "$(header Content-Length)" \
    "$(python3 -c "$pieces" | wc -c)"
req pieces-filtered.test /
expect_eq "the same pieces through a body_filter plugin" \
    "$(md5sum <"$T/b" | cut -d' ' -f1)" "$(python3 -c "$pieces" | tr xy XY | md5sum | cut -d' ' -f1)"

req bytes.test /
expect_eq "3,000 one-byte ngx.print: the body whole" \
    "$(md5sum <"$T/b" | cut -d' ' -f1)" \
    "$(python3 -c 'import sys; sys.stdout.write("a" * 3000 + "\n")' | md5sum | cut -d' ' -f1)"
expect_eq "3,000 one-byte ngx.print: Content-Length" "$(header Content-Length)" 3001

req cut.test /
expect_eq "body_filter: ngx.arg[2] = true ends the body" "$(cat "$T/b")" "hello"

req other.test /
expect_eq "no plugin: static file untouched" "$(cat "$T/b")" "hello world, once more"
expect_eq "no plugin: Content-Length kept" "$(header Content-Length)" "23"

# ---- exit codes and status ----
req exit.test "/?code=404"
expect_eq "ngx.exit(404): nginx's page" "$STATUS" 404
expect_contains "ngx.exit(404): body" "$(cat "$T/b")" "404 Not Found"
req exit.test "/?code=503"
expect_eq "ngx.exit(503)" "$STATUS" 503
req exit.test "/?code=204"
expect_eq "ngx.exit(204)" "$STATUS" 204
req exit.test "/?code=200"
expect_eq "ngx.exit(200): 200" "$STATUS" 200
expect_eq "ngx.exit(200): empty body" "$(cat "$T/b")" ""
req exit.test "/?code=200&say=1"
expect_eq "ngx.say then ngx.exit(200) in access: 200" "$STATUS" 200
expect_eq "ngx.say then ngx.exit(200) in access: body" "$(cat "$T/b")" "early"
req exit.test "/"
expect_eq "ngx.status = 202 in content" "$STATUS" 202
expect_eq "content body" "$(cat "$T/b")" "accepted"
expect_eq "content answer: its length, not chunked" "$(header Content-Length)" "9"
# with that length an HTTP/1.0 client keeps its connection (chunked needs HTTP/1.1)
conns=$(curl -s --http1.0 -H "Host: exit.test" -H "Connection: keep-alive" -o /dev/null \
        -o /dev/null -w '%{http_code}/%{num_connects} ' "http://127.0.0.1:$PORT/" \
        "http://127.0.0.1:$PORT/")
expect_eq "HTTP/1.0 keep-alive: the second answer on the same connection" "$conns" "202/1 202/0 "
STATUS=$(curl -s -I -o "$T/h" -w '%{http_code}' -H "Host: exit.test" "http://127.0.0.1:$PORT/")
expect_eq "HEAD on a content plugin" "$STATUS" 202

# ---- URI and arguments ----
req uri.test /
expect_eq "ngx.req.set_uri(uri, true) jumps" "$(cat "$T/b")" "the target"
req args.test "/?x=2"
expect_eq "ngx.req.set_uri_args" "$(cat "$T/b")" "args=a=1"

req host.test /
expect_eq "ngx.req.set_header(\"Host\"): \$host and \$http_host follow" \
    "$(cat "$T/b")" "other.test Other.Test:8080"

# ---- a failing plugin stops alone ----
req err.test /
expect_eq "a failing plugin: the next one runs" "$(cat "$T/b")" "after"
expect_log "a failing plugin: logged with its message" "result=error"
expect_log "a failing plugin: the message" "boom-marker"

# ---- dynacode off ----
req off.test /
expect_eq "dynacode on: header_filter plugin" "$(header X-Dynacode)" "yes"
req off.test /off
expect_eq "dynacode off in a location: nothing runs" "$(header X-Dynacode)" ""
expect_eq "dynacode off: location answers" "$(cat "$T/b")" "off"

finish
