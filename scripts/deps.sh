#!/usr/bin/env bash
# deps.sh - installs (with apt-get, on Debian 12) exactly what mqseal's build, tests, demo and
# benchmark need, and only what is missing. The one list of packages: the README's commands,
# .ci/run and docker/Dockerfile all call this script.
#   scripts/deps.sh            build + tests + demo
#   scripts/deps.sh runtime    only the shared libraries the mqseal binary needs (container image)
#   scripts/deps.sh bench      also the benchmark's tools (stunnel4, gnuplot)
set -euo pipefail

runtime=(libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7 libevent-openssl-2.1-7 libssl3 libmosquitto1 libconfig9
         ca-certificates)
build=(build-essential cmake pkg-config libevent-dev libssl-dev libmosquitto-dev libconfig-dev
       clang libclang-rt-14-dev clang-tidy openssl cppcheck)
tests=(mosquitto mosquitto-clients python3 python3-paho-mqtt python3-cryptography procps iproute2 curl
       stunnel4 docker-compose python3-yaml rabbitmq-server valgrind faketime
       dpkg-dev systemd man-db
       prometheus python3-prometheus-client)  # promtool and the OpenMetrics parser (test_metrics_format.py)
bench=(gnuplot-nox)
# mqtt.js (test_listeners.py, MQTT over WebSocket) needs node and npm: Debian's, unless a node with
# npm is installed already (NodeSource's nodejs carries its own npm and conflicts with Debian's).
command -v npm >/dev/null 2>&1 || tests+=(nodejs npm)

# The mqtt package for tests/integration/js (its package-lock.json pins every file), once.
js_deps() {
	case "$1" in all | bench) ;; *) return 0 ;; esac
	local dir
	dir="$(cd "$(dirname "$0")/.." && pwd)/tests/integration/js"
	[ -d "$dir/node_modules/mqtt" ] && return 0
	echo "deps.sh: npm ci in $dir" >&2
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

want=()
case "${1:-all}" in
runtime) want=("${runtime[@]}") ;;
build) want=("${runtime[@]}" "${build[@]}") ;;
all) want=("${runtime[@]}" "${build[@]}" "${tests[@]}") ;;
bench) want=("${runtime[@]}" "${build[@]}" "${tests[@]}" "${bench[@]}") ;;
*) echo "usage: $0 [runtime|build|all|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	js_deps "${1:-all}"
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The Debian packages of mosquitto and rabbitmq-server start system services on install when an
# init system runs; tests start their own private instances, so keep the packaged ones stopped.
if [ ! -e /usr/sbin/policy-rc.d ] && [ -z "$sudo" ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
js_deps "${1:-all}"
