#!/usr/bin/env bash
# test_sign.sh - signed bundles in the command: `dynacode keygen` (a key pair, the private one
# 0600 and never overwritten), `dynacode sign` (BUNDLE.sig, which the openssl command verifies
# too), and --verify-key on check, run and watch: a good signature, a wrong key, one byte changed,
# a missing or malformed .sig, two keys for a rotation, file:// and http:// URLs (the .sig beside
# the bundle), and the rollback guard of watch (--allow-downgrade).
. "$(dirname "$0")/lib.sh"

SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

bundle() { # bundle TEXT VERSION
  printf '{"general":{"status":"enabled","version":%s},"domains":[{"name":"*","plugins":[\n {"name":"p","phase":"content","code":"ngx.say(%s)"}]}]}\n' \
    "$2" "'$1'" >"$TMP/b.json"
}

# ---- keygen ----
expect_exit "keygen" 0 -- "$DYNACODE" keygen --out "$TMP/k1"
expect_in "keygen says what it wrote" "$TMP/out" "k1.pub"
[ "$(stat -c %a "$TMP/k1.key")" = 600 ] && ok "the private key is mode 0600" ||
  fail "k1.key mode $(stat -c %a "$TMP/k1.key")"
grep -q "BEGIN PUBLIC KEY" "$TMP/k1.pub" && ok "the public key is PEM" || fail "k1.pub not PEM"
cp "$TMP/k1.key" "$TMP/k1.key.orig"
expect_exit "keygen never overwrites a private key" 2 -- "$DYNACODE" keygen --out "$TMP/k1"
expect_in "and says so" "$TMP/err" "never overwritten"
cmp -s "$TMP/k1.key" "$TMP/k1.key.orig" && ok "the old key is intact" || fail "k1.key changed"
expect_exit "keygen without --out" 2 -- "$DYNACODE" keygen
expect_exit "a second key" 0 -- "$DYNACODE" keygen --out "$TMP/k2"

# ---- sign ----
bundle v1 1
expect_exit "sign" 0 -- "$DYNACODE" sign --key "$TMP/k1.key" "$TMP/b.json"
[ -s "$TMP/b.json.sig" ] && ok "sign writes BUNDLE.sig" || fail "no b.json.sig"
if command -v openssl >/dev/null; then
  base64 -d "$TMP/b.json.sig" >"$TMP/sig.bin"
  if openssl pkeyutl -verify -pubin -inkey "$TMP/k1.pub" -rawin -in "$TMP/b.json" \
      -sigfile "$TMP/sig.bin" >/dev/null 2>&1; then
    ok "openssl verifies the signature"; else fail "openssl does not verify the signature"; fi
fi
expect_exit "sign with a public key" 2 -- "$DYNACODE" sign --key "$TMP/k1.pub" "$TMP/b.json"
expect_in "names the key file" "$TMP/err" "not a PEM private key"
expect_exit "sign a missing file" 2 -- "$DYNACODE" sign --key "$TMP/k1.key" "$TMP/none.json"
expect_exit "sign needs --key" 2 -- "$DYNACODE" sign "$TMP/b.json"

# ---- check and run with --verify-key ----
expect_exit "check: good signature" 0 -- "$DYNACODE" check --verify-key "$TMP/k1.pub" "$TMP/b.json"
expect_exit "run: good signature" 0 -- "$DYNACODE" run --verify-key "$TMP/k1.pub" --host a.test \
  "$TMP/b.json"
expect_in "run: the plugin ran" "$TMP/out" "v1"
expect_exit "check: wrong key" 2 -- "$DYNACODE" check --verify-key "$TMP/k2.pub" "$TMP/b.json"
expect_in "check: wrong key says why" "$TMP/err" "does not verify"
expect_exit "run: wrong key" 2 -- "$DYNACODE" run --verify-key "$TMP/k2.pub" --host a.test \
  "$TMP/b.json"
expect_not_in "run: wrong key runs nothing" "$TMP/out" "v1"
expect_exit "check: rotation, either key" 0 -- "$DYNACODE" check --verify-key "$TMP/k2.pub" \
  --verify-key "$TMP/k1.pub" "$TMP/b.json"
expect_exit "check: file:// URL, .sig beside it" 0 -- "$DYNACODE" check --verify-key \
  "$TMP/k1.pub" "file://$TMP/b.json"
sed 's/v1/v2/' "$TMP/b.json" >"$TMP/c.json"
cp "$TMP/b.json.sig" "$TMP/c.json.sig"
expect_exit "check: one byte changed" 2 -- "$DYNACODE" check --verify-key "$TMP/k1.pub" "$TMP/c.json"
expect_in "check: one byte changed says why" "$TMP/err" "bundle was changed after signing"
rm "$TMP/c.json.sig"
expect_exit "check: missing .sig" 2 -- "$DYNACODE" check --verify-key "$TMP/k1.pub" "$TMP/c.json"
expect_in "check: missing .sig names it" "$TMP/err" "c.json.sig"
expect_exit "check: without --verify-key the same file is fine" 0 -- "$DYNACODE" check "$TMP/c.json"
echo 'not base64 at all!' >"$TMP/c.json.sig"
expect_exit "check: bad base64" 2 -- "$DYNACODE" check --verify-key "$TMP/k1.pub" "$TMP/c.json"
expect_in "check: bad base64 says so" "$TMP/err" "not base64"
expect_exit "check: standard input cannot be verified" 2 -- sh -c \
  "\"$DYNACODE\" check --verify-key \"$TMP/k1.pub\" - <\"$TMP/b.json\""
expect_in "check: standard input says why" "$TMP/err" "standard input has no signature"
expect_exit "check: a missing key file" 2 -- "$DYNACODE" check --verify-key "$TMP/none.pub" \
  "$TMP/b.json"
expect_in "check: names the key" "$TMP/err" "none.pub"
expect_exit "check: a private key as verify key" 2 -- "$DYNACODE" check --verify-key \
  "$TMP/k1.key" "$TMP/b.json"

# ---- general.version ----
printf '{"general":{"version":"7"},"domains":[]}' >"$TMP/v.json"
expect_exit "check: a version that is a string" 2 -- "$DYNACODE" check "$TMP/v.json"
expect_in "check: names general.version" "$TMP/err" "general.version"

# ---- http:// with the signature beside the bundle ----
cp "$TMP/b.json" "$TMP/served.json"
cp "$TMP/b.json.sig" "$TMP/served.json.sig"
python3 "$SRC/tests/tools/api_server.py" --bundle "$TMP/served.json" --sig --port 0 \
  --max-seconds 120 >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
PORT=
for _ in $(seq 1 100); do
  PORT=$(head -n1 "$TMP/server.out" 2>/dev/null)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { fail "the API server did not start"; finish; exit 1; }
URL="http://127.0.0.1:$PORT/bundle.json"
expect_exit "check: http URL with its .sig" 0 -- "$DYNACODE" check --verify-key "$TMP/k1.pub" "$URL"
expect_exit "check: http URL, wrong key" 2 -- "$DYNACODE" check --verify-key "$TMP/k2.pub" "$URL"

# ---- watch: refusals with their reason, then the rollback guard ----
expect_exit "watch: signed bundle" 0 -- "$DYNACODE" watch --count 1 --verify-key "$TMP/k1.pub" "$URL"
expect_in "watch: updated" "$TMP/out" '"event":"bg_updated_plugins"'
rm "$TMP/served.json.sig"
expect_exit "watch: unsigned bundle" 0 -- "$DYNACODE" watch --count 1 --verify-key "$TMP/k1.pub" "$URL"
expect_in "watch: refused with the reason" "$TMP/out" '"event":"bg_didnt_update_plugins"'
expect_in "watch: the reason is the missing .sig" "$TMP/out" "no signature"
expect_not_in "watch: nothing updated" "$TMP/out" '"event":"bg_updated_plugins"'
expect_exit "watch: a missing key file" 2 -- "$DYNACODE" watch --count 1 --verify-key \
  "$TMP/none.pub" "$URL"

# the offline file holds version 3 (signed); the API serves version 2 (signed)
bundle v3 3
"$DYNACODE" sign --key "$TMP/k1.key" "$TMP/b.json" >/dev/null
cp "$TMP/b.json" "$TMP/offline.json"
cp "$TMP/b.json.sig" "$TMP/offline.json.sig"
bundle v2 2
"$DYNACODE" sign --key "$TMP/k1.key" "$TMP/b.json" >/dev/null
cp "$TMP/b.json" "$TMP/served.json"
cp "$TMP/b.json.sig" "$TMP/served.json.sig"
api_mode() { curl -s --max-time 5 "http://127.0.0.1:$PORT/control?$1" >/dev/null; }

# first poll answered 500: the offline file (version 3) is loaded; the second poll brings 2
api_mode "mode=status:500&times=1"
expect_exit "watch: offline file, then an older bundle" 0 -- "$DYNACODE" watch --count 2 \
  --interval 0.05 --verify-key "$TMP/k1.pub" --offline-file "$TMP/offline.json" "$URL"
expect_in "watch: bg_offline_loaded" "$TMP/out" '"event":"bg_offline_loaded"'
expect_in "watch: the downgrade is refused, naming both versions" "$TMP/out" \
  "general.version 2 is lower than the version in force, 3"
expect_not_in "watch: nothing updated" "$TMP/out" '"event":"bg_updated_plugins"'
api_mode "mode=status:500&times=1"
expect_exit "watch --allow-downgrade" 0 -- "$DYNACODE" watch --count 2 --interval 0.05 \
  --allow-downgrade --verify-key "$TMP/k1.pub" --offline-file "$TMP/offline.json" "$URL"
expect_in "watch --allow-downgrade: the older bundle goes into force" "$TMP/out" \
  '"event":"bg_updated_plugins"'
expect_not_in "watch --allow-downgrade: nothing refused" "$TMP/out" "lower than the version"

# an offline file whose signature fails is not loaded
cp "$TMP/offline.json" "$TMP/off2.json"
echo 'AAAA' >"$TMP/off2.json.sig"
api_mode "mode=status:500&times=1"
expect_exit "watch: offline file with a bad .sig" 0 -- "$DYNACODE" watch --count 1 --verify-key \
  "$TMP/k1.pub" --offline-file "$TMP/off2.json" "$URL"
expect_in "watch: the offline file is refused, saying why" "$TMP/out" \
  "off2.json.sig: the signature is 3 bytes"
expect_not_in "watch: not loaded" "$TMP/out" '"event":"bg_offline_loaded"'

finish
