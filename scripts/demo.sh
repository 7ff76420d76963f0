#!/usr/bin/env bash
# demo.sh - mqseal in one command, on this machine's loopback only: a private mosquitto broker, two
# mqseal nodes ("sensor" and "backend") that trust each other, a legacy device publishing telemetry
# through the sensor node (mosquitto_pub, one reading per second from scripts/telemetry.csv), a
# legacy application subscribed through the backend node (mosquitto_sub -v), and an eavesdropper
# subscribed to '#' directly at the broker. It shows side by side what the device sent, what the
# broker saw and what the application received, and a line at each key rotation (every 10 s here).
#
#   scripts/demo.sh [--seconds N]     run for N seconds (default 30) or until Ctrl-C
#
# Exit status 0 only when no reading was lost and the broker never saw any reading's bytes.
# Every process it starts is stopped by its PID when it ends, also when interrupted.
# Environment: MQSEAL_DEMO_NO_BUILD=1 skips scripts/deps.sh and scripts/build.sh;
# MQSEAL_BIN=path uses that mqseal binary (default build/proxy/mqseal); NO_COLOR=1 plain output.
# shellcheck disable=SC2317 # (functions called indirectly: by trap and wait_for)
set -euo pipefail

usage() {
	sed -n -e '2,/^set -euo/{/^# shellcheck/d;s/^# \{0,1\}//p;}' "$0"
	exit "${1:-0}"
}

seconds=30
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) [ $# -ge 2 ] || usage 2; seconds=$2; shift 2 ;;
	--seconds=*) seconds=${1#--seconds=}; shift ;;
	-h | --help) usage 0 ;;
	*) echo "demo.sh: unknown argument: $1" >&2; usage 2 ;;
	esac
done
[[ $seconds =~ ^[1-9][0-9]{0,4}$ ]] || { echo "demo.sh: --seconds wants 1 to 99999" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${MQSEAL_DEMO_NO_BUILD:-}" ]; then
	"$root/scripts/deps.sh" all
	"$root/scripts/build.sh" release
fi
bin=${MQSEAL_BIN:-$root/build/proxy/mqseal}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
[ -x "$bin" ] || { echo "demo.sh: $bin not found: build it with scripts/build.sh release" >&2; exit 2; }
for tool in mosquitto mosquitto_pub mosquitto_sub stdbuf "$py"; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
		{ echo "demo.sh: $tool not found: install it with scripts/deps.sh all" >&2; exit 2; }
done
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
helper=$root/scripts/demo.py

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-dumb}" != dumb ]; then
	bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
else
	bold="" dim="" off=""
fi

# ---------------------------------------------------------------- processes, stopped by PID

work=$(mktemp -d "${TMPDIR:-/tmp}/mqseal-demo.XXXXXX")
pids=()

# start NAME CMD... : runs CMD in the background, output to $work/NAME.log. Job control is on only
# while forking, so that each child gets its own process group: a Ctrl-C at the terminal then
# reaches this script alone, which stops the children in order (the viewer still prints the summary).
start() {
	local name=$1
	shift
	set -m
	"$@" </dev/null >"$work/$name.log" 2>&1 &
	set +m
	pids+=("$!")
}

# start_shown NAME CMD... : the same with standard output on ours (the viewer).
start_shown() {
	local name=$1
	shift
	set -m
	"$@" </dev/null 2>"$work/$name.log" &
	set +m
	pids+=("$!")
}

# Sets $state to the state letter of process $1 (R, S, Z, ...), empty when it is gone. Builtins
# only: a Ctrl-C reaches the commands this script runs in the foreground, and must not make a
# running process look gone.
state=""
proc_state() {
	local stat=""
	state=""
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
	stat=${stat##*) }
	state=${stat%% *}
}

alive() {
	proc_state "$1"
	[ -n "$state" ] && [ "$state" != Z ]
}

# SIGTERM, up to 5 s to exit, then SIGKILL; reaps it.
stopped=0
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null && stopped=$((stopped + 1))
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || break
		sleep 0.1 || true
	done
	if alive "$pid"; then
		echo "demo.sh: pid $pid did not stop on SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local i
	set +e
	trap '' INT TERM HUP PIPE # finish stopping everything, whatever comes
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do # newest first: clients, nodes, broker
		[ -z "${pids[i]}" ] || stop_pid "${pids[i]}"
	done
	local files="removed its files"
	if [ -n "${MQSEAL_DEMO_KEEP:-}" ]; then
		files="kept its files in $work"
	else
		rm -rf "$work"
	fi
	echo "Stopped the $stopped processes of the demo (by PID) and $files." 2>/dev/null || true
}
trap cleanup EXIT

stop_requested=0
trap 'stop_requested=1' INT TERM HUP
trap 'exit 141' PIPE # output closed (demo.sh | head): stop everything, not just this script

# Waits up to $2 seconds for command $1 (a function) to succeed; fails early if process $3 exited.
wait_for() {
	local what=$1 limit=$2 pid=${3:-} i
	for ((i = 0; i < limit * 10; i++)); do
		"$what" && return 0
		[ "$stop_requested" = 0 ] || return 1
		if [ -n "$pid" ] && ! alive "$pid"; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

fail() {
	local name
	[ "$stop_requested" = 0 ] || exit 130
	echo "demo.sh: $1" >&2
	for name in "${@:2}"; do
		echo "---- $name.log (last lines)" >&2
		tail -n 15 "$work/$name.log" >&2 || true
	done
	exit 1
}

# One line of the table of processes: show NAME PROGRAM WHERE PID
show() {
	printf '  %-13s %-18s %-40s pid %s\n' "$@"
}

# ---------------------------------------------------------------- the setup

read -r broker_port sensor_port sensor_metrics backend_port backend_metrics < <("$py" "$helper" ports 5)

printf '%smqseal demo%s: a sensor and a backend application, each behind its own mqseal sidecar, talk\n' "$bold" "$off"
printf 'through a broker that must not read their data. Loopback only; %s s; Ctrl-C stops early.\n\n' "$seconds"

{
	echo "listener $broker_port 127.0.0.1"
	echo "allow_anonymous true"
	echo "persistence false"
	echo "log_dest stderr"
	# as root mosquitto would switch to the user mosquitto, who cannot read this private directory
	[ "$(id -u)" -ne 0 ] || echo "user root"
} >"$work/broker.conf"
start broker "$mosquitto" -c "$work/broker.conf"
broker_up() { (exec 3<>"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null; }
wait_for broker_up 10 "${pids[-1]}" || fail "the broker did not start" broker
show broker mosquitto "127.0.0.1:$broker_port" "${pids[-1]}"

# The eavesdropper: every message the broker routes, payload in hex.
start eavesdropper stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$broker_port" -t '#' -F '%t %x'
show eavesdropper "mosquitto_sub '#'" "directly at the broker" "${pids[-1]}"

# The two nodes, started by the container entrypoint: each creates its identity key, leaves its
# public key in a shared directory, waits for the other's, writes its configuration and runs.
node() { # node ID PEER DEVICE_PORT METRICS_PORT
	start "$1" env MQSEAL_BIN="$bin" MQSEAL_NODE_ID="$1" MQSEAL_PEERS="$2" MQSEAL_PEERS_DIR="$work/keys" \
		MQSEAL_STATE_DIR="$work/$1" MQSEAL_BROKER_HOST=127.0.0.1 MQSEAL_BROKER_PORT="$broker_port" \
		MQSEAL_LISTEN_PORT="$3" MQSEAL_METRICS_PORT="$4" MQSEAL_KEYEX_INTERVAL=10 \
		MQSEAL_KEYEX_ACTIVATION=2 MQSEAL_PEER_WAIT_SECONDS=15 "$root/docker/entrypoint.sh"
	show "$1 node" mqseal "devices 127.0.0.1:$3, metrics :$4" "${pids[-1]}"
}
keyed_at=$(date +%s%N)
node sensor backend "$sensor_port" "$sensor_metrics"
sensor_pid=${pids[-1]}
node backend sensor "$backend_port" "$backend_metrics"
backend_pid=${pids[-1]}

# GET /healthz on a node's metrics port answers 200: key-exchange connection up, the peer keyed.
healthy() {
	local status=""
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	read -r -t 5 _ status _ <&3 || status=""
	exec 3<&-
	[ "$status" = 200 ]
}
sensor_ok() { healthy "$sensor_metrics"; }
backend_ok() { healthy "$backend_metrics"; }
wait_for sensor_ok 20 "$sensor_pid" || fail "the sensor node did not become healthy" sensor
wait_for backend_ok 20 "$backend_pid" || fail "the backend node did not become healthy" backend
keyed_at=$((($(date +%s%N) - keyed_at) / 1000000))
printf '  %-13s %s\n' identities "sensor $(cat "$work/keys/sensor.pub")"
printf '  %-13s %s\n' "" "backend $(cat "$work/keys/backend.pub")"
printf '  %-13s %s\n' "" "${dim}(exchanged through a shared directory; production pins them in the config)${off}"
printf '  %-13s %s\n' keys "agreed over the broker, both nodes keyed $((keyed_at / 1000)).$((keyed_at % 1000 / 100)) s after start; new keys every 10 s"

# The legacy application (-d: its SUBACK tells us when it is subscribed) and the legacy device.
start subscriber stdbuf -oL mosquitto_sub -d -v -q 1 -i backend-app -h 127.0.0.1 -p "$backend_port" -t 'plant/#'
show subscriber "mosquitto_sub -v" "via the backend node, 'plant/#'" "${pids[-1]}"
subscribed() { grep -q "received SUBACK" "$work/subscriber.log"; }
wait_for subscribed 10 "${pids[-1]}" || fail "the subscriber did not subscribe" subscriber backend

: >"$work/sent.log"
t0=$(date +%s.%N)
start publisher "$py" "$helper" publish --csv "$root/scripts/telemetry.csv" --port "$sensor_port" \
	--out "$work/sent.log"
publisher=${pids[-1]}
publisher_index=$((${#pids[@]} - 1))
show publisher mosquitto_pub "via the sensor node, 1 reading/s" "$publisher"
start_shown viewer "$py" "$helper" view --t0 "$t0" --sent "$work/sent.log" --got "$work/subscriber.log" \
	--eve "$work/eavesdropper.log" --node "sensor=$work/sensor.log" --node "backend=$work/backend.log" \
	--metrics "sensor=$sensor_metrics" --metrics "backend=$backend_metrics"
viewer=${pids[-1]}

# ---------------------------------------------------------------- run, then the summary

end=$((SECONDS + seconds))
while [ "$stop_requested" = 0 ] && [ "$SECONDS" -lt "$end" ]; do
	for pid in "$sensor_pid" "$backend_pid" "$publisher" "$viewer"; do
		alive "$pid" || [ "$stop_requested" = 1 ] || { echo "demo.sh: process $pid exited early; stopping" >&2; break 2; }
	done
	sleep 0.2 || true # a Ctrl-C kills the sleep too; the trap has noted it
done

[ "$stop_requested" = 0 ] || echo "  (interrupted: stopping the device, waiting for messages in flight)"
stop_pid "$publisher"
pids[publisher_index]=""
kill -USR1 "$viewer" 2>/dev/null || true
rc=0
wait "$viewer" || rc=$?
if alive "$viewer"; then # a second Ctrl-C interrupted the wait: the EXIT trap stops the rest
	exit 130
fi
pids[-1]=""
stopped=$((stopped + 1)) # the viewer, which ended by itself when told to
echo
echo "Next: docker/README.md runs the same in containers; conf/mqseal.conf.example documents every option."
exit "$rc"
