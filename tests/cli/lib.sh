# lib.sh - tiny assertion helpers for the CLI tests (sourced). Each check prints "ok" or
# "FAIL" with what was expected; finish prints "N passed, N failed" and sets the exit status.
set -u
DYNACODE=${DYNACODE:?set DYNACODE to the built dynacode command}
SRC=${DC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; }

# expect_exit NAME CODE -- command...: runs the command, output in $TMP/out and $TMP/err
expect_exit() {
  local name=$1 want=$2
  shift 3
  "$@" >"$TMP/out" 2>"$TMP/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok "$name (exit $got)"; else
    fail "$name: exit $got, expected $want"; sed 's/^/    err: /' "$TMP/err" | head -5; fi
}

# expect_in NAME FILE TEXT: FILE contains TEXT (fixed string)
expect_in() {
  if grep -qF -- "$3" "$2"; then ok "$1"; else
    fail "$1: \"$3\" not in $(basename "$2")"; sed 's/^/    | /' "$2" | head -20; fi
}

expect_not_in() {
  if grep -qF -- "$3" "$2"; then fail "$1: \"$3\" unexpectedly in $(basename "$2")"; else ok "$1"; fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
