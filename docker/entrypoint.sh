#!/usr/bin/env bash
# entrypoint.sh - starts one mqseal node from environment variables, in the container image
# (docker/Dockerfile) and natively alike (scripts/demo.sh runs it for its two nodes):
#   1. creates the identity key on first start (mqseal keygen) and logs its public key line;
#   2. either uses a configuration file given as it is (MQSEAL_CONFIG: production, peers pinned
#      there), or writes one from the variables below, taking the peers' public keys from a shared
#      directory (MQSEAL_PEERS_DIR: demo and test deployments) where it also leaves its own;
#   3. validates the configuration with `mqseal check` and execs mqseal (same PID, signals reach it).
#
#   entrypoint.sh              run the node as described
#   entrypoint.sh health       exit 0 when GET /healthz answers 200 (the image's HEALTHCHECK)
#   entrypoint.sh ARGS...      run mqseal ARGS... (e.g. "pubkey /var/lib/mqseal/identity.key")
#
# Variables (default):
#   MQSEAL_NODE_ID              this node's id (required unless MQSEAL_CONFIG is set)
#   MQSEAL_BROKER_HOST/_PORT    the broker (127.0.0.1 / 1883)
#   MQSEAL_LISTEN_HOST/_PORT    where devices connect (127.0.0.1 / 1883)
#   MQSEAL_LISTEN_ALLOW_REMOTE  true to accept devices from other hosts (false)
#   MQSEAL_METRICS_HOST/_PORT   /metrics and /healthz (127.0.0.1 / 9883)
#   MQSEAL_METRICS_ALLOW_REMOTE true to serve them on a non-loopback address (false)
#   MQSEAL_STATE_DIR            identity key, state file, generated config (/var/lib/mqseal)
#   MQSEAL_PEERS                the peers' node ids, separated by spaces or commas (none)
#   MQSEAL_PEERS_DIR            shared directory of <node_id>.pub files (not set: no exchange)
#   MQSEAL_PEER_WAIT_SECONDS    how long to wait there for the peers' keys (60)
#   MQSEAL_KEYEX_INTERVAL       keyex.interval_seconds (3600)
#   MQSEAL_KEYEX_ACTIVATION     keyex.activation_seconds (10)
#   MQSEAL_LOG_LEVEL            log.level (info)
#   MQSEAL_CONFIG               use this configuration file instead of writing one
#   MQSEAL_BIN                  the mqseal binary (mqseal on PATH)
set -euo pipefail
umask 077

bin=${MQSEAL_BIN:-mqseal}
state_dir=${MQSEAL_STATE_DIR:-/var/lib/mqseal}
metrics_host=${MQSEAL_METRICS_HOST:-127.0.0.1}
metrics_port=${MQSEAL_METRICS_PORT:-9883}

say() { printf 'entrypoint: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 2
}

# The health check: one HTTP/1.0 request with bash's /dev/tcp, so that the image needs no curl.
health() {
	local status="" host=$metrics_host
	case "$host" in # a wildcard address is reached on loopback
	0.0.0.0) host=127.0.0.1 ;;
	::) host=::1 ;;
	esac
	{ exec 3<>"/dev/tcp/$host/$metrics_port"; } 2>/dev/null || return 1
	printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
	read -r -t 5 _ status _ <&3 || return 1
	exec 3<&-
	[ "$status" = 200 ]
}

# Values that end up inside the generated libconfig file are checked here, so that no variable can
# add settings to it; mqseal check then applies the real rules (ranges, lengths).
want() { # want NAME VALUE REGEX
	[[ $2 =~ $3 ]] || die "$1='$2' is not valid (expected $3)"
}

check_vars() {
	want MQSEAL_NODE_ID "${MQSEAL_NODE_ID:-}" '^[A-Za-z0-9._-]{1,64}$'
	want MQSEAL_BROKER_HOST "$broker_host" '^[A-Za-z0-9.:_-]{1,253}$'
	want MQSEAL_LISTEN_HOST "$listen_host" '^[A-Za-z0-9.:_-]{1,253}$'
	want MQSEAL_METRICS_HOST "$metrics_host" '^[A-Za-z0-9.:_-]{1,253}$'
	want MQSEAL_BROKER_PORT "$broker_port" '^[0-9]{1,5}$'
	want MQSEAL_LISTEN_PORT "$listen_port" '^[0-9]{1,5}$'
	want MQSEAL_METRICS_PORT "$metrics_port" '^[0-9]{1,5}$'
	want MQSEAL_LISTEN_ALLOW_REMOTE "$allow_remote" '^(true|false)$'
	want MQSEAL_METRICS_ALLOW_REMOTE "$metrics_remote" '^(true|false)$'
	want MQSEAL_KEYEX_INTERVAL "$interval" '^[0-9]{1,6}$'
	want MQSEAL_KEYEX_ACTIVATION "$activation" '^[0-9]{1,3}$'
	want MQSEAL_LOG_LEVEL "$log_level" '^(error|warn|info|debug)$'
	want MQSEAL_PEER_WAIT_SECONDS "$peer_wait" '^[0-9]{1,5}$'
	want MQSEAL_STATE_DIR "$state_dir" '^[^"\\[:cntrl:]]+$'
	local p
	for p in "${peers[@]}"; do
		want "MQSEAL_PEERS entry" "$p" '^[A-Za-z0-9._-]{1,64}$'
		[ "$p" != "$MQSEAL_NODE_ID" ] || die "MQSEAL_PEERS names this node itself ($p)"
	done
}

# Creates the identity key if missing; prints its public key line.
identity() {
	local key=$1
	if [ -e "$key" ]; then
		"$bin" pubkey "$key"
	else
		say "creating identity key $key"
		"$bin" keygen "$key"
	fi
}

# Publishes our key in the shared directory (write then rename: readers never see half a file).
share_key() {
	local dir=$1 pub=$2 tmp
	mkdir -p "$dir"
	tmp=$(mktemp "$dir/.$MQSEAL_NODE_ID.XXXXXX")
	printf '%s\n' "$pub" >"$tmp"
	chmod 644 "$tmp"
	mv -f "$tmp" "$dir/$MQSEAL_NODE_ID.pub"
}

# Microseconds since the epoch (bash 5's EPOCHREALTIME; $SECONDS only counts whole seconds, so a
# deadline of SECONDS + N could pass after N - 1 seconds and a bit).
now_us() {
	local t=${EPOCHREALTIME/[.,]/}
	printf '%s\n' "$((10#$t))"
}

# Prints the key line of peer $2 from directory $1 once a well-formed one is there, waiting until
# the deadline $3 (from now_us).
peer_key() {
	local dir=$1 id=$2 deadline=$3 line=""
	while :; do
		if [ -r "$dir/$id.pub" ]; then
			read -r line <"$dir/$id.pub" || true
			if [[ $line =~ ^ed25519:[A-Za-z0-9+/]{43}=$ ]]; then
				printf '%s\n' "$line"
				return 0
			fi
		fi
		[ "$(now_us)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

write_config() {
	local conf=$1 key=$2 dir=${MQSEAL_PEERS_DIR:-} deadline p line sep=""
	local entries=""
	if [ ${#peers[@]} -gt 0 ]; then
		[ -n "$dir" ] || die "MQSEAL_PEERS is set but MQSEAL_PEERS_DIR is not: nowhere to find their keys"
		deadline=$(($(now_us) + peer_wait * 1000000))
		say "waiting up to ${peer_wait}s for the keys of: ${peers[*]} (in $dir)"
		for p in "${peers[@]}"; do
			line=$(peer_key "$dir" "$p" "$deadline") || die "no public key from peer $p in $dir after ${peer_wait}s"
			say "peer $p: $line"
			entries+="$sep"$'\n'"  { id = \"$p\"; public_key = \"$line\"; }"
			sep=","
		done
	fi
	cat >"$conf.tmp" <<EOF
# Written by docker/entrypoint.sh from MQSEAL_* variables; rewritten at every start.
node_id = "$MQSEAL_NODE_ID";
state_dir = "$state_dir";
identity_file = "$key";
listen = { host = "$listen_host"; port = $listen_port; allow_remote = $allow_remote; };
broker = { host = "$broker_host"; port = $broker_port; };
keyex = { interval_seconds = $interval; activation_seconds = $activation; };
metrics = { enabled = true; host = "$metrics_host"; port = $metrics_port; allow_remote = $metrics_remote; };
log = { level = "$log_level"; };
peers = ($entries
);
EOF
	mv -f "$conf.tmp" "$conf"
}

run() {
	local conf key pub out peers_text
	broker_host=${MQSEAL_BROKER_HOST:-127.0.0.1}
	broker_port=${MQSEAL_BROKER_PORT:-1883}
	listen_host=${MQSEAL_LISTEN_HOST:-127.0.0.1}
	listen_port=${MQSEAL_LISTEN_PORT:-1883}
	allow_remote=${MQSEAL_LISTEN_ALLOW_REMOTE:-false}
	metrics_remote=${MQSEAL_METRICS_ALLOW_REMOTE:-false}
	interval=${MQSEAL_KEYEX_INTERVAL:-3600}
	activation=${MQSEAL_KEYEX_ACTIVATION:-10}
	log_level=${MQSEAL_LOG_LEVEL:-info}
	peer_wait=${MQSEAL_PEER_WAIT_SECONDS:-60}
	peers_text=${MQSEAL_PEERS:-}
	read -r -a peers <<<"${peers_text//,/ }"

	mkdir -p "$state_dir"
	state_dir=$(cd "$state_dir" && pwd)
	key=$state_dir/identity.key
	if [ -n "${MQSEAL_CONFIG:-}" ]; then
		# A mounted configuration is used as it is; its identity_file should be the default
		# <state_dir>/identity.key for the key created here to be the one it names.
		[ -r "$MQSEAL_CONFIG" ] || die "MQSEAL_CONFIG=$MQSEAL_CONFIG is not readable"
		pub=$(identity "$key")
		say "public key of this node: $pub"
		conf=$MQSEAL_CONFIG
	else
		check_vars
		pub=$(identity "$key")
		say "public key of $MQSEAL_NODE_ID: $pub"
		[ -z "${MQSEAL_PEERS_DIR:-}" ] || share_key "$MQSEAL_PEERS_DIR" "$pub"
		conf=$state_dir/mqseal.conf
		write_config "$conf" "$key"
	fi
	# Only its problems are shown: the warnings come again from the node itself.
	if ! out=$("$bin" check -c "$conf" 2>&1 >/dev/null); then
		printf '%s\n' "$out" >&2
		die "$conf: rejected by mqseal check"
	fi
	exec "$bin" -c "$conf"
}

case "${1:-}" in
"") run ;;
health) health ;;
*) exec "$bin" "$@" ;;
esac
