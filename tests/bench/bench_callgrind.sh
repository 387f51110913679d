#!/bin/bash
# bench_callgrind.sh - the instructions one request costs, counted by Valgrind's callgrind in a
# single nginx process: plain nginx, plain nginx adding the same two headers, lua-nginx-module
# with the three bench snippets, and dynacode with the same three plugins. Instructions do not
# depend on the machine's load, so this compares builds and changes on a shared, noisy machine
# where req/s moves by 30%; it is not a throughput figure (no cache, no lock, no kernel time).
# Under callgrind the module keeps its allocator's block cache (only heap-checking tools turn
# it off), so the count is the product's path.
# Prints figures only.
#
# usage: tests/bench/bench_callgrind.sh [BUILD_DIR]   (default: $DC_BUILD_DIR or build)
# env:   BENCH_N=requests per contender (2000), DC_CALLGRIND_MODULE=the module to count (the
#        test build's by default: the product's compiler helper cannot start under Valgrind,
#        the test build's can, unconfined, when told so), BENCH_CG_KEEP=DIR keeps the profiles
#        there (cg.PORT.MODE.2: the counted requests, for callgrind_annotate).
# shellcheck source=tests/bench/bench_lib.sh disable=SC2154
. "$(dirname "$0")/bench_lib.sh"

N=${BENCH_N:-2000}
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
command -v callgrind_annotate >/dev/null || { echo "callgrind_annotate is needed" >&2; exit 2; }

# the test build of the module (built with the default build): its compiler helper may run
# unconfined under Valgrind, where no seccomp filter can be set up; the product's cannot start
MOD=${DC_CALLGRIND_MODULE:-$BUILD/ngx_http_dynacode_module_test.so}
[ -e "$MOD" ] || { echo "missing: $MOD (the default build makes it)" >&2; exit 2; }

python3 "$BENCH/bench_bundle.py" --domains 2 --version 1 "$T/bundle.json"
start_api cg "$T/bundle.json"

P=$T/cg
mkdir -p "$P/logs" "$P/tmp" "$P/html"
PORT_PLAIN=$(free_port) PORT_FLOOR=$(free_port) PORT_LUA=$(free_port) PORT_DC=$(free_port)
user=
[ "$(id -u)" -eq 0 ] && user="user root;"
cat >"$P/nginx.conf" <<EOF
load_module $MOD;
load_module $LUA_MODULES/ndk_http_module.so;
load_module $LUA_MODULES/ngx_http_lua_module.so;
$user
env DC_VALGRIND_UNCONFINED;
daemon off;
master_process off;
worker_processes 1;
error_log $P/logs/error.log notice;
pid $P/logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $P/tmp/b; proxy_temp_path $P/tmp/p; fastcgi_temp_path $P/tmp/f;
    uwsgi_temp_path $P/tmp/u; scgi_temp_path $P/tmp/s;
    dynacode_api_uri http://127.0.0.1:$API_PORT_cg/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    server {
        listen 127.0.0.1:$PORT_PLAIN;
        location / { return 200 "olá mundo!\nhello world!\n"; }
    }
    server {
        listen 127.0.0.1:$PORT_FLOOR;
        location / {
            add_header Set-Cookie "superstition=token";
            add_header Access-Control-Allow-Origin "http://dynamic.local.com";
            return 200 "olá mundo!\nhello world!\n";
        }
    }
    server {
        listen 127.0.0.1:$PORT_LUA;
        location / {
$LUA_SNIPPETS
        }
    }
    server {
        listen 127.0.0.1:$PORT_DC;
        location / { dynacode on; dynacode_content; }
    }
}
EOF

# count PORT [random]: N keep-alive requests to PORT by one curl (Host: bench.test, or with
# random a host never sent before on each, r<run>-<i>.bench.test), counted between two dumps
# (the count is taken only inside nginx's event loop); prints instructions per request
count() {
    local port=$1 mode=${2:-one} out=$P/cg.$1.${2:-one} vp i
    DC_VALGRIND_UNCONFINED=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
        --collect-atstart=no --toggle-collect=ngx_process_events_and_timers \
        "$NGINX" -p "$P" -c "$P/nginx.conf" 2>"$P/valgrind.$port" &
    vp=$!
    if ! wait_until 120 sh -c "[ \"\$(curl -s -H 'Host: bench.test' 'http://127.0.0.1:$PORT_DC/?token=token' | tail -n 1)\" = 'hello world!' ]"; then
        echo "dynacode's plugins are not in force under valgrind:" >&2
        tail -n 5 "$P/logs/error.log" >&2
        kill "$vp"; wait "$vp" 2>/dev/null; exit 1
    fi
    urls() {  # urls N RUN: a curl config, one entry per request ("next": its own headers)
        for i in $(seq 1 "$1"); do
            [ "$i" -gt 1 ] && echo next
            echo "url = \"http://127.0.0.1:$port/?token=token\""
            echo 'output = "/dev/null"'
            if [ "$mode" = random ]; then echo "header = \"Host: r$2-$i.bench.test\""
            else echo 'header = "Host: bench.test"'; fi
        done
    }
    # warm: states made, caches filled, and LuaJIT's traces compiled (lua-nginx-module)
    urls 300 w >"$P/urls"
    curl -s -K "$P/urls"
    callgrind_control -d "$vp" >/dev/null 2>&1
    urls "$N" m >"$P/urls"
    curl -s -K "$P/urls"
    callgrind_control -d "$vp" >/dev/null 2>&1
    kill "$vp"; wait "$vp" 2>/dev/null
    # part 1: start to the first dump; part 2: the N requests
    [ -n "${BENCH_CG_KEEP:-}" ] && mkdir -p "$BENCH_CG_KEEP" && cp "$out.2" "$BENCH_CG_KEEP/"
    callgrind_annotate "$out.2" 2>/dev/null |
        awk -v n="$N" '/PROGRAM TOTALS/ { gsub(",", "", $1); printf "%d", $1 / n; exit }'
}

echo "# bench_callgrind: $(date -u '+%Y-%m-%d %H:%M UTC'), $("$NGINX" -v 2>&1 | sed 's/.*: //')," \
     "$N keep-alive requests per contender (curl), instructions inside nginx's event loop"
plain=$(count "$PORT_PLAIN")
floor=$(count "$PORT_FLOOR")
lua=$(count "$PORT_LUA")
dc=$(count "$PORT_DC")
dcr=$(count "$PORT_DC" random)
printf '| %-52s | %12s | %14s |\n' contender "instructions" "over plain"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..16})"
row() { printf '| %-52s | %12s | %14s |\n' "$1" "$2" "$(( $2 - plain ))"; }
row "plain nginx \`return 200\`" "$plain"
row "plain nginx with the two headers (add_header)" "$floor"
row "lua-nginx-module, 3 snippets inline" "$lua"
row "dynacode, 3 plugins" "$dc"
row "dynacode, 3 plugins, a new host on each request" "$dcr"
echo "dynacode / lua-nginx-module instructions: $(ratio "$dc" "$lua")"
