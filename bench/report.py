#!/usr/bin/python3
"""report.py - turns bench/run.sh's raw.jsonl into summary.md and the data files of plot.gp.

raw.jsonl holds one JSON object per line: mqbench runs (labelled phase/path/.../rN, see run.sh),
and records with a "kind": machine, memory, skip. Every figure is the median over the rounds with
[min-max] beside it. Ratios are paired: round r of a path is divided by round r of the reference
path (they ran next to each other), and the median [min-max] of those ratios is shown, so slow
drift of a shared machine cancels out.

Usage: report.py --raw raw.jsonl --summary summary.md --plot-dir DIR
"""
import argparse
import collections
import json
import os
import statistics
import sys

PATHS = ["direct", "socat", "stunnel", "relay", "sealed"]
PATH_ROLE = {
    "direct": "devices talk to the broker",
    "socat": "one socat per side, a plain TCP byte relay to the broker (the floor any pair of proxies costs)",
    "stunnel": "stunnel client per side, TLS 1.3 to a stunnel server in front of the broker",
    "relay": "one mqseal per side, every topic plaintext",
    "sealed": "one mqseal per side, payloads sealed (AES-256-GCM): the product",
}
DEVICE_SIDE = ("pub_side", "sub_side")
BROKER_SIDE = ("broker", "tls_server")


def load(path):
    """Returns (runs keyed by (phase, path, key) -> {round: run}, machine, memory list, skips)."""
    runs = collections.defaultdict(dict)
    machine, memory, skips = {}, [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                sys.exit("%s:%d: %s" % (path, n, exc))
            kind = obj.get("kind", "run")
            if kind == "machine":
                machine = obj
            elif kind == "memory":
                memory.append(obj)
            elif kind == "skip":
                skips.append(obj["path"])
            else:
                add_run(runs, obj)
    return runs, machine, memory, skips


def add_run(runs, obj):
    """Labels: tput/PATH/SIZE/qQ/rN, lat/PATH/SIZE/qQ/rN, scale/PATH/K/rN (cal/... is ignored)."""
    parts = obj.get("label", "").split("/")
    if len(parts) < 4 or parts[0] == "cal" or not parts[-1].startswith("r"):
        return
    phase, path, rnd = parts[0], parts[1], int(parts[-1][1:])
    key = tuple(parts[2:-1])
    runs[(phase, path, key)][rnd] = obj


def paths_present(runs):
    seen = {path for (_, path, _) in runs}
    return [p for p in PATHS if p in seen]


# ---- numbers -------------------------------------------------------------------------------------


def spread(values):
    """(median, min, max) of the non-None values, or None."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt_num(v):
    if v >= 100:
        return "{:,.0f}".format(v)
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_spread(s, unit=""):
    if s is None:
        return "n/a"
    med, lo, hi = s
    return "%s%s [%s–%s]" % (fmt_num(med), unit, fmt_num(lo), fmt_num(hi))


def fmt_ratio(s):
    if s is None:
        return ""
    med, lo, hi = s
    return "%.2f× [%.2f–%.2f]" % (med, lo, hi)


def metric(run, name):
    if run is None or run.get("delivered", 0) == 0:
        return None
    if name == "cpu_device":
        return cpu_us_per_msg(run, DEVICE_SIDE)
    if name.startswith("lat_"):
        return run["lat_us"][name[4:]]
    return run[name]


def paired_ratio(by_round, ref_by_round, name):
    """Median [min-max] over rounds of metric(path, r) / metric(reference, r)."""
    ratios = []
    for rnd, run in by_round.items():
        a, b = metric(run, name), metric(ref_by_round.get(rnd), name)
        if a is not None and b:
            ratios.append(a / b)
    return spread(ratios)


def cpu_us_per_msg(run, names):
    """CPU microseconds per delivered message of the watched processes in names."""
    if run is None or not run.get("delivered"):
        return None
    cpu = run.get("cpu_s", {})
    used = [cpu[n] for n in names if cpu.get(n) is not None]
    return sum(used) * 1e6 / run["delivered"] if used else None


def anomalies(by_round):
    tot = collections.Counter()
    for run in by_round.values():
        for k in ("lost", "duplicated", "out_of_order", "corrupt"):
            tot[k] += run.get(k, 0)
        if run.get("end") == "error":
            tot["errors"] += 1
    return tot


def fmt_anomalies(tot):
    parts = ["%s %d" % (k.replace("_", " "), v) for k, v in sorted(tot.items()) if v and k != "lost"]
    return "%d%s" % (tot["lost"], (" (" + ", ".join(parts) + ")") if parts else "")


def size_name(size):
    size = int(size)
    return "%d KiB" % (size // 1024) if size >= 1024 else "%d B" % size


# ---- tables --------------------------------------------------------------------------------------


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def ratio_cells(runs, phase, path, key, name):
    """'× direct' and '× stunnel' cells for one row."""
    mine = runs[(phase, path, key)]
    vs_direct = paired_ratio(mine, runs.get((phase, "direct", key), {}), name) if path != "direct" else None
    vs_tls = None
    if path in ("relay", "sealed"):
        vs_tls = paired_ratio(mine, runs.get((phase, "stunnel", key), {}), name)
    return fmt_ratio(vs_direct), fmt_ratio(vs_tls)


def keys_of(runs, phase):
    keys = {key for (ph, _, key) in runs if ph == phase}
    return sorted(keys, key=lambda k: tuple(int(x.lstrip("q")) for x in k))


def socat_cell(runs, phase, path, key, name):
    """'× socat' for the mqseal paths."""
    if path not in ("relay", "sealed"):
        return ""
    return fmt_ratio(paired_ratio(runs[(phase, path, key)], runs.get((phase, "socat", key), {}), name))


def throughput_table(runs, paths):
    header = ["size", "QoS", "path", "msgs/s", "MB/s", "× direct", "× stunnel", "× socat", "lost",
              "CPU µs/msg device sidecars", "CPU µs/msg broker side", "CPU µs/msg mqbench"]
    rows = []
    for key in keys_of(runs, "tput"):
        for path in paths:
            by_round = runs.get(("tput", path, key))
            if not by_round:
                continue
            vals = list(by_round.values())
            rows.append([size_name(key[0]), key[1][1:], path,
                         fmt_spread(spread(metric(r, "msgs_per_s") for r in vals)),
                         fmt_spread(spread(metric(r, "mb_per_s") for r in vals)),
                         *ratio_cells(runs, "tput", path, key, "msgs_per_s"),
                         socat_cell(runs, "tput", path, key, "msgs_per_s"),
                         fmt_anomalies(anomalies(by_round)),
                         fmt_spread(spread(cpu_us_per_msg(r, DEVICE_SIDE) for r in vals)),
                         fmt_spread(spread(cpu_us_per_msg(r, BROKER_SIDE) for r in vals)),
                         fmt_spread(spread(cpu_us_per_msg(r, ("mqbench",)) for r in vals))])
    return table(header, rows)


def latency_table(runs, paths):
    header = ["size", "QoS", "path", "p50 µs", "p90 µs", "p99 µs", "max µs", "p50 × direct",
              "p50 × stunnel", "lost", "CPU µs/msg device sidecars"]
    rows = []
    for key in keys_of(runs, "lat"):
        for path in paths:
            by_round = runs.get(("lat", path, key))
            if not by_round:
                continue
            vals = list(by_round.values())
            pct = [fmt_spread(spread(metric(r, "lat_" + p) for r in vals)) for p in ("p50", "p90", "p99", "max")]
            rows.append([size_name(key[0]), key[1][1:], path, *pct,
                         *ratio_cells(runs, "lat", path, key, "lat_p50"), fmt_anomalies(anomalies(by_round)),
                         fmt_spread(spread(cpu_us_per_msg(r, DEVICE_SIDE) for r in vals))])
    return table(header, rows)


def scaling_table(runs, paths):
    header = ["publishers", "path", "msgs/s", "× direct", "× stunnel", "lost", "CPU µs/msg device sidecars"]
    rows = []
    for key in keys_of(runs, "scale"):
        for path in paths:
            by_round = runs.get(("scale", path, key))
            if not by_round:
                continue
            vals = list(by_round.values())
            rows.append([key[0], path, fmt_spread(spread(metric(r, "msgs_per_s") for r in vals)),
                         *ratio_cells(runs, "scale", path, key, "msgs_per_s"), fmt_anomalies(anomalies(by_round)),
                         fmt_spread(spread(cpu_us_per_msg(r, DEVICE_SIDE) for r in vals))])
    return table(header, rows)


def peak_rss(runs, path, side):
    peaks = [r.get("rss_peak_kb", {}).get(side) for (ph, p, _), by in runs.items()
             if ph == "tput" and p == path for r in by.values()]
    peaks = [v for v in peaks if v is not None]
    return "{:,}".format(max(peaks)) if peaks else "n/a"


def memory_table(runs, memory):
    header = ["path (pub-side sidecar)", "RSS kB, 0 idle", "100 idle", "1000 idle", "kB per idle device",
              "peak RSS kB in max-rate runs (pub side / sub side)"]
    rows = []
    # "sealed-tls", "sealed-ws": the sealed sidecar's TLS and WebSocket listeners, after "sealed"
    for rec in sorted(memory, key=lambda m: (PATHS.index(m["path"].split("-")[0]), m["path"])):
        rss, conn = rec["rss_kb"], rec["connected"]
        cells = ["{:,}".format(rss[n]) + ("" if conn[n] == int(n) else " (%d connected)" % conn[n])
                 for n in ("0", "100", "1000")]
        per = (rss["1000"] - rss["0"]) / conn["1000"] if conn["1000"] else float("nan")
        rows.append([rec["path"], *cells, "%.1f" % per,
                     "%s / %s" % (peak_rss(runs, rec["path"], "pub_side"), peak_rss(runs, rec["path"], "sub_side"))])
    return table(header, rows)


def glance_table(runs, ref="stunnel"):
    """sealed ÷ ref, paired per round, for every throughput configuration."""
    header = ["size", "QoS", "msgs/s", "device-sidecar CPU per msg", "p50 latency at 1000 msgs/s"]
    rows = []
    for key in keys_of(runs, "tput"):
        cells = []
        for phase, name in (("tput", "msgs_per_s"), ("tput", "cpu_device"), ("lat", "lat_p50")):
            sealed, other = runs.get((phase, "sealed", key), {}), runs.get((phase, ref, key), {})
            cells.append(fmt_ratio(paired_ratio(sealed, other, name)) or "—")
        rows.append([size_name(key[0]), key[1][1:], *cells])
    return table(header, rows)


def machine_section(m):
    keys = [("date", "date (UTC)"), ("nproc", "nproc"), ("cpu", "CPU"), ("kernel", "kernel"),
            ("mosquitto", "mosquitto"), ("libmosquitto", "libmosquitto"), ("stunnel", "stunnel"),
            ("openssl", "OpenSSL"), ("libevent", "libevent"), ("gcc", "gcc"), ("commit", "mqseal commit"),
            ("rounds", "rounds"), ("target_s", "target seconds per max-rate run")]
    return "".join("- %s: %s\n" % (label, m[k]) for k, label in keys if k in m)


# ---- plot data -----------------------------------------------------------------------------------


def write_plot_data(runs, paths, outdir):
    os.makedirs(outdir, exist_ok=True)
    for path in paths:
        for qos in ("0", "1"):
            with open(os.path.join(outdir, "tput_%s_q%s.dat" % (path, qos)), "w") as f:
                f.write("# size msgs_per_s_median min max\n")
                for key in keys_of(runs, "tput"):
                    s = spread(metric(r, "msgs_per_s") for r in runs.get(("tput", path, key), {}).values())
                    if key[1] == "q" + qos and s:
                        f.write("%s %f %f %f\n" % (key[0], *s))
    for pct in ("p50", "p90", "p99"):
        with open(os.path.join(outdir, "lat_%s.dat" % pct), "w") as f:
            f.write("config " + " ".join(paths) + "\n")
            for key in keys_of(runs, "lat"):
                cells = []
                for path in paths:
                    s = spread(metric(r, "lat_" + pct) for r in runs.get(("lat", path, key), {}).values())
                    cells.append("%f" % s[0] if s else "?")
                f.write('"%s q%s" %s\n' % (size_name(key[0]), key[1][1:], " ".join(cells)))
    with open(os.path.join(outdir, "vars.gp"), "w") as f:
        f.write('paths = "%s"\nnpaths = %d\n' % (" ".join(paths), len(paths)))


# ---- summary -------------------------------------------------------------------------------------

INTRO = """# mqseal benchmark results

Produced by `bench/run.sh` (see bench/README.md). All paths ran in one session, alternating
(direct, socat, stunnel, relay, sealed, direct, ...), on loopback. Each cell is the median over the rounds
with [min–max]. Ratios are paired per round (a path's round r over the reference's round r) and
then summarised the same way: above 1× is faster (throughput) or slower (latency) than the
reference. "device sidecars" is the CPU of the pub-side and sub-side sidecars (socat with its
per-connection children, stunnel clients or mqseal); "broker side" is mosquitto plus, for stunnel, the TLS server in front of it.

"""


def summary(runs, machine, memory, skips):
    paths = paths_present(runs)
    parts = [INTRO, "Paths measured:\n\n"]
    parts += ["- **%s**: %s\n" % (p, PATH_ROLE[p]) for p in paths]
    if skips:
        parts.append("\nSkipped (not available in this run): %s.\n" % ", ".join(skips))
    if "sealed" in paths and "stunnel" in paths:
        parts += ["\n## At a glance: sealed ÷ stunnel\n\nBelow 1× is less (fewer messages/s, less CPU, "
                  "less latency) than the TLS tunnel.\n\n", glance_table(runs)]
    if "sealed" in paths and "socat" in paths:
        parts += ["\n## At a glance: sealed ÷ socat\n\nThe sealed pair against a pair of plain byte relays "
                  "(no MQTT, no crypto).\n\n", glance_table(runs, "socat")]
    parts += ["\n## Throughput (max rate)\n\n", throughput_table(runs, paths),
              "\n## Latency (fixed 1000 msgs/s, one-way publisher to subscriber)\n\n", latency_table(runs, paths),
              "\n## Scaling (64 B, QoS 0, max rate, K publishers behind one sidecar)\n\n",
              scaling_table(runs, paths)]
    if memory:
        parts += ["\n## Memory (resident set of one fresh sidecar with idle devices)\n\n",
                  memory_table(runs, memory)]
    parts += ["\n## Machine\n\n", machine_section(machine)]
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--plot-dir")
    args = ap.parse_args()
    runs, machine, memory, skips = load(args.raw)
    if not runs and not memory:
        sys.exit("report.py: no runs in %s" % args.raw)
    with open(args.summary, "w") as f:
        f.write(summary(runs, machine, memory, skips))
    if args.plot_dir:
        write_plot_data(runs, paths_present(runs), args.plot_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
