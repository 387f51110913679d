=== ngx.header sets a response header
--- mirrors: t/016-resp-header.t
--- access
ngx.header["X-A"] = "1"
ngx.header.X_Under = "u"
--- content
ngx.say("ok")
--- response_headers
X-A: 1
X-Under: u
=== a table sets several values of one header
--- mirrors: t/016-resp-header.t
--- header_filter
ngx.header["X-M"] = {"a", "b"}
--- content
ngx.say("ok")
--- response_headers
X-M: a
X-M: b
=== nil removes a header
--- mirrors: t/016-resp-header.t
--- access
ngx.header["X-Gone"] = "x"
ngx.header["X-Gone"] = nil
--- content
ngx.say("ok")
--- response_headers
X-Gone:
=== ngx.header.content_type
--- mirrors: t/016-resp-header.t
--- content
ngx.header.content_type = "text/html"
ngx.say("ok")
--- response_headers
Content-Type: text/html
=== ngx.header reads back what was set, several values as a table
--- mirrors: t/016-resp-header.t
--- content
ngx.header["X-One"] = "1"
ngx.header["X-Two"] = {"a", "b"}
local two = ngx.header["X-Two"]
ngx.say(ngx.header.x_one, " ", type(two), " ", two[1], two[2])
--- response_body
1 table ab
=== request headers: case and underscores do not matter
--- mirrors: t/028-req-header.t
--- more_headers
X-Foo: bar
--- content
local h = ngx.req.get_headers()
ngx.say(h["x-foo"], " ", h["X-Foo"], " ", h.x_foo)
--- response_body
bar bar bar
=== ngx.req.set_header in rewrite is seen later
--- mirrors: t/028-req-header.t
--- rewrite
ngx.req.set_header("X-New", "v")
--- content
ngx.say(ngx.var.http_x_new, " ", ngx.req.get_headers()["x-new"])
--- response_body
v v
