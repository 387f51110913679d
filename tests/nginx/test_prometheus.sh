#!/bin/bash
# test_prometheus.sh - the status page in Prometheus text on a real nginx: the exposition is
# well formed and follows the naming conventions (tests/tools/check_exposition.py: a # TYPE for
# every sample, _total on counters only, base units, cumulative histogram buckets ending with
# +Inf), every metric that usage/prometheus/alerts.yml and usage/grafana/dynacode.json name is
# exposed, the values agree with what was served, and the poll gauges follow an API that fails
# and comes back. With promtool (or DC_PROMTOOL), also `promtool check rules` on the alert rules
# and on the dashboard's expressions, `promtool test rules` on usage/prometheus/alerts_test.yml,
# and `promtool check metrics` on the page.
. "$(dirname "$0")/lib.sh"

RULES="$SRC/usage/prometheus/alerts.yml"
DASHBOARD="$SRC/usage/grafana/dynacode.json"

cat >"$T/bundle.json" <<'EOF2'
{"general": {"status": "enabled"}, "domains": [
  {"name": "^p\\.test$", "plugins": [
    {"name": "hello", "phase": "content", "code": "ngx.say('hi')"},
    {"name": "fails", "phase": "log", "code": "error('boom')"}]},
  {"name": "^loop\\.test$", "plugins": [
    {"name": "runaway", "phase": "access", "code": "while true do end"}]}]}
EOF2
cat >"$T/policy.json" <<'EOF2'
{"quota": {"instructions": 1000000, "time_ms": 50, "memory_kb": 4096},
 "quarantine": {"trips": 2, "window_s": 60, "duration_s": 300}}
EOF2
echo "static" >"$T/html/index.html"
start_api "$T/bundle.json"

write_conf 1 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_policy $T/policy.json;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode_shm_size 2m;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location = /dynacode-status { dynacode off; dynacode_status; }
        location / { root $T/html; dynacode_content; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: p.test' http://127.0.0.1:$PORT/ | grep -qx hi"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

n=1
while [ "$n" -lt 25 ]; do req p.test /; n=$((n + 1)); done
# the runaway plugin trips twice: quarantined
curl -s -o /dev/null -H "Host: loop.test" "http://127.0.0.1:$PORT/" "http://127.0.0.1:$PORT/"

scrape() {
    curl -s --max-time 5 -o "$1" -w '%{http_code} %{content_type}' -H "Host: status" \
        "http://127.0.0.1:$PORT/dynacode-status?format=prometheus"
}
# the log phase runs after the answer: wait until the last one is counted
counted() {
    scrape "$T/scrape.txt" >/dev/null &&
        grep -qF "dynacode_plugin_runs_total{domain=\"^p\\\\.test\$\",plugin=\"fails\",phase=\"log\"} $n" \
            "$T/scrape.txt"
}
wait_until 5 counted || true
answer=$(scrape "$T/scrape.txt")
expect_contains "the page answers 200 in the text format" "$answer" "200 text/plain"

if python3 "$SRC/tests/tools/check_exposition.py" "$T/scrape.txt" --rules "$RULES" \
        --dashboard "$DASHBOARD" --exprs-out "$T/exprs.yml" >"$T/check.out" 2>&1
then ok "well formed, conventions kept, every rule and dashboard metric exposed ($(head -n 1 "$T/check.out"))"
else fail "exposition check"; sed 's/^/    | /' "$T/check.out" | head -40; fi

# the checker catches what it looks for: a sample without its # TYPE, buckets without +Inf, a
# counter without _total, a rule naming a metric the page lacks
check() { python3 "$SRC/tests/tools/check_exposition.py" "$@" >/dev/null 2>&1; }
sed '/^# TYPE dynacode_bundle_plugins gauge$/d' "$T/scrape.txt" >"$T/bad1.txt"
sed '/le="+Inf"/d' "$T/scrape.txt" >"$T/bad2.txt"
sed 's/dynacode_plugin_runs_total/dynacode_plugin_runs/' "$T/scrape.txt" >"$T/bad3.txt"
printf 'groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: dynacode_nowhere_total > 0\n' \
    >"$T/bad-rules.yml"
caught=0
check "$T/bad1.txt" || caught=$((caught + 1))
check "$T/bad2.txt" || caught=$((caught + 1))
check "$T/bad3.txt" || caught=$((caught + 1))
check "$T/scrape.txt" --rules "$T/bad-rules.yml" || caught=$((caught + 1))
expect_eq "the checker refuses four broken inputs" "$caught" 4

# the values agree with what was served and configured
if python3 - "$T/scrape.txt" "$n" <<'EOF2' >"$T/values.out" 2>&1
import re, sys, time
text, n = open(sys.argv[1]).read(), int(sys.argv[2])
def val(name, labels=""):
    key = name + ("{" + labels + "}" if labels else "")
    m = re.search("^" + re.escape(key) + r" (\S+)$", text, re.M)
    assert m, key
    return float(m.group(1))
hello = 'domain="^p\\\\.test$",plugin="hello",phase="content"'
fails = 'domain="^p\\\\.test$",plugin="fails",phase="log"'
runaway = 'domain="^loop\\\\.test$",plugin="runaway",phase="access"'
assert val("dynacode_plugin_runs_total", hello) == n
assert val("dynacode_plugin_time_seconds_count", hello) == n
assert val("dynacode_plugin_time_seconds_bucket", hello + ',le="+Inf"') == n
assert 0 < val("dynacode_plugin_time_seconds_sum", hello) < n * 10
assert val("dynacode_plugin_errors_total", fails) == n
assert val("dynacode_plugin_quarantined", runaway) == 1
assert val("dynacode_plugin_quarantines_total", runaway) == 1
trips = sum(val("dynacode_plugin_quota_trips_total", runaway + ',kind="%s"' % k)
            for k in ("instructions", "time", "memory"))
assert trips == 2, trips
# the runaway calls were stopped by a quota: both in buckets, their time in the sum
assert val("dynacode_plugin_time_seconds_count", runaway) == 2
assert val("dynacode_bundle_generation") >= 1
assert val("dynacode_bundle_version") == 0
assert val("dynacode_bundle_plugins") == 3 and val("dynacode_bundle_domains") == 2
now = time.time()
assert abs(now - val("dynacode_bundle_fetched_timestamp_seconds")) < 120
assert 0 <= val("dynacode_bundle_age_seconds") < 120
assert abs(now - val("dynacode_poll_last_success_timestamp_seconds")) < 120
assert val("dynacode_poll_consecutive_failures") == 0
size = val("dynacode_shm_size_bytes")
assert 1.9 * 2**20 < size <= 2 * 2**20, size  # dynacode_shm_size, less nginx's zone header
assert val("dynacode_shm_used_bytes") + val("dynacode_shm_free_bytes") == size
snap, cap = val("dynacode_snapshot_bytes"), val("dynacode_shm_snapshot_capacity_bytes")
assert 0 < snap < cap < size / 2, (snap, cap)
assert val("dynacode_shm_metrics_entries_used") == 3
assert val("dynacode_shm_metrics_entries") >= 3
assert re.search(r'^dynacode_events_total\{event="bg_fetch_api_success"\} [1-9]', text, re.M)
EOF2
then ok "values: runs, errors, histogram, quarantine, bundle, poll and shared zone gauges"
else fail "values"; sed 's/^/    | /' "$T/values.out" | tail -5; fi

# the API fails: the failures count up and the last success stays; it comes back: 0 again
api_control "mode=status:500&times=1000" >/dev/null
gauge_of() { # gauge_of FILE NAME: the sample's value
    awk -v n="$2" '$1 == n { print $2 }' "$1"
}
failures() {
    scrape "$T/fail.txt" >/dev/null
    gauge_of "$T/fail.txt" dynacode_poll_consecutive_failures
}
at_least() { [ "$(failures)" -ge "$1" ] 2>/dev/null; }
if wait_until 30 at_least 3; then ok "failing polls counted ($(gauge_of "$T/fail.txt" \
    dynacode_poll_consecutive_failures) in a row)"; else fail "failures not counted: $(failures)"; fi
seen=$(gauge_of "$T/fail.txt" dynacode_poll_consecutive_failures)
stalled=$(gauge_of "$T/fail.txt" dynacode_poll_last_success_timestamp_seconds)
if wait_until 30 at_least $((seen + 1)); then
    expect_eq "the last success stays while the API fails" \
        "$(gauge_of "$T/fail.txt" dynacode_poll_last_success_timestamp_seconds)" "$stalled"
else fail "no further failure counted after $seen"; fi
expect_eq "plugins still served" "$(curl -s -H 'Host: p.test' "http://127.0.0.1:$PORT/")" "hi"
api_control "mode=normal" >/dev/null
cleared() { [ "$(failures)" = 0 ]; }
if wait_until 30 cleared; then ok "failures back to 0 when the API answers"
else fail "failures not cleared: $(failures)"; fi
after=$(gauge_of "$T/fail.txt" dynacode_poll_last_success_timestamp_seconds)
if awk -v a="$stalled" -v b="$after" 'BEGIN { exit !(b > a) }'
then ok "the last success moves on"; else fail "last success: $stalled -> $after"; fi
json_failures=$(status_json 's["poll"]["failures"]')
expect_eq "JSON: the same poll record" "$json_failures" 0

# promtool, when there is one: the rules and the dashboard's expressions parse, the page lints
PROMTOOL=${DC_PROMTOOL:-$(command -v promtool || true)}
if [ -n "$PROMTOOL" ] && [ -x "$PROMTOOL" ]; then
    if "$PROMTOOL" check rules "$RULES" >"$T/promtool.out" 2>&1
    then ok "promtool check rules: $(grep -o '[0-9]* rules found' "$T/promtool.out")"
    else fail "promtool check rules"; sed 's/^/    | /' "$T/promtool.out"; fi
    if (cd "$(dirname "$RULES")" && "$PROMTOOL" test rules alerts_test.yml) >"$T/promtool.out" 2>&1
    then ok "promtool test rules: each alert fires when it should (alerts_test.yml)"
    else fail "promtool test rules"; sed 's/^/    | /' "$T/promtool.out" | head -30; fi
    if "$PROMTOOL" check rules "$T/exprs.yml" >"$T/promtool.out" 2>&1
    then ok "promtool: the dashboard's and rules' expressions parse"
    else fail "promtool: expressions"; sed 's/^/    | /' "$T/promtool.out" | head -20; fi
    if "$PROMTOOL" check metrics <"$T/scrape.txt" >"$T/promtool.out" 2>&1
    then ok "promtool check metrics: no lint"
    else fail "promtool check metrics"; sed 's/^/    | /' "$T/promtool.out" | head -20; fi
else
    echo "# note: promtool not found (Debian package prometheus, or DC_PROMTOOL=path): the rules were checked for structure and metric names only"
fi

finish
