#!/bin/bash
# test_hot_update.sh - a change on the API answers in every worker without a reload (the time
# it took is printed as a figure), no worker goes back to the old code, and an nginx instance
# polls once per interval, not once per worker (the store's lease). Two workers; reuseport spreads new connections over both.
. "$(dirname "$0")/lib.sh"

INTERVAL=1

bundle() {  # bundle VERSION FILE
    cat >"$2.tmp" <<EOF
{"general": {"status": "enabled"}, "domains": [{"name": "^hot\\\\.test\$", "plugins": [
  {"name": "version", "phase": "content", "code": "ngx.say('$1 ', ngx.worker.pid())"}]}]}
EOF
    mv "$2.tmp" "$2"
}

bundle v1 "$T/bundle.json"
start_api "$T/bundle.json"

write_conf 2 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval ${INTERVAL}s;
    dynacode_poll_jitter 0;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT reuseport;
        location = /dynacode-status { dynacode_status; }
        location / { dynacode_content; }
    }
"
start_nginx

# ask: one request, prints "VERSION PID"
ask() { curl -s --max-time 5 -H "Host: hot.test" "http://127.0.0.1:$PORT/"; }

if wait_until 10 sh -c "curl -s -H 'Host: hot.test' http://127.0.0.1:$PORT/ | grep -q '^v1 '"
then ok "v1 in force"; else fail "v1 not in force after 10 s"; fi

# every worker, seen answering v1
pids=" "
for _ in $(seq 1 200); do
    read -r v pid <<<"$(ask)"
    [ "$v" = v1 ] && case "$pids" in *" $pid "*) ;; *) pids="$pids$pid " ;; esac
    [ "$(wc -w <<<"$pids")" -ge 2 ] && break
done
expect_eq "both workers answer v1" "$(wc -w <<<"$pids")" 2

# the change, then requests until every worker answered v2
bundle v2 "$T/bundle.json"
t0=$(now)
declare -A first_v2=()
went_back=0
deadline=$(awk -v n="$t0" 'BEGIN { printf "%.3f", n + 10 }')
while lt "$(now)" "$deadline"; do
    read -r v pid <<<"$(ask)"
    if [ "$v" = v2 ]; then
        [ -n "${first_v2[$pid]:-}" ] || first_v2[$pid]=$(elapsed "$t0")
    elif [ -n "${first_v2[$pid]:-}" ]; then
        went_back=1
    fi
    [ "${#first_v2[@]}" -ge 2 ] && break
done
worst=0
for pid in "${!first_v2[@]}"; do
    echo "# worker $pid answered v2 after ${first_v2[$pid]} s"
    lt "$worst" "${first_v2[$pid]}" && worst=${first_v2[$pid]}
done
expect_eq "every worker answers v2" "${#first_v2[@]}" 2
# a figure, not a verdict (timing goals live in tests/bench; a busy machine is slower)
echo "# the change answered everywhere after $worst s (interval $INTERVAL s)"
expect_eq "no worker went back to v1" "$went_back" 0

# one poll per interval for the instance: over 5 s, about 5 fetches, not 10
api_control reset >/dev/null
sleep 5
n=$(api_count)
echo "# fetches in 5 s: $n"
if [ "$n" -ge 1 ] && [ "$n" -le 7 ]; then ok "one poll per interval for the instance ($n in 5 s)"
else fail "$n fetches in 5 s with 2 workers and a 1 s interval"; fi

expect_eq "no reload happened (one generation of workers)" \
    "$(grep -cE 'start worker process [0-9]+' "$T/logs/error.log")" 2

finish
