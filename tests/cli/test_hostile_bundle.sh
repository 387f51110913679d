#!/usr/bin/env bash
# test_hostile_bundle.sh - the command line against bundles written to get round the operator's
# policy: rules chosen by the request's host whatever the bundle calls its domains (`run
# --policy`), and `check` refusing what a bundle controls past the policy's bounds.
. "$(dirname "$0")/lib.sh"

cat > "$TMP/admin.json" <<'JSON'
{"rules": [{"domain": "^admin\\.", "api": {"deny": ["ngx.log"]}}]}
JSON

# A bundle whose only domain is spelled $1, with one access plugin that logs.
dodge() {
  printf '{"general":{"status":"enabled"},"domains":[{"name":"%s","plugins":[{"name":"p","phase":"access","code":"ngx.log(ngx.INFO, \\"x\\")"}]}]}\n' "$1" > "$TMP/b.json"
}

for name in 'admin\\.corp' '[a]dmin.corp' '*' '(?:admin).corp'; do
  dodge "$name"
  expect_exit "run admin.corp, domain $name" 0 -- "$DYNACODE" run --policy "$TMP/admin.json" --host admin.corp "$TMP/b.json"
  expect_in "rule for ^admin\\. holds whatever the spelling ($name)" "$TMP/err" 'plugin="p" domain="'
  expect_in "denied on admin.corp ($name)" "$TMP/err" 'phase=access result=denied'
done
dodge '*'
expect_exit "run www.corp" 0 -- "$DYNACODE" run --policy "$TMP/admin.json" --host www.corp "$TMP/b.json"
expect_in "other hosts are not held by the rule" "$TMP/err" 'phase=access result=ok'

cat > "$TMP/trusted.json" <<'JSON'
{"quota": {"instructions": 20000},
 "rules": [{"domain": "^trusted\\.", "quota": {"instructions": 5000000}}]}
JSON
for name in 'trusted.|' '.*'; do
  printf '{"general":{"status":"enabled"},"domains":[{"name":"%s","plugins":[{"name":"spin","phase":"access","code":"for i = 1, 200000 do end"}]}]}\n' "$name" > "$TMP/c.json"
  expect_exit "run evil.com, domain $name" 0 -- "$DYNACODE" run --policy "$TMP/trusted.json" --host evil.com "$TMP/c.json"
  expect_in "no trusted quota claimed by $name" "$TMP/err" 'plugin="spin"'
  expect_in "quota of evil.com applies ($name)" "$TMP/err" 'result=quota:instructions'
  expect_exit "run trusted.example, domain $name" 0 -- "$DYNACODE" run --policy "$TMP/trusted.json" --host trusted.example "$TMP/c.json"
  expect_in "trusted host gets its rule ($name)" "$TMP/err" 'plugin="spin" domain="'
  expect_not_in "no trip on the trusted host ($name)" "$TMP/err" 'result=quota'
done

# --- check: bounds from the policy, each named with its limit
cat > "$TMP/tight.json" <<'JSON'
{"bundle": {"max_plugins": 5, "max_plugins_per_domain": 3, "max_skip_domains": 1,
            "max_pattern_bytes": 12}}
JSON
printf '{"general":{"status":"enabled"},"domains":[{"name":"a","plugins":[1,1,1,1]}],"plugins":[{"id":1,"name":"s","phase":"log","code":""}]}\n' > "$TMP/refs.json"
expect_exit "check: references over max_plugins_per_domain" 2 -- "$DYNACODE" check --policy "$TMP/tight.json" "$TMP/refs.json"
expect_in "names the domain's plugins and the limit" "$TMP/err" 'domains[0].plugins: 4 entries, over the limit of 3 (max_plugins_per_domain)'
printf '{"general":{"status":"enabled"},"domains":[{"name":"a","plugins":[1,1,1]},{"name":"b","plugins":[1,1]}],"plugins":[{"id":1,"name":"s","phase":"log","code":""}]}\n' > "$TMP/refs2.json"
expect_exit "check: references over max_plugins" 2 -- "$DYNACODE" check --policy "$TMP/tight.json" "$TMP/refs2.json"
expect_in "references count like plugins" "$TMP/err" 'plugins: 6 plugins and references in the bundle, over the limit of 5 (max_plugins)'
printf '{"general":{"status":"enabled","skip_domains":["a","b"]},"domains":[]}\n' > "$TMP/skip.json"
expect_exit "check: skip_domains over max_skip_domains" 2 -- "$DYNACODE" check --policy "$TMP/tight.json" "$TMP/skip.json"
expect_in "names skip_domains and the limit" "$TMP/err" 'general.skip_domains: 2 entries, over the limit of 1 (max_skip_domains)'
printf '{"general":{"status":"enabled","skip_domains":["(?:a|b){3000}0"]},"domains":[]}\n' > "$TMP/big.json"
expect_exit "check: a 15-byte pattern that compiles to 40 KB" 2 -- "$DYNACODE" check "$TMP/big.json"
expect_in "names the pattern and max_pattern_compiled_bytes" "$TMP/err" 'general.skip_domains[0]: regex compiles to'
expect_in "with the default limit" "$TMP/err" 'over the limit of 16384 (max_pattern_compiled_bytes)'
printf '{"general":{"status":"enabled"},"domains":[{"name":"a","plugins":[{"name":"p","phase":"log","code":"return\\u0000 os.exit()"}]}]}\n' > "$TMP/nul.json"
expect_exit "check: NUL in code" 2 -- "$DYNACODE" check "$TMP/nul.json"
expect_in "names the string with a NUL" "$TMP/err" 'domains[0].plugins[0].code: string contains a NUL byte (\u0000)'

# --- check: names with control bytes, refused and named (escaped, on one line)
printf '{"general":{"status":"enabled"},"domains":[{"name":"a\\nb","plugins":[]},{"name":"x","plugins":[{"name":"p\\u001b[31m","phase":"log","code":""},{"name":"ok","phase":"log","code":""}]}]}\n' > "$TMP/ctl.json"
expect_exit "check: control bytes in names" 1 -- "$DYNACODE" check "$TMP/ctl.json"
expect_in "domain named, escaped" "$TMP/out" 'domain left out: domains[0].name: name "a\x0ab" contains the control byte 0x0a'
expect_in "plugin named, escaped" "$TMP/out" 'plugin left out: domains[1].plugins[0].name: domain="x" name "p\x1b[31m" contains the control byte 0x1b'
expect_in "the rest loads" "$TMP/out" '1 domains, 1 plugins loaded'

# --- check: a flood of unknown fields is counted, not listed
python3 -c 'import json; b={"general":{"status":"enabled"},"domains":[]}; b.update({"u%d" % i: i for i in range(5000)}); print(json.dumps(b))' > "$TMP/flood.json"
expect_exit "check: 5000 unknown fields" 0 -- "$DYNACODE" check "$TMP/flood.json"
expect_in "the first are listed" "$TMP/out" 'warning: u0: unknown field "u0"'
expect_in "the rest counted" "$TMP/out" '... and 4900 more problems (only the first 100 are listed)'
[ "$(grep -c 'unknown field' "$TMP/out")" -eq 100 ] && ok "100 listed" || fail "100 listed: $(grep -c 'unknown field' "$TMP/out")"

# --- the original example still loads under both shipped policies
expect_exit "check the original example" 0 -- "$DYNACODE" check "$SRC/tests/data/original-readme-bundle.json"
expect_exit "check the original example, strict policy" 0 -- "$DYNACODE" check --policy "$SRC/policy/strict.json" "$SRC/tests/data/original-readme-bundle.json"

finish
