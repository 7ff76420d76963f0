# sealed_pair.sh - sourced by bench/profile.sh and bench/callgrind_sub.sh: a private mosquitto and
# the two sealing sidecars' keys and configurations (spub: the publishers' side, ssub: the
# subscribers'), on loopback. Expects B (build dir), W (work dir, with W/m made), H (host), the
# array PIDS (every process started is added) and optionally TUNE (a command prefix for the
# broker). Sets BP (broker port), PP and SP (the sidecars' device ports).
# pair_setup PREFIX [MOSQUITTO_LINES]: ports, broker started, keys and configurations written.
pair_setup() {
	local prefix=$1 extra=${2:-} id
	read -r BP PP SP <<<"$(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')"
	printf 'listener %s %s\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n%b' \
		"$BP" "$H" "$extra" >"$W/mosquitto.conf"
	[ "$(id -u)" -eq 0 ] && echo "user root" >>"$W/mosquitto.conf"
	${TUNE[@]+"${TUNE[@]}"} mosquitto -c "$W/mosquitto.conf" >"$W/mosquitto.log" 2>&1 &
	PIDS+=($!)
	for id in spub ssub; do
		mkdir -m 700 "$W/m/$id"
		"$B/proxy/mqseal" keygen "$W/m/$id/id.key" 2>/dev/null | tail -n 1 >"$W/m/$id.pub"
	done
	pair_conf spub ssub "$PP" "$prefix"
	pair_conf ssub spub "$SP" "$prefix"
}

# pair_conf ID PEER PORT PREFIX
pair_conf() {
	cat >"$W/m/$1.conf" <<-E
		node_id = "$1";
		state_dir = "$W/m/$1";
		identity_file = "$W/m/$1/id.key";
		listen = { host = "$H"; port = $3; };
		broker = { host = "$H"; port = $BP; };
		keyex = { interval_seconds = 3600; topic_prefix = "$4"; };
		peers = ( { id = "$2"; public_key = "$(cat "$W/m/$2.pub")"; } );
		metrics = { enabled = false; };
		log = { level = "warn"; };
	E
}

# pair_probe MQBENCH_COMMAND...: until 10 QoS 1 messages come through the pair (the pair has to
# key first), at most 60 tries.
pair_probe() {
	local _
	for _ in $(seq 60); do
		"$@" --size 64 --count 10 --qos 1 --timeout 5 --label probe 2>/dev/null | grep -q '"delivered":10,' && return 0
		sleep 1
	done
	return 1
}
