-- expect: error
-- msg: control byte 0x0d
-- CR/LF in $args would smuggle a second request to the upstream.
ngx.var.args = "a=1 HTTP/1.1\r\nHost: internal\r\n\r\nGET /admin"
ngx.header["X-Escaped"] = "1"
