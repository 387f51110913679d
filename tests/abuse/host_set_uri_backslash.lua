-- expect: error
-- msg: backslash
-- phase: rewrite
ngx.req.set_uri("/a\\..\\..\\etc\\passwd")
ngx.header["X-Escaped"] = "1"
