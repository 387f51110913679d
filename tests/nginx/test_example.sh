#!/bin/bash
# test_example.sh - the original lua-resty-dynacode README bundle on a real nginx: the token
# check (access), the dynamic content (content), the CORS header (header_filter), the skipped
# metrics host, and the status page in JSON and Prometheus text.
. "$(dirname "$0")/lib.sh"

cp "$SRC/tests/data/original-readme-bundle.json" "$T/bundle.json"
start_api "$T/bundle.json"
echo "static page" >"$T/html/index.html"

write_conf 2 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location = /dynacode-status { dynacode off; dynacode_status; }
        location / { root $T/html; dynacode_content; }
    }
"
start_nginx
if wait_until 10 sh -c "[ \"\$(curl -s -H 'Host: status' http://127.0.0.1:$PORT/dynacode-status |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[\"bundle\"][\"generation\"])')\" -ge 1 ]"
then ok "the bundle is published within 10 s"; else fail "no bundle after 10 s"; fi

# dynamic.local.com with the token: content plugin, CORS header, cookie set by the access plugin
req dynamic.local.com "/?token=token"
expect_eq "token: 200" "$STATUS" 200
expect_eq "token: the content plugin's body" "$(cat "$T/b")" "$(printf 'olá mundo!\nhello world!')"
expect_eq "token: CORS header" "$(header Access-Control-Allow-Origin)" "http://dynamic.local.com"
expect_eq "token: Set-Cookie" "$(header Set-Cookie)" "superstition=token"
expect_eq "token: Content-Type (default_type)" "$(header Content-Type)" "text/plain"

req dynamic.local.com / -H "Cookie: superstition=token"
expect_eq "cookie: 200" "$STATUS" 200
expect_contains "cookie: body" "$(cat "$T/b")" "hello world!"

# without: nginx's 403 page, still decorated by the header filter plugin
req dynamic.local.com /
expect_eq "no token: 403" "$STATUS" 403
expect_contains "no token: nginx's error page" "$(cat "$T/b")" "403 Forbidden"
expect_eq "no token: CORS header on the error page" \
    "$(header Access-Control-Allow-Origin)" "http://dynamic.local.com"
expect_eq "no token: no Set-Cookie" "$(header Set-Cookie)" ""

req dynamic.local.com "/?token=wrong"
expect_eq "wrong token: 403" "$STATUS" 403

# skip_domains: the metrics host runs no plugin; with no content plugin, the files answer
req metrics.server.local.com /
expect_eq "metrics host: 200" "$STATUS" 200
expect_eq "metrics host: the static page, untouched" "$(cat "$T/b")" "static page"
expect_eq "metrics host: no CORS header" "$(header Access-Control-Allow-Origin)" ""
expect_eq "metrics host: Content-Length kept" "$(header Content-Length)" "12"

req other.example.com /
expect_eq "other host: the static page" "$(cat "$T/b")" "static page"

# the status page
curl -s -D "$T/h" -o "$T/status.json" -H "Host: status" "http://127.0.0.1:$PORT/dynacode-status"
expect_eq "status: JSON content type" "$(header Content-Type)" "application/json"
if python3 - "$T/status.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
b, ev = s["bundle"], s["events"]
assert b["generation"] >= 1 and b["source"] == "api", b
assert b["etag"] and b["fetched_at"] > 1e9 and b["last_error"] == "", b
assert b["plugins"] == 3 and b["domains"] == 1 and b["problems"] == [], b
assert ev["bg_fetch_api_success"] >= 1 and ev["bg_updated_plugins"] >= 1, ev
assert ev["rt_plugins_starting"] >= 1 and ev["rt_plugins_done"] >= 1, ev
assert set(ev) >= {"bg_cache_miss", "bg_offline_loaded", "rt_plugins_quota"}, ev
assert s["worker"]["pid"] > 0 and s["worker"]["bundle_loaded"] is True, s["worker"]
EOF
then ok "status: JSON with the bundle, the event counters and the worker"
else fail "status: JSON"; cat "$T/status.json"; fi

curl -s -D "$T/h" -o "$T/status.txt" -H "Host: status" \
    "http://127.0.0.1:$PORT/dynacode-status?format=prometheus"
expect_contains "prometheus: content type" "$(header Content-Type)" "text/plain"
if python3 - "$T/status.txt" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
sample = re.compile(r'^[a-z_]+(\{[a-z_]+="([^"\\]|\\.)*"(,[a-z_]+="([^"\\]|\\.)*")*\})? [0-9.e+-]+$')
for line in text.splitlines():
    assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
assert "# TYPE dynacode_events_total counter" in text
m = re.search(r'^dynacode_events_total\{event="bg_fetch_api_success"\} (\d+)$', text, re.M)
assert m and int(m.group(1)) >= 1, "bg_fetch_api_success"
assert re.search(r'^dynacode_bundle_generation [1-9]\d*$', text, re.M)
assert re.search(r'^dynacode_bundle_info\{source="api",etag="\\"[0-9a-f]+\\""\} 1$', text, re.M)
EOF
then ok "prometheus: well-formed exposition with the counters and the bundle"
else fail "prometheus text"; head -40 "$T/status.txt"; fi

req status /dynacode-status -X POST
expect_eq "status: POST refused" "$STATUS" 405

finish
