=== arg_ variables read the query string
--- mirrors: t/003-errors.t, t/005-exit.t (ngx.var.arg_*)
--- request: GET /t?a=1&b=two
--- content
ngx.say(ngx.var.arg_a, " ", ngx.var.arg_b, " ", tostring(ngx.var.arg_c))
--- response_body
1 two nil
=== core variables
--- mirrors: t/045-ngx-var.t
--- request: GET /t?a=1
--- content
ngx.say(ngx.var.uri, " ", ngx.var.args, " ", ngx.var.request_method)
--- response_body
/t a=1 GET
=== cookie_ and http_ variables
--- mirrors: t/045-ngx-var.t
--- more_headers
Cookie: x=1; y=2
X-Foo: bar
--- content
ngx.say(ngx.var.cookie_y, " ", ngx.var.http_x_foo, " ", tostring(ngx.var.nonexistent_var))
--- response_body
2 bar nil
=== variable names are case-insensitive, as in nginx
--- mirrors: t/045-ngx-var.t
--- request: GET /t?a=1
--- more_headers
X-Foo: bar
--- content
ngx.say(ngx.var.ARG_A, " ", ngx.var.Http_X_Foo, " ", ngx.var.URI, " ", ngx.var["Request_Method"])
--- response_body
1 bar /t GET
