=== ngx.sleep in content waits, and the handler goes on after it
--- mirrors: t/077-sleep.t (sleep 0.5 - content)
--- content
ngx.update_time()
local before = ngx.now()
ngx.sleep(0.5)
ngx.update_time()
local slept = ngx.now() - before
ngx.say(slept >= 0.49 and "slept" or ("woke early " .. slept))
--- response_body
slept
=== ngx.sleep in rewrite and access, then the content
--- mirrors: t/077-sleep.t (sleep a - rewrite, sleep a - access)
--- rewrite
ngx.sleep(0.01)
ngx.ctx.r = "rewrite"
--- access
ngx.sleep(0.01)
ngx.ctx.a = "access"
--- content
ngx.say(ngx.ctx.r, " ", ngx.ctx.a)
--- response_body
rewrite access
=== ngx.sleep(0) yields and comes back
--- mirrors: t/077-sleep.t (sleep 0)
--- content
ngx.sleep(0)
ngx.say("ok")
--- response_body
ok
=== ngx.sleep is refused in header_filter
--- mirrors: t/077-sleep.t (ngx.sleep unavailable in filter handlers)
--- content
ngx.say("body")
--- header_filter
local ok, err = pcall(ngx.sleep, 0.1)
ngx.header["X-Err"] = err
--- response_headers
X-Err: API disabled in the context of header_filter_by_lua* (ngx.sleep)
