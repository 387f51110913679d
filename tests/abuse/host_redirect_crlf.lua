-- expect: error
-- msg: unsafe byte
ngx.redirect("/a\r\nSet-Cookie: session=stolen")
