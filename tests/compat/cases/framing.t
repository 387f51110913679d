How an answer the plugins wrote is framed. Not OpenResty's behaviour but dynacode's own, kept
the same in the nginx module and in `dynacode run`: where the whole body is at hand when the
header goes out, it carries a Content-Length (OpenResty sends it chunked); output sent before
the end (content before an ngx.sleep) and a body that body_filter plugins may change go out
chunked. A plugin's own Content-Length, 204 and HEAD are nginx's rules.

=== content output: its length, not chunked
--- mirrors: none (dynacode's framing; t/002-content.t sends it chunked)
--- content
ngx.say("hello")
ngx.print("world")
--- response_body chomp
hello
world
--- response_headers
Content-Length: 11
Transfer-Encoding:
=== content without output: an empty answer of length 0
--- mirrors: none (dynacode's framing)
--- content
local x = 1
--- response_body chomp
--- response_headers
Content-Length: 0
Transfer-Encoding:
=== content output before an ngx.sleep goes out first: chunked
--- mirrors: none (dynacode's framing; t/077-sleep.t)
--- content
ngx.say("before")
ngx.sleep(0.01)
ngx.say("after")
--- response_body
before
after
--- response_headers
Transfer-Encoding: chunked
Content-Length:
=== an ngx.sleep before any output: the length is known at the end
--- mirrors: none (dynacode's framing; t/077-sleep.t)
--- content
ngx.sleep(0.01)
ngx.say("after")
--- response_body
after
--- response_headers
Content-Length: 6
Transfer-Encoding:
=== output in access ended by ngx.exit(200): its length
--- mirrors: none (dynacode's framing; t/024-access/exit.t)
--- access
ngx.say("from access")
ngx.exit(200)
--- response_body
from access
--- response_headers
Content-Length: 12
Transfer-Encoding:
=== a plugin's own Content-Length stays
--- mirrors: none (dynacode's framing)
--- content
ngx.header.content_length = 3
ngx.print("abc")
--- response_body chomp
abc
--- response_headers
Content-Length: 3
=== a body_filter plugin may change the body: chunked
--- mirrors: none (dynacode's framing; t/082-body-filter.t)
--- content
ngx.say("hello")
--- body_filter
ngx.arg[1] = string.upper(ngx.arg[1])
--- response_body
HELLO
--- response_headers
Transfer-Encoding: chunked
Content-Length:
=== HEAD: the length the GET would have, no body
--- mirrors: none (dynacode's framing)
--- request: HEAD /
--- content
ngx.say("hello")
--- response_body chomp
--- response_headers
Content-Length: 6
Transfer-Encoding:
=== 204 set before the output: no length, no body (nginx's rule)
--- mirrors: none (dynacode's framing; t/015-status.t)
--- content
ngx.status = 204
ngx.say("dropped")
--- status: 204
--- response_body chomp
--- response_headers
Content-Length:
Transfer-Encoding:
=== ngx.exit(200) in content before any output: empty, length 0
--- mirrors: none (dynacode's framing; t/009-log.t)
--- content
ngx.exit(200)
--- response_body chomp
--- response_headers
Content-Length: 0
Transfer-Encoding:
=== ngx.exit(201) in content before any output: nginx's empty answer
--- mirrors: none (dynacode's framing; t/009-log.t)
--- content
ngx.exit(201)
--- status: 201
--- response_body chomp
--- response_headers
Content-Length: 0
Transfer-Encoding:
=== ngx.exit(200) in access before any output: empty, length 0
--- mirrors: none (dynacode's framing; t/024-access/exit.t)
--- access
ngx.exit(200)
--- content
ngx.say("not reached")
--- response_body chomp
--- response_headers
Content-Length: 0
Content-Type: text/plain
Transfer-Encoding:
=== ngx.eof before an ngx.sleep in content: the answer goes out whole, with its length
--- mirrors: none (dynacode's framing; t/077-sleep.t)
--- content
ngx.say("done")
ngx.eof()
ngx.sleep(0.01)
--- response_body
done
--- response_headers
Content-Length: 5
Transfer-Encoding:
=== ngx.eof before an ngx.sleep in access: the answer goes out whole, with its length
--- mirrors: none (dynacode's framing; t/024-access/sleep.t)
--- access
ngx.say("done")
ngx.eof()
ngx.sleep(0.01)
--- content
ngx.say("not reached")
--- response_body
done
--- response_headers
Content-Length: 5
Transfer-Encoding:
