-- expect: error
-- msg: ".." segment
-- phase: rewrite
-- Encoded slashes join the dots into a segment of their own.
ngx.req.set_uri("/a%2f..%2f..%2fetc%2fpasswd")
ngx.header["X-Escaped"] = "1"
