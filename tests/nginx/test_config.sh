#!/bin/bash
# test_config.sh - `nginx -t` with the module: a good configuration passes; each directive
# error (src/hosts/nginx/README.md) fails it with a message that names the directive.
. "$(dirname "$0")/lib.sh"

echo '{"general": {"status": "enabled"}, "domains": []}' >"$T/bundle.json"

# conf_with HTTP_LINES [SERVER_LINES]: a configuration around those lines
conf_with() {
    write_conf 1 "
    $1
    server {
        listen 127.0.0.1:$PORT;
        ${2:-location / { dynacode_content; \}}
    }
"
}

# refused NAME DIRECTIVE HTTP_LINES [SERVER_LINES] [TEXT]: nginx -t fails, naming DIRECTIVE
refused() {
    local name=$1 directive=$2
    conf_with "$3" "${4:-}"
    if nginx_test; then
        fail "$name: nginx -t passed"
        return
    fi
    if grep -q "\"$directive\"" "$T/t.out" && grep -q "emerg" "$T/t.out"; then
        ok "$name: refused, naming \"$directive\""
    else
        fail "$name: the message does not name \"$directive\""
        sed 's/^/    | /' "$T/t.out"
    fi
    if [ -n "${5:-}" ]; then
        expect_contains "$name: says why" "$(cat "$T/t.out")" "$5"
    fi
}

URI="dynacode_api_uri file://$T/bundle.json;"

# ---- good ones ----
conf_with "$URI dynacode on;"
if nginx_test; then ok "a minimal configuration passes"; else fail "minimal"; cat "$T/t.out"; fi

mkdir -p "$T/state"
conf_with "dynacode_api_uri http://127.0.0.1:1/bundle;
    dynacode_poll_interval 30s; dynacode_poll_jitter 0; dynacode_poll_at_init off;
    dynacode_api_timeout 2s; dynacode_api_header 'Authorization: Bearer x';
    dynacode_api_header 'X-Fleet: eu'; dynacode_shm_size 1m;
    dynacode_policy $SRC/policy/strict.json; dynacode_offline_file $T/state/bundle.json;
    dynacode_harden off; dynacode off;" \
    "location / { dynacode on; dynacode_content; } location /s { dynacode_status; }"
if nginx_test; then ok "every directive, well used, passes"; else fail "all directives"; cat "$T/t.out"; fi

write_conf 1 "server { listen 127.0.0.1:$PORT; location / { return 200; } }"
if nginx_test; then ok "the module loaded without any dynacode directive"; else
    fail "module alone"; cat "$T/t.out"; fi

# ---- refusals ----
refused "ftp URL" dynacode_api_uri "dynacode_api_uri ftp://127.0.0.1/b;" "" \
    "is not an http://, https:// or file:// URL"
refused "not a URL" dynacode_api_uri "dynacode_api_uri bundle.json;"
refused "URL twice" dynacode_api_uri "$URI $URI" "" "is duplicate"
refused "URL in a server" dynacode_api_uri "" \
    "dynacode_api_uri http://127.0.0.1/b; location / { }" "not allowed here"
refused "interval 0" dynacode_poll_interval "$URI dynacode_poll_interval 0;" "" \
    "must be more than 0"
refused "interval not a time" dynacode_poll_interval "$URI dynacode_poll_interval soon;" "" \
    "invalid value"
refused "jitter not a time" dynacode_poll_jitter "$URI dynacode_poll_jitter -1s;"
refused "poll_at_init not on|off" dynacode_poll_at_init "$URI dynacode_poll_at_init yes;"
refused "timeout 0" dynacode_api_timeout "$URI dynacode_api_timeout 0;"
refused "header without a colon" dynacode_api_header "$URI dynacode_api_header 'NoColon';" "" \
    "is not a \"Name: value\" header"
refused "header with a space in its name" dynacode_api_header \
    "$URI dynacode_api_header 'Bad Name: x';"
refused "shm size too small" dynacode_shm_size "$URI dynacode_shm_size 16k;" "" "too small"
refused "shm size not a size" dynacode_shm_size "$URI dynacode_shm_size lots;"
refused "missing policy file" dynacode_policy "$URI dynacode_policy $T/nope.json;" "" \
    "cannot read the policy file"
echo '{"quota": {"instructions": 10}, "qouta": {}}' >"$T/badkey.json"
refused "policy with an unknown key" dynacode_policy "$URI dynacode_policy $T/badkey.json;" "" \
    "qouta"
echo '{"api": {"allow": ["ngx.sayy"]}}' >"$T/badapi.json"
refused "policy with an unknown API" dynacode_policy "$URI dynacode_policy $T/badapi.json;" "" \
    "ngx.sayy"
echo 'not json' >"$T/notjson.json"
refused "policy not JSON" dynacode_policy "$URI dynacode_policy $T/notjson.json;"
refused "offline file in a missing folder" dynacode_offline_file \
    "$URI dynacode_offline_file $T/no/such/dir/bundle.json;" "" "cannot be used"
refused "offline file under a file" dynacode_offline_file \
    "$URI dynacode_offline_file $T/bundle.json/x.json;"
refused "offline file is a folder" dynacode_offline_file \
    "$URI dynacode_offline_file $T/state/;" "" "names a folder"
if [ "$(id -u)" -ne 0 ]; then
    mkdir -p "$T/ro" && chmod 555 "$T/ro"
    refused "offline file's folder not writable" dynacode_offline_file \
        "$URI dynacode_offline_file $T/ro/bundle.json;" "" "is not writable"
    chmod 755 "$T/ro"
else
    echo "# (running as root: a folder's write permission cannot be refused to root)"
fi
refused "offline file without an API" dynacode_offline_file \
    "dynacode on; dynacode_offline_file $T/state/b.json;" "" "needs \"dynacode_api_uri\""
refused "dynacode not on|off" dynacode "$URI dynacode maybe;"
refused "dynacode_content in a server" dynacode_content "$URI" "dynacode_content;"
refused "dynacode_content with an argument" dynacode_content "$URI" \
    "location / { dynacode_content yes; }"
refused "dynacode_content twice" dynacode_content "$URI" \
    "location / { dynacode_content; dynacode_content; }"
refused "dynacode_status beside another handler" dynacode_status "$URI" \
    "location / { proxy_pass http://127.0.0.1:1; dynacode_status; }"
refused "dynacode_harden not on|off" dynacode_harden "$URI dynacode_harden strict;"

finish
