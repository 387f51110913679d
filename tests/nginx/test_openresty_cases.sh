#!/bin/bash
# test_openresty_cases.sh - the OpenResty behaviours of tests/compat/cases/*.t through a real
# nginx with the module: one bundle (block N under the domain cN.compat) served by the test
# API, each block's request sent with its host (tests/compat/compat.py checks each answer).
. "$(dirname "$0")/lib.sh"

CASES=("$SRC"/tests/compat/cases/*.t)
python3 "$SRC/tests/compat/compat.py" bundle "$T/bundle.json" "${CASES[@]}" || exit 1
start_api "$T/bundle.json"
PORT=$(free_port)
write_conf 2 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    server {
        listen 127.0.0.1:$PORT;
        dynacode on;
        location / { root $T/html; dynacode_content; }
    }"
start_nginx
if ! wait_until 30 sh -c "[ \"\$(curl -s -H 'Host: c0.compat' http://127.0.0.1:$PORT/)\" != '' ]"; then
    fail "the bundle came into force"
fi
if python3 "$SRC/tests/compat/compat.py" http "$PORT" "${CASES[@]}" >"$T/out" 2>&1; then
    ok "$(grep -c '^ok' "$T/out") OpenResty cases answer as OpenResty does through nginx"
else
    cat "$T/out"
    fail "OpenResty cases through nginx: $(grep -c '^FAIL' "$T/out") differ"
fi
finish
