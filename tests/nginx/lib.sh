# lib.sh - helpers for the nginx integration tests (sourced): a private prefix, free loopback
# ports, the test API server (tests/tools/api_server.py), a real nginx with the built module,
# bounded waits, and checks that print "ok"/"FAIL"; finish prints "N passed, N failed". nginx
# and the API server are stopped on every exit path (trap), by their process ids.
set -u

MODULE=${DC_NGINX_MODULE:?set DC_NGINX_MODULE to the built ngx_http_dynacode_module.so}
NGINX=${DC_NGINX_BIN:-/usr/sbin/nginx}
SRC=${DC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
API_SERVER="$SRC/tests/tools/api_server.py"

T=$(mktemp -d /tmp/dc-nginx.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/logs" "$T/tmp" "$T/html"

passed=0
failed=0
API_PID=
API_PORT=
NGINX_PID=
EXTRA_PIDS=()   # more processes a test started (more API servers, clients): ended at exit

ok() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; }

now() { date +%s.%N; }
# elapsed START: seconds since START (from now), 3 decimals
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
# lt A B: A < B (decimals)
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

PORT=$(free_port)   # nginx listens here (chosen now: confs embed it)

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds; 1 after SECONDS.
wait_until() {
    local deadline
    deadline=$(awk -v t="$1" -v n="$(now)" 'BEGIN { printf "%.3f", n + t }')
    shift
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        lt "$(now)" "$deadline" || return 1
        sleep 0.1
    done
}

# ---- the API server ----

# start_api BUNDLE_FILE [NAME]: API_PORT, API_PID (NAME, default "api", names its output files);
# API_ARGS (optional) adds options of the server (e.g. --sig)
start_api() {
    local name=${2:-api}
    # shellcheck disable=SC2086
    python3 "$API_SERVER" --bundle "$1" --port 0 --max-seconds 300 ${API_ARGS:-} \
        >"$T/$name.out" 2>"$T/$name.err" &
    API_PID=$!
    if ! wait_until 10 test -s "$T/$name.out"; then
        echo "the API server did not start:" >&2
        cat "$T/$name.err" >&2
        exit 1
    fi
    API_PORT=$(head -n 1 "$T/$name.out")
}

stop_api() {
    [ -n "$API_PID" ] || return 0
    kill "$API_PID" 2>/dev/null
    wait "$API_PID" 2>/dev/null
    API_PID=
}

# api_control QUERY: prints the answer of /control?QUERY
api_control() {
    curl -s --max-time 5 "http://127.0.0.1:$API_PORT/control?$1"
}

# api_count: bundle requests the API server saw
api_count() {
    api_control count | python3 -c 'import json, sys; print(json.load(sys.stdin)["bundle"])'
}

# ---- nginx ----

# write_conf WORKERS HTTP_BODY: $T/nginx.conf with the module loaded, logs and temporary files
# in the prefix; HTTP_BODY goes inside http { }.
write_conf() {
    local workers=$1 body=$2 user=
    [ "$(id -u)" -eq 0 ] && user="user root;"
    cat >"$T/nginx.conf" <<EOF
load_module $MODULE;
$user
worker_processes $workers;
error_log $T/logs/error.log info;
pid $T/logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $T/tmp/body;
    proxy_temp_path $T/tmp/proxy;
    fastcgi_temp_path $T/tmp/fastcgi;
    uwsgi_temp_path $T/tmp/uwsgi;
    scgi_temp_path $T/tmp/scgi;
$body
}
EOF
}

# nginx_test: `nginx -t` on $T/nginx.conf; output in $T/t.out, status returned
nginx_test() {
    "$NGINX" -p "$T/" -c "$T/nginx.conf" -t >"$T/t.out" 2>&1
}

nginx_workers() {
    [ -n "$NGINX_PID" ] && ps --ppid "$NGINX_PID" -o pid= 2>/dev/null | tr -d ' '
}

# start_nginx: the master in the foreground of a background job (NGINX_PID), then waits for
# PORT to answer.
start_nginx() {
    "$NGINX" -p "$T/" -c "$T/nginx.conf" -g 'daemon off; master_process on;' \
        >>"$T/logs/stdout.log" 2>&1 &
    NGINX_PID=$!
    if ! wait_until 10 curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/"; then
        echo "nginx did not start:" >&2
        tail -n 20 "$T/logs/error.log" "$T/logs/stdout.log" >&2
        exit 1
    fi
}

stop_nginx() {
    local pid=$NGINX_PID workers w
    [ -n "$pid" ] || return 0
    workers=$(nginx_workers)
    kill -TERM "$pid" 2>/dev/null
    if ! wait_until 10 sh -c "! kill -0 $pid 2>/dev/null"; then
        for w in $workers; do kill -KILL "$w" 2>/dev/null; done
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    NGINX_PID=
}

# workers_replaced OLD_PIDS...: none of the old workers is left, and new ones are up
workers_replaced() {
    local w now_workers
    now_workers=$(nginx_workers)
    [ -n "$now_workers" ] || return 1
    for w in "$@"; do
        printf '%s\n' "$now_workers" | grep -qx "$w" && return 1
    done
    return 0
}

# reload_nginx: HUP, then waits until the old workers are gone and new ones serve
reload_nginx() {
    local old
    # shellcheck disable=SC2046
    old=$(nginx_workers)
    kill -HUP "$NGINX_PID"
    # shellcheck disable=SC2086
    if ! wait_until 15 workers_replaced $old; then
        echo "the old workers did not leave after HUP" >&2
        return 1
    fi
}

cleanup() {
    local p
    for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    stop_nginx
    stop_api
    if [ "$failed" -ne 0 ] || [ -n "${DC_KEEP:-}" ]; then
        echo "# left for inspection: $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- requests and checks ----

# req HOST PATH [curl args...]: STATUS; headers in $T/h, body in $T/b
# shellcheck disable=SC2034
req() {
    local host=$1 path=$2
    shift 2
    STATUS=$(curl -s --max-time 10 -D "$T/h" -o "$T/b" -w '%{http_code}' -H "Host: $host" \
             "$@" "http://127.0.0.1:$PORT$path")
}

# header NAME: the first value of response header NAME in $T/h (empty when none)
header() {
    tr -d '\r' <"$T/h" | awk -v n="$(echo "$1" | tr '[:upper:]' '[:lower:]')" -F': ' \
        'tolower($1) == n { sub(/^[^:]*: /, ""); print; exit }'
}

expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got \"$2\", expected \"$3\""; fi
}

expect_contains() {
    case "$2" in
        *"$3"*) ok "$1" ;;
        *) fail "$1: \"$3\" not in \"$(printf '%s' "$2" | head -c 300)\"" ;;
    esac
}

expect_not_contains() {
    case "$2" in
        *"$3"*) fail "$1: \"$3\" unexpectedly in \"$(printf '%s' "$2" | head -c 300)\"" ;;
        *) ok "$1" ;;
    esac
}

# expect_log NAME TEXT: the error log has TEXT (fixed string), within 5 s
expect_log() {
    if wait_until 5 grep -qF -- "$2" "$T/logs/error.log"; then ok "$1"; else
        fail "$1: \"$2\" not in error.log"; tail -n 10 "$T/logs/error.log" | sed 's/^/    | /'; fi
}

# status_json EXPR: evaluates the Python expression EXPR on the JSON status page (as s)
status_json() {
    curl -s --max-time 5 -H "Host: status" "http://127.0.0.1:$PORT/dynacode-status" |
        python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"
}

# bundle_gen: the store's generation, from the status page (0 when none)
bundle_gen() {
    status_json 's["bundle"]["generation"]' 2>/dev/null || echo 0
}

finish() {
    echo "$passed passed, $failed failed"
    if [ "$failed" -ne 0 ] && [ -f "$T/logs/error.log" ]; then
        echo "# last lines of error.log:"
        tail -n 25 "$T/logs/error.log" | sed 's/^/    | /'
    fi
    [ "$failed" -eq 0 ]
}
