#!/usr/bin/env bash
# test_run_nginx.sh - `dynacode run` answers as nginx 1.22 (with lua-nginx-module) would for the
# same request: nginx's own pages, header limits, output before ngx.exit, the body filter per
# output, $sent_http_*, the framing of the body, HEAD, 304 and the core variables. Each check
# names the nginx behaviour it matches.
. "$(dirname "$0")/lib.sh"

# bundle CODE_BY_PHASE...: a bundle with one plugin per "phase=code" argument, on every host
bundle() {
  python3 - "$@" >"$TMP/b.json" <<'PY'
import json, sys
plugins = []
for i, a in enumerate(sys.argv[1:]):
    phase, code = a.split("=", 1)
    plugins.append({"name": "p%d" % (i + 1), "phase": phase, "code": code})
print(json.dumps({"general": {"status": "enabled", "skip_domains": []},
                  "domains": [{"name": "*", "plugins": plugins}]}))
PY
}
run() { "$DYNACODE" run --host t.example "$@" "$TMP/b.json" >"$TMP/out" 2>"$TMP/err"; }
# body: what follows the blank line after the headers, as sent
body() { python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.stdout.buffer.write(d.split(b"\r\n\r\n", 1)[1])' "$TMP/out"; }
# payload: the body as a client reads it (without the chunked framing when there is one)
payload() {
  python3 -c '
import sys
head, d = open(sys.argv[1], "rb").read().split(b"\r\n\r\n", 1)
if b"\r\nTransfer-Encoding: chunked" not in head:
    sys.stdout.buffer.write(d); sys.exit(0)
out = b""
while True:
    size, d = d.split(b"\r\n", 1)
    n = int(size, 16)
    if n == 0: break
    out += d[:n]; d = d[n + 2:]
sys.stdout.buffer.write(out)' "$TMP/out"
}
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got [$2], expected [$3]"; fi; }
# expect_match NAME REGEX FILE: a line of FILE matches the extended REGEX
expect_match() { if grep -qE -- "$2" "$3"; then ok "$1"; else fail "$1: no line matches $2"; fi; }

# --- nginx's pages (special_response with server_tokens off): status line phrase, then the
# page, whose title is not always that phrase (302 "Found")
bundle 'rewrite=local c = tonumber(ngx.var.arg_c) if c < 400 then ngx.redirect("/x", c) else ngx.exit(c) end'
page() { printf '<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n' "$1" "$1"; }
for spec in "301|Moved Permanently|Moved Permanently" "302|Moved Temporarily|Found" \
            "303|See Other|See Other" "307|Temporary Redirect|Temporary Redirect" \
            "308|Permanent Redirect|Permanent Redirect" "403|Forbidden|Forbidden" \
            "404|Not Found|Not Found" "500|Internal Server Error|Internal Server Error" \
            "503|Service Temporarily Unavailable|Service Temporarily Unavailable"; do
  IFS='|' read -r code phrase title <<<"$spec"
  run --uri "/?c=$code"
  expect_in "nginx's status line for $code" "$TMP/out" "HTTP/1.1 $code $phrase"
  expect_eq "nginx's page for $code, byte for byte" "$(body | od -c)" "$(page "$code $title" | od -c)"
  expect_in "nginx's Content-Length for the $code page" "$TMP/out" "Content-Length: $(page "$code $title" | wc -c)"
done
run --uri "/?c=302"
expect_in "a relative Location stays relative (as ngx.redirect in nginx)" "$TMP/out" "Location: /x"
# nginx: a code without a page of its own goes out with an empty body of length 0
run --uri "/?c=418"
expect_in "418: no reason phrase" "$TMP/out" "HTTP/1.1 418 "
expect_in "418: Content-Length 0, as nginx" "$TMP/out" "Content-Length: 0"
expect_not_in "418: no page" "$TMP/out" "<html>"

# --- any number of --header (nginx bounds the bytes, large_client_header_buffers 4 8k)
bundle 'content=local n = 0 for _ in pairs(ngx.req.get_headers(0)) do n = n + 1 end ngx.say(n)'
args=()
for i in $(seq 1 200); do args+=(--header "X-H$i: $i"); done
expect_exit "200 headers are taken" 0 -- "$DYNACODE" run --host t.example "${args[@]}" "$TMP/b.json"
expect_eq "every header reaches the plugin (200 and Host)" "$(payload)" "201"
long=$(head -c 9000 /dev/zero | tr '\0' a)
expect_exit "a header line over 8k is refused" 2 -- "$DYNACODE" run --host t.example --header "X-Long: $long" "$TMP/b.json"
expect_in "the refusal names nginx's limit" "$TMP/err" "large_client_header_buffers"
args=()
for i in $(seq 1 40); do args+=(--header "X-H$i: $(head -c 1000 /dev/zero | tr '\0' b)"); done
expect_exit "headers over 32k in all are refused" 2 -- "$DYNACODE" run --host t.example "${args[@]}" "$TMP/b.json"

# --- output before ngx.exit in rewrite/access (lua-nginx-module t/023-rewrite/exit.t and
# t/024-access/exit.t: what was printed is the answer, the exit status comes too late)
bundle 'access=ngx.say("early") ngx.exit(403)' 'content=ngx.say("content")'
run
expect_in "printed, then ngx.exit(403): 200 as already sent" "$TMP/out" "HTTP/1.1 200 OK"
expect_eq "the answer is what was printed" "$(payload)" "early"
expect_not_in "no 403 page after output" "$TMP/out" "403"
expect_not_in "the content phase does not run" "$TMP/err" 'plugin="p2"'
bundle 'rewrite=ngx.print("r") ngx.exit(200)' 'access=ngx.say("a")'
run
expect_eq "rewrite output with ngx.exit(200) ends the request there" "$(payload)" "r"

# --- the body filter is called per output buffer, the last call with eof (nginx's output
# chain: one buffer per ngx.say/ngx.print, then an empty last buffer)
bundle 'content=ngx.say("a") ngx.print("b")' \
       'body_filter=ngx.arg[1] = ngx.arg[1] .. "[" .. tostring(ngx.arg[2]) .. "]"'
run
expect_eq "one body filter call per output, then eof" "$(payload)" "$(printf 'a\n[false]b[false][true]')"
expect_eq "each call's output is a chunk of its own" "$(body | head -c 5 | od -c | head -1)" "$(printf '9\r\na\n' | od -c | head -1)"
printf 'upstream says hi' >"$TMP/up"
bundle 'body_filter=ngx.arg[1] = ngx.arg[1] .. "[" .. tostring(ngx.arg[2]) .. "]"'
run --upstream-body "$TMP/up"
expect_eq "a static answer is one buffer with eof" "$(payload)" "upstream says hi[true]"

# --- $sent_http_NAME: nginx 1.22 gives the first value of a header it does not keep as a
# list, and joins Cache-Control and Link with ", "
bundle 'header_filter=ngx.header["X-A"] = {"1", "2"} ngx.header["Cache-Control"] = {"a", "b"} ngx.header["Link"] = {"<l1>", "<l2>"}' \
       'log=ngx.log(ngx.ERR, "[", ngx.var.sent_http_x_a, "][", ngx.var.sent_http_cache_control, "][", ngx.var.sent_http_link, "]")'
run
expect_in "\$sent_http_*: first, joined, joined (as nginx 1.22)" "$TMP/err" "[1][a, b][<l1>, <l2>]"
bundle 'content=ngx.say(ngx.var.http_cookie, "|", ngx.var.http_x_forwarded_for, "|", ngx.var.http_x_b)'
run --header 'Cookie: a=1' --header 'Cookie: b=2' --header 'X-Forwarded-For: 1.1.1.1' \
    --header 'X-Forwarded-For: 2.2.2.2' --header 'X-B: 1' --header 'X-B: 2'
expect_eq "\$http_cookie joined by '; ', X-Forwarded-For by ', ', others first (nginx 1.22)" "$(payload)" "a=1; b=2|1.1.1.1, 2.2.2.2|1"

# --- framing: a static answer keeps its Content-Length; a body filter plugin removes it
# (the module's header filter, as the body may change) and the answer goes chunked; a
# content plugin's answer has its length (the module sends the header with the whole body),
# or the one it set itself (more cases, checked against nginx too: tests/compat/cases/framing.t)
bundle 'log=ngx.log(ngx.INFO, "x")'
run --upstream-body "$TMP/up"
expect_in "static answer: its Content-Length" "$TMP/out" "Content-Length: 16"
expect_not_in "static answer: not chunked" "$TMP/out" "Transfer-Encoding"
expect_eq "static answer: its body as is" "$(body)" "upstream says hi"
bundle 'body_filter=ngx.arg[1] = string.upper(ngx.arg[1])'
run --upstream-body "$TMP/up"
expect_not_in "body filter plugin: no Content-Length" "$TMP/out" "Content-Length"
expect_in "body filter plugin: chunked" "$TMP/out" "Transfer-Encoding: chunked"
expect_eq "body filter plugin: the changed body" "$(payload)" "UPSTREAM SAYS HI"
bundle 'content=ngx.say("hello") ngx.print("!")'
run
expect_in "content plugin: the length of its output" "$TMP/out" "Content-Length: 7"
expect_not_in "content plugin: not chunked" "$TMP/out" "Transfer-Encoding"
expect_eq "content plugin: plain body" "$(body)" "hello
!"
bundle 'content=ngx.say("a") ngx.sleep(0.001) ngx.say("b")'
run
expect_in "content output before ngx.sleep: chunked" "$TMP/out" "Transfer-Encoding: chunked"
expect_not_in "content output before ngx.sleep: no Content-Length" "$TMP/out" "Content-Length"
expect_eq "content output before ngx.sleep: both parts" "$(payload)" "a
b"
bundle 'content=ngx.header.content_length = 3 ngx.print("abc")'
run
expect_in "content plugin setting Content-Length: kept" "$TMP/out" "Content-Length: 3"
expect_not_in "content plugin setting Content-Length: not chunked" "$TMP/out" "Transfer-Encoding"
expect_eq "content plugin setting Content-Length: plain body" "$(body)" "abc"

# --- HEAD: the header only (nginx's header_only); a static answer keeps its length
bundle 'log=ngx.log(ngx.INFO, "x")'
run --method HEAD --upstream-body "$TMP/up"
expect_in "HEAD static: Content-Length kept" "$TMP/out" "Content-Length: 16"
expect_eq "HEAD static: no body" "$(body)" ""
bundle 'content=ngx.say("hello")' 'body_filter=ngx.log(ngx.ERR, "filtered")'
run --method HEAD
expect_eq "HEAD content: no body" "$(body)" ""
expect_not_in "HEAD content: not chunked" "$TMP/out" "Transfer-Encoding"
expect_not_in "HEAD content: the body filter is not called" "$TMP/err" "filtered"

# --- 304 from nginx's not_modified filter on a static answer (it runs after the module's
# header filter: what the plugins set there counts)
LM='Wed, 02 Dec 2026 07:31:58 GMT'
bundle "header_filter=ngx.header[\"Last-Modified\"] = \"$LM\" ngx.header[\"ETag\"] = '\"abc\"'"
run --upstream-body "$TMP/up" --header "If-Modified-Since: $LM"
expect_in "If-Modified-Since equal to Last-Modified: 304" "$TMP/out" "HTTP/1.1 304 Not Modified"
expect_not_in "304: no Content-Type" "$TMP/out" "Content-Type"
expect_not_in "304: no Content-Length" "$TMP/out" "Content-Length"
expect_eq "304: no body" "$(body)" ""
expect_in "304: Last-Modified kept" "$TMP/out" "Last-Modified: $LM"
run --upstream-body "$TMP/up" --header "If-Modified-Since: Wed, 02 Dec 2026 07:31:59 GMT"
expect_in "If-Modified-Since not equal (nginx: exact): 200" "$TMP/out" "HTTP/1.1 200 OK"
run --upstream-body "$TMP/up" --header 'If-None-Match: "x", W/"abc"'
expect_in "If-None-Match listing the ETag (weakly): 304" "$TMP/out" "HTTP/1.1 304 Not Modified"
run --upstream-body "$TMP/up" --header 'If-None-Match: *'
expect_in "If-None-Match *: 304" "$TMP/out" "HTTP/1.1 304 Not Modified"
run --upstream-body "$TMP/up" --header 'If-None-Match: "zz"' --header "If-Modified-Since: $LM"
expect_in "both sent, ETag not listed: 200 (both must hold)" "$TMP/out" "HTTP/1.1 200 OK"
bundle "content=ngx.header[\"Last-Modified\"] = \"$LM\" ngx.say(1)"
run --header "If-Modified-Since: $LM"
expect_in "a content plugin's answer is not a static one: 200" "$TMP/out" "HTTP/1.1 200 OK"

# --- core variables nginx has
bundle 'content=for _, n in ipairs({"pid", "hostname", "nginx_version", "msec", "time_local", "time_iso8601", "request", "server_port", "remote_port", "https", "connection", "connection_requests", "request_length", "request_time"}) do ngx.say(n, "=", ngx.var[n]) end'
run --uri '/a?b=1'
payload >"$TMP/vars"
expect_in "\$pid: the process id" "$TMP/vars" "pid="
expect_match "\$pid is a number" '^pid=[0-9]+$' "$TMP/vars"
expect_match "\$msec: seconds.milliseconds" '^msec=[0-9]+\.[0-9]{3}$' "$TMP/vars"
expect_match "\$time_local as nginx writes it" '^time_local=[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}$' "$TMP/vars"
expect_match "\$time_iso8601 as nginx writes it" '^time_iso8601=[0-9-]{10}T[0-9:]{8}[+-][0-9]{2}:[0-9]{2}$' "$TMP/vars"
expect_in "\$request: the request line" "$TMP/vars" "request=GET /a?b=1 HTTP/1.1"
expect_in "\$nginx_version" "$TMP/vars" "nginx_version=1.22.1"
expect_not_in "no core variable left nil" "$TMP/vars" "=nil"

# --- --body: the request body, as nginx reads it (Content-Length from the body; in memory up
# to client_body_buffer_size 16k, else a temporary file; 413 over client_max_body_size 1m)
bundle 'access=ngx.req.read_body() local a = ngx.req.get_post_args() ngx.say(ngx.req.get_body_data(), "|", a.x, "|", ngx.var.http_content_length, "|", ngx.var.request_body)'
printf 'x=1+2%%21&y' >"$TMP/rb"
run --method POST --body "$TMP/rb"
expect_eq "--body: data, post args, Content-Length, \$request_body" "$(payload)" "x=1+2%21&y|1 2!|10|x=1+2%21&y"
head -c 20000 /dev/zero | tr '\0' a >"$TMP/rb"
bundle 'access=ngx.req.read_body() local a, err = ngx.req.get_post_args() ngx.say(tostring(ngx.req.get_body_data()), "|", tostring(a), "|", err)'
run --method POST --body "$TMP/rb"
expect_eq "--body over 16k: out of memory, as nginx keeps it in a file" "$(payload)" "nil|nil|the request body is in a temporary file, not in memory"
head -c 1048577 /dev/zero >"$TMP/rb"
run --method POST --body "$TMP/rb"
expect_in "--body over 1m: 413 as nginx's client_max_body_size" "$TMP/out" "HTTP/1.1 413 Request Entity Too Large"
expect_not_in "413: no plugin ran" "$TMP/err" "plugin="
expect_exit "--body of a missing file" 2 -- "$DYNACODE" run --host t.example --body "$TMP/none" "$TMP/b.json"
expect_in "the error names --body" "$TMP/err" "--body"

finish
