#!/usr/bin/env bash
# callgrind_sub.sh - instructions per message of the opening side: a private mosquitto and one
# sealing mqseal pair on loopback, the subscriber's sidecar (ssub) under valgrind --tool=callgrind.
# After a warm-up its counters are zeroed (callgrind_control -z), COUNT messages of SIZE bytes are
# sent (QoS 1, window 16) and the counters dumped: Ir of the dump / COUNT is printed, with the top
# functions (inclusive) in OUT/annotate.txt. Not a test; the figures in bench/README.md ("Opening
# large messages") come from it.
# Usage: bench/callgrind_sub.sh [BUILD_DIR] [SIZE] [COUNT]    (build, 16384, 300)
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
SIZE=${2:-16384}
COUNT=${3:-300}
W=${OUT:-/tmp/mqseal-callgrind}
H=127.0.0.1
PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT INT TERM
rm -rf "$W" && mkdir -p "$W/m"
read -r BP PP SP <<<"$(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')"
printf 'listener %s %s\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' "$BP" "$H" >"$W/mosquitto.conf"
[ "$(id -u)" -eq 0 ] && echo "user root" >>"$W/mosquitto.conf"
mosquitto -c "$W/mosquitto.conf" >"$W/mosquitto.log" 2>&1 &
PIDS+=($!)
for id in spub ssub; do
	mkdir -m 700 "$W/m/$id"
	"$B/proxy/mqseal" keygen "$W/m/$id/id.key" 2>/dev/null | tail -n 1 >"$W/m/$id.pub"
done
conf() {
	cat >"$W/m/$1.conf" <<-E
		node_id = "$1";
		state_dir = "$W/m/$1";
		identity_file = "$W/m/$1/id.key";
		listen = { host = "$H"; port = $3; };
		broker = { host = "$H"; port = $BP; };
		keyex = { interval_seconds = 3600; topic_prefix = "mqseal-callgrind"; };
		peers = ( { id = "$2"; public_key = "$(cat "$W/m/$2.pub")"; } );
		metrics = { enabled = false; };
		log = { level = "warn"; };
	E
}
conf spub ssub "$PP"
conf ssub spub "$SP"
"$B/proxy/mqseal" -c "$W/m/spub.conf" >"$W/spub.log" 2>&1 &
PIDS+=($!)
valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out.%p" "$B/proxy/mqseal" -c "$W/m/ssub.conf" \
	>"$W/ssub.log" 2>&1 &
P2=$!
PIDS+=($P2)
MB=("$B/bench/mqbench" --pub-host $H --pub-port "$PP" --sub-host $H --sub-port "$SP" --timeout 120)
for _ in $(seq 60); do
	"${MB[@]}" --size 64 --count 10 --qos 1 --timeout 5 --label probe 2>/dev/null | grep -q '"delivered":10,' && break
	sleep 1
done
"${MB[@]}" --size "$SIZE" --count 50 --qos 1 --window 16 --label warm >/dev/null 2>&1
callgrind_control -z "$P2" >/dev/null
"${MB[@]}" --size "$SIZE" --count "$COUNT" --qos 1 --window 16 --label measured >"$W/run.json" 2>/dev/null
callgrind_control -d "$P2" >/dev/null
sleep 1
f=$(ls -t "$W"/callgrind.out.* | head -n 1)
ir=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
callgrind_annotate --inclusive=yes "$f" 2>/dev/null | head -n 40 >"$W/annotate.txt"
printf '%d B x %d: %s delivered; ssub %s Ir in all, %d Ir per message\n' "$SIZE" "$COUNT" \
	"$(grep -o '"delivered":[0-9]*' "$W/run.json" | cut -d: -f2)" "$ir" "$((ir / COUNT))"
