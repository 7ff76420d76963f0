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
#   entrypoint.sh health       mqseal health on this node's /readyz (the image's HEALTHCHECK runs
#                              `mqseal health URL` itself, without this script or a shell)
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
#   MQSEAL_BROKER_TLS           true: broker.tls.enabled, and the broker port defaults to 8883 (false)
#   MQSEAL_BROKER_TLS_CA_FILE, MQSEAL_BROKER_TLS_CA_PATH, MQSEAL_BROKER_TLS_CERT_FILE
#                               broker.tls.ca_file, ca_path, cert_file: paths used as they are
#   MQSEAL_BROKER_TLS_KEY       broker.tls.key_file's private key (PEM text; secret, see below)
#   MQSEAL_BROKER_TLS_SERVER_NAME    broker.tls.server_name
#   MQSEAL_BROKER_TLS_VERIFY_HOSTNAME broker.tls.verify_hostname (true)
#   MQSEAL_KEYEX_USERNAME       keyex.username: the broker user of the key-exchange connection
#   MQSEAL_KEYEX_PASSWORD       keyex.password (secret, see below)
#   MQSEAL_KEYEX_TOPIC_PREFIX   keyex.topic_prefix (mqseal)
#   MQSEAL_TOPICS_PLAINTEXT, MQSEAL_TOPICS_DENY
#                               topics.plaintext, topics.deny: filters separated by commas or newlines
#   MQSEAL_IDENTITY_KEY         this node's identity key (PEM text; secret): copied to the state
#                               directory at every start instead of creating one
#   MQSEAL_PEERS_SHARE          false: MQSEAL_PEERS_DIR holds pinned keys (a read-only mount, e.g.
#                               a Kubernetes ConfigMap); this node's key is not written there (true)
# Secrets: MQSEAL_KEYEX_PASSWORD, MQSEAL_BROKER_TLS_KEY and MQSEAL_IDENTITY_KEY can instead name a
# file with <NAME>_FILE (Docker and Kubernetes secrets are mounted as files); setting both is an
# error. Private keys are copied into the state directory with mode 0600 (mounted secrets are often
# group-readable, which mqseal refuses for the identity key).
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

# The health check: `mqseal health` on /readyz (exit 0 when ready). The image's HEALTHCHECK calls
# mqseal directly (no shell); this form follows MQSEAL_METRICS_HOST/_PORT.
health() {
	local host=$metrics_host
	case "$host" in # a wildcard address is reached on loopback
	0.0.0.0) host=127.0.0.1 ;;
	::) host=::1 ;;
	esac
	case "$host" in
	*:*) host="[$host]" ;;
	esac
	exec "$bin" health "http://$host:$metrics_port/readyz"
}

# Values that end up inside the generated libconfig file are checked here, so that no variable can
# add settings to it; mqseal check then applies the real rules (ranges, lengths).
want() { # want NAME VALUE REGEX
	[[ $2 =~ $3 ]] || die "$1='$2' is not valid (expected $3)"
}

# Sets REPLY to the value of the variable named $1, or to the contents of the file named by $1_FILE
# (trailing newlines removed). Both set is an error: which one was meant is not ours to guess.
secret() {
	local name=$1 fvar=${1}_FILE val file
	val=${!name:-}
	file=${!fvar:-}
	REPLY=""
	if [ -n "$val" ] && [ -n "$file" ]; then
		die "$name and ${fvar} are both set: set one of them"
	fi
	if [ -n "$file" ]; then
		if [ ! -f "$file" ] || [ ! -r "$file" ]; then die "${fvar}=$file is not a readable file"; fi
		val=$(<"$file") || die "${fvar}=$file could not be read"
		[ -n "$val" ] || die "${fvar}=$file is empty"
	fi
	REPLY=$val
}

# Prints $2 as a libconfig string literal; refuses control characters (variable $1 named).
quote() {
	local v=$2
	[[ ! $v =~ [[:cntrl:]] ]] || die "$1 contains a control character"
	v=${v//\\/\\\\}
	v=${v//\"/\\\"}
	printf '"%s"' "$v"
}

# Writes a private key (PEM text $2) to file $1 with mode 0600, replacing it atomically.
write_key() {
	local dst=$1 tmp
	tmp=$(mktemp "$dst.XXXXXX")
	printf '%s\n' "$2" >"$tmp"
	chmod 600 "$tmp"
	mv -f "$tmp" "$dst"
}

# Prints a libconfig array of the topic filters in $2 (commas or newlines between them).
filters() {
	local name=$1 list=${2//$'\n'/,} f out="" q sep=""
	local -a items=()
	IFS=, read -r -a items <<<"$list"
	for f in "${items[@]}"; do
		f=${f#"${f%%[![:space:]]*}"}
		f=${f%"${f##*[![:space:]]}"}
		[ -n "$f" ] || continue
		q=$(quote "$name" "$f") || exit 2
		out+="$sep$q"
		sep=", "
	done
	printf '[ %s ]' "$out"
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
	want MQSEAL_BROKER_TLS "$tls" '^(true|false)$'
	want MQSEAL_BROKER_TLS_VERIFY_HOSTNAME "$verify_hostname" '^(true|false)$'
	want MQSEAL_PEERS_SHARE "$peers_share" '^(true|false)$'
	local p
	for p in "${peers[@]}"; do
		want "MQSEAL_PEERS entry" "$p" '^[A-Za-z0-9._-]{1,64}$'
		[ "$p" != "$MQSEAL_NODE_ID" ] || die "MQSEAL_PEERS names this node itself ($p)"
	done
}

# Creates the identity key if missing (or copies it from MQSEAL_IDENTITY_KEY[_FILE]); prints its
# public key line.
identity() {
	local key=$1
	secret MQSEAL_IDENTITY_KEY
	if [ -n "$REPLY" ]; then
		write_key "$key" "$REPLY"
		"$bin" pubkey "$key" || die "MQSEAL_IDENTITY_KEY[_FILE] is not an identity key (mqseal keygen makes one)"
	elif [ -e "$key" ]; then
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
	local tls_group keyex_extra="" plaintext deny q
	tls_group=$(tls_settings) || exit 2
	if [ -n "${MQSEAL_KEYEX_USERNAME:-}" ]; then
		q=$(quote MQSEAL_KEYEX_USERNAME "$MQSEAL_KEYEX_USERNAME") || exit 2
		keyex_extra+=" username = $q;"
	fi
	secret MQSEAL_KEYEX_PASSWORD
	if [ -n "$REPLY" ]; then
		q=$(quote MQSEAL_KEYEX_PASSWORD "$REPLY") || exit 2
		keyex_extra+=" password = $q;"
	fi
	q=$(quote MQSEAL_KEYEX_TOPIC_PREFIX "${MQSEAL_KEYEX_TOPIC_PREFIX:-mqseal}") || exit 2
	keyex_extra+=" topic_prefix = $q;"
	plaintext=$(filters MQSEAL_TOPICS_PLAINTEXT "${MQSEAL_TOPICS_PLAINTEXT:-}") || exit 2
	deny=$(filters MQSEAL_TOPICS_DENY "${MQSEAL_TOPICS_DENY:-}") || exit 2
	cat >"$conf.tmp" <<EOF
# Written by docker/entrypoint.sh from MQSEAL_* variables; rewritten at every start.
node_id = "$MQSEAL_NODE_ID";
state_dir = "$state_dir";
identity_file = "$key";
listen = { host = "$listen_host"; port = $listen_port; allow_remote = $allow_remote; };
broker = { host = "$broker_host"; port = $broker_port;
  tls = { $tls_group }; };
keyex = { interval_seconds = $interval; activation_seconds = $activation;$keyex_extra };
topics = { plaintext = $plaintext; deny = $deny; };
metrics = { enabled = true; host = "$metrics_host"; port = $metrics_port; allow_remote = $metrics_remote; };
log = { level = "$log_level"; };
peers = ($entries
);
EOF
	mv -f "$conf.tmp" "$conf"
}

# Prints the settings of broker.tls; the client key is written to the state directory (0600).
tls_settings() {
	local out="enabled = $tls; verify_hostname = $verify_hostname;" v q var opt
	for var in CA_FILE:ca_file CA_PATH:ca_path CERT_FILE:cert_file SERVER_NAME:server_name; do
		opt=${var#*:}
		var=MQSEAL_BROKER_TLS_${var%%:*}
		v=${!var:-}
		if [ -n "$v" ]; then
			q=$(quote "$var" "$v") || exit 2
			out+=" $opt = $q;"
		fi
	done
	secret MQSEAL_BROKER_TLS_KEY
	if [ -n "$REPLY" ]; then
		write_key "$state_dir/broker-client.key" "$REPLY"
		out+=" key_file = \"$state_dir/broker-client.key\";"
	fi
	printf '%s' "$out"
}

run() {
	local conf key pub out peers_text
	broker_host=${MQSEAL_BROKER_HOST:-127.0.0.1}
	tls=${MQSEAL_BROKER_TLS:-false}
	verify_hostname=${MQSEAL_BROKER_TLS_VERIFY_HOSTNAME:-true}
	peers_share=${MQSEAL_PEERS_SHARE:-true}
	if [ "$tls" = true ]; then
		broker_port=${MQSEAL_BROKER_PORT:-8883}
	else
		broker_port=${MQSEAL_BROKER_PORT:-1883}
	fi
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
		if [ -n "${MQSEAL_PEERS_DIR:-}" ] && [ "$peers_share" = true ]; then
			share_key "$MQSEAL_PEERS_DIR" "$pub"
		fi
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
