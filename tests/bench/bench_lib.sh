# bench_lib.sh - helpers shared by the nginx benchmarks (sourced): a private temporary folder,
# several nginx instances side by side (each its own prefix and free loopback port), API
# servers, wrk runs with the workers' CPU read from /proc, medians. Everything started here is
# stopped on exit (trap), by process id. Prints figures only: nothing here passes or fails on
# timing.
set -u

BUILD=${1:-${DC_BUILD_DIR:-build}}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "no build folder: ${1:-build}" >&2; exit 2; }
MODULE=${DC_NGINX_MODULE:-$BUILD/ngx_http_dynacode_module.so}
CLI=$BUILD/dynacode
NGINX=${DC_NGINX_BIN:-/usr/sbin/nginx}
# shellcheck disable=SC2034  # used by the scripts that source this file
LUA_MODULES=${DC_LUA_MODULES:-/usr/lib/nginx/modules}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck disable=SC2034
BENCH=$SRC/tests/bench
API_SERVER=$SRC/tests/tools/api_server.py

for f in "$MODULE" "$CLI" "$NGINX"; do
    [ -e "$f" ] || { echo "missing: $f (build first: cmake -S . -B build && cmake --build build)" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is needed" >&2; exit 2; }

# The seed's three plugins written by hand for lua-nginx-module: the body of the location
# that every benchmark's lua-nginx-module contender serves (the same code as
# bench_bundle.py's plugins).
# shellcheck disable=SC2034  # used by the scripts that source this file
LUA_SNIPPETS=$(cat <<'EOF'
            access_by_lua_block {
                local token = ngx.var.arg_token or ngx.var.cookie_superstition

                if token ~= 'token' then
                  return ngx.exit(ngx.HTTP_FORBIDDEN)
                else
                  ngx.header['Set-Cookie'] = {'superstition=token'}
                end
            }
            content_by_lua_block {
                ngx.say("olá mundo!")
                ngx.say("hello world!")
            }
            header_filter_by_lua_block {
                ngx.header["Access-Control-Allow-Origin"] = "http://dynamic.local.com"
            }
EOF
)

# The same three phases doing nothing but writing the body once (bench_bundle.py --parts
# none): what lua-nginx-module costs before the snippets do any work.
# shellcheck disable=SC2034
LUA_SNIPPETS_NOTHING=$(cat <<'EOF'
            access_by_lua_block { local x = 1 }
            content_by_lua_block { ngx.print("olá mundo!\nhello world!\n") }
            header_filter_by_lua_block { local x = 1 }
EOF
)

T=$(mktemp -d /tmp/dc-bench.XXXXXX)
chmod 755 "$T"
PIDS=()          # API servers, background clients
INSTANCES=()     # nginx instance names

now() { date +%s.%N; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_until SECONDS CMD...: CMD every 0.1 s until it succeeds; 1 after SECONDS
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

# start_api NAME BUNDLE: an API server serving BUNDLE (re-read at every request); its port in
# API_PORT_<NAME>
start_api() {
    local name=$1
    python3 "$API_SERVER" --bundle "$2" --port 0 --max-seconds 3600 \
        >"$T/api-$name.out" 2>"$T/api-$name.err" &
    PIDS+=($!)
    if ! wait_until 10 test -s "$T/api-$name.out"; then
        echo "the API server $name did not start:" >&2; cat "$T/api-$name.err" >&2; exit 1
    fi
    printf -v "API_PORT_$name" '%s' "$(head -n 1 "$T/api-$name.out")"
}

# new_instance NAME WORKERS HEAD HTTP_BODY: writes $T/NAME/nginx.conf; HEAD goes before the
# events block (load_module lines), HTTP_BODY inside http { }. The body may use @PORT@ and
# @PREFIX@. Port in PORT_<NAME>.
new_instance() {
    local name=$1 workers=$2 head=$3 body=$4 p=$T/$1 port user=
    port=$(free_port)
    printf -v "PORT_$name" '%s' "$port"
    mkdir -p "$p/logs" "$p/tmp" "$p/html"
    echo "static" >"$p/html/index.html"
    [ "$(id -u)" -eq 0 ] && user="user root;"
    body=${body//@PORT@/$port}
    body=${body//@PREFIX@/$p}
    cat >"$p/nginx.conf" <<EOF
$head
$user
worker_processes $workers;
error_log $p/logs/error.log warn;
pid $p/logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
$body
}
EOF
    INSTANCES+=("$name")
}

# new_lua_instance NAME [SNIPPETS]: lua-nginx-module serving SNIPPETS (LUA_SNIPPETS by
# default), as new_instance (2 workers, a socket per worker)
new_lua_instance() {
    new_instance "$1" 2 "load_module $LUA_MODULES/ndk_http_module.so;
load_module $LUA_MODULES/ngx_http_lua_module.so;" "
    server {
        listen 127.0.0.1:@PORT@ reuseport;
        location / {
${2:-$LUA_SNIPPETS}
        }
    }"
}

master_pid() { cat "$T/$1/master.pid" 2>/dev/null; }
workers_of() {
    local m
    m=$(master_pid "$1")
    [ -n "$m" ] && ps --ppid "$m" -o pid= 2>/dev/null | tr -d ' '
}

# start_instance NAME [HOST]: starts nginx (master in the foreground of a background job) and
# waits until it answers
start_instance() {
    local name=$1 port p=$T/$1
    port=$(eval echo "\$PORT_$name")
    if ! "$NGINX" -p "$p/" -c "$p/nginx.conf" -t >"$p/t.out" 2>&1; then
        echo "nginx -t failed for $name:" >&2; cat "$p/t.out" >&2; exit 1
    fi
    "$NGINX" -p "$p/" -c "$p/nginx.conf" -g 'daemon off; master_process on;' \
        >>"$p/logs/stdout.log" 2>&1 &
    echo $! >"$p/master.pid"
    if ! wait_until 15 curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
        echo "nginx $name did not start:" >&2
        tail -n 20 "$p/logs/error.log" "$p/logs/stdout.log" >&2; exit 1
    fi
}

stop_instance() {
    local name=$1 m w workers
    m=$(master_pid "$name")
    [ -n "$m" ] || return 0
    workers=$(workers_of "$name")
    kill -TERM "$m" 2>/dev/null
    if ! wait_until 10 sh -c "! kill -0 $m 2>/dev/null"; then
        for w in $workers; do kill -KILL "$w" 2>/dev/null; done
        kill -KILL "$m" 2>/dev/null
    fi
    wait "$m" 2>/dev/null
    rm -f "$T/$name/master.pid"
}

# status_of NAME EXPR: the Python expression EXPR on the instance's JSON status page (as s)
status_of() {
    local port
    port=$(eval echo "\$PORT_$1")
    curl -s --max-time 5 -H "Host: status" "http://127.0.0.1:$port/dynacode-status" |
        python3 -c "import json, sys; s = json.load(sys.stdin); print($2)"
}
generation_of() { status_of "$1" 's["bundle"]["generation"]' 2>/dev/null || echo 0; }

# worker_cpu_ticks NAME: utime + stime of the instance's workers, clock ticks
worker_cpu_ticks() {
    local w sum=0 f
    for w in $(workers_of "$1"); do
        f=$(awk '{ print $14 + $15 }' "/proc/$w/stat" 2>/dev/null) || continue
        sum=$((sum + ${f:-0}))
    done
    echo "$sum"
}
CLK_TCK=$(getconf CLK_TCK)

# worker_rss_kb NAME: the workers' VmRSS, space separated
worker_rss_kb() {
    local w out=
    for w in $(workers_of "$1"); do
        out="$out $(awk '/^VmRSS/ { print $2 }' "/proc/$w/status" 2>/dev/null)"
    done
    echo "${out# }"
}

# run_wrk NAME OUTFILE WRK_ARGS...: wrk against the instance; appends to OUTFILE one line
# "reqs req_per_s cpu_us_per_req non2xx errors" (worker CPU from /proc, before and after)
run_wrk() {
    local name=$1 out=$2 port c0 c1 log reqs rps bad errs
    shift 2
    port=$(eval echo "\$PORT_$name")
    log=$T/wrk-last.out
    c0=$(worker_cpu_ticks "$name")
    wrk "$@" "http://127.0.0.1:$port/?token=token" >"$log" 2>&1
    c1=$(worker_cpu_ticks "$name")
    reqs=$(awk '/requests in/ { print $1 }' "$log")
    rps=$(awk '/^Requests\/sec/ { print $2 }' "$log")
    bad=$(awk '/Non-2xx/ { print $NF }' "$log")
    errs=$(awk '/Socket errors/ { s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s }' "$log")
    [ -n "$reqs" ] || { echo "wrk failed against $name:" >&2; cat "$log" >&2; reqs=0 rps=0; }
    awk -v r="$reqs" -v s="$rps" -v a="$c0" -v b="$c1" -v hz="$CLK_TCK" -v bad="${bad:-0}" \
        -v e="${errs:-0}" 'BEGIN { printf "%d %.0f %.2f %d %d\n", r, s,
        (r > 0 ? (b - a) / hz * 1e6 / r : 0), bad, e }' >>"$out"
    cat "$log" >>"$out.wrk"
}

# median FILE COLUMN: the median of COLUMN over FILE's lines
median() {
    awk -v c="$2" '{ print $c }' "$1" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
             else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
sum_col() { awk -v c="$2" '{ s += $c } END { print s + 0 }' "$1"; }

# ratio A B: A / B, 2 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

# log_problems NAME: lines of the instance's error log at [error] level or worse, and the
# master's notes of workers that died
log_problems() {
    grep -E '\[(error|crit|alert|emerg)\]|exited on signal' "$T/$1/logs/error.log" 2>/dev/null
}

bench_cleanup() {
    local p n
    for n in "${INSTANCES[@]}"; do stop_instance "$n"; done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if [ -n "${DC_KEEP:-}" ]; then echo "# left for inspection: $T"; else rm -rf "$T"; fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
