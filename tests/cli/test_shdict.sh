#!/usr/bin/env bash
# test_shdict.sh - ngx.shared under `dynacode run`: the policy's dictionaries live in the
# process, empty at start of every run; the policy decides which hosts see one; a bad
# declaration makes the policy unusable (exit 2, naming the file and the key).
. "$(dirname "$0")/lib.sh"

cat >"$TMP/policy.json" <<'EOF'
{"shared_dicts": [{"name": "hits", "size_kb": 64},
                  {"name": "corp", "size_kb": 16, "domains": ["^admin\\."]}]}
EOF
cat >"$TMP/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [{"name": "*", "plugins": [
  {"name": "count", "phase": "access", "code": "ngx.shared.hits:incr('n', 1, 0)"},
  {"name": "show", "phase": "content",
   "code": "ngx.say(ngx.shared.hits:get('n'), ' ', type(ngx.shared.corp), ' ', type(ngx.shared.nope))"}
]}]}
EOF

expect_exit "run with a dictionary" 0 -- "$DYNACODE" run --policy "$TMP/policy.json" --host www.test "$TMP/bundle.json"
expect_in "the access plugin's write is seen by the content plugin; others are nil" "$TMP/out" "1 nil nil"
expect_exit "run again" 0 -- "$DYNACODE" run --policy "$TMP/policy.json" --host www.test "$TMP/bundle.json"
expect_in "each run starts empty" "$TMP/out" "1 nil nil"
expect_exit "run for the host the regex names" 0 -- "$DYNACODE" run --policy "$TMP/policy.json" --host admin.test "$TMP/bundle.json"
expect_in "that host sees the restricted dictionary" "$TMP/out" "1 table nil"

expect_exit "run without the policy" 0 -- "$DYNACODE" run --host www.test "$TMP/bundle.json"
expect_in "the built-in policy declares none: the plugin fails" "$TMP/err" 'plugin="count" domain="*" phase=access result=error'

printf '{"shared_dicts": [{"name": "a", "size_kb": 16}, {"name": "a", "size_kb": 16}]}' >"$TMP/dup.json"
expect_exit "a duplicate dictionary refuses the policy" 2 -- "$DYNACODE" run --policy "$TMP/dup.json" --host www.test "$TMP/bundle.json"
expect_in "named: file, key, why" "$TMP/err" 'dup.json: shared_dicts[1]: duplicate dictionary name "a"'
printf '{"shared_dicts": [{"name": "a", "size_kb": 16, "domains": ["(("]}]}' >"$TMP/re.json"
expect_exit "a bad regex refuses the policy" 2 -- "$DYNACODE" check --policy "$TMP/re.json" "$TMP/bundle.json"
expect_in "named: file and key" "$TMP/err" 're.json: shared_dicts[0].domains[0]:'

finish
