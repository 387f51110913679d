#!/bin/bash
# test_req_apis.sh - the request-bound OpenResty functions on a real nginx: ngx.req.start_time,
# http_version (HTTP/1.1 and 1.0), is_internal (before and after an internal redirect),
# set_method (what $request_method and the content phase then see; a number that is no method
# refused), ngx.resp.get_headers (content and header_filter: Content-Type, Connection, several
# values, Location, max and "truncated"), ngx.headers_sent with ngx.send_headers (headers set
# after it are not sent), ngx.eof in content and in access (later output refused, the request
# ends there; a second ngx.eof gives "seen eof"), and the refusal of these names in a phase
# they do not work in (log).
. "$(dirname "$0")/lib.sh"

python3 - "$T/bundle.json" <<'EOF'
import json, sys

def p(name, phase, code):
    return {"name": name, "phase": phase, "code": code}

bundle = {"general": {"status": "enabled"}, "domains": [
    {"name": "^facts\\.test$", "plugins": [
        p("rw", "rewrite", 'ngx.ctx.rw_internal = tostring(ngx.req.is_internal())'),
        p("show", "content", """
local st = ngx.req.start_time()
ngx.say("start_ok=", tostring(type(st) == "number" and st > 1e9 and st <= ngx.now() + 1
                               and st * 1000 == math.floor(st * 1000 + 0.5)))
ngx.say("version=", tostring(ngx.req.http_version()))
ngx.say("internal=", tostring(ngx.req.is_internal()))
ngx.say("rw_internal=", ngx.ctx.rw_internal)
"""),
        p("lg", "log", """
local names = {
    {"headers_sent", function() return ngx.headers_sent end},
    {"send_headers", function() return ngx.send_headers() end},
    {"eof", function() return ngx.eof() end},
    {"set_method", function() return ngx.req.set_method(ngx.HTTP_GET) end},
}
local out = {}
for _, n in ipairs(names) do
    local ok, err = pcall(n[2])
    out[#out + 1] = n[1] .. "=" .. (ok and "allowed" or (tostring(err):match("API disabled in the context of log") and "disabled" or tostring(err)))
end
out[#out + 1] = "start_time=" .. type(ngx.req.start_time())
ngx.log(ngx.WARN, "log-phase-marker ", table.concat(out, " "))
"""),
    ]},
    {"name": "^method\\.test$", "plugins": [
        p("set", "rewrite", """
if ngx.var.arg_m == "post" then ngx.req.set_method(ngx.HTTP_POST) end
if ngx.var.arg_m == "put" then ngx.req.set_method(ngx.HTTP_PUT) end
if ngx.var.arg_m == "bad" then
    local ok, err = pcall(ngx.req.set_method, 12345)
    ngx.ctx.err = tostring(err)
end
"""),
        p("show", "content", """
ngx.say("method=", ngx.req.get_method(), " var=", ngx.var.request_method)
if ngx.ctx.err then ngx.say("err=", ngx.ctx.err) end
"""),
        p("hf", "header_filter", 'ngx.header["X-HF-Method"] = ngx.req.get_method()'),
    ]},
    {"name": "^resp\\.test$", "plugins": [
        p("show", "content", """
ngx.header["X-One"] = "1"
ngx.header["X-Two"] = {"a", "b"}
ngx.header.content_type = "text/x-test"
ngx.header.location = "/foo/bar"
local h, err = ngx.resp.get_headers()
ngx.say("ct=", h["Content-Type"], " one=", h.x_one, " two=", table.concat(h["x-two"], ","),
        " loc=", h.location, " conn=", h.connection, " err=", tostring(err))
local raw = ngx.resp.get_headers(nil, true)
ngx.say("raw_one=", tostring(raw["X-One"]), " raw_lower=", tostring(raw["x-one"]))
local n, cut = 0, nil
h, cut = ngx.resp.get_headers(2)
for _ in pairs(h) do n = n + 1 end
ngx.say("max2=", n, " ", tostring(cut))
"""),
        p("hf", "header_filter", """
local h = ngx.resp.get_headers()
ngx.header["X-HF-CT"] = h["content-type"]
ngx.header["X-HF-One"] = h["x-one"]
"""),
    ]},
    {"name": "^sent\\.test$", "plugins": [
        p("show", "content", """
ngx.header["X-Before"] = "yes"
ngx.status = 201
local before = ngx.headers_sent
local r1, e1 = ngx.send_headers()
local after = ngx.headers_sent
local r2 = ngx.send_headers()
ngx.header["X-After"] = "no"
ngx.status = 418
ngx.say("before=", tostring(before), " r1=", tostring(r1), " e1=", tostring(e1),
        " after=", tostring(after), " r2=", tostring(r2))
"""),
    ]},
    {"name": "^eof\\.test$", "plugins": [
        p("acc", "access", """
if ngx.var.arg_where == "access" then
    ngx.say("from-access")
    ngx.eof()
    local ok, err = ngx.print("more")
    ngx.log(ngx.WARN, "access-eof-marker ok=", tostring(ok), " err=", err)
end
"""),
        p("show", "content", """
ngx.say("part1")
local r = ngx.eof()
local ok, err = ngx.say("part2")
local r2, err2 = ngx.eof()
ngx.log(ngx.WARN, "content-eof-marker r=", r, " ok=", tostring(ok), " err=", err,
        " again=", tostring(r2), " ", err2)
"""),
    ]},
]}
json.dump(bundle, open(sys.argv[1], "w"), indent=1)
EOF

start_api "$T/bundle.json"

write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location / { root $T/html; dynacode_content; }
        location = /redirected { try_files /nothing-here /inner; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: facts.test' http://127.0.0.1:$PORT/ | grep -q version="
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

# ---- facts of the request ----
req facts.test /
expect_eq "facts: 200" "$STATUS" 200
body=$(cat "$T/b")
expect_contains "ngx.req.start_time: seconds with milliseconds, not after now" "$body" \
    "start_ok=true"
expect_contains "ngx.req.http_version: 1.1" "$body" "version=1.1"
expect_contains "ngx.req.is_internal: false for the client's request" "$body" "internal=false"
expect_log "log phase: output functions and set_method refused, start_time allowed" \
    "log-phase-marker headers_sent=disabled send_headers=disabled eof=disabled set_method=disabled start_time=number"
req facts.test / --http1.0
expect_contains "ngx.req.http_version: 1 for HTTP/1.0" "$(cat "$T/b")" "version=1
"
req facts.test /redirected
body=$(cat "$T/b")
expect_contains "ngx.req.is_internal: true after an internal redirect" "$body" "internal=true"
expect_contains "ngx.req.is_internal: false in rewrite, before it" "$body" "rw_internal=false"

# ---- set_method ----
req method.test "/?m=post"
expect_contains "ngx.req.set_method(ngx.HTTP_POST)" "$(cat "$T/b")" "method=POST var=POST"
expect_eq "the method set in rewrite, seen in header_filter" "$(header X-HF-Method)" "POST"
req method.test "/?m=put"
expect_contains "ngx.req.set_method(ngx.HTTP_PUT)" "$(cat "$T/b")" "method=PUT var=PUT"
req method.test "/?m=bad"
body=$(cat "$T/b")
expect_contains "ngx.req.set_method(12345): refused" "$body" "unsupported HTTP method: 12345"
expect_contains "ngx.req.set_method(12345): method unchanged" "$body" "method=GET var=GET"

# ---- ngx.resp.get_headers ----
req resp.test /
expect_eq "resp: 200" "$STATUS" 200
body=$(cat "$T/b")
expect_contains "ngx.resp.get_headers: Content-Type, several values, Location, Connection" \
    "$body" "ct=text/x-test one=1 two=a,b loc=/foo/bar conn=keep-alive err=nil"
expect_contains "ngx.resp.get_headers(nil, true): names as set" "$body" \
    "raw_one=1 raw_lower=nil"
expect_contains "ngx.resp.get_headers(2): two headers, truncated" "$body" "max2=2 truncated"
expect_eq "ngx.resp.get_headers in header_filter: Content-Type" "$(header X-HF-CT)" \
    "text/x-test"
expect_eq "ngx.resp.get_headers in header_filter: a header content set" \
    "$(header X-HF-One)" "1"
expect_eq "the headers reached the client" "$(header X-Two)" "a"

# ---- ngx.send_headers and ngx.headers_sent ----
req sent.test /
expect_eq "ngx.send_headers: the status set before it" "$STATUS" 201
expect_eq "ngx.send_headers: a header set before it is sent" "$(header X-Before)" "yes"
expect_eq "ngx.send_headers: a header set after it is not" "$(header X-After)" ""
expect_eq "ngx.headers_sent false, then true; send_headers returns 1 twice" "$(cat "$T/b")" \
    "before=false r1=1 e1=nil after=true r2=1"

# ---- ngx.eof ----
req eof.test /
expect_eq "ngx.eof in content: 200" "$STATUS" 200
expect_eq "ngx.eof in content: output after it is dropped" "$(cat "$T/b")" "part1"
expect_log "ngx.eof: later ngx.say gives nil, \"seen eof\"; a second eof too" \
    "content-eof-marker r=1 ok=nil err=seen eof again=nil seen eof"
req eof.test "/?where=access"
expect_eq "ngx.eof in access: 200" "$STATUS" 200
expect_eq "ngx.eof in access: the answer ends there (no content plugin)" "$(cat "$T/b")" \
    "from-access"
expect_log "ngx.eof in access: later ngx.print refused" "access-eof-marker ok=nil err=seen eof"

finish
