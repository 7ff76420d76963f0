#!/usr/bin/env bash
# run.sh - the benchmark, in one command: bench/run.sh
#
# Builds the release tree, starts a private mosquitto on loopback and four paths to it, and measures
# them side by side in one run, alternating the paths (direct socat stunnel relay sealed direct ...):
#   direct   devices talk to the broker
#   socat    device -> socat -> broker, a plain byte relay per side (the floor any pair of proxies costs)
#   stunnel  device -> stunnel client -> TLS 1.3 -> stunnel server -> broker (one client per side)
#   relay    device -> mqseal -> broker, every topic plaintext (one mqseal per side)
#   sealed   device -> mqseal -> broker, payloads sealed with AES-256-GCM (the product)
# Matrix: throughput (4 sizes x QoS 0/1, max rate), latency (1000 msgs/s), scaling (1/10/100
# publishers), memory (one sidecar with 0/100/1000 idle devices). Results go to bench/results/
# (raw.jsonl, summary.md, throughput.png, latency.png); progress goes to stderr.
# Every process started here is stopped by PID on exit, also on Ctrl-C.
#
# Knobs (environment): ROUNDS (3), TARGET_S (1.5: seconds one max-rate run aims at), OUT
# (bench/results), BUILD_DIR (build), SKIP_BUILD=1 (use the binaries already in BUILD_DIR),
# PATHS (default "direct socat stunnel relay sealed"), KEEP_WORK=1 (keep the temp dir with the logs),
# SOURCE_COMMIT (the commit to name in the results when the tree is an export, e.g. git archive),
# PHASES (default "throughput latency scaling memory": the phases to run, for a partial run).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
TARGET_S=${TARGET_S:-1.5}
OUT=${OUT:-bench/results}
BUILD_DIR=${BUILD_DIR:-build}
PATHS=${PATHS:-direct socat stunnel relay sealed}
PHASES=${PHASES:-throughput latency scaling memory}
PY=/usr/bin/python3
MQBENCH=$BUILD_DIR/bench/mqbench
MQSEAL=$BUILD_DIR/proxy/mqseal
HOST=127.0.0.1
SIZES=(64 1024 16384 262144)
# glibc trims its heap after every freed 256 KiB message, and the page faults that follow made the
# broker, not the paths, the bottleneck (measured: 6x slower at 256 KiB). The harness (broker and
# mqbench) keeps its heap; the sidecars under test run with the default allocator.
HARNESS_ENV=(env GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432)

WORK=$(mktemp -d /tmp/mqseal-bench.XXXXXX)
RAW=$WORK/raw.jsonl
declare -A PID NAME_OF PUB SUB WATCH COUNT
ALL_PIDS=()
ACTIVE=()
MQSEAL_BROKEN=""

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

any_alive() {
	local pid
	for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
	return 1
}

# stop_pids PID...: TERM, up to 3 s of grace, then KILL; reaps them.
stop_pids() {
	local pid rc
	[ $# -gt 0 ] || return 0
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for _ in $(seq 30); do
		any_alive "$@" || break
		sleep 0.1
	done
	for pid in "$@"; do
		kill -KILL "$pid" 2>/dev/null || true
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		# 143/137: ended by our TERM/KILL. Anything else above 128 is a crash worth reporting.
		if ((rc > 128 && rc != 143 && rc != 137)); then
			say "note: ${NAME_OF[$pid]:-pid $pid} died of signal $((rc - 128)) when stopped"
		fi
	done
}

cleanup() {
	local i
	trap - EXIT INT TERM
	# Newest first, one at a time: clients go before the servers they are connected to.
	for ((i = ${#ALL_PIDS[@]} - 1; i >= 0; i--)); do stop_pids "${ALL_PIDS[i]}"; done
	if [ "${KEEP_WORK:-0}" = 1 ]; then say "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# start NAME CMD...: runs CMD in the background, logging to $WORK/NAME.log; its PID is PID[NAME].
start() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PID[$name]=$!
	NAME_OF[$!]=$name
	ALL_PIDS+=($!)
}

# stop NAME: stops process NAME and forgets its PID (so a recycled PID is never signalled).
stop() {
	local pid=${PID[$1]} keep=() p
	stop_pids "$pid"
	for p in "${ALL_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	ALL_PIDS=("${keep[@]}")
	unset "PID[$1]"
}

# wait_listen NAME PORT: until PORT listens (10 s at most) while process NAME is alive.
wait_listen() {
	for _ in $(seq 100); do
		kill -0 "${PID[$1]}" 2>/dev/null || break
		[ -n "$(ss -Hltn "sport = :$2")" ] && return 0
		sleep 0.1
	done
	say "$1 did not listen on port $2; its log ends with:"
	tail -n 5 "$WORK/$1.log" >&2 || true
	return 1
}

free_ports() {
	"$PY" -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

json_field() { [[ $1 =~ \"$2\":([0-9.]+) ]] && echo "${BASH_REMATCH[1]}" || echo 0; }

# ---- setup ----------------------------------------------------------------------------------------

build() {
	scripts/deps.sh bench
	[ "${SKIP_BUILD:-0}" = 1 ] && return 0
	if [ "$BUILD_DIR" != build ]; then
		die "BUILD_DIR=$BUILD_DIR needs SKIP_BUILD=1 (scripts/build.sh builds build/)"
	fi
	say "building the release tree (scripts/build.sh release)"
	if ! scripts/build.sh release >"$WORK/build.log" 2>&1; then
		tail -n 20 "$WORK/build.log" >&2
		say "the release build failed; building mqbench alone so the other paths still run"
		cmake --build build --target mqbench >>"$WORK/build.log" 2>&1 || die "cannot build mqbench"
		MQSEAL_BROKEN="the release build failed (a stale mqseal binary is not used)"
	fi
}

start_broker() {
	local conf=$WORK/mosquitto.conf
	cat >"$conf" <<-EOF
		listener $BROKER_PORT $HOST
		allow_anonymous true
		persistence false
		set_tcp_nodelay true
		max_queued_messages 100000
		max_inflight_messages 10000
		max_connections -1
		connection_messages false
		log_dest file $WORK/mosquitto-file.log
		log_type error
		log_type warning
		log_type notice
	EOF
	# As root, mosquitto would switch to the "mosquitto" user, which cannot write our temp dir.
	[ "$(id -u)" -eq 0 ] && echo "user root" >>"$conf"
	start broker "${HARNESS_ENV[@]}" mosquitto -c "$conf"
	wait_listen broker "$BROKER_PORT" || die "mosquitto did not start"
	PUB[direct]=$BROKER_PORT SUB[direct]=$BROKER_PORT
	WATCH[direct]="--watch broker=${PID[broker]}"
}

make_cert() {
	mkdir -p "$WORK/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>"$WORK/openssl.log"
}

# stunnel_conf NAME ACCEPT CONNECT [client]: both ends TLS 1.3 only, AES-256-GCM like mqseal,
# TCP_NODELAY on both sockets like the broker; the client verifies the server certificate.
stunnel_conf() {
	cat >"$WORK/$1.conf" <<-EOF
		foreground = yes
		pid =
		syslog = no
		debug = warning
		socket = l:TCP_NODELAY=1
		socket = r:TCP_NODELAY=1
		[mqtt]
		accept = $HOST:$2
		connect = $HOST:$3
		sslVersionMin = TLSv1.3
		ciphersuites = TLS_AES_256_GCM_SHA384
	EOF
	if [ "${4:-}" = client ]; then
		printf 'client = yes\nverifyPeer = yes\nCAfile = %s\ncheckHost = localhost\n' \
			"$WORK/tls/cert.pem" >>"$WORK/$1.conf"
	else
		printf 'cert = %s\nkey = %s\n' "$WORK/tls/cert.pem" "$WORK/tls/key.pem" >>"$WORK/$1.conf"
	fi
}

start_stunnel() {
	start "$1" stunnel "$WORK/$1.conf"
	wait_listen "$1" "$2"
}

setup_stunnel() {
	local tls pub sub
	read -r tls pub sub <<<"$(free_ports 3)"
	make_cert || return 1
	stunnel_conf stunnel-server "$tls" "$BROKER_PORT"
	stunnel_conf stunnel-pub "$pub" "$tls" client
	stunnel_conf stunnel-sub "$sub" "$tls" client
	start_stunnel stunnel-server "$tls" && start_stunnel stunnel-pub "$pub" &&
		start_stunnel stunnel-sub "$sub" || return 1
	PUB[stunnel]=$pub SUB[stunnel]=$sub
	WATCH[stunnel]="--watch broker=${PID[broker]} --watch pub_side=${PID[stunnel-pub]}"
	WATCH[stunnel]+=" --watch sub_side=${PID[stunnel-sub]} --watch tls_server=${PID[stunnel-server]}"
}

# setup_socat: one socat per side, each a plain TCP byte relay to the broker (a child per
# connection; mqbench counts the children's CPU). TCP_NODELAY both ways like the others, and
# reads/writes of up to 256 KiB (socat's default is 8 KiB) like mqseal's SESSION_IO_CHUNK.
setup_socat() {
	local pub sub side port
	read -r pub sub <<<"$(free_ports 2)"
	for side in pub sub; do
		[ "$side" = pub ] && port=$pub || port=$sub
		start "socat-$side" socat -b 262144 \
			"TCP4-LISTEN:$port,bind=$HOST,reuseaddr,fork,nodelay,backlog=1024" \
			"TCP4:$HOST:$BROKER_PORT,nodelay" || return 1
		wait_listen "socat-$side" "$port" || return 1
	done
	PUB[socat]=$pub SUB[socat]=$sub
	WATCH[socat]="--watch broker=${PID[broker]} --watch pub_side=${PID[socat-pub]}"
	WATCH[socat]+=" --watch sub_side=${PID[socat-sub]}"
}

# mqseal_conf ID PEER PORT MODE: the libconfig file of one sidecar (relay: every topic plaintext).
# Logging at warning level, like the broker (no connection messages) and stunnel (debug = warning).
# Each pair has its own key-exchange topics, so the two pairs do not see each other's announcements.
mqseal_conf() {
	local dir=$WORK/mqseal/$1
	cat >"$dir.conf" <<-EOF
		node_id = "$1";
		state_dir = "$dir";
		identity_file = "$dir/id.key";
		listen = { host = "$HOST"; port = $3; };
		broker = { host = "$HOST"; port = $BROKER_PORT; };
		keyex = { interval_seconds = 3600; topic_prefix = "mqseal-$4"; };
		peers = ( { id = "$2"; public_key = "$(cat "$WORK/mqseal/$2.pub")"; } );
		metrics = { enabled = false; };
		log = { level = "warn"; };
	EOF
	[ "$4" = relay ] && echo 'topics = { plaintext = [ "#" ]; };' >>"$dir.conf"
	# The sealed pub side also serves devices over TLS and over WebSocket (memory phase: RSS per
	# idle TLS and WebSocket device); idle listeners, unused by the throughput runs.
	if [ "$1" = spub ]; then
		read -r TLS_PORT WS_PORT <<<"$(free_ports 2)"
		cat >>"$dir.conf" <<-EOF
			listeners = (
			  { host = "$HOST"; port = $TLS_PORT; tls = { cert_file = "$WORK/tls/server.crt"; key_file = "$WORK/tls/server.key"; }; },
			  { host = "$HOST"; port = $WS_PORT; websocket = { path = "/mqtt"; }; }
			);
		EOF
	fi
	return 0
}

# tls_files: a CA and a server certificate for 127.0.0.1 (the TLS listener of the memory phase).
tls_files() {
	local d=$WORK/tls
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>>"$WORK/tls.log" &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
			-keyout "$d/server.key" -out "$d/server.csr" 2>>"$WORK/tls.log" &&
		printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext.cnf" &&
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
			-days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" 2>>"$WORK/tls.log"
}

start_mqseal() {
	start "mqseal-$1" "$MQSEAL" -c "$WORK/mqseal/$1.conf"
	wait_listen "mqseal-$1" "$2"
}

# probe PATH: until 10 QoS 1 messages round-trip intact (the sealed pair first has to key), 60 s.
probe() {
	local line
	for _ in $(seq 20); do
		line=$("${HARNESS_ENV[@]}" "$MQBENCH" --pub-host $HOST --pub-port "${PUB[$1]}" --sub-host $HOST \
			--sub-port "${SUB[$1]}" --size 64 --count 10 --qos 1 --timeout 3 --label probe 2>/dev/null) || true
		[[ $line == *'"delivered":10,'* && $line == *'"corrupt":0,'* ]] && return 0
		sleep 1
	done
	say "$1: no probe message came through the pair in 60 s"
	return 1
}

# broker_view PATH: what a subscriber at the broker itself sees of 10 messages sent into PATH. The
# relay path must deliver them intact (plaintext), the sealed path must not (ciphertext: "corrupt").
broker_view() {
	local line want
	line=$("${HARNESS_ENV[@]}" "$MQBENCH" --pub-host $HOST --pub-port "${PUB[$1]}" --sub-host $HOST \
		--sub-port "$BROKER_PORT" --size 64 --count 10 --qos 1 --timeout 5 --label view 2>/dev/null) || true
	want='"delivered":10,'
	[ "$1" = sealed ] && want='"corrupt":10,'
	[[ $line == *"$want"* ]] && return 0
	say "$1: the broker did not see what this path should show it (${want%,}); got: ${line:0:300}"
	return 1
}

# setup_mqseal PATH MODE: a pair of sidecars, pub side and sub side, peers of each other.
setup_mqseal() {
	local p=${1:0:1} pub sub id
	[ -x "$MQSEAL" ] || MQSEAL_BROKEN=${MQSEAL_BROKEN:-"$MQSEAL is not built yet"}
	if [ -n "${MQSEAL_BROKEN:-}" ]; then
		say "skipping the $1 path: $MQSEAL_BROKEN"
		return 1
	fi
	read -r pub sub <<<"$(free_ports 2)"
	for id in "${p}pub" "${p}sub"; do
		mkdir -p "$WORK/mqseal" && mkdir -m 700 "$WORK/mqseal/$id"
		"$MQSEAL" keygen "$WORK/mqseal/$id/id.key" 2>>"$WORK/keygen.log" | tail -n 1 >"$WORK/mqseal/$id.pub"
		grep -q '^ed25519:' "$WORK/mqseal/$id.pub" || {
			say "skipping the $1 path: mqseal keygen printed no ed25519 key"
			return 1
		}
	done
	mqseal_conf "${p}pub" "${p}sub" "$pub" "$2"
	mqseal_conf "${p}sub" "${p}pub" "$sub" "$2"
	start_mqseal "${p}pub" "$pub" && start_mqseal "${p}sub" "$sub" || return 1
	PUB[$1]=$pub SUB[$1]=$sub
	WATCH[$1]="--watch broker=${PID[broker]} --watch pub_side=${PID[mqseal-${p}pub]}"
	WATCH[$1]+=" --watch sub_side=${PID[mqseal-${p}sub]}"
	probe "$1" && broker_view "$1"
}

setup_paths() {
	local path ok
	for path in $PATHS; do
		case $path in
		direct) ok=0 ;;
		socat) setup_socat && probe socat && ok=0 || ok=1 ;;
		stunnel) setup_stunnel && probe stunnel && ok=0 || ok=1 ;;
		relay | sealed) setup_mqseal "$path" "$path" && ok=0 || ok=1 ;;
		*) die "unknown path $path" ;;
		esac
		if [ "$ok" = 0 ]; then
			ACTIVE+=("$path")
		else
			record "{\"kind\":\"skip\",\"path\":\"$path\"}"
		fi
	done
	say "paths: ${ACTIVE[*]}"
}

record() { echo "$1" >>"$RAW"; }

machine_info() {
	local cpu kernel mosq stun ossl lmosq lev gccv commit
	cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
	kernel=$(uname -sr)
	mosq=$(mosquitto -h 2>/dev/null | awk 'NR==1{print $3}' || true)
	stun=$(stunnel -version 2>&1 | awk '/^stunnel/{print $2; exit}' || true)
	ossl=$(openssl version)
	lmosq=$(dpkg-query -W -f='${Version}' libmosquitto1 2>/dev/null || true)
	lev=$(dpkg-query -W -f='${Version}' libevent-2.1-7 2>/dev/null || true)
	gccv=$(gcc -dumpfullversion 2>/dev/null || true)
	if [ -n "${SOURCE_COMMIT:-}" ]; then
		commit=$SOURCE_COMMIT
	else
		commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
		git diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"
	fi
	record "$(printf '{"kind":"machine","date":"%s","nproc":%s,"cpu":"%s","kernel":"%s","mosquitto":"%s","stunnel":"%s","openssl":"%s","libmosquitto":"%s","libevent":"%s","gcc":"%s","commit":"%s","rounds":%s,"target_s":%s}' \
		"$(date -u +%FT%TZ)" "$(nproc)" "${cpu//\"/}" "$kernel" "$mosq" "$stun" "$ossl" "$lmosq" \
		"$lev" "$gccv" "$commit" "$ROUNDS" "$TARGET_S")"
}

# ---- runs -----------------------------------------------------------------------------------------

# window SIZE: at most ~8 MiB of payload in flight (1000 messages for small ones, 32 at 256 KiB),
# so the queues in front of a slow stage do not grow with the message size.
window() {
	local w=$((8 * 1024 * 1024 / $1))
	((w > 1000)) && w=1000
	((w < 16)) && w=16
	echo "$w"
}

# bench PATH LABEL ARGS...: one mqbench run on PATH; its JSON line goes to raw.jsonl.
bench() {
	local path=$1 label=$2 line rc=0
	shift 2
	# shellcheck disable=SC2086 # WATCH holds several words on purpose
	line=$("${HARNESS_ENV[@]}" "$MQBENCH" --pub-host $HOST --pub-port "${PUB[$path]}" --sub-host $HOST \
		--sub-port "${SUB[$path]}" --label "$label" --timeout 30 ${WATCH[$path]} "$@") || rc=$?
	[ -n "$line" ] && record "$line"
	LAST_RATE=$(json_field "$line" msgs_per_s)
	local msg
	msg=$(printf '%-26s %10.0f msgs/s  p50 %8s us  lost %s' "$label" "$LAST_RATE" \
		"$(json_field "$line" p50)" "$(json_field "$line" lost)")
	[ "$rc" -eq 0 ] || msg+="  (mqbench exit $rc)"
	say "$msg"
}

calibrate() {
	local size qos path n
	say "calibrating counts so one max-rate run takes ~${TARGET_S}s"
	for size in "${SIZES[@]}"; do
		for qos in 0 1; do
			n=$((size >= 262144 ? 300 : 3000))
			for path in "${ACTIVE[@]}"; do
				bench "$path" "cal/$path/$size/q$qos" --size "$size" --qos "$qos" --count "$n" \
					--window "$(window "$size")"
				COUNT[$path/$size/$qos]=$(awk -v r="$LAST_RATE" -v t="$TARGET_S" \
					'BEGIN { c = int(r * t); if (c < 200) c = 200; if (c > 2000000) c = 2000000; print c }')
			done
		done
	done
}

throughput() {
	local r size qos path
	for r in $(seq "$ROUNDS"); do
		say "throughput, round $r/$ROUNDS"
		for size in "${SIZES[@]}"; do
			for qos in 0 1; do
				for path in "${ACTIVE[@]}"; do
					bench "$path" "tput/$path/$size/q$qos/r$r" --size "$size" --qos "$qos" \
						--count "${COUNT[$path/$size/$qos]}" --window "$(window "$size")"
				done
			done
		done
	done
}

# Latency at a fixed 1000 msgs/s for 2 s, far below every path's capacity: no queueing.
latency() {
	local r size qos path
	for r in $(seq "$ROUNDS"); do
		say "latency at 1000 msgs/s, round $r/$ROUNDS"
		for size in 64 1024; do
			for qos in 0 1; do
				for path in "${ACTIVE[@]}"; do
					bench "$path" "lat/$path/$size/q$qos/r$r" --size "$size" --qos "$qos" \
						--count 2000 --rate 1000
				done
			done
		done
	done
}

scaling() {
	local r k path
	for r in $(seq "$ROUNDS"); do
		say "scaling (64 B, QoS 0, max rate), round $r/$ROUNDS"
		for k in 1 10 100; do
			for path in "${ACTIVE[@]}"; do
				bench "$path" "scale/$path/$k/r$r" --size 64 --qos 0 --publishers "$k" \
					--count "${COUNT[$path/64/0]}"
			done
		done
	done
}

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# idle PORT NAME N [ARGS...]: opens N more idle devices on PORT (ARGS: idle_clients.py's --tls CA,
# --ws PATH); IDLE_OK = how many connected.
idle() {
	local port=$1 name=$2 n=$3 ready=$WORK/$2.ready
	shift 3
	start "$name" "$PY" bench/idle_clients.py --port "$port" --count "$n" --ready-file "$ready" \
		--hold 300 --tag "$name" "$@"
	for _ in $(seq 600); do
		[ -s "$ready" ] && break
		sleep 0.1
	done
	IDLE_OK=$(cat "$ready" 2>/dev/null || echo 0)
}

# memory PATH NAME [LABEL PORT ARGS...]: restarts the pub-side sidecar fresh and reads its RSS with
# 0, 100, 1000 idle devices (cumulative), then closes them. LABEL/PORT/ARGS: the row's name and the
# listener the idle devices use (default PATH and the plain listener). The peak RSS of the runs is
# already recorded.
memory() {
	local path=$1 name=$2 label=${3:-$1} port=${4:-${PUB[$1]}} ok100 ok1000 rss0 rss100 rss1000
	shift $(($# < 4 ? $# : 4))
	stop "$name"
	case $path in
	stunnel) start_stunnel "$name" "${PUB[$path]}" ;;
	*) start_mqseal "${name#mqseal-}" "${PUB[$path]}" ;;
	esac || return 0
	wait_listen "$name" "$port" || return 0
	sleep 1
	rss0=$(rss_kb "${PID[$name]}")
	idle "$port" "idle100-$label" 100 "$@"
	ok100=$IDLE_OK
	sleep 1
	rss100=$(rss_kb "${PID[$name]}")
	idle "$port" "idle900-$label" 900 "$@"
	ok1000=$((IDLE_OK + ok100))
	sleep 1
	rss1000=$(rss_kb "${PID[$name]}")
	stop "idle100-$label"
	stop "idle900-$label"
	record "$(printf '{"kind":"memory","path":"%s","rss_kb":{"0":%s,"100":%s,"1000":%s},"connected":{"0":0,"100":%s,"1000":%s}}' \
		"$label" "$rss0" "$rss100" "$rss1000" "$ok100" "$ok1000")"
	say "memory $label: RSS ${rss0} / ${rss100} / ${rss1000} kB with 0 / $ok100 / $ok1000 idle devices"
}

memory_all() {
	local path
	for path in "${ACTIVE[@]}"; do
		case $path in
		stunnel) memory stunnel stunnel-pub ;;
		relay) memory relay mqseal-rpub ;;
		sealed)
			memory sealed mqseal-spub
			memory sealed mqseal-spub sealed-tls "$TLS_PORT" --tls "$WORK/tls/ca.crt"
			memory sealed mqseal-spub sealed-ws "$WS_PORT" --ws /mqtt
			;;
		esac
	done
}

report() {
	mkdir -p "$OUT" "$WORK/plot"
	cp "$RAW" "$OUT/raw.jsonl"
	"$PY" bench/report.py --raw "$OUT/raw.jsonl" --summary "$OUT/summary.md" --plot-dir "$WORK/plot"
	# a partial run (PHASES without throughput and latency) has nothing to plot
	if ls "$WORK/plot"/tput_*.dat >/dev/null 2>&1; then
		gnuplot -e "datadir='$WORK/plot'; outdir='$OUT'" bench/plot.gp
	fi
	say "results: $OUT/summary.md, raw.jsonl, throughput.png, latency.png"
}

main() {
	local t0=$SECONDS
	ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	build
	[ -x "$MQBENCH" ] || die "$MQBENCH is missing"
	machine_info
	read -r BROKER_PORT <<<"$(free_ports 1)"
	start_broker
	tls_files || die "openssl could not make the TLS listener's certificate (see $WORK/tls.log)"
	setup_paths
	calibrate
	local phase
	for phase in $PHASES; do
		case $phase in
		throughput | latency | scaling) "$phase" ;;
		memory) memory_all ;;
		*) die "unknown phase $phase" ;;
		esac
	done
	report
	say "done in $((SECONDS - t0)) s"
}

main "$@"
