#!/bin/bash
# test_body.sh - the request body for plugins on a real nginx: the body read before the
# rewrite/access plugins that use it (ngx.req.read_body, get_body_data, get_post_args), with
# curl -d; a body over client_body_buffer_size goes to a temporary file and get_body_data gives
# nil (as OpenResty); a request whose plugins do not use the body is served without reading it.
. "$(dirname "$0")/lib.sh"

python3 - "$T/bundle.json" <<'EOF'
import json, sys

def p(name, phase, code):
    return {"name": name, "phase": phase, "code": code}

bundle = {"general": {"status": "enabled"}, "domains": [
    {"name": "^body\\.test$", "plugins": [
        p("rw", "rewrite", """
ngx.req.read_body()
local d = ngx.req.get_body_data()
ngx.ctx.rw = d and #d or "nil"
"""),
        p("ac", "access", """
ngx.req.read_body()
local args, err = ngx.req.get_post_args()
if args then
    ngx.ctx.ac = "a=" .. tostring(args.a) .. " b=" .. tostring(args.b) .. " c=" .. tostring(args.c)
else
    ngx.ctx.ac = "err=" .. tostring(err)
end
"""),
        p("show", "content", """
ngx.say("rw=", ngx.ctx.rw)
ngx.say("ac=", ngx.ctx.ac)
local d = ngx.req.get_body_data()
ngx.say("content=", d and #d or "nil")
"""),
    ]},
    {"name": "^nobody\\.test$", "plugins": [
        p("show", "content", 'ngx.say("served")'),
    ]},
]}
json.dump(bundle, open(sys.argv[1], "w"))
EOF

start_api "$T/bundle.json"

write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;
    client_body_buffer_size 1k;
    client_max_body_size 1m;

    server {
        listen 127.0.0.1:$PORT;
        location / { root $T/html; dynacode_content; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: nobody.test' http://127.0.0.1:$PORT/ | grep -q served"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

req body.test / -d 'a=1&b=x+y&c'
expect_eq "POST with a body: 200" "$STATUS" 200
body=$(cat "$T/b")
expect_contains "rewrite: get_body_data after read_body gives the body" "$body" "rw=11"
expect_contains "access: get_post_args decodes the urlencoded body" "$body" "ac=a=1 b=x y c=true"
expect_contains "content: the body read before stays readable" "$body" "content=11"

req body.test /
expect_eq "GET without a body: 200" "$STATUS" 200
body=$(cat "$T/b")
expect_contains "no body: get_body_data nil" "$body" "rw=nil"
expect_contains "no body: get_post_args an empty table" "$body" "ac=a=nil b=nil c=nil"

head -c 4000 /dev/zero | tr '\0' a >"$T/big"
req body.test / --data-binary @"$T/big"
expect_eq "a body over client_body_buffer_size: 200" "$STATUS" 200
body=$(cat "$T/b")
expect_contains "over client_body_buffer_size (a temporary file): get_body_data nil" "$body" "rw=nil"
expect_contains "over client_body_buffer_size: get_post_args says why" "$body" "ac=err=the request body is in a temporary file"

# a body sent in two parts, the second after a pause: the phase waits for it and goes on
python3 - "$PORT" >"$T/slow.out" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST / HTTP/1.1\r\nHost: body.test\r\nContent-Length: 7\r\nConnection: close\r\n\r\na=1")
time.sleep(0.3)
s.sendall(b"&b=2")
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode("latin-1"))
EOF
expect_contains "a body in two parts: the plugins see all of it" "$(cat "$T/slow.out")" "ac=a=1 b=2 c=nil"

req body.test / -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$T/big" -H 'Expect:'
expect_eq "a large body on keep-alive: served" "$STATUS" 200

req nobody.test / -d 'x=1'
expect_eq "plugins not using the body: served" "$STATUS" 200
expect_eq "plugins not using the body: their answer" "$(cat "$T/b")" "served"

finish
