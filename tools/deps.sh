#!/bin/sh
# Install the Debian packages batlab needs to build and test, only when
# missing. Idempotent and silent when everything is already there, so every
# make target that needs a package can depend on it.
set -eu

PKGS="build-essential pkg-config liblua5.4-dev lua5.4 libserialport-dev libreadline-dev \
lua-cjson lua-filesystem perl clang libclang-rt-14-dev valgrind libcurl4-openssl-dev zlib1g-dev libxml2-utils \
libpq-dev libssl-dev libmosquitto-dev postgresql mosquitto mosquitto-clients openssl"
# `make check-report` only (tools/deps.sh --report): a browser is large,
# and no other target needs it.
if [ "${1:-}" = "--report" ]; then
    PKGS="chromium"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "deps: need root (or sudo) to install:$missing" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
