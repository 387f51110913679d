#!/usr/bin/env bash
# simulate.sh - the example without nginx: builds dynacode, then takes requests for the original
# lua-resty-dynacode example's hosts through usage/response.json and shows what each plugin did.
# (usage/run-example.sh runs the same bundle on a real nginx.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
bash "$top/scripts/install-deps.sh" >/dev/null
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"$(nproc)" --target dynacode_cli >/dev/null
dc="$top/build/dynacode"
bundle="$here/response.json"

show() {
  echo
  echo "### $1"
  shift
  echo "\$ dynacode run $* usage/response.json"
  "$dc" run "$@" "$bundle"
}

echo "### the bundle"
"$dc" check "$bundle"
show "dynamic.local.com with ?token=token: content from a plugin, CORS header, cookie set" \
  --host dynamic.local.com --uri '/?token=token'
show "dynamic.local.com with the cookie superstition=token: same" \
  --host dynamic.local.com --uri / --header 'Cookie: superstition=token'
show "dynamic.local.com without the token: 403 from the access plugin" \
  --host dynamic.local.com --uri /
show "clock.local.com: the upstream's response, decorated by the \"*\" domain's plugin" \
  --host clock.local.com --uri / --upstream-body "$here/clock.txt"
show "metrics.server.local.com: matches skip_domains, no plugin runs" \
  --host metrics.server.local.com --uri /
