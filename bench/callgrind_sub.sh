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
# shellcheck source=bench/sealed_pair.sh
. bench/sealed_pair.sh
pair_setup mqseal-callgrind
"$B/proxy/mqseal" -c "$W/m/spub.conf" >"$W/spub.log" 2>&1 &
PIDS+=($!)
valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out.%p" "$B/proxy/mqseal" -c "$W/m/ssub.conf" \
	>"$W/ssub.log" 2>&1 &
P2=$!
PIDS+=($P2)
MB=("$B/bench/mqbench" --pub-host $H --pub-port "$PP" --sub-host $H --sub-port "$SP" --timeout 120)
pair_probe "${MB[@]}"
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
