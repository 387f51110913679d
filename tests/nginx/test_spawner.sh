#!/bin/bash
# test_spawner.sh - each worker's compiler spawner in a real nginx: bundles compiled in a worker
# leave no "unknown process exited" nor "waitpid() failed" in the error log (nginx never sees a
# compiler helper), each worker has its spawner as its one child and no zombie anywhere, a
# reload ends the old spawners quietly; and with dynacode_harden on, where a worker can no
# longer fork, plugins still compile and load after several bundle changes, and a plugin that
# does not compile is still reported as such.
. "$(dirname "$0")/lib.sh"

bundle() {  # bundle VERSION FILE [EXTRA_PLUGIN_JSON]
    cat >"$2.tmp" <<EOF
{"general": {"status": "enabled"}, "domains": [{"name": "^sp\\\\.test\$", "plugins": [
  {"name": "version", "phase": "content", "code": "local t = {n = '$1'}\\nngx.say(t.n)"}${3:-}]}]}
EOF
    mv "$2.tmp" "$2"
}

serves() {  # serves VERSION: the answer is VERSION
    [ "$(curl -s --max-time 5 -H 'Host: sp.test' "http://127.0.0.1:$PORT/")" = "$1" ]
}

# no_process_noise LABEL: the error log names no process nginx did not start
no_process_noise() {
    local noise
    noise=$(grep -E 'unknown process|waitpid\(\) failed' "$T/logs/error.log")
    expect_eq "$1: no \"unknown process\" nor \"waitpid() failed\" in the error log" "$noise" ""
}

# worker_children LABEL: each worker's only child is its spawner; no zombie under either
worker_children() {
    local w kids n st sp bad=0
    for w in $(nginx_workers); do
        kids=$(ps --ppid "$w" -o pid=,stat= 2>/dev/null)
        n=$(printf '%s' "$kids" | grep -c .)
        read -r sp st <<<"$kids"
        if [ "$n" != 1 ] || [ "${st:0:1}" = Z ]; then
            bad=1; echo "# worker $w children: $kids"
        elif ps --ppid "$sp" -o stat= 2>/dev/null | grep -q '^Z'; then
            bad=1; echo "# spawner $sp has a zombie child"
        fi
    done
    expect_eq "$1: each worker has one child, its spawner, and no zombie" "$bad" 0
}

# publish VERSION...: each version in turn, served before the next
publish() {
    local v
    for v in "$@"; do
        bundle "$v" "$T/bundle.json"
        if wait_until 15 serves "$v"; then ok "$v compiled and in force"
        else fail "$v not in force within 15 s"; fi
    done
}

conf() {  # conf HARDEN
    write_conf 2 "
    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode_harden $1;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT reuseport;
        location = /dynacode-status { dynacode_status; }
        location / { dynacode_content; }
    }
"
}

bundle v1 "$T/bundle.json"
start_api "$T/bundle.json"

# ---- without hardening: the noise is gone ----
conf off
start_nginx
if wait_until 15 serves v1; then ok "v1 in force"; else fail "v1 not in force"; fi
publish v2 v3 v4
worker_children "harden off"
no_process_noise "harden off, 4 bundles compiled"

old_spawners=""
for w in $(nginx_workers); do old_spawners="$old_spawners $(ps --ppid "$w" -o pid= | tr -d ' ')"; done
reload_nginx || fail "reload"
if wait_until 10 sh -c "for p in $old_spawners; do [ -d /proc/\$p ] && exit 1; done; exit 0"
then ok "reload: the old workers' spawners ended"; else fail "reload: an old spawner lives on"; fi
publish v5
no_process_noise "after a reload"
stop_nginx

# ---- hardened workers: no new process, plugins still compile ----
: >"$T/logs/error.log"
conf on
start_nginx
for w in $(nginx_workers); do
    expect_eq "harden on: worker $w runs under a seccomp filter" \
        "$(awk '/^Seccomp:/ { print $2 }' /proc/"$w"/status)" 2
done
publish h1 h2 h3 h4
worker_children "harden on"

# a plugin that does not compile: reported, the bundle's other plugins load
before=$(status_json 's["events"]["bg_compile_error"]')
bundle h5 "$T/bundle.json" ', {"name": "broken", "phase": "access", "code": "return +"}'
if wait_until 15 sh -c "[ \$(curl -s -H 'Host: status' http://127.0.0.1:$PORT/dynacode-status |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[\"events\"][\"bg_compile_error\"])') -gt $before ]"
then ok "harden on: a plugin that does not compile is reported"
else fail "harden on: no bg_compile_error for a broken plugin"; fi
if wait_until 10 serves h5; then ok "harden on: the bundle's other plugin is in force"
else fail "harden on: h5 not in force"; fi
publish h6
no_process_noise "harden on, 6 bundles"
if grep -qE 'fork: Operation not permitted|compiler spawner' "$T/logs/error.log"; then
    fail "harden on: the error log reports a compiler start failure"
    grep -E 'fork: Operation not permitted|compiler spawner' "$T/logs/error.log" | head -3
else
    ok "harden on: no compiler start failure in the error log"
fi

finish
