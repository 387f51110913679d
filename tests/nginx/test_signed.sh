#!/bin/bash
# test_signed.sh - signed bundles and the rollback guard on a real nginx: dynacode_verify_key
# (a missing or unusable key fails nginx -t), a bundle signed by the key loads, one byte changed
# or a missing .sig is refused and the last good bundle keeps serving, a 304 keeps the verified
# bundle without fetching the signature again, two keys for a rotation, a lower general.version
# refused until dynacode_allow_downgrade on, and an offline file whose signature fails is not
# loaded at start. Keys and signatures are made with the openssl command, so the test also
# shows that the module reads what standard tools write.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "openssl command missing"; exit 1; }

K=$T/keys
mkdir -p "$K" "$T/state"
for k in k1 k2; do
    openssl genpkey -algorithm ed25519 -out "$K/$k.key" 2>/dev/null
    openssl pkey -in "$K/$k.key" -pubout -out "$K/$k.pub"
done

# bundle TEXT VERSION: the bundle file, its plugin saying TEXT (no signature yet)
bundle() {
    printf '{"general": {"status": "enabled", "version": %s}, "domains": [{"name": "^app\\\\.test$",\n "plugins": [{"name": "content", "phase": "content", "code": "ngx.say(%s)"}]}]}\n' \
        "$2" "'$1'" >"$T/bundle.json.new"
    mv "$T/bundle.json.new" "$T/bundle.json"
}
# sign KEY [FILE]: FILE.sig (default the bundle) with the private key KEY (k1 or k2)
sign() {
    local f=${2:-$T/bundle.json}
    openssl pkeyutl -sign -rawin -inkey "$K/$1.key" -in "$f" | base64 -w0 >"$f.sig.new"
    mv "$f.sig.new" "$f.sig"
}

bundle v1 1
sign k1
API_ARGS=--sig start_api "$T/bundle.json"
api=$API_PORT

# conf "KEY DIRECTIVES" [EXTRA]: one worker, so that the poller never changes hands between
# two polls (a new holder checks the signature of the bundle in force once)
conf() {
    write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$api/bundle.json;
    dynacode_offline_file $T/state/bundle.json;
    dynacode_poll_interval 300ms;
    dynacode_poll_jitter 0;
    dynacode_api_timeout 2s;
    $1
    ${2:-}
    dynacode on;

    server {
        listen 127.0.0.1:$PORT reuseport;
        location = /dynacode-status { dynacode_status; }
        location / { dynacode_content; }
    }
"
}

# serves TEXT: 6 requests on new connections, all answered TEXT by the plugin
serves() {
    local _
    for _ in 1 2 3 4 5 6; do
        req app.test /
        [ "$STATUS" = 200 ] && [ "$(cat "$T/b")" = "$1" ] || return 1
    done
}
last_error() { status_json 's["bundle"]["last_error"]' 2>/dev/null; }
last_error_has() { last_error | grep -qF -- "$1"; }
sig_count() {
    api_control count | python3 -c 'import json, sys; print(json.load(sys.stdin)["sig"])'
}
# polls_pass N: the API saw N more bundle requests than now (bounded wait)
polls_pass() {
    local want=$(($(api_count) + $1))
    wait_until 10 sh -c "[ \$(curl -s http://127.0.0.1:$api/control?count |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[\"bundle\"])') -ge $want ]"
}

# ---- 0. nginx -t: the key file must be an Ed25519 public key ----
conf "dynacode_verify_key $K/missing.pub;"
if nginx_test; then fail "nginx -t accepts a missing key file"; else
    expect_contains "a missing key fails nginx -t, naming the directive" "$(cat "$T/t.out")" \
        '"dynacode_verify_key": cannot open the key'; fi
conf "dynacode_verify_key $K/k1.key;"
if nginx_test; then fail "nginx -t accepts a private key as a verify key"; else
    expect_contains "a private key is not a public key" "$(cat "$T/t.out")" \
        '"dynacode_verify_key": '"$K/k1.key"': not a PEM public key'; fi
echo "not a key" >"$K/junk.pub"
conf "dynacode_verify_key $K/junk.pub;"
if nginx_test; then fail "nginx -t accepts a file that is no key"; else
    expect_contains "junk fails nginx -t" "$(cat "$T/t.out")" "dynacode_verify_key"; fi
conf "dynacode_allow_downgrade maybe;"
if nginx_test; then fail "nginx -t accepts dynacode_allow_downgrade maybe"; else
    ok "dynacode_allow_downgrade takes on or off"; fi

# ---- 1. a bundle signed by the key loads; the offline file keeps its signature ----
conf "dynacode_verify_key $K/k1.pub;"
nginx_test || { fail "nginx -t: $(cat "$T/t.out")"; finish; exit 1; }
start_nginx
if wait_until 10 serves v1; then ok "a bundle signed by the key is in force"; else
    fail "signed bundle not in force: $STATUS $(head -c 100 "$T/b")"; fi
if wait_until 5 cmp -s "$T/bundle.json.sig" "$T/state/bundle.json.sig"; then
    ok "the offline file's signature is written beside it"; else
    fail "offline .sig missing or different"; fi
cmp -s "$T/bundle.json" "$T/state/bundle.json" && ok "the offline file holds the bundle" ||
    fail "offline file differs"

# ---- 2. a 304 keeps the verified bundle, and fetches no signature ----
sigs=$(sig_count)
nm=$(status_json 's["events"]["bg_fetch_not_modified"]')
polls_pass 3 || fail "the poller did not poll 3 times"
expect_eq "304s fetch no signature" "$(sig_count)" "$sigs"
if lt "$nm" "$(status_json 's["events"]["bg_fetch_not_modified"]')"; then
    ok "the polls were answered 304"; else fail "no bg_fetch_not_modified"; fi
serves v1 && ok "the verified bundle stays after 304s" || fail "lost the bundle after 304s"

# ---- 3. one byte changed after signing: refused, the last good bundle stays ----
sed 's/v1/v9/' "$T/bundle.json" >"$T/b.tmp" && mv "$T/b.tmp" "$T/bundle.json"
if wait_until 10 last_error_has "does not verify"; then
    ok "a changed byte is refused (does not verify)"; else fail "no refusal: $(last_error)"; fi
serves v1 && ok "the last good bundle serves after the refusal" ||
    fail "after a tampered bundle: $STATUS $(head -c 100 "$T/b")"
expect_log "bg_didnt_update_plugins says why" "signature refused"
cmp -s "$T/bundle.json.sig" "$T/state/bundle.json.sig" && ok "the offline signature is kept" ||
    fail "the offline signature changed"
grep -q v9 "$T/state/bundle.json" && fail "the tampered bundle reached the offline file" ||
    ok "the tampered bundle is not in the offline file"

# ---- 4. no .sig: refused; the signature uploaded later is picked up ----
bundle v2 2
rm -f "$T/bundle.json.sig"
if wait_until 10 last_error_has "no signature"; then ok "a bundle without .sig is refused"
else fail "missing .sig: $(last_error)"; fi
serves v1 && ok "the last good bundle serves without .sig" || fail "lost the bundle"
sign k1
if wait_until 10 serves v2; then ok "the signature uploaded after its bundle is picked up"
else fail "v2 not in force after its .sig came: $(last_error)"; fi

# ---- 5. key rotation: two keys, the new one signs ----
bundle v3 3
sign k2
if wait_until 10 last_error_has "does not verify"; then ok "a bundle by an unknown key is refused"
else fail "k2 bundle with k1 only: $(last_error)"; fi
serves v2 && ok "v2 stays while k2 is not trusted" || fail "lost v2"
conf "dynacode_verify_key $K/k1.pub; dynacode_verify_key $K/k2.pub;"
reload_nginx || fail "reload"
if wait_until 10 serves v3; then ok "with both keys, the new key's bundle loads"; else
    fail "rotation: $(last_error)"; fi

# ---- 6. rollback guard ----
bundle v1-again 1
sign k1
if wait_until 10 last_error_has "general.version 1 is lower than the version in force, 3"; then
    ok "a lower version is refused, naming both versions"; else fail "downgrade: $(last_error)"; fi
serves v3 && ok "v3 stays after the downgrade refusal" || fail "lost v3"
reload_nginx || fail "reload"
: >"$T/logs/error.log"
if wait_until 10 grep -qF "general.version 1 is lower than the version in force, 3" \
        "$T/logs/error.log"; then
    ok "after a reload, the version in force (from the shared snapshot) still refuses 1"; else
    fail "after a reload: $(last_error)"; fi
serves v3 && ok "v3 stays after the reload" || fail "lost v3 after the reload"
conf "dynacode_verify_key $K/k1.pub; dynacode_verify_key $K/k2.pub;" "dynacode_allow_downgrade on;"
reload_nginx || fail "reload"
if wait_until 10 serves v1-again; then ok "dynacode_allow_downgrade on takes the lower version"
else fail "allowed downgrade: $(last_error)"; fi

# ---- 7. the offline file is verified again at start ----
stop_nginx
stop_api
echo "# nginx and the API stopped"
conf "dynacode_verify_key $K/k1.pub; dynacode_verify_key $K/k2.pub;"
cp "$T/state/bundle.json.sig" "$T/good.sig"
printf 'something else' >"$T/other"
sign k1 "$T/other"
cp "$T/other.sig" "$T/state/bundle.json.sig"
: >"$T/logs/error.log"
start_nginx
expect_log "an offline file whose signature fails is not loaded" \
    "offline file $T/state/bundle.json refused: signature $T/state/bundle.json.sig: the signature does not verify"
req app.test /
expect_not_contains "no plugin from the refused offline file" "$(cat "$T/b")" "v1-again"
stop_nginx
cp "$T/good.sig" "$T/state/bundle.json.sig"
: >"$T/logs/error.log"
start_nginx
if wait_until 5 serves v1-again; then ok "with its good signature, the offline file loads"; else
    fail "offline file with a good .sig not loaded"; fi
expect_log "bg_offline_loaded" "bg_offline_loaded"

# ---- 8. a restart: the offline file's version is in force before the first poll ----
stop_nginx
bundle v3-offline 3
sign k2
cp "$T/bundle.json" "$T/state/bundle.json"
cp "$T/bundle.json.sig" "$T/state/bundle.json.sig"
bundle v1-replayed 1
sign k1
API_ARGS=--sig start_api "$T/bundle.json"
api=$API_PORT
conf "dynacode_verify_key $K/k1.pub; dynacode_verify_key $K/k2.pub;"
: >"$T/logs/error.log"
start_nginx
expect_log "after a restart, a replayed older bundle is refused" \
    "general.version 1 is lower than the version in force, 3"
serves v3-offline && ok "the offline file's version 3 stays in force" ||
    fail "after a restart: $STATUS $(head -c 100 "$T/b")"

finish
