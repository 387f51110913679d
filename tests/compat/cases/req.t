=== get_uri_args: repeated keys as a table, a key without value as true
--- mirrors: t/030-uri-args.t
--- request: GET /t?a=1&a=2&b
--- content
local args = ngx.req.get_uri_args()
ngx.say(type(args.a), " ", args.a[1], " ", args.a[2], " ", tostring(args.b))
--- response_body
table 1 2 true
=== set_uri_args in rewrite changes $args
--- mirrors: t/030-uri-args.t
--- rewrite
ngx.req.set_uri_args({x = 1})
--- content
ngx.say(ngx.var.args)
--- response_body
x=1
=== get_method
--- mirrors: t/062-count.t, t/028-req-header.t (ngx.req.get_method)
--- request: POST /t
--- content
ngx.say(ngx.req.get_method())
--- response_body
POST
=== ngx.ctx carries values from one phase to the next
--- mirrors: t/033-ctx.t
--- rewrite
ngx.ctx.a = 1
--- access
ngx.ctx.a = ngx.ctx.a + 1
--- content
ngx.say(ngx.ctx.a)
--- response_body
2
=== the handler runs in a coroutine
--- mirrors: t/091-coroutine.t
--- content
ngx.say(type(coroutine.running()), " ", coroutine.status(coroutine.running()))
--- response_body
thread running
=== ngx.get_phase
--- mirrors: t/081-bytecode.t, t/083-get-phase.t (ngx.get_phase)
--- access
ngx.ctx.p = ngx.get_phase()
--- content
ngx.say(ngx.ctx.p, " ", ngx.get_phase())
--- response_body
access content
