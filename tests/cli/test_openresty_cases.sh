#!/bin/bash
# test_openresty_cases.sh - the OpenResty behaviours of tests/compat/cases/*.t through
# `dynacode run` (tests/compat/compat.py turns them into one bundle and checks each answer).
set -u
DYNACODE=${DYNACODE:?set DYNACODE to the built dynacode command}
SRC=${DC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d /tmp/dc-compat.XXXXXX)
trap 'rm -rf "$T"' EXIT
python3 "$SRC/tests/compat/compat.py" bundle "$T/bundle.json" "$SRC"/tests/compat/cases/*.t || exit 1
python3 "$SRC/tests/compat/compat.py" cli "$DYNACODE" "$T/bundle.json" "$SRC"/tests/compat/cases/*.t
