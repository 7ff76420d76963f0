#!/usr/bin/env bash
# crypto.sh - the crypto micro-benchmark in one command: bench/crypto.sh
#
# Builds the release tree, then measures in ONE run, alternating, ROUNDS rounds of
#   for N in 64, 1024, 16384:
#     A  openssl speed -elapsed -evp aes-256-gcm -bytes N -seconds 1       (the ceiling)
#     B  build/bench/bench_aead --size N S    aead_seal / aead_open, and an in-process EVP loop
#     C  build/bench/bench_crypto --size N S  keyring_seal / keyring_open (the full envelope through
#                                             the key ring and a per-device replay state)
#   D  build/bench/bench_crypto --keys S      announcements, epoch_derive
#   E  build/bench/bench_crypto --telemetry scripts/telemetry.csv S   the demo's readings
# (S = MEASURE_S seconds per measurement). What is compared runs seconds apart, and there are many
# short rounds rather than a few long ones: the machines are shared, and the load comes in bursts.
# then A, B, C at each size and E once more under callgrind (instructions per message, which do not
# depend on the machine's load; skipped without valgrind). Every timed figure is the median over the
# rounds with [min-max]; ratios are paired per round. Results go to OUT (bench/results):
# crypto.jsonl (every measurement) and crypto.md (the tables and the analysis). They are written only
# when the whole run finished. About 2 minutes on 2 cores, plus the build.
#
# Knobs (environment): ROUNDS (5, at least 3), MEASURE_S (0.5: seconds per measurement of ours;
# openssl speed runs 1 s per size, its shortest), OUT
# (bench/results), BUILD_DIR (build), SKIP_BUILD=1 (use the binaries already in BUILD_DIR),
# TELEMETRY (scripts/telemetry.csv), SOURCE_COMMIT (the commit to name when the tree is an export).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
MEASURE_S=${MEASURE_S:-0.5}
OUT=${OUT:-bench/results}
BUILD_DIR=${BUILD_DIR:-build}
TELEMETRY=${TELEMETRY:-scripts/telemetry.csv}
PY=/usr/bin/python3
SIZES=(64 1024 16384)

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

if ! [[ $ROUNDS =~ ^[0-9]+$ ]] || ((ROUNDS < 3 || ROUNDS > 20)); then
	die "ROUNDS must be 3..20"
fi
if ! [[ $MEASURE_S =~ ^(0\.[1-9]|[1-9](\.[0-9])?|10)$ ]]; then
	die "MEASURE_S must be 0.1..10 seconds (one decimal)"
fi
for tool in openssl "$PY"; do command -v "$tool" >/dev/null || die "$tool is missing"; done

WORK=$(mktemp -d /tmp/mqseal-crypto.XXXXXX)
RAW=$WORK/crypto.jsonl
trap 'rm -rf "$WORK"' EXIT
trap 'say "interrupted"; exit 130' INT TERM

# record JSON: one line of crypto.jsonl
record() { printf '%s\n' "$1" >>"$RAW"; }

# tag TOOL ROUND: prefixes every JSON line on stdin with the tool and the round.
tag() { sed "s/^{/{\"tool\":\"$1\",\"round\":$2,/"; }

build() {
	if [ "${SKIP_BUILD:-0}" = 1 ]; then
		say "using the binaries in $BUILD_DIR (SKIP_BUILD=1)"
		return 0
	fi
	[ "$BUILD_DIR" = build ] || die "BUILD_DIR=$BUILD_DIR needs SKIP_BUILD=1 (scripts/build.sh builds build/)"
	say "building the release tree (scripts/build.sh release)"
	if ! scripts/build.sh release >"$WORK/build.log" 2>&1; then
		tail -n 20 "$WORK/build.log" >&2
		say "the full release build failed; building the two benchmark programs alone"
		cmake --build build --target bench_aead bench_crypto >>"$WORK/build.log" 2>&1 ||
			die "cannot build bench_aead and bench_crypto"
	fi
}

# cpu_jiffies: "total steal" from the cpu line of /proc/stat.
cpu_jiffies() { awk '/^cpu /{t=0; for (i = 2; i <= NF; i++) t += $i; print t, $9; exit}' /proc/stat; }

# machine_info KIND: the machine, and how loaded it is right now.
machine_info() {
	local commit
	commit=${SOURCE_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
	if [ -z "${SOURCE_COMMIT:-}" ] && [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then
		commit="$commit+dirty"
	fi
	# shellcheck disable=SC2046 # word splitting of cpu_jiffies is intended
	record "$("$PY" - "$1" "$commit" "$ROUNDS" "$MEASURE_S" $(cpu_jiffies) <<-'EOF'
		import json, os, platform, subprocess, sys, time
		kind, commit, rounds, secs, total, steal = sys.argv[1:7]
		cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
		def out(*cmd):
		    try:
		        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
		    except (OSError, IndexError):
		        return "?"
		print(json.dumps({"tool": kind, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "nproc": os.cpu_count(),
		                  "cpu": cpu, "kernel": platform.release(), "openssl": out("openssl", "version"),
		                  "gcc": out("gcc", "--version"), "commit": commit, "rounds": int(rounds),
		                  "measure_s": float(secs), "loadavg": [float(x) for x in open("/proc/loadavg").read().split()[:3]],
		                  "jiffies": int(total), "steal": int(steal)}))
	EOF
	)"
}

# openssl_speed SIZE ROUND: one `openssl speed` run; its "The 'numbers' are in 1000s of bytes per
# second processed." table has one row, "AES-256-GCM  <k>k", k in units of 1000 bytes/s.
openssl_speed() {
	local out k
	out=$(openssl speed -elapsed -evp aes-256-gcm -bytes "$1" -seconds 1 2>&1) ||
		die "openssl speed failed: $out"
	grep -q "The 'numbers' are in 1000s of bytes per second" <<<"$out" || die "unexpected openssl speed output: $out"
	k=$(awk '$1 == "AES-256-GCM" && $2 ~ /k$/ {sub(/k$/, "", $2); print $2}' <<<"$out" | tail -1)
	[[ $k =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "cannot read the openssl speed table: $out"
	record "$(awk -v n="$1" -v k="$k" -v r="$2" 'BEGIN {
		printf "{\"tool\":\"openssl\",\"round\":%d,\"op\":\"speed\",\"size\":%d,\"ns_per_msg\":%.1f,\"mb_per_s\":%.1f}",
			r, n, n / (k * 1000) * 1e9, k / 1000 }')"
}

one_round() {
	local r=$1 n
	say "round $r/$ROUNDS: openssl speed, bench_aead, bench_crypto at ${SIZES[*]} B; announcements; telemetry"
	record "$(printf '{"tool":"round","round":%d,"loadavg":[%s]}' "$r" "$(awk '{print $1","$2","$3}' /proc/loadavg)")"
	for n in "${SIZES[@]}"; do
		openssl_speed "$n" "$r"
		{
			"$BUILD_DIR/bench/bench_aead" --size "$n" "$MEASURE_S" | tag bench_aead "$r"
			"$BUILD_DIR/bench/bench_crypto" --size "$n" "$MEASURE_S" | tag bench_crypto "$r"
		} >>"$RAW"
	done
	{
		"$BUILD_DIR/bench/bench_crypto" --keys "$MEASURE_S" | tag bench_crypto "$r"
		"$BUILD_DIR/bench/bench_crypto" --telemetry "$TELEMETRY" "$MEASURE_S" | tag telemetry "$r"
	} >>"$RAW"
}

# callgrind RUN SIZE CMD...: CMD under callgrind; for the functions of interest, the calls and the
# instructions spent inside them (inclusive), summed over their call sites; for openssl speed, the
# loop that calls EVP_EncryptFinal_ex (one call per message) and everything it calls.
callgrind() {
	local run=$1 size=$2
	shift 2
	valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$@" >"$WORK/cg.stdout" 2>"$WORK/cg.log" ||
		die "callgrind run of $run failed: $(tail -n 3 "$WORK/cg.log")"
	"$PY" - "$WORK/cg.out" "$run" "$size" keyring_seal keyring_open env_seal env_open aead_seal aead_open \
		EVP_EncryptInit_ex2 EVP_DecryptInit_ex2 EVP_CIPHER_CTX_get_iv_length EVP_CipherUpdate \
		EVP_CIPHER_CTX_ctrl EVP_EncryptFinal_ex EVP_DecryptFinal_ex >>"$RAW" <<-'EOF'
		import collections, json, re, sys
		# Callgrind format: "fn=(id) name" starts the costs of a function, "cfn=(id) name" names a
		# callee (the id alone once named); "calls=N ..." is followed by one cost line whose last
		# field is the inclusive instruction count of those N calls.
		path, run, size, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
		seen, fn, callee, take = {}, None, None, False
		pair = collections.defaultdict(lambda: [0, 0])
		for line in open(path):
		    m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
		    if m:
		        if m.group(3):
		            seen[m.group(2)] = m.group(3)
		        if m.group(1) == "fn":
		            fn = seen.get(m.group(2))
		        else:
		            callee = seen.get(m.group(2))
		    elif line.startswith("calls="):
		        take = True
		        pair[(fn, callee)][0] += int(line.split()[0][6:])
		    elif take:
		        pair[(fn, callee)][1] += int(line.split()[-1])
		        take = False
		def emit(name, calls, ir):
		    print(json.dumps({"tool": "callgrind", "run": run, "size": size, "fn": name, "calls": calls, "ir": ir}))
		for n in names:
		    calls = sum(v[0] for (c, e), v in pair.items() if e == n)
		    if calls:
		        emit(n, calls, sum(v[1] for (c, e), v in pair.items() if e == n))
		if run == "openssl":
		    loop = max((c for (c, e) in pair if e == "EVP_EncryptFinal_ex"),
		               key=lambda c: pair[(c, "EVP_EncryptFinal_ex")][0])
		    emit("speed loop", pair[(loop, "EVP_EncryptFinal_ex")][0],
		         sum(v[1] for (c, e), v in pair.items() if c == loop))
	EOF
}

# profile: instruction counts per message, which do not depend on the load: openssl speed, aead and
# envelope at each size, and the telemetry messages. Skipped without valgrind.
profile() {
	local n
	if ! command -v valgrind >/dev/null; then
		say "valgrind is missing: no instruction counts"
		return 0
	fi
	say "instruction counts under callgrind: openssl speed, bench_aead, bench_crypto (${SIZES[*]} B), telemetry"
	for n in "${SIZES[@]}"; do
		callgrind openssl "$n" openssl speed -evp aes-256-gcm -bytes "$n" -seconds 1
		callgrind bench_aead "$n" "$BUILD_DIR/bench/bench_aead" --size "$n" 0.05
		callgrind bench_crypto "$n" "$BUILD_DIR/bench/bench_crypto" --size "$n" 0.05
	done
	callgrind telemetry 0 "$BUILD_DIR/bench/bench_crypto" --telemetry "$TELEMETRY" 0.05
}

report() {
	"$PY" - "$RAW" "$TELEMETRY" >"$WORK/crypto.md" <<-'EOF'
		import json, statistics, sys

		raw, telemetry = sys.argv[1:3]
		recs = [json.loads(l) for l in open(raw)]
		by = lambda **kw: [r for r in recs if all(r.get(k) == v for k, v in kw.items())]
		start, end = by(tool="machine")[0], by(tool="machine_end")[0]
		rounds = sorted({r["round"] for r in by(tool="round")})

		def series(field, **kw):
		    """{round: value} of the one record per round matching kw."""
		    return {r["round"]: r[field] for r in by(**kw)}

		def med(vals, fmt="%.0f"):
		    vals = list(vals.values()) if isinstance(vals, dict) else list(vals)
		    if not vals:
		        return "-"
		    return (fmt + " [" + fmt + "–" + fmt + "]") % (statistics.median(vals), min(vals), max(vals))

		def ratio(ceil_ns, ns):
		    """Paired per round: ceiling time / our time = our throughput as a share of the ceiling's."""
		    return {r: ceil_ns[r] / ns[r] for r in ns if r in ceil_ns}

		def ipm(run, fn, size):
		    """Instructions per call of fn in the callgrind run (run, size), or None."""
		    r = by(tool="callgrind", run=run, size=size, fn=fn)
		    return r[0]["ir"] / r[0]["calls"] if r and r[0]["calls"] else None

		SIZES = (64, 1024, 16384)
		speed = {n: series("ns_per_msg", tool="openssl", size=n) for n in SIZES}
		evp = {n: series("ns_per_msg", tool="bench_aead", op="evp", size=n) for n in SIZES}
		rows = [("aead_seal", "bench_aead", "seal"), ("aead_open", "bench_aead", "open"),
		        ("envelope seal (keyring_seal)", "bench_crypto", "seal"),
		        ("envelope open (keyring_open, per-device replay)", "bench_crypto", "open")]
		ns = {(t, o, n): series("ns_per_msg", tool=t, op=o, size=n) for _, t, o in rows for n in SIZES}
		P = print

		P("# Crypto micro-benchmark: sealing next to `openssl speed`\n")
		P("Produced by `bench/crypto.sh` on commit %s, %s. %d rounds, alternating (per size: openssl speed, "
		  "bench_aead, bench_crypto; then announcements, telemetry; then again), %g s per measurement of ours, "
		  "1 s per `openssl speed` size. "
		  "Every figure is the median over the rounds "
		  "with [min–max]; ratios are paired per round (round r of ours against round r of the reference). "
		  "Raw data: `crypto.jsonl`.\n" % (start["commit"], start["date"], len(rounds), start["measure_s"]))

		# ---- machine and load
		nproc = start["nproc"]
		jt = end["jiffies"] - start["jiffies"]
		steal = 100.0 * (end["steal"] - start["steal"]) / jt if jt > 0 else 0.0
		P("## Machine and load\n")
		P("| | |\n|---|---|")
		P("| CPU | %s, %d CPUs (nproc) |" % (start["cpu"], nproc))
		P("| kernel / OpenSSL / compiler | %s / %s / %s |" % (start["kernel"], start["openssl"], start["gcc"]))
		P("| load average (1, 5, 15 min) at start | %s |" % ", ".join("%.2f" % x for x in start["loadavg"]))
		P("| load average at the start of each round (1 min) | %s |"
		  % ", ".join("%.2f" % r["loadavg"][0] for r in by(tool="round")))
		P("| load average at end | %s |" % ", ".join("%.2f" % x for x in end["loadavg"]))
		P("| CPU time stolen by the hypervisor during the run | %.1f %% |" % steal)
		la = statistics.median([r["loadavg"][0] for r in by(tool="round")])
		P("\nThe machine is shared: a 1-minute load average of %.1f on %d CPUs means about %.1f runnable tasks per "
		  "CPU besides this benchmark's one thread, so its single-threaded loops were preempted for part of their "
		  "wall-clock time. That noise hits openssl speed and our loops alike; the alternation keeps them side by "
		  "side in time, and the instruction counts below are immune to it.\n" % (la, nproc, la / nproc))

		# ---- targets
		def target_row(what, vals, fmt, ok):
		    P("| %s | %s | %s |" % (what, med(vals, fmt), "met" if ok(statistics.median(vals.values())) else "**missed**"))
		P("## Targets of the issue\n")
		P("| target | measured: median [min–max] | |\n|---|---|---|")
		for t, o, name in (("bench_aead", "seal", "aead_seal"), ("bench_aead", "open", "aead_open"),
		                   ("bench_crypto", "seal", "envelope seal"), ("bench_crypto", "open", "envelope open")):
		    target_row("16 KiB %s within 10%% of `openssl speed` (throughput share ≥ 0.90)" % name,
		               ratio(speed[16384], ns[(t, o, 16384)]), "%.2f", lambda v: v >= 0.9)
		for t, o, name in (("bench_aead", "seal", "aead_seal"), ("bench_aead", "open", "aead_open"),
		                   ("bench_crypto", "seal", "envelope seal"), ("bench_crypto", "open", "envelope open")):
		    target_row("64 B %s under 300 ns per message (ns)" % name, ns[(t, o, 64)], "%.0f", lambda v: v < 300)
		for run, fn, name in (("bench_aead", "aead_seal", "aead_seal"), ("bench_aead", "aead_open", "aead_open"),
		                      ("bench_crypto", "keyring_seal", "envelope seal"),
		                      ("bench_crypto", "keyring_open", "envelope open")):
		    ref, v = ipm("openssl", "speed loop", 16384), ipm(run, fn, 16384)
		    if ref and v:
		        P("| 16 KiB %s within 10%%, by instructions per message (callgrind, load-immune): share of "
		          "`openssl speed`'s | %.3f | %s |" % (name, ref / v, "met" if ref / v >= 0.9 else "**missed**"))
		P("\nThe targets were set for the AEAD layer (crypto/aead.c, the crypto brief); the envelope rows, which add "
		  "the §5 envelope, the key ring's counters and limits and the receiver's replay window, are there to show "
		  "what the whole per-message path costs against the same bars.\n")

		# ---- per size
		P("## Per message size\n")
		P("*share of ceiling* = the ceiling's time per message ÷ ours, paired per round: 1.00 is as fast as the "
		  "ceiling, 0.90 is 10 % slower. MB/s = 10^6 payload bytes per second.\n")
		for n in SIZES:
		    P("### %s\n" % ({64: "64 B", 1024: "1 KiB", 16384: "16 KiB"}[n]))
		    P("| path | ns/msg | MB/s | share of `openssl speed` | share of EVP loop |\n|---|---|---|---|---|")
		    mb = lambda d: {r: n / v * 1e3 for r, v in d.items()}
		    P("| `openssl speed -elapsed -evp aes-256-gcm` (the ceiling) | %s | %s | 1 | %s |"
		      % (med(speed[n]), med(mb(speed[n])), med(ratio(evp[n], speed[n]), "%.2f")))
		    P("| EVP loop in bench_aead (nonce, Update, Final, tag; one keyed context) | %s | %s | %s | 1 |"
		      % (med(evp[n]), med(mb(evp[n])), med(ratio(speed[n], evp[n]), "%.2f")))
		    for label, t, o in rows:
		        v = ns[(t, o, n)]
		        P("| %s | %s | %s | %s | %s |" % (label, med(v), med(mb(v)), med(ratio(speed[n], v), "%.2f"),
		                                          med(ratio(evp[n], v), "%.2f")))
		    P("")

		# ---- overhead, announcements, derivations, telemetry
		P("## Bytes of overhead per message (seal.padding = 16)\n")
		P("| payload | sealed | overhead |\n|---|---|---|")
		for n in SIZES:
		    o = by(tool="bench_crypto", op="seal", size=n)[0]["overhead"]
		    P("| %d B | %d B | %d B (%.1f %%) |" % (n, n + o, o, 100.0 * o / n))
		P("\n18 B header (version, flags, key id, counter) + 16 B tag + 8 B inner lengths, then zero padding to a "
		  "multiple of 16 (PROTOCOL.md §5).\n")
		P("## Announcements and key derivation\n")
		P("| operation | entries | bytes | per second |\n|---|---|---|---|")
		for op, label in (("ann_build", "build (one X25519 + wrap per entry, one Ed25519 signature)"),
		                  ("ann_verify_unwrap", "parse + verify + find own entry + unwrap")):
		    for e in (1, 10, 50):
		        b = by(tool="bench_crypto", op=op, entries=e)[0]["bytes"]
		        P("| %s | %d | %d | %s |" % (label, e, b, med(series("per_s", tool="bench_crypto", op=op, entries=e))))
		P("| epoch_derive (HKDF extract + 3 labelled expands) | - | - | %s |"
		  % med(series("per_s", tool="bench_crypto", op="epoch_derive")))
		P("")
		tl = by(tool="telemetry")
		t0 = tl[0]
		P("## The demo's telemetry (`%s`)\n" % telemetry)
		P("Each of the %d rows as `scripts/demo.py` publishes it (payload `#<seq> <temperature>C <humidity>%%` on "
		  "`plant/<sensor>`, MQTT 3.1.1, no retain), sealed under a sender ring and opened under a receiver ring "
		  "through a per-device replay state, as the two demo sidecars do.\n" % t0["rows"])
		P("| | |\n|---|---|")
		P("| average payload | %.2f B (topic %.2f B) |" % (t0["payload_bytes"], t0["topic_bytes"]))
		P("| average sealed payload | %.2f B |" % t0["sealed_bytes"])
		P("| average overhead per message | %.2f B (min %d, max %d) |"
		  % (t0["overhead_bytes"], t0["overhead_min"], t0["overhead_max"]))
		P("| seal, ns per message | %s |" % med(series("seal_ns", tool="telemetry")))
		P("| open, ns per message | %s |" % med(series("open_ns", tool="telemetry")))
		P("")

		# ---- instruction counts
		if by(tool="callgrind"):
		    P("## Instructions per message (callgrind)\n")
		    P("Each program once more, under `valgrind --tool=callgrind`: instructions counted inside the "
		      "function (callees included) ÷ its calls. Counts do not depend on the load, so these comparisons "
		      "hold however busy the machine was; they are not times (an instruction of the AES key schedule "
		      "or of GHASH costs more cycles than a `strcmp` one). `openssl speed` = its timing loop (everything "
		      "it calls) ÷ messages. *share* = openssl speed's count ÷ ours.\n")
		    P("| size | `openssl speed` | aead_seal (share) | aead_open (share) | envelope seal (share) | "
		      "envelope open (share) |\n|---|---|---|---|---|---|")
		    for n in SIZES:
		        ref = ipm("openssl", "speed loop", n)
		        cells = []
		        for run, fn in (("bench_aead", "aead_seal"), ("bench_aead", "aead_open"),
		                        ("bench_crypto", "keyring_seal"), ("bench_crypto", "keyring_open")):
		            v = ipm(run, fn, n)
		            cells.append("%.0f (%.2f)" % (v, ref / v) if v and ref else "-")
		        P("| %d B | %s | %s |" % (n, "%.0f" % ref if ref else "-", " | ".join(cells)))
		    P("")
		    tel = [r for r in by(tool="callgrind", run="telemetry")]
		    msgs = next((r["calls"] for r in tel if r["fn"] == "keyring_seal"), 0)
		    if msgs:
		        P("### One telemetry message, function by function\n")
		        P("`bench_crypto --telemetry` under callgrind (%d messages sealed, then opened). *per message* = "
		          "instructions inside the function (callees included) ÷ messages.\n" % msgs)
		        P("| function | calls per message | instructions per call | per message |\n|---|---|---|---|")
		        for r in tel:
		            P("| `%s` | %.2f | %.0f | %.0f |" % (r["fn"], r["calls"] / msgs, r["ir"] / r["calls"], r["ir"] / msgs))
		        P("")
	EOF
	analysis >>"$WORK/crypto.md"
}

# analysis: what the profiles showed and what was done about it. Written by hand from callgrind
# and perf runs on commit 68b28c5 (OpenSSL 3.0.19); the tables above are measured on every run.
analysis() {
	cat <<-'EOF'
		## Analysis (written by hand at commit 68b28c5, OpenSSL 3.0.19; the tables above are re-measured on every run)

		### What `openssl speed` measures

		- `openssl speed -evp aes-256-gcm` of OpenSSL 3.0.19 does, for every message, `EVP_CipherInit_ex` with
		  the key *and* the IV, one `Update`, `Final` and a tag `ctrl` (callgrind on `openssl speed`: one
		  `CRYPTO_gcm128_init`, i.e. a key schedule and a GHASH table, per message). That is the AEAD loop
		  3.0.16 introduced ("apps/speed.c: Fix the benchmarking for AEAD ciphers", openssl/openssl#25823;
		  the slowdown it caused was reported as openssl/openssl#28063). mqseal keys a context once per
		  epoch and only sets the nonce per message. So at 64 B `openssl speed` is not a ceiling (our paths
		  beat it), and at 16 KiB its re-keying is a few percent of its cost (~1,650 of ~45,500
		  instructions). The *EVP loop* of bench_aead (one
		  keyed context; per message nonce, Update, Final, tag) is the per-message floor of the EVP API and
		  the stricter reference at small sizes.
		- By default `openssl speed` divides by the *user CPU time* of the process; `-elapsed` divides by
		  wall-clock time, like our loops. On a loaded machine the default would flatter it (time spent
		  preempted is not counted), so the ratios here use `-elapsed` on both sides.
		- Wall-clock figures on this machine move by tens of percent from second to second (see the
		  [min–max]); a 10 % bar cannot be read reliably from them. For instance, `bench_crypto --size 16384`
		  run three times in a row took 5.7, 4.1 and 5.5 µs per seal; alternated with `bench_aead --size
		  16384` four times on a quieter moment, the envelope took 4.1–4.7 µs and aead_seal 4.1–4.4 µs. The
		  instruction counts are exact and repeatable, so the 16 KiB target is also checked on them (table
		  "Targets", last rows).

		### 16 KiB

		By instructions per message, aead_seal and aead_open are within 2 % of `openssl speed` (both make one
		AES-NI + PCLMUL pass over 16 KiB; the difference is openssl's re-key on one side and our AAD on the
		other), and the envelope within 3 %: it adds a 50-byte AAD, the 8-byte inner header and the
		padding, the key ring's counters and limits and, on open, the replay window.

		### 64 B: where the time goes

		One telemetry message (table above, a 16-byte payload sealed into 66 bytes): of the ~3,900
		instructions of `keyring_seal`, ~2,850 (72 %) are OpenSSL's fixed per-message cost of the EVP API,
		the AES-GCM work on 50 bytes of AAD and 32 of plaintext included:
		- `EVP_EncryptInit_ex2` with a new nonce: ~820, of which ~630 are `EVP_CIPHER_CTX_get_iv_length`:
		  OpenSSL 3.0 asks the provider for the IV length through an `OSSL_PARAM` lookup (a dozen `strcmp`)
		  at every init; its cache is reset on each init (openssl/openssl#17862);
		- two `EVP_CipherUpdate` calls (AAD, plaintext): ~560 each, ~400 of it dispatch whatever the length;
		- the tag `EVP_CIPHER_CTX_ctrl`: ~570, again an `OSSL_PARAM` round trip; `Final`: ~300.

		Our own code is the remaining ~1,100 instructions: the key ring's limits and counter (~140), the
		envelope header and AAD pieces (~120), and aead.c's piece gathering, nonce and checks (~830).

		- **aead_seal / aead_open at 64 B** (~3,200 / ~3,050 instructions: the bare EVP loop's ~2,650 plus
		  one AAD Update) meet the bar with little margin: in the six runs of this script made while this
		  was written (before the run above), the median of aead_seal was 235–295 ns in five and 494 ns in
		  the busiest. The target was set for this layer.
		- **The envelope at 64 B** (~4,100 / ~4,000 instructions, ~1.25× the AEAD layer) sits on the bar:
		  in those six runs its median seal was 285–530 ns, under 300 ns only in the quietest. It cannot
		  get a margin on OpenSSL 3.0's EVP API: its floor is the EVP loop plus one AAD Update (~3,200
		  instructions, roughly 260–300 ns on this machine when it is quiet) even if our own code cost
		  nothing. What would give it one: an OpenSSL whose IV-length cache survives an init (−630
		  instructions per seal and per open, −15 %); or leaving EVP for the low-level GCM functions
		  (`CRYPTO_gcm128_*`), which the project's EVP-only rule excludes. Trimming our ~1,100
		  instructions (byte-wise nonce, gather copies, checks) would win at most a quarter.

		### What was fixed (commit 68b28c5)

		aead.c used to give every piece its own `EVP_CipherUpdate` call, and the envelope hands over four
		AAD pieces (label, header, topic length, topic) and up to five plaintext pieces (lengths, props,
		payload, padding): a 64-byte seal made 8 Update calls, an open 5, at ~400 instructions of dispatch
		each. Now consecutive pieces that fit 512 bytes together are gathered in a stack buffer (erased
		afterwards) and go through in one call; a lone piece or a longer one still goes straight through,
		so a large payload is never copied. Instructions per 64-byte envelope (callgrind): `keyring_seal`
		6,045 → 4,070 (−33 %), `keyring_open` 4,756 → 3,937 (−17 %); one-piece `aead_seal`/`aead_open` +70
		(the gathering's bookkeeping); at 16 KiB the envelope −2 %, one-piece aead +0.2 %. Same bytes out:
		the unit tests and golden vectors pass, 200,000 random piece splits matched one-shot EVP under
		ASan/UBSan, and fuzz_envelope ran 60 s (969,000 inputs) without a finding.

		### Left as it is

		At 1 KiB the envelope seal costs ~7,700 instructions against ~5,700 for aead_seal: the 8-byte inner
		header puts the payload off the 16-byte block grid, so OpenSSL handles its first and last partial
		block byte by byte (`CRYPTO_gcm128_encrypt_ctr32` ~1,000 instead of ~400 instructions), and payload
		and padding take two more Update calls. Feeding block-aligned runs (top up the header's block from
		the payload, join the payload's tail with the padding) would save ~600 instructions at 1 KiB and at
		16 KiB. Not done: there is no target at 1 KiB, and 16 KiB is inside its bar.
	EOF
}

build
for b in bench_aead bench_crypto; do [ -x "$BUILD_DIR/bench/$b" ] || die "$BUILD_DIR/bench/$b is missing"; done
[ -r "$TELEMETRY" ] || die "$TELEMETRY is not readable"
machine_info machine
for ((r = 1; r <= ROUNDS; r++)); do one_round "$r"; done
machine_info machine_end
profile
report
mkdir -p "$OUT"
cp "$RAW" "$OUT/crypto.jsonl"
cp "$WORK/crypto.md" "$OUT/crypto.md"
say "done: $OUT/crypto.md, $OUT/crypto.jsonl"
