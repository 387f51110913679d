#!/bin/bash
# test_compat.sh - OpenResty behaviours that only a real nginx shows, each checked with curl:
# - $sent_http_cache_control and $sent_http_link read back what ngx.header set (one value,
#   several joined by ", ", a later set replacing them), as lua-nginx-module's
#   t/016-resp-header.t, "set single value to cache-control", "set multi values to
#   cache-control", "set single value to Link header", "set multi values to Link header",
#   "set multi values to cache-control and override it with a single value", "set multi values
#   to Link header and override it with multiple values";
# - a relative Location reaches the client relative, with nginx's absolute_redirect on (its
#   default): set through ngx.header then ngx.exit(301) (t/016-resp-header.t, "set Location
#   (no host)"), ngx.redirect("/foo") in rewrite and in access (t/023-rewrite/redirect.t and
#   t/024-access/redirect.t, "relative uri"); an absolute one stays as written (t/016-resp-header.t,
#   "set Location (with host)");
# - numeric ngx.var[N] reads the captures of the location's regex, nil for 0, below 0 and past
#   the last capture (t/014-bugs.t, "get by-position capturing variables", "get by-position
#   capturing variables ($0)", "get by-position capturing variables ($1, $2)").
. "$(dirname "$0")/lib.sh"

python3 - "$T/bundle.json" <<'EOF'
import json, sys

def p(name, phase, code):
    return {"name": name, "phase": phase, "code": code}

bundle = {"general": {"status": "enabled"}, "domains": [
    {"name": "^cc\\.test$", "plugins": [
        p("show", "content", """
local a = ngx.var.arg_a
if a == "one" then
    ngx.header.cache_control = "private"
elseif a == "two" then
    ngx.header.cache_control = {"private", "no-store"}
elseif a == "over" then
    ngx.header.cache_control = {"private", "no-store"}
    ngx.header.cache_control = {"no-cache"}
elseif a == "clear" then
    ngx.header.cache_control = {"private", "no-store"}
    ngx.header.cache_control = nil
end
ngx.say("Cache-Control: ", tostring(ngx.var.sent_http_cache_control))
"""),
    ]},
    {"name": "^link\\.test$", "plugins": [
        p("show", "content", """
local a = ngx.var.arg_a
if a == "one" then
    ngx.header.link = "</foo.jpg>; rel=preload"
elseif a == "two" then
    ngx.header.link = {"</foo.jpg>; rel=preload", "</bar.css>; rel=preload; as=style"}
elseif a == "over" then
    ngx.header.link = {"</foo.jpg>; rel=preload", "</bar.css>; rel=preload; as=style"}
    ngx.header.link = {"</foo.jpg>; rel=preload", "</hello.css>; rel=preload",
                       "</bar.css>; rel=preload; as=style"}
end
ngx.say("Link: ", tostring(ngx.var.sent_http_link))
"""),
    ]},
    {"name": "^loc\\.test$", "plugins": [
        p("show", "content", """
if ngx.var.arg_abs then
    ngx.header.location = "http://test.com/foo/bar"
else
    ngx.header.location = "/foo/bar"
end
return ngx.exit(301)
"""),
    ]},
    {"name": "^redir\\.test$", "plugins": [
        p("rw", "rewrite", 'if ngx.var.arg_in == "rewrite" then ngx.redirect("/foo") ngx.say("hi") end'),
        p("acc", "access", 'if ngx.var.arg_in == "access" then ngx.redirect("/foo") end'),
        p("show", "content", 'ngx.say("not redirected")'),
    ]},
    {"name": "^caps\\.test$", "plugins": [
        p("show", "content", """
ngx.say(tostring(ngx.var[1]), " ", tostring(ngx.var[2]), " ", tostring(ngx.var[3]),
        " ", tostring(ngx.var[0]), " ", tostring(ngx.var[-1]), " ", tostring(ngx.var["1"]))
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
        location ~ ^/caps/(\w+)/(\w+)$ { dynacode_content; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: cc.test' http://127.0.0.1:$PORT/ | grep -q Cache-Control"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

# ---- $sent_http_cache_control, $sent_http_link ----
req cc.test "/?a=one"
expect_eq "Cache-Control: one value, in \$sent_http_cache_control" "$(cat "$T/b")" \
    "Cache-Control: private"
expect_eq "Cache-Control: one value sent" "$(header Cache-Control)" "private"
req cc.test "/?a=two"
expect_eq "Cache-Control: two values, joined" "$(cat "$T/b")" \
    "Cache-Control: private, no-store"
expect_contains "Cache-Control: two values sent" "$(tr -d '\r' <"$T/h" | tr A-Z a-z)" "cache-control: no-store"
req cc.test "/?a=over"
expect_eq "Cache-Control: replaced by one value" "$(cat "$T/b")" "Cache-Control: no-cache"
expect_not_contains "Cache-Control: the replaced values are not sent" "$(cat "$T/h")" "private"
req cc.test "/?a=clear"
expect_eq "Cache-Control: cleared" "$(cat "$T/b")" "Cache-Control: nil"
expect_eq "Cache-Control: cleared, not sent" "$(header Cache-Control)" ""
req link.test "/?a=one"
expect_eq "Link: one value, in \$sent_http_link" "$(cat "$T/b")" "Link: </foo.jpg>; rel=preload"
req link.test "/?a=two"
expect_eq "Link: two values, joined" "$(cat "$T/b")" \
    "Link: </foo.jpg>; rel=preload, </bar.css>; rel=preload; as=style"
req link.test "/?a=over"
expect_eq "Link: replaced by three values" "$(cat "$T/b")" \
    "Link: </foo.jpg>; rel=preload, </hello.css>; rel=preload, </bar.css>; rel=preload; as=style"

# ---- a relative Location stays relative ----
req loc.test /
expect_eq "ngx.header.location = \"/foo/bar\" + ngx.exit(301): 301" "$STATUS" 301
expect_eq "ngx.header.location = \"/foo/bar\": sent relative" "$(header Location)" "/foo/bar"
req loc.test "/?abs=1"
expect_eq "an absolute Location: sent as written" "$(header Location)" "http://test.com/foo/bar"
req redir.test "/?in=rewrite"
expect_eq "ngx.redirect(\"/foo\") in rewrite: 302" "$STATUS" 302
expect_eq "ngx.redirect(\"/foo\") in rewrite: Location relative" "$(header Location)" "/foo"
expect_not_contains "ngx.redirect in rewrite: later output dropped" "$(cat "$T/b")" "hi"
req redir.test "/?in=access"
expect_eq "ngx.redirect(\"/foo\") in access: 302" "$STATUS" 302
expect_eq "ngx.redirect(\"/foo\") in access: Location relative" "$(header Location)" "/foo"

# ---- numeric ngx.var ----
req caps.test /caps/abc/def
expect_eq "ngx.var[N]: the location's captures" "$(cat "$T/b")" "abc def nil nil nil nil"

finish
