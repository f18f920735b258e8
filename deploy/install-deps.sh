#!/bin/sh
# Installs what wabot-worker needs to build, test and run, from Debian's
# packages. Idempotent: installs only what is missing; does nothing (and needs
# no network) when everything is there. Run as root (or with sudo available).
set -eu

PKGS="build-essential cmake pkg-config git ca-certificates openssl
librdkafka-dev libhiredis-dev libjson-c-dev libssl-dev libcriterion-dev
redis-server redis-tools valgrind clang libclang-rt-14-dev
libmicrohttpd-dev prometheus"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

# node and npm (the deployment files' validation, tests/deploy): Debian's
# nodejs and npm, unless a node with npm is already on the PATH (for example
# a NodeSource build, which bundles npm and conflicts with Debian's npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	for p in nodejs npm; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing="$missing $p"
		fi
	done
fi

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO="sudo"
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
