-- expect: error
-- msg: encoded NUL byte
-- phase: rewrite
-- A NUL cuts the file name where nginx opens it.
ngx.req.set_uri("/index.html%00.png")
ngx.header["X-Escaped"] = "1"
