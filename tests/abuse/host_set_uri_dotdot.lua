-- expect: error
-- msg: ".." segment
-- phase: rewrite
-- A rewrite plugin walks out of the document root.
ngx.req.set_uri("/static/../../../../etc/passwd")
ngx.header["X-Escaped"] = "1"
