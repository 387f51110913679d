=== say and print write their arguments, nil and nested arrays included
--- mirrors: t/002-content.t (ngx.say/ngx.print arguments)
--- content
ngx.say("a", 1, true)
ngx.print("b", nil, {"c", {"d"}})
--- response_body chomp
a1true
bnilcd
=== ngx.exit in access ends the request with that status
--- mirrors: t/024-access/exit.t
--- access
ngx.exit(403)
--- content
ngx.say("not reached")
--- status: 403
=== ngx.exit(ngx.OK) in access goes on to the content phase
--- mirrors: t/024-access/exit.t
--- access
ngx.exit(ngx.OK)
--- content
ngx.say("reached")
--- response_body
reached
=== ngx.redirect in rewrite answers 302 with the Location as given
--- mirrors: t/023-rewrite/redirect.t
--- rewrite
ngx.redirect("/foo")
--- status: 302
--- response_headers
Location: /foo
=== ngx.redirect with 301
--- mirrors: t/023-rewrite/redirect.t
--- access
ngx.redirect("http://example.com/bar", 301)
--- status: 301
--- response_headers
Location: http://example.com/bar
=== ngx.status set before the output
--- mirrors: t/015-status.t
--- content
ngx.status = 201
ngx.say("created")
--- status: 201
--- response_body
created
=== output in access without ngx.exit ends the request with it
--- mirrors: t/024-access/mixed.t, t/024-access/exit.t (output in access_by_lua)
--- access
ngx.say("from access")
--- content
ngx.say("not reached")
--- response_body
from access
=== output in rewrite without ngx.exit ends the request with it
--- mirrors: t/023-rewrite/exit.t (output in rewrite_by_lua)
--- rewrite
ngx.print("from rewrite")
--- access
ngx.header["X-Access"] = "ran"
--- response_body chomp
from rewrite
--- response_headers
X-Access:
