#!/usr/bin/env bash
# install-deps.sh - installs the Debian 12 packages dynacode needs, only those missing.
# Build: compiler, CMake, LuaJIT (OpenResty's branch), libcurl, OpenSSL's libcrypto, cJSON, PCRE2, Hyperscan,
# libseccomp, Check.
# Tests: curl, python3 (the test API server), python3-yaml (reads the alert rules), valgrind,
# nginx and wrk; clang and its runtime libraries (libFuzzer, sanitizers) for the fuzz targets of
# scripts/fuzz.sh.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libluajit2-5.1-dev libcurl4-openssl-dev libssl-dev libcjson-dev libpcre2-dev libhyperscan-dev libseccomp-dev check
  curl python3 valgrind openssl
  python3-yaml
  nginx nginx-dev libnginx-mod-http-lua wrk
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
