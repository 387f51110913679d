#!/usr/bin/env bash
# run-example.sh - the complete example on a real nginx: builds dynacode and its nginx module,
# serves usage/response.json from a local API on 127.0.0.1, starts nginx (private prefix,
# loopback, free ports) with the original example's three servers, shows each plugin working
# with curl, then changes the bundle on the API and shows the change picked up without a reload.
# Everything it starts is stopped when it ends.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
run="$here/.run"

bash "$top/scripts/install-deps.sh" >/dev/null
echo "### building (cmake --build build)"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"$(nproc)" >/dev/null
module="$top/build/ngx_http_dynacode_module.so"

rm -rf "$run"
mkdir -p "$run/logs" "$run/tmp"
cp "$here/response.json" "$run/bundle.json"

API_PID=
NGINX_PID=
cleanup() {
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null
  true
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_for() { # wait_for SECONDS CMD...
  local n=$(( $1 * 10 )); shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# The API: serves the bundle file (re-read at every request) with an ETag.
python3 "$top/tests/tools/api_server.py" --bundle "$run/bundle.json" --port 0 --max-seconds 600 \
  > "$run/api.out" 2> "$run/api.err" &
API_PID=$!
wait_for 10 test -s "$run/api.out" || { cat "$run/api.err"; exit 1; }
api="http://127.0.0.1:$(head -n1 "$run/api.out")/bundle"

port=$(free_port)
user=""
[ "$(id -u)" -eq 0 ] && user="user root;"
cat > "$run/nginx.conf" <<CONF
load_module $module;
$user
worker_processes 2;
error_log $run/logs/error.log notice;
pid $run/logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $run/tmp/body;
    proxy_temp_path $run/tmp/proxy;
    fastcgi_temp_path $run/tmp/fastcgi;
    uwsgi_temp_path $run/tmp/uwsgi;
    scgi_temp_path $run/tmp/scgi;

    dynacode_api_uri $api;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0s;
    dynacode_offline_file $run/offline.json;
    dynacode on;

    # skipped by the bundle's skip_domains: it shows dynacode's own metrics
    server {
        listen 127.0.0.1:$port;
        server_name metrics.server.local.com;
        location / { dynacode_status; }
    }
    # content produced by a plugin (and guarded by the token check)
    server {
        listen 127.0.0.1:$port;
        server_name dynamic.local.com;
        location / { dynacode_content; }
    }
    # a plain content handler that plugins decorate
    server {
        listen 127.0.0.1:$port;
        server_name clock.local.com;
        location / { return 200 "the time is \$time_iso8601\n"; }
    }
}
CONF

/usr/sbin/nginx -p "$run/" -c "$run/nginx.conf" -g 'daemon off; master_process on;' \
  > "$run/logs/stdout.log" 2>&1 &
NGINX_PID=$!
wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$port/" || { tail "$run/logs/error.log"; exit 1; }
echo "### nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*\///') with the dynacode module on 127.0.0.1:$port, polling $api"

show() { # show TITLE CURL_ARGS...
  echo
  echo "### $1"
  shift
  echo "\$ curl -i $(printf '%q ' "$@")"
  curl -s -i --max-time 5 "$@" | tr -d '\r' | grep -v -E '^(Date|Server|Connection):'
}

wait_for 10 sh -c "curl -s -H 'Host: dynamic.local.com' 'http://127.0.0.1:$port/?token=token' | grep -q hello"
show "dynamic.local.com with ?token=token: the plugin's content, the CORS header, the cookie" \
  -H 'Host: dynamic.local.com' "http://127.0.0.1:$port/?token=token"
show "dynamic.local.com with the cookie superstition=token" \
  -H 'Host: dynamic.local.com' -H 'Cookie: superstition=token' "http://127.0.0.1:$port/"
show "dynamic.local.com without the token: 403 from the access plugin" \
  -H 'Host: dynamic.local.com' "http://127.0.0.1:$port/"
show "clock.local.com: nginx's own content, with the \"*\" domain's header" \
  -H 'Host: clock.local.com' "http://127.0.0.1:$port/"

echo
echo "### a change on the API: the content plugin now says something else (no reload)"
sed -i 's/hello world!/hello from a hot update!/' "$run/bundle.json"
start=$(date +%s.%N)
if wait_for 5 sh -c "curl -s -H 'Host: dynamic.local.com' 'http://127.0.0.1:$port/?token=token' | grep -q 'hot update'"; then
  echo "picked up after $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (poll interval 1 s)"
else
  echo "the change was not picked up within 5 s"; exit 1
fi
show "dynamic.local.com after the update" -H 'Host: dynamic.local.com' "http://127.0.0.1:$port/?token=token"

echo
echo "### metrics.server.local.com: dynacode's status page (Prometheus format, some lines)"
curl -s --max-time 5 -H 'Host: metrics.server.local.com' "http://127.0.0.1:$port/?format=prometheus" \
  | grep -E '^dynacode_(events_total\{event="bg_(fetch_api_success|updated_plugins)"|plugin_runs_total)'
echo "(JSON: curl -H 'Host: metrics.server.local.com' http://127.0.0.1:$port/)"
echo
echo "(nginx and the API are stopped now; logs were in $run/logs)"
