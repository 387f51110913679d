#!/bin/bash
# bench_parts.sh - where dynacode's time goes in a request, in real time: the worker CPU per
# request of plain nginx, of dynacode running the three bench plugins, of dynacode running
# three plugins that do nothing but write the body once, and of dynacode with each of the
# three bench plugins alone (the other two doing nothing), side by side with lua-nginx-module
# running the three snippets and running three that do nothing but write the body once. The
# differences give each plugin's share and the engine's, and the same split for
# lua-nginx-module. Prints figures only.
#
# usage: tests/bench/bench_parts.sh [BUILD_DIR]   (default: $DC_BUILD_DIR or build)
# env:   BENCH_D=seconds per wrk run (5), BENCH_R=rounds (5), BENCH_SKIP_LUA=1
#
# As bench_nginx.sh: 2 workers each, `listen ... reuseport`, wrk -t2 -c32, contenders one
# after the other, the round repeated R times, medians.
# shellcheck source=tests/bench/bench_lib.sh disable=SC2154
. "$(dirname "$0")/bench_lib.sh"

D=${BENCH_D:-5}
R=${BENCH_R:-5}

echo "# bench_parts: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
     "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
     "$("$NGINX" -v 2>&1 | sed 's/.*: //'), wrk -t2 -c32 -d${D}s, $R rounds"

new_instance plain 2 "" "
    server {
        listen 127.0.0.1:@PORT@ reuseport;
        location / { return 200 \"olá mundo!\nhello world!\n\"; }
    }"
if [ -z "${BENCH_SKIP_LUA:-}" ]; then
    new_lua_instance lua
    new_lua_instance luanone "$LUA_SNIPPETS_NOTHING"
fi

# instance name, the plugins kept (bench_bundle.py --parts), label
PARTS=("none|none|dynacode, three plugins doing nothing but one print"
       "access|access|dynacode, the access plugin alone"
       "content|content|dynacode, the content plugin alone"
       "header|header|dynacode, the header_filter plugin alone"
       "all|access,content,header|dynacode, the three plugins")
for row in "${PARTS[@]}"; do
    IFS='|' read -r name parts label <<<"$row"
    python3 "$BENCH/bench_bundle.py" --domains 2 --parts "$parts" "$T/bundle-$name.json"
    start_api "$name" "$T/bundle-$name.json"
    new_instance "$name" 2 "load_module $MODULE;" "
    dynacode_api_uri http://127.0.0.1:$(eval echo "\$API_PORT_$name")/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;
    server {
        listen 127.0.0.1:@PORT@ reuseport;
        location / { root @PREFIX@/html; dynacode_content; }
    }"
done
for n in "${INSTANCES[@]}"; do start_instance "$n"; done
for row in "${PARTS[@]}"; do
    IFS='|' read -r name parts label <<<"$row"
    if ! wait_until 60 sh -c "[ \"\$(curl -s -H 'Host: bench.test' 'http://127.0.0.1:$(eval echo "\$PORT_$name")/?token=token' | tail -n 1)\" = 'hello world!' ]"; then
        echo "$label: the plugins do not answer after 60 s" >&2
        tail -n 20 "$T/$name/logs/error.log" >&2; exit 1
    fi
done

ORDER=(plain)
[ -z "${BENCH_SKIP_LUA:-}" ] && ORDER+=(lua luanone)
for row in "${PARTS[@]}"; do ORDER+=("${row%%|*}"); done
echo "# warm-up: 1 s per contender"
for n in "${ORDER[@]}"; do run_wrk "$n" "$T/warm" -t2 -c32 -d1s -H "Host: bench.test"; done
for round in $(seq 1 "$R"); do
    echo "# round $round/$R"
    for n in "${ORDER[@]}"; do
        run_wrk "$n" "$T/res-$n" -t2 -c32 -d"${D}s" -H "Host: bench.test"
        echo "#   $n: $(tail -n 1 "$T/res-$n" | awk '{ printf "%s req/s, %s us CPU/req, %s non-2xx", $2, $3, $4 }')"
    done
done

cpu() { median "$T/res-$1" 3; }
over() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f us", a - b }'; }
echo
echo "## Worker CPU per request (medians of $R runs of ${D} s)"
echo
echo "| instance | req/s | CPU per request | over plain nginx | over the plugins doing nothing |"
echo "|---|---|---|---|---|"
p=$(cpu plain) z=$(cpu none)
# shellcheck disable=SC2016  # the backquotes are Markdown's
printf '| plain nginx `return 200` | %s | %s us | | |\n' "$(printf "%'.0f" "$(median "$T/res-plain" 2)")" "$p"
if [ -z "${BENCH_SKIP_LUA:-}" ]; then
    printf '| lua-nginx-module, three snippets doing nothing but one print | %s | %s us | %s | |\n' \
        "$(printf "%'.0f" "$(median "$T/res-luanone" 2)")" "$(cpu luanone)" \
        "$(over "$(cpu luanone)" "$p")"
    printf '| lua-nginx-module, the 3 snippets inline | %s | %s us | %s | %s (over its snippets doing nothing) |\n' \
        "$(printf "%'.0f" "$(median "$T/res-lua" 2)")" "$(cpu lua)" "$(over "$(cpu lua)" "$p")" \
        "$(over "$(cpu lua)" "$(cpu luanone)")"
fi
for row in "${PARTS[@]}"; do
    IFS='|' read -r name parts label <<<"$row"
    c=$(cpu "$name")
    printf '| %s | %s | %s us | %s | %s |\n' "$label" \
        "$(printf "%'.0f" "$(median "$T/res-$name" 2)")" "$c" "$(over "$c" "$p")" \
        "$([ "$name" = none ] || over "$c" "$z")"
done
echo
for n in "${ORDER[@]}"; do
    c=$(log_problems "$n" | wc -l)
    [ "$c" -gt 0 ] && echo "# $n: $c error lines in its error log" && log_problems "$n" | head -n 3
done
exit 0
