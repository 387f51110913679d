-- expect: error
-- msg: ".." segment
-- phase: rewrite
-- Encoded dots, which nginx would decode when it parses a URI.
ngx.req.set_uri("/%2e%2e/%2E%2e/etc/passwd")
ngx.header["X-Escaped"] = "1"
