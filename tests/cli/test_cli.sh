#!/usr/bin/env bash
# test_cli.sh - `dynacode check` and `dynacode run` as README.md describes them: output, trace
# lines and exit codes, on the example bundle and on broken input.
. "$(dirname "$0")/lib.sh"
B="$SRC/usage/response.json"

# --- run: the original example
expect_exit "run with ?token=token" 0 -- "$DYNACODE" run --host dynamic.local.com --uri '/?token=token' "$B"
expect_in "status 200" "$TMP/out" "HTTP/1.1 200 OK"
expect_in "content plugin's body" "$TMP/out" "hello world!"
expect_in "CORS header" "$TMP/out" "Access-Control-Allow-Origin: http://dynamic.local.com"
expect_in "cookie set" "$TMP/out" "Set-Cookie: superstition=token"
# the module sends a content plugin's answer with its length (the whole body is at hand)
expect_in "content plugin's answer has its length" "$TMP/out" "Content-Length: 25"
expect_not_in "not chunked" "$TMP/out" "Transfer-Encoding"
expect_in "trace line for the access plugin" "$TMP/err" 'plugin="authentication required" domain="dynamic.local.com" phase=access result=ok ms='
expect_in "trace line for the content plugin" "$TMP/err" 'plugin="dynamic content" domain="dynamic.local.com" phase=content result=ok'

expect_exit "run with the cookie" 0 -- "$DYNACODE" run --host dynamic.local.com --header 'Cookie: superstition=token' "$B"
expect_in "cookie lets the request through" "$TMP/out" "HTTP/1.1 200 OK"

expect_exit "run without the token" 0 -- "$DYNACODE" run --host dynamic.local.com --uri / "$B"
expect_in "403 without the token" "$TMP/out" "HTTP/1.1 403 Forbidden"
expect_in "nginx's error page" "$TMP/out" "<center><h1>403 Forbidden</h1></center>"
expect_in "exit noted in the trace" "$TMP/err" 'msg="ngx.exit(403)"'
expect_not_in "content plugin did not run" "$TMP/err" 'plugin="dynamic content"'

expect_exit "run on a skip_domains host" 0 -- "$DYNACODE" run --host metrics.server.local.com "$B"
expect_in "upstream answer untouched" "$TMP/out" "HTTP/1.1 200 OK"
expect_not_in "no plugin ran" "$TMP/err" "plugin="

printf 'upstream says hi' > "$TMP/body"
expect_exit "run with an upstream response" 0 -- "$DYNACODE" run --host clock.local.com --upstream-status 201 --upstream-body "$TMP/body" "$B"
expect_in "upstream status" "$TMP/out" "HTTP/1.1 201 Created"
expect_in "upstream body" "$TMP/out" "upstream says hi"
expect_in "\"*\" domain decorates it" "$TMP/out" "X-Served-By: dynacode"

expect_exit "bundle from standard input" 0 -- sh -c "\"$DYNACODE\" run --host dynamic.local.com --uri '/?token=token' - < \"$B\""
expect_in "stdin bundle works" "$TMP/out" "hello world!"
expect_exit "bundle from a file:// URL" 0 -- "$DYNACODE" run --host dynamic.local.com --uri '/?token=token' "file://$B"

# --- run: a failing plugin and a runaway one do not stop the next
cat > "$TMP/faulty.json" <<'JSON'
{"general":{"status":"enabled"},"domains":[{"name":"*","plugins":[
 {"name":"spin","phase":"access","code":"while true do end"},
 {"name":"boom","phase":"access","code":"error('kaboom')"},
 {"name":"mark","phase":"access","code":"ngx.header['X-Mark'] = 'set'"}]}]}
JSON
expect_exit "run with faulty plugins" 0 -- "$DYNACODE" run --host a.com "$TMP/faulty.json"
expect_in "runaway reported as a quota trip" "$TMP/err" 'plugin="spin" domain="*" phase=access result=quota:'
expect_in "error reported with its message" "$TMP/err" 'plugin="boom" domain="*" phase=access result=error'
expect_in "error message quoted" "$TMP/err" 'kaboom'
expect_in "next plugin still ran" "$TMP/out" "X-Mark: set"

# --- run: unusable input
expect_exit "run without --host" 2 -- "$DYNACODE" run "$B"
expect_in "says --host is required" "$TMP/err" "--host is required"
expect_exit "run on a missing file" 2 -- "$DYNACODE" run --host a.com "$TMP/nope.json"
expect_in "names the missing file" "$TMP/err" "nope.json"
expect_exit "run with a bad --header" 2 -- "$DYNACODE" run --host a.com --header 'no colon' "$B"
expect_exit "run with a bad --upstream-status" 2 -- "$DYNACODE" run --host a.com --upstream-status abc "$B"
expect_exit "run --help" 0 -- "$DYNACODE" run --help
expect_in "help describes the trace" "$TMP/out" "result=ok|error"

# --- --policy
printf '{"quota":{"time_ms":"soon"}}' > "$TMP/badpolicy.json"
expect_exit "run with a policy that does not parse" 2 -- "$DYNACODE" run --policy "$TMP/badpolicy.json" --host a.com "$B"
expect_in "names the file and the key" "$TMP/err" "badpolicy.json: quota.time_ms: expected a non-negative integer"
expect_exit "check with a missing policy file" 2 -- "$DYNACODE" check --policy "$TMP/none.json" "$B"
expect_in "names the missing policy" "$TMP/err" "none.json"
printf '{"api":{"deny":["ngx.sayy"]}}' > "$TMP/unknownapi.json"
expect_exit "a policy naming an unknown API" 2 -- "$DYNACODE" check --policy "$TMP/unknownapi.json" "$B"
expect_in "names the unknown API" "$TMP/err" 'api.deny[0]: unknown API name "ngx.sayy"'
printf '{"api":{"deny":["ngx.exit"]}}' > "$TMP/noexit.json"
expect_exit "run with a policy denying ngx.exit" 0 -- "$DYNACODE" run --policy "$TMP/noexit.json" --host dynamic.local.com "$B"
expect_in "denied call reported" "$TMP/err" 'plugin="authentication required" domain="dynamic.local.com" phase=access result=denied'
expect_in "denial names the API" "$TMP/err" 'ngx.exit is denied by policy'
expect_exit "check with the shipped strict policy" 0 -- "$DYNACODE" check --policy "$SRC/policy/strict.json" "$B"

# --- check
expect_exit "check the example" 0 -- "$DYNACODE" check "$B"
expect_in "counts" "$TMP/out" "2 domains, 4 plugins loaded"

cat > "$TMP/broken.json" <<'JSON'
{"general":{"status":"enabled"},"domains":[{"name":"a.com","plugins":[
 {"name":"good","phase":"access","code":"ngx.header['X'] = 1"},
 {"name":"typo","phase":"acess","code":"return"},
 {"name":"syntax","phase":"access","code":"if then"}]}]}
JSON
expect_exit "check a bundle with broken plugins" 1 -- "$DYNACODE" check "$TMP/broken.json"
expect_in "names the unknown phase" "$TMP/out" 'domains[0].plugins[1].phase: domain="a.com" plugin="typo" unknown phase "acess"'
expect_in "names the syntax error" "$TMP/out" 'plugin="syntax"'
expect_in "the rest loads" "$TMP/out" "1 domains, 1 plugins loaded"
expect_exit "check --json" 1 -- "$DYNACODE" check --json "$TMP/broken.json"
cp "$TMP/out" "$TMP/check.json"
expect_exit "check --json is JSON" 0 -- python3 -c "import json,sys; d=json.load(open('$TMP/check.json')); assert d['ok'] is False and len(d['problems'])==2 and d['problems'][0]['plugin']=='typo'"

printf 'this is not { json' > "$TMP/text.json"
expect_exit "check text that is not JSON" 2 -- "$DYNACODE" check "$TMP/text.json"
expect_in "says it is not JSON" "$TMP/err" "not JSON"
printf '{"domains":[]}' > "$TMP/nogeneral.json"
expect_exit "check a bundle without general" 2 -- "$DYNACODE" check "$TMP/nogeneral.json"
expect_in "names general" "$TMP/err" "general"
expect_exit "check with no argument" 2 -- "$DYNACODE" check
expect_exit "unknown command" 2 -- "$DYNACODE" frobnicate
expect_exit "top-level --help" 0 -- "$DYNACODE" --help

finish
