#!/usr/bin/env bash
# product_symbols.sh - checks that the product binaries (libdynacode, the `dynacode` command, the
# nginx module) hold none of the test hooks that only the test build of the library
# (DC_TESTING) compiles in, and that the test binaries do hold them, so the check can fail.
#   product_symbols.sh --product FILE... --test FILE...
set -uo pipefail

# symbols of the test build only (nm, local ones included)
symbols='dc_env_test_hook|dc_compiler_probe|h_probe'
# texts of the test build only: the switches it reads and the probe name prefix
texts='DC_VALGRIND_UNCONFINED|DC_PCRE2_NO_JIT|dc-probe:'

mode=
product=()
testing=()
for a in "$@"; do
    case "$a" in
    --product) mode=p ;;
    --test) mode=t ;;
    *) if [ "$mode" = p ]; then product+=("$a"); else testing+=("$a"); fi ;;
    esac
done
[ ${#product[@]} -gt 0 ] && [ ${#testing[@]} -gt 0 ] || { echo "usage: $0 --product FILE... --test FILE..." >&2; exit 2; }

failed=0
for f in "${product[@]}" "${testing[@]}"; do
    [ -f "$f" ] || { echo "FAIL: $f does not exist"; failed=1; }
done
[ "$failed" -eq 0 ] || exit 1

for f in "${product[@]}"; do
    found=$( { nm -a "$f" 2>/dev/null | awk '{print $NF}' | grep -Ex "$symbols"; \
               grep -aoE "$texts" "$f"; } | sort -u | tr '\n' ' ')
    if [ -n "$found" ]; then
        echo "FAIL: product binary $f holds test-only code: $found"
        failed=1
    else
        echo "ok: $f has no test hook"
    fi
done
for f in "${testing[@]}"; do
    n=$(nm -a "$f" 2>/dev/null | awk '{print $NF}' | grep -Ecx "$symbols")
    if [ "$n" -eq 0 ]; then
        echo "FAIL: test binary $f has none of $symbols: the check would prove nothing"
        failed=1
    else
        echo "ok: $f has the test hooks ($n symbols)"
    fi
done
exit "$failed"
