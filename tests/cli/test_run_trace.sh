#!/bin/bash
# test_run_trace.sh - `dynacode run` trace and log lines stay one line per call whatever the
# plugin's name, domain or messages hold: quotes, backslashes and control bytes are escaped.
. "$(dirname "$0")/lib.sh"

python3 - "$TMP/b.json" <<'EOF'
import json, sys
bundle = {"general": {"status": "enabled"}, "domains": [{"name": "*", "plugins": [
    {"name": 'q" result=ok fake="', "phase": "access",
     "code": "error('line1\\nplugin=\"forged\" result=ok\\r\\27[2J', 0)"},
    {"name": "logger", "phase": "access",
     "code": "ngx.log(ngx.ERR, 'a\\nplugin=\"forged2\" result=ok')"},
    {"name": "exit", "phase": "access", "code": "ngx.exit(2147483647)"},
]}]}
json.dump(bundle, open(sys.argv[1], "w"))
EOF

expect_exit "run with hostile names and messages" 0 -- "$DYNACODE" run --host a.com "$TMP/b.json"
expect_in "the name's quotes are escaped" "$TMP/err" 'plugin="q\" result=ok fake=\"" domain="*"'
expect_in "the message's line feed, quotes and escape byte are escaped" "$TMP/err" \
  'msg="line1\nplugin=\"forged\" result=ok\r\x1b[2J"'
expect_in "a log line with a line feed stays one line" "$TMP/err" \
  '[dynacode] plugin "logger": a\nplugin="forged2" result=ok'
expect_in "ngx.exit out of range fails the plugin" "$TMP/err" 'status code 0 to 999'
if grep -q '^plugin="forged' "$TMP/err"; then fail "a forged trace line"; else ok "no forged trace line"; fi
# one line per call, one log line, nothing else
n=$(grep -c . "$TMP/err")
if [ "$n" -eq 4 ]; then ok "four lines (three calls, one log line)"; else
  fail "$n lines, expected 4"; sed 's/^/    | /' "$TMP/err"; fi

finish
