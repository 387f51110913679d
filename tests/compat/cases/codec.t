=== base64 both ways
--- mirrors: t/007-md5.t, t/006-escape.t (encode_base64, decode_base64)
--- content
ngx.say(ngx.encode_base64("hello"), " ", ngx.decode_base64("aGVsbG8="))
--- response_body
aGVsbG8= hello
=== md5, sha1, crc32
--- mirrors: t/007-md5.t, t/042-crc32.t
--- content
ngx.say(ngx.md5("hello"), " ", ngx.encode_base64(ngx.sha1_bin("hello")), " ", ngx.crc32_long("hello"), " ", ngx.crc32_short("hello"))
--- response_body
5d41402abc4b2a76b9719d911017c592 qvTGHdzF6KLavt4PO0gs2a6pQ00= 907060870 907060870
=== hmac_sha1
--- mirrors: t/046-hmac.t
--- content
ngx.say(ngx.encode_base64(ngx.hmac_sha1("key", "The quick brown fox jumps over the lazy dog")))
--- response_body
3nybhbi3iqa8ino29wqQcBydtNk=
=== escape_uri escapes a URI component
--- mirrors: t/006-escape.t
--- content
ngx.say(ngx.escape_uri("a b&c/d"), " ", ngx.unescape_uri("a%20b%26c"))
--- response_body
a%20b%26c%2Fd a b&c
=== encode_args and decode_args
--- mirrors: t/031-post-args.t, t/030-uri-args.t
--- content
local t = ngx.decode_args("a=1&b=x%20y")
ngx.say(ngx.encode_args({a = 1}), " ", t.a, " ", t.b)
--- response_body
a=1 1 x y
=== quote_sql_str
--- mirrors: t/115-quote-sql-str.t
--- content
ngx.say(ngx.quote_sql_str("a'b\n"))
--- response_body
'a\'b\n'
=== the times as nginx writes them
--- mirrors: t/029-http-time.t, t/021-cookie-time.t
--- content
ngx.say(ngx.http_time(1290079655))
ngx.say(ngx.cookie_time(1290079655))
ngx.say(ngx.parse_http_time("Thu, 18 Nov 2010 11:27:35 GMT"))
ngx.say(type(ngx.time()), " ", type(ngx.now()))
--- response_body
Thu, 18 Nov 2010 11:27:35 GMT
Thu, 18-Nov-10 11:27:35 GMT
1290079655
number number
