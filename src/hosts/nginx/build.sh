#!/bin/bash
# build.sh - builds ngx_http_dynacode_module.so against the distribution's nginx; run by
# src/hosts/nginx/nginx.cmake, quiet unless something fails.
#
#   build.sh configure NGINX_SRC BUILD_DIR MODULE_DIR LIBDYNACODE INCLUDE_DIR
#       copies NGINX_SRC (Debian: /usr/share/nginx/src, from nginx-dev) to BUILD_DIR and runs
#       ./configure there with the flags the distribution's nginx was built with (Debian keeps
#       them in conf_flags; --with-compat is the one that makes a module loadable), plus
#       --add-dynamic-module=MODULE_DIR. Output in BUILD_DIR/configure.log.
#   build.sh make BUILD_DIR OUTPUT
#       `make modules` in BUILD_DIR, then copies the module to OUTPUT.
set -u

log_tail() {
    echo "---- last lines of $1 ----" >&2
    tail -n 40 "$1" >&2
}

case "${1:-}" in
configure)
    src=$2 build=$3 module=$4 lib=$5 inc=$6
    rm -rf "$build"
    mkdir -p "$(dirname "$build")"
    cp -a "$src" "$build" || exit 1
    cd "$build" || exit 1

    flags=()
    if [ -f conf_flags ]; then
        # shellcheck disable=SC1091
        . ./conf_flags                      # sets NGX_CONF_FLAGS=( ... )
        flags=("${NGX_CONF_FLAGS[@]}")
    fi
    case " ${flags[*]:-} " in
        *" --with-compat "*) ;;
        *) flags+=(--with-compat) ;;
    esac

    # Debian's hardening flags, as its own modules are built
    cc_opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2"
    ld_opt="-Wl,-z,relro -Wl,-z,now -fPIC"

    export DYNACODE_LIB="$lib" DYNACODE_INC="$inc"
    if ./configure "${flags[@]}" --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
            --add-dynamic-module="$module" >configure.log 2>&1; then
        exit 0
    fi

    # A missing optional library (OpenSSL headers, say) must not stop the build: the flags
    # that matter for the module's binary layout are all implied by --with-compat.
    echo "nginx module: configure with the distribution's flags failed; retrying with" \
         "--with-compat only (see $build/configure-full.log)" >&2
    mv configure.log configure-full.log
    if ./configure --with-compat --with-threads --with-cc-opt="$cc_opt" \
            --with-ld-opt="$ld_opt" --add-dynamic-module="$module" >configure.log 2>&1; then
        exit 0
    fi
    echo "nginx module: configure failed" >&2
    log_tail "$build/configure.log"
    exit 1
    ;;

make)
    build=$2 out=$3
    cd "$build" || exit 1
    # nginx's Makefile does not know the module links libdynacode.a: always relink
    rm -f objs/ngx_http_dynacode_module.so
    # a make of its own (not the caller's jobserver): a few files, built in parallel
    if ! env -u MAKEFLAGS -u MFLAGS make -j"$(nproc 2>/dev/null || echo 2)" \
            -f objs/Makefile modules >make.log 2>&1; then
        echo "nginx module: make modules failed" >&2
        log_tail "$build/make.log"
        exit 1
    fi
    cp objs/ngx_http_dynacode_module.so "$out.tmp" && mv "$out.tmp" "$out"
    ;;

*)
    echo "usage: $0 configure NGINX_SRC BUILD_DIR MODULE_DIR LIBDYNACODE INCLUDE_DIR" >&2
    echo "       $0 make BUILD_DIR OUTPUT" >&2
    exit 2
    ;;
esac
