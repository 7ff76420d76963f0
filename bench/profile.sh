#!/usr/bin/env bash
# profile.sh - where the sealed pair's CPU goes on large messages: a private mosquitto and one
# sealing mqseal pair on loopback, then for 16 KiB and 256 KiB (QoS 0, max rate) one mqbench run
# each while `perf record -g` (MODE=record, default) or `perf stat` of the read/write/poll system
# calls (MODE=stat) watches both sidecars. Prints the sidecars' CPU per message (utime+stime of
# both, from /proc) and leaves the perf data in OUT (default /tmp/mqseal-profile). Not a test,
# not part of run.sh; the figures in bench/README.md ("Large messages") come from it.
# Usage: bench/profile.sh [BUILD_DIR]     (BUILD_DIR defaults to build)
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
MODE=${MODE:-record}
W=${OUT:-/tmp/mqseal-profile}
H=127.0.0.1
TUNE=(env GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432)
PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT INT TERM
rm -rf "$W" && mkdir -p "$W/m"
# shellcheck source=bench/sealed_pair.sh
. bench/sealed_pair.sh
pair_setup mqseal-profile 'set_tcp_nodelay true\nmax_inflight_messages 10000\n'
"$B/proxy/mqseal" -c "$W/m/spub.conf" >"$W/spub.log" 2>&1 &
P1=$!
PIDS+=($P1)
"$B/proxy/mqseal" -c "$W/m/ssub.conf" >"$W/ssub.log" 2>&1 &
P2=$!
PIDS+=($P2)
MB=("${TUNE[@]}" "$B/bench/mqbench" --pub-host $H --pub-port "$PP" --sub-host $H --sub-port "$SP" --timeout 30)
pair_probe "${MB[@]}"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
EVENTS=syscalls:sys_enter_readv,syscalls:sys_enter_writev,syscalls:sys_enter_ioctl,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl
for sz in 16384 262144; do
	n=$((sz > 20000 ? 3000 : 40000))
	w=$((sz > 20000 ? 32 : 512))
	"${MB[@]}" --size $sz --qos 0 --count 500 --window $w --label warm >/dev/null 2>&1
	for side in pub sub; do
		[ $side = pub ] && pid=$P1 || pid=$P2
		if [ "$MODE" = stat ]; then
			perf stat -e "$EVENTS" -o "$W/$side-$sz.stat" -p "$pid" 2>/dev/null &
		else
			perf record -F 999 -g -o "$W/$side-$sz.data" -p "$pid" 2>/dev/null &
		fi
		eval "R_$side=\$!"
	done
	sleep 0.5
	c0=$(ticks $P1) d0=$(ticks $P2)
	"${MB[@]}" --size $sz --qos 0 --count $n --window $w --label "profile/$sz" >"$W/run-$sz.json" 2>/dev/null
	c1=$(ticks $P1) d1=$(ticks $P2)
	kill -INT "$R_pub" "$R_sub"
	wait "$R_pub" "$R_sub"
	hz=$(getconf CLK_TCK)
	printf '%6d B: %s msgs/s; sidecar CPU per message: pub %s us, sub %s us\n' $sz \
		"$(grep -o '"msgs_per_s":[0-9.]*' "$W/run-$sz.json" | cut -d: -f2)" \
		"$(((c1 - c0) * 1000000 / hz / n))" "$(((d1 - d0) * 1000000 / hz / n))"
done
echo "perf data in $W"
