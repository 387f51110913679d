#!/bin/bash
# test_worker_facts.sh - what the nginx host tells plugins about its workers: ngx.worker.count()
# is worker_processes, ngx.worker.exiting() is false while serving and true in the log phase
# of a request that finishes after a graceful stop began (a slow client keeps it running).
. "$(dirname "$0")/lib.sh"

cat >"$T/bundle.json" <<'EOF'
{"general": {"status": "enabled"}, "domains": [{"name": "^facts\\.test$", "plugins": [
  {"name": "facts", "phase": "content",
   "code": "ngx.say(ngx.worker.count(), ' ', tostring(ngx.worker.exiting()), ' ', ngx.config.subsystem)"},
  {"name": "logexit", "phase": "log",
   "code": "ngx.log(ngx.WARN, 'facts-marker uri=', ngx.var.uri, ' exiting=', tostring(ngx.worker.exiting()))"}
]}]}
EOF
start_api "$T/bundle.json"
python3 -c 'import sys; sys.stdout.write("x" * (64 << 20))' >"$T/html/big.bin"   # 64 MiB

write_conf 3 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        location = /facts { dynacode_content; }
        location / { root $T/html; }
    }
"
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: facts.test' http://127.0.0.1:$PORT/facts | grep -q http"
then ok "plugins in force"; else fail "plugins not in force after 10 s"; fi

req facts.test /facts
expect_eq "ngx.worker.count() is worker_processes; not exiting while serving" \
    "$(cat "$T/b")" "3 false http"
expect_log "log phase of a request served normally: not exiting" \
    "facts-marker uri=/facts exiting=false"

# a slow download outlives the start of a graceful stop: its log phase sees the worker exiting
curl -s -o /dev/null --max-time 60 --limit-rate 16M -H "Host: facts.test" \
    "http://127.0.0.1:$PORT/big.bin" &
EXTRA_PIDS+=("$!")
slow=$!
sleep 1
kill -QUIT "$NGINX_PID"
wait "$slow"
expect_log "log phase of a request that ends during a graceful stop: exiting" \
    "facts-marker uri=/big.bin exiting=true"

finish
