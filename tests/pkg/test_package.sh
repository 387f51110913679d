#!/bin/bash
# test_package.sh - the Debian packages: cpack makes them from the existing build (into a folder
# of the test's own), their control fields and file lists are checked, dpkg installs them into
# an empty root (its own database there, maintainer scripts run against that root), and the
# installed files serve the complete example (usage/response.json): `nginx -t` and a real nginx
# with the installed load snippet included as Debian's nginx.conf includes modules-enabled/, the
# installed module, the installed default policy; and the installed command checks the bundle.
# Then removal and purge undo the module's link. Needs dpkg, cpack and the built module.
export DC_NGINX_MODULE=unused   # lib.sh wants one: this test loads the installed module
. "$(dirname "$0")/../nginx/lib.sh"

BUILD=${DC_BUILD_DIR:?set DC_BUILD_DIR to the build folder}
ABI=${DC_NGINX_ABI:-}
R="$T/root"   # the empty root
CPACK=$(dirname "$(command -v cmake)")/cpack
[ -x "$CPACK" ] || CPACK=cpack

# ---- build ----
if "$CPACK" -G DEB --config "$BUILD/CPackConfig.cmake" -B "$T/pkg" >"$T/cpack.out" 2>&1
then ok "cpack made the packages"
else fail "cpack"; tail -n 20 "$T/cpack.out" | sed 's/^/    | /'; finish; fi
MOD_DEB=$(ls "$T"/pkg/libnginx-mod-http-dynacode_*.deb 2>/dev/null | head -n 1)
CLI_DEB=$(ls "$T"/pkg/dynacode_*.deb 2>/dev/null | head -n 1)
[ -n "$MOD_DEB" ] && [ -n "$CLI_DEB" ] && ok "two packages: $(basename "$MOD_DEB") $(basename "$CLI_DEB")" ||
    { fail "packages missing: $(ls "$T/pkg")"; finish; }

# ---- control fields and files ----
field() { dpkg-deb -f "$1" "$2"; }
expect_eq "module: package name" "$(field "$MOD_DEB" Package)" libnginx-mod-http-dynacode
expect_eq "module: architecture" "$(field "$MOD_DEB" Architecture)" "$(dpkg --print-architecture)"
depends=$(field "$MOD_DEB" Depends)
if [ -n "$ABI" ]; then
    expect_contains "module: depends on the nginx ABI ($ABI)" ", $depends," ", $ABI,"
    owner=$(dpkg-query -S "$(readlink -f "$NGINX")" 2>/dev/null | head -n 1 | cut -d: -f1)
    expect_contains "the nginx the tests run ($NGINX, package ${owner:-?}) provides that ABI" \
        "$(dpkg-query -W -f='${Provides}' "${owner:-nginx}" 2>/dev/null)" "$ABI"
else
    echo "# note: no nginx-abi-* known to the build: the ABI dependency is not checked"
fi
expect_contains "module: shared library dependencies" "$depends" "libluajit"
expect_eq "command: package name" "$(field "$CLI_DEB" Package)" dynacode
expect_contains "command: shared library dependencies" "$(field "$CLI_DEB" Depends)" "libcurl4"

dpkg-deb -c "$MOD_DEB" | awk '{ print $6 }' | sed 's|^\./|/|' | grep -v '/$' | sort >"$T/mod.list"
expect_eq "module: its files" "$(tr '\n' ' ' <"$T/mod.list")" \
    "/usr/lib/nginx/modules/ngx_http_dynacode_module.so /usr/share/nginx/modules-available/mod-http-dynacode.conf "
dpkg-deb -c "$CLI_DEB" | awk '{ print $6 }' | sed 's|^\./|/|' | grep -v '/$' | sort >"$T/cli.list"
for f in /usr/bin/dynacode /usr/share/dynacode/policy/default.json \
         /usr/share/dynacode/policy/strict.json /usr/share/dynacode/prometheus/alerts.yml \
         /usr/share/dynacode/grafana/dynacode.json; do
    grep -qx "$f" "$T/cli.list" && ok "command: ships $f" || fail "command: no $f"
done
dpkg-deb -e "$MOD_DEB" "$T/control"
for s in postinst prerm postrm; do
    [ -x "$T/control/$s" ] && ok "module: $s" || fail "module: no executable $s"
done

# ---- install into an empty root ----
# dpkg's database in the root; /etc/nginx/modules-enabled as nginx-common would make it. The
# maintainer scripts run outside a chroot (the root has no shell) and reach the root through
# DPKG_ROOT, which dpkg sets for them. Dependencies are not in the root: --force-depends.
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers" \
    "$R/etc/nginx/modules-enabled"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
host_link=/etc/nginx/modules-enabled/50-mod-http-dynacode.conf
host_before=$(ls -l "$host_link" 2>&1)
DPKG=(dpkg --root="$R" --force-script-chrootless --force-depends --no-triggers)
[ "$(id -u)" -eq 0 ] || DPKG+=(--force-not-root)
if "${DPKG[@]}" -i "$MOD_DEB" "$CLI_DEB" >"$T/dpkg.out" 2>&1
then ok "dpkg installs both into the empty root"
else fail "dpkg -i"; sed 's/^/    | /' "$T/dpkg.out" | tail -n 20; finish; fi
expect_eq "dpkg knows both as installed" \
    "$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Package} ${Status}\n' | sort | tr '\n' ';')" \
    "dynacode install ok installed;libnginx-mod-http-dynacode install ok installed;"
for f in $(cat "$T/mod.list" "$T/cli.list"); do
    [ -f "$R$f" ] || fail "not installed: $f"
done
ok "every file of both packages is in the root"
link="$R/etc/nginx/modules-enabled/50-mod-http-dynacode.conf"
expect_eq "postinst enabled the module (Debian's link)" "$(readlink "$link")" \
    /usr/share/nginx/modules-available/mod-http-dynacode.conf
expect_eq "the maintainer scripts stayed in the root" "$(ls -l "$host_link" 2>&1)" "$host_before"
expect_eq "the snippet loads the module from nginx's modules folder" \
    "$(cat "$R/usr/share/nginx/modules-available/mod-http-dynacode.conf")" \
    "load_module modules/ngx_http_dynacode_module.so;"

# ---- the installed command ----
"$R/usr/bin/dynacode" check --policy "$R/usr/share/dynacode/policy/default.json" \
    "$SRC/usage/response.json" >"$T/check.out" 2>&1
expect_eq "dynacode check of the example with the installed policy: exit 0" "$?" 0
"$R/usr/bin/dynacode" run --policy "$R/usr/share/dynacode/policy/strict.json" \
    --host dynamic.local.com --uri "/?token=token" "$SRC/usage/response.json" >"$T/run.out" 2>"$T/run.err"
expect_contains "dynacode run with the installed strict policy" "$(cat "$T/run.out")" "hello world!"

# ---- nginx with the installed snippet ----
# Debian's nginx runs with the prefix /usr/share/nginx, where modules/ leads to
# /usr/lib/nginx/modules, and its nginx.conf includes /etc/nginx/modules-enabled/*.conf. Here the
# prefix is $T: modules/ leads to the root's modules folder, and the conf includes the root's
# enabled link's target (the link itself names the real /usr/share, outside the root).
ln -s "$R/usr/lib/nginx/modules" "$T/modules"
cp "$SRC/usage/response.json" "$T/bundle.json"
start_api "$T/bundle.json"
user=
[ "$(id -u)" -eq 0 ] && user="user root;"
cat >"$T/nginx.conf" <<EOF2
include $R$(readlink "$link");
$user
worker_processes 2;
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

    dynacode_api_uri http://127.0.0.1:$API_PORT/bundle;
    dynacode_policy $R/usr/share/dynacode/policy/default.json;
    dynacode_poll_interval 1s;
    dynacode_poll_jitter 0;
    dynacode on;

    server {
        listen 127.0.0.1:$PORT;
        server_name metrics.server.local.com;
        location / { dynacode_status; }
    }
    server {
        listen 127.0.0.1:$PORT default_server;
        server_name dynamic.local.com;
        location / { root $T/html; dynacode_content; }
    }
}
EOF2
if nginx_test; then ok "nginx -t with the installed snippet and module"
else fail "nginx -t"; sed 's/^/    | /' "$T/t.out"; finish; fi
start_nginx
if wait_until 10 sh -c "curl -s -H 'Host: dynamic.local.com' 'http://127.0.0.1:$PORT/?token=token' |
        grep -q 'hello world!'"
then ok "the example's content plugin answers"; else fail "no plugin answer within 10 s"; fi
req dynamic.local.com "/?token=token"
expect_eq "token: 200" "$STATUS" 200
expect_eq "token: the example's body" "$(cat "$T/b")" "$(printf 'olá mundo!\nhello world!')"
expect_eq "token: the example's CORS header" "$(header Access-Control-Allow-Origin)" \
    "http://dynamic.local.com"
req dynamic.local.com /
expect_eq "no token: 403" "$STATUS" 403
req metrics.server.local.com "/?format=prometheus"
expect_contains "the status page of the installed module" "$(cat "$T/b")" \
    'dynacode_events_total{event="bg_fetch_api_success"}'
expect_contains "the module in use is the installed one" \
    "$(cat "/proc/$(nginx_workers | head -n 1)/maps" 2>/dev/null)" \
    "$R/usr/lib/nginx/modules/ngx_http_dynacode_module.so"
stop_nginx

# ---- removal and purge ----
if "${DPKG[@]}" -r libnginx-mod-http-dynacode >"$T/dpkg.out" 2>&1
then ok "dpkg -r"; else fail "dpkg -r"; sed 's/^/    | /' "$T/dpkg.out" | tail -n 10; fi
expect_eq "removal: the module is gone" \
    "$(test -e "$R/usr/lib/nginx/modules/ngx_http_dynacode_module.so" && echo yes || echo no)" no
expect_eq "removal: the link is moved aside" \
    "$(test -L "$link.removed" && ! test -L "$link" && echo yes || echo no)" yes
"${DPKG[@]}" -i "$MOD_DEB" >"$T/dpkg.out" 2>&1
expect_eq "reinstall: the link is back" "$(readlink "$link")" \
    /usr/share/nginx/modules-available/mod-http-dynacode.conf
if "${DPKG[@]}" -P libnginx-mod-http-dynacode dynacode >"$T/dpkg.out" 2>&1
then ok "dpkg -P"; else fail "dpkg -P"; sed 's/^/    | /' "$T/dpkg.out" | tail -n 10; fi
expect_eq "purge: no link left" "$(ls -A "$R/etc/nginx/modules-enabled")" ""
expect_eq "purge: no file left" "$(find "$R/usr" -type f | wc -l)" 0

finish
