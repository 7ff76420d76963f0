#!/usr/bin/python3
"""fleet.py - the fleet-scale scenario (issue 10): one mosquitto and N mqseal nodes (default 50) on this
machine, every node trusting every other one, all started at once. Measures what the key exchange
costs as the group grows, for docs/SCALING.md:

  1. start:    time from launching the N processes until every node reports mqseal_peers_keyed = N-1,
               and the key-exchange messages (count, bytes) that took;
  2. rotation: one rotation round (keyex.interval_seconds, default 30 s: all nodes started together,
               so all rotate within the jitter window of min(T/20, 30 s) - the worst case, a storm):
               messages and bytes per rotation, broker CPU during the storm, time until every node
               activated its new epoch;
  3. restart:  one node killed and restarted: messages and bytes until all pairs are keyed again;
  4. memory:   RSS of one mqseal holding N-1 peers (and of all nodes: median, max), broker RSS.

What crosses the broker is counted by an observer subscribed to mqseal/# (QoS 1) and by mosquitto's
own $SYS counters (sys_interval 1): bytes received / sent include the fan-out to every subscriber and
the MQTT framing. CPU is read from /proc/<pid>/stat (utime + stime).

Writes <out>.json (every figure, machine facts) and <out>.md (the summary), default
bench/results/fleet.{json,md}. Every process is stopped by its PID at exit (tests/integration/harness.py
does the bookkeeping), also on Ctrl-C. 50 nodes hold ~100 descriptors each at most: the script raises
its soft RLIMIT_NOFILE (inherited by the children) first.

Usage: bench/fleet.py [--nodes 50] [--interval 30] [--out bench/results/fleet]
       (MQSEAL_BIN picks the mqseal binary; default build/proxy/mqseal)
"""
import argparse
import atexit
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from harness import Broker, Client, Node, check, eventually  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_S = 3.0  # a phase ends when no key-exchange message crossed the broker for this long


def log(msg):
    print("fleet: " + msg, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """utime + stime of pid (proc(5): fields 14 and 15, after the parenthesised command name)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def assign_ports(nodes):
    """Gives every node a listen and a metrics port of its own, below the kernel's ephemeral range:
    harness.free_port() probes the ephemeral range, where 100 ports probed in a row can repeat or be
    taken by the nodes' own outgoing connections before they bind."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    port = 20000 + (os.getpid() % 50) * 100
    for n in nodes:
        got = []
        while len(got) < 2:
            check(port < low, "no free ports below %d" % low)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((harness.HOST, port))
                    got.append(port)
                except OSError:
                    pass
            port += 1
        n.port, n.metrics_port = got
        n.conf["listen"]["port"], n.conf["metrics"]["port"] = got


def raise_nofile(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Observer:
    """Subscribes to <prefix>/# and to mosquitto's $SYS byte and message counters; keeps every
    key-exchange message as (monotonic time, kind, topic, size)."""

    def __init__(self, port, prefix):
        self.prefix = prefix
        self.lock = threading.Lock()
        self.msgs = []
        self.sys = {}
        self.c = Client("fleet-observer")
        self.c.c.on_message = self.on_message
        self.c.connect(port)
        self.c.subscribe(prefix + "/#", 1)
        for t in ("$SYS/broker/bytes/received", "$SYS/broker/bytes/sent", "$SYS/broker/messages/received",
                  "$SYS/broker/messages/sent"):
            self.c.subscribe(t, 0)

    def on_message(self, client, userdata, m):
        now = time.monotonic()
        if m.topic.startswith("$SYS/"):
            with self.lock:
                self.sys[m.topic.rsplit("/", 2)[-2] + "_" + m.topic.rsplit("/", 1)[-1]] = (now, int(m.payload))
            return
        kind = m.topic[len(self.prefix) + 1:].split("/", 1)[0]  # kx | ack | presence
        kind = "keyex" if kind == "kx" else kind  # announcements keep their key in the results
        with self.lock:
            self.msgs.append((now, kind, m.topic, len(m.payload), bool(m.retain)))

    def last_time(self):
        with self.lock:
            return self.msgs[-1][0] if self.msgs else 0.0

    def count(self):
        with self.lock:
            return len(self.msgs)

    def sys_snapshot(self):
        with self.lock:
            return {k: v for k, (_, v) in self.sys.items()}

    def window(self, t0, t1):
        with self.lock:
            return [m for m in self.msgs if t0 <= m[0] < t1]

    def wait_quiet(self, timeout, quiet=QUIET_S):
        """Waits until no key-exchange message arrived for quiet seconds; returns the last one's time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.last_time()
            if time.monotonic() - last >= quiet:
                return last
            time.sleep(0.2)
        raise harness.TestFailure("key-exchange traffic did not settle within %ss" % timeout)


def summarize(msgs):
    """Counts and bytes per kind of a list of observed messages."""
    out = {"messages": len(msgs), "bytes": sum(m[3] for m in msgs)}
    for kind in ("keyex", "ack", "presence"):
        sel = [m[3] for m in msgs if m[1] == kind]
        out[kind] = {"messages": len(sel), "bytes": sum(sel),
                     "size_min": min(sel) if sel else 0, "size_max": max(sel) if sel else 0}
    return out


def metrics_all(nodes):
    out = []
    for n in nodes:
        try:
            out.append(n.metrics())
        except (OSError, urllib.error.URLError):
            out.append({})
    return out


def all_keyed(nodes, want):
    return all(m.get("mqseal_peers_keyed") == want for m in metrics_all(nodes))


def rejected(nodes):
    """Rejected announcements and confirmations per reason, summed over the nodes."""
    out = {}
    for m in metrics_all(nodes):
        for k, v in m.items():
            if k.startswith("mqseal_announcements_rejected_total") and v:
                reason = k.split('reason="', 1)[1].rstrip('"}')
                out[reason] = out.get(reason, 0) + int(v)
    return out


def diff(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def sum_metric(nodes, name):
    return sum(m.get(name, 0.0) for m in metrics_all(nodes))


class CpuSampler:
    """Samples the CPU time of a set of PIDs every period seconds (for peak figures)."""

    def __init__(self, pids, period=0.5):
        self.pids, self.period = pids, period
        self.samples = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic(), sum(cpu_seconds(p) for p in self.pids)))
            except OSError:
                pass
            self.stop.wait(self.period)

    def peak_percent(self, t0, t1):
        s = [x for x in self.samples if t0 <= x[0] <= t1]
        rates = [(b[1] - a[1]) / (b[0] - a[0]) * 100 for a, b in zip(s, s[1:]) if b[0] > a[0]]
        return round(max(rates), 1) if rates else None

    def finish(self):
        self.stop.set()
        self.t.join(5)


def phase_figures(obs, t0, t1, sys0, sys1, broker_cpu0, broker_cpu1, sampler, broker_pid):
    msgs = obs.window(t0, t1 + 0.001)
    fig = summarize(msgs)
    fig["seconds"] = round(t1 - t0, 3)
    fig["broker_cpu_seconds"] = round(broker_cpu1 - broker_cpu0, 3)
    fig["broker_cpu_percent_avg"] = round((broker_cpu1 - broker_cpu0) / max(t1 - t0, 1e-3) * 100, 1)
    fig["broker_cpu_percent_peak_0_5s"] = sampler[broker_pid].peak_percent(t0, t1) if sampler else None
    for k in ("bytes_received", "bytes_sent", "messages_received", "messages_sent"):
        if k in sys0 and k in sys1:
            fig["broker_" + k] = sys1[k] - sys0[k]
    return fig


def run(args):
    nofile = raise_nofile()
    check(nofile >= args.nodes * 110 + 100, "RLIMIT_NOFILE %d is too low for %d nodes" % (nofile, args.nodes))
    workdir = tempfile.mkdtemp(prefix="mqseal-fleet-")
    if not os.environ.get("MQSEAL_KEEP_TMP"):
        atexit.register(shutil.rmtree, workdir, True)  # after harness's stop_all (registered first)
    prefix = "mqseal"
    result = {"nodes": args.nodes, "interval_seconds": args.interval, "machine": machine()}
    broker = Broker(workdir, extra="sys_interval 1").start()
    obs = Observer(broker.port, prefix)
    log("broker on %d; creating %d identities" % (broker.port, args.nodes))
    nodes = [Node(workdir, "node-%02d" % i, broker.port,
                  conf={"keyex": {"interval_seconds": args.interval, "activation_seconds": 10},
                        "log": {"level": "info"}})
             for i in range(args.nodes)]
    for n in nodes:
        n.trust(*[m for m in nodes if m is not n])
    assign_ports(nodes)
    sampler = {broker.pid: CpuSampler([broker.pid])}
    time.sleep(1.5)  # the observer has the $SYS baseline
    sys0, cpu0 = obs.sys_snapshot(), cpu_seconds(broker.pid)

    # 1. start: all at once (rejections and mqseal CPU are counted from zero: fresh processes)
    t_launch = time.monotonic()
    for n in nodes:
        n.start(wait=False)
    eventually(lambda: all(harness.port_open(n.metrics_port) or not n.alive() for n in nodes), 60,
               msg="all nodes listening")
    check(all(n.alive() for n in nodes), "a node exited: " + "".join(n.output()[-500:] for n in nodes if not n.alive()))
    t_up = time.monotonic()
    eventually(lambda: all_keyed(nodes, args.nodes - 1), 240, interval=0.25, msg="every pair keyed")
    t_keyed = time.monotonic()
    log("all %d nodes keyed %.1fs after launch" % (args.nodes, t_keyed - t_launch))
    t_settled = obs.wait_quiet(60)
    time.sleep(1.2)
    sys1, cpu1 = obs.sys_snapshot(), cpu_seconds(broker.pid)
    start = phase_figures(obs, t_launch, t_settled, sys0, sys1, cpu0, cpu1, sampler, broker.pid)
    rej_start = rejected(nodes)
    start.update({"rejected": rej_start,
                  "mqseal_cpu_seconds_all_nodes": round(sum(cpu_seconds(n.pid) for n in nodes), 3),
                  "launch_to_listening_s": round(t_up - t_launch, 3),
                  "launch_to_all_keyed_s": round(t_keyed - t_launch, 3),
                  "launch_to_quiet_s": round(t_settled - t_launch, 3)})
    result["start"] = start

    # 4. memory with N-1 peers (before the rotation: keys of one epoch per peer)
    rss = [rss_kib(n.pid) for n in nodes]
    result["memory"] = {"mqseal_rss_kib_node00": rss[0], "mqseal_rss_kib_median": statistics.median(rss),
                        "mqseal_rss_kib_max": max(rss), "broker_rss_kib": rss_kib(broker.pid)}

    # 2. one rotation round
    rot0 = sum_metric(nodes, "mqseal_rotations_total")
    act0 = sum_metric(nodes, "mqseal_activations_total")
    sent0 = (sum_metric(nodes, "mqseal_announcements_sent_total"), sum_metric(nodes, "mqseal_acks_sent_total"))
    node_cpu0 = sum(cpu_seconds(n.pid) for n in nodes)
    log("waiting for the rotation round (interval %ds)" % args.interval)
    n_before = obs.count()
    eventually(lambda: obs.count() > n_before, args.interval + 60, interval=0.05, msg="first rotation")
    with obs.lock:
        t_rot0 = obs.msgs[n_before][0]
    sys2, cpu2 = obs.sys_snapshot(), cpu_seconds(broker.pid)
    eventually(lambda: sum_metric(nodes, "mqseal_activations_total") >= act0 + args.nodes, 120, interval=0.25,
               msg="every node activated its new epoch")
    t_activated = time.monotonic()
    t_rot1 = obs.wait_quiet(60)
    time.sleep(1.2)
    sys3, cpu3 = obs.sys_snapshot(), cpu_seconds(broker.pid)
    rot = phase_figures(obs, t_rot0 - 0.001, t_rot1, sys2, sys3, cpu2, cpu3, sampler, broker.pid)
    rotations = sum_metric(nodes, "mqseal_rotations_total") - rot0
    rot.update({
        "rotations": rotations,
        "first_to_all_activated_s": round(t_activated - t_rot0, 3),
        "announcements_sent": sum_metric(nodes, "mqseal_announcements_sent_total") - sent0[0],
        "acks_sent": sum_metric(nodes, "mqseal_acks_sent_total") - sent0[1],
        "mqseal_cpu_seconds_all_nodes": round(sum(cpu_seconds(n.pid) for n in nodes) - node_cpu0, 3),
        "activations_by_confirmation": sum(n.output().count("confirmed by every live peer") for n in nodes),
        "rejected": diff(rejected(nodes), rej_start),
    })
    rej_rot = None  # taken below, without the restarted node
    if rotations:
        rot["per_rotation"] = {"messages": round(rot["messages"] / rotations, 2),
                               "bytes_in": round(rot["bytes"] / rotations, 1),
                               "broker_bytes_sent": round(rot.get("broker_bytes_sent", 0) / rotations, 1)}
    result["rotation"] = rot
    log("rotation round: %d rotations, %d messages, %d bytes in, %s bytes sent by the broker" % (
        rotations, rot["messages"], rot["bytes"], rot.get("broker_bytes_sent")))

    # 3. one node restarted
    victim = nodes[args.nodes // 2]
    others = [n for n in nodes if n is not victim]
    rej_rot = rejected(others)
    victim.kill()
    sys4, cpu4 = obs.sys_snapshot(), cpu_seconds(broker.pid)
    t_r0 = time.monotonic()
    victim.start()
    eventually(lambda: all_keyed(nodes, args.nodes - 1), 120, interval=0.25, msg="keyed again after the restart")
    t_r_keyed = time.monotonic()
    t_r1 = obs.wait_quiet(60)
    time.sleep(1.2)
    sys5, cpu5 = obs.sys_snapshot(), cpu_seconds(broker.pid)
    rs = phase_figures(obs, t_r0, t_r1, sys4, sys5, cpu4, cpu5, sampler, broker.pid)
    rs["restart_to_all_keyed_s"] = round(t_r_keyed - t_r0, 3)
    rs["rejected"] = diff(rejected(others), rej_rot)
    for k, v in rejected([victim]).items():
        rs["rejected"][k] = rs["rejected"].get(k, 0) + v
    result["restart"] = rs
    log("restart of %s: keyed again after %.1fs, %d messages, %d bytes" % (
        victim.node_id, t_r_keyed - t_r0, rs["messages"], rs["bytes"]))

    dropped = sum(v for m in metrics_all(nodes) for k, v in m.items() if k.startswith("mqseal_dropped_total"))
    result["health"] = {"dropped_total": dropped, "rejected_total": rejected(nodes), "load_avg_end": os.getloadavg()}
    sampler[broker.pid].finish()
    obs.c.disconnect()
    harness.stop_all()
    return result


def machine():
    try:
        rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        mosq = subprocess.run([harness.MOSQUITTO, "-h"], capture_output=True, text=True, timeout=10).stdout
        mosq = mosq.splitlines()[0] if mosq else ""
    except (OSError, subprocess.SubprocessError):
        rev, mosq = "", ""
    return {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg(), "kernel": platform.release(),
            "python": platform.python_version(), "mosquitto": mosq, "mqseal": harness.MQSEAL, "git_head": rev}


def markdown(r):
    n, s, rot, rs, mem = r["nodes"], r["start"], r["rotation"], r["restart"], r["memory"]
    ann = rot["keyex"]
    lines = [
        "# Fleet scale: %d mqseal nodes on one mosquitto" % n,
        "",
        "`%s` (tree %s; %s) on %d CPUs, load average %.1f at the start of this run and %.1f at its end "
        "(the machine was shared with other work). Every node trusts every other one; all were started at "
        "once, so the rotation round is a storm: all %d rotations within min(T/20, 30 s) = %.1f s." % (
            r["command"], r["machine"]["git_head"] or "?", r["machine"]["mosquitto"] or "mosquitto",
            r["machine"]["cpus"], r["machine"]["load_avg_start"][0], r["health"]["load_avg_end"][0], n,
            min(r["interval_seconds"] / 20, 30)),
        "",
        "| phase | figure | value |",
        "|---|---|---|",
        "| start | launch until every node listens | %.1f s |" % s["launch_to_listening_s"],
        "| start | launch until every pair keyed (%d x %d keys) | %.1f s |" % (n, n - 1, s["launch_to_all_keyed_s"]),
        "| start | key-exchange messages (announcements + confirmations) | %d + %d |" % (
            s["keyex"]["messages"], s["ack"]["messages"]),
        "| start | bytes published into the broker / sent by it ($SYS) | %s / %s |" % (
            fmt(s["bytes"]), fmt(s.get("broker_bytes_sent"))),
        "| start | broker CPU (avg over the phase / peak 0.5 s) | %.1f s (%.0f%% / %s%%) |" % (
            s["broker_cpu_seconds"], s["broker_cpu_percent_avg"], s["broker_cpu_percent_peak_0_5s"]),
        "| rotation | rotations in the round | %d |" % rot["rotations"],
        "| rotation | announcement size (%d entries) | %d-%d B |" % (n - 1, ann["size_min"], ann["size_max"]),
        "| rotation | messages: announcements + confirmations | %d + %d |" % (ann["messages"], rot["ack"]["messages"]),
        "| rotation | per rotation: messages, bytes in, bytes out ($SYS) | %s, %s, %s |" % (
            rot.get("per_rotation", {}).get("messages"), fmt(rot.get("per_rotation", {}).get("bytes_in")),
            fmt(rot.get("per_rotation", {}).get("broker_bytes_sent"))),
        "| rotation | round: bytes in / out ($SYS) | %s / %s |" % (fmt(rot["bytes"]), fmt(rot.get("broker_bytes_sent"))),
        "| rotation | storm duration (first announcement to quiet) | %.1f s |" % rot["seconds"],
        "| rotation | first announcement until every node activated | %.1f s |" % rot["first_to_all_activated_s"],
        "| rotation | activations by confirmation (else by the 10 s delay) | %d of %d |" % (
            rot["activations_by_confirmation"], rot["rotations"]),
        "| rotation | broker CPU (avg / peak 0.5 s) | %.2f s (%.0f%% / %s%%) |" % (
            rot["broker_cpu_seconds"], rot["broker_cpu_percent_avg"], rot["broker_cpu_percent_peak_0_5s"]),
        "| rotation | CPU of all %d mqseal nodes | %.2f s |" % (n, rot["mqseal_cpu_seconds_all_nodes"]),
        "| restart | one node killed and restarted: until every pair keyed again | %.1f s |" % rs["restart_to_all_keyed_s"],
        "| restart | messages: announcements + confirmations | %d + %d |" % (rs["keyex"]["messages"], rs["ack"]["messages"]),
        "| restart | bytes in / out ($SYS) | %s / %s |" % (fmt(rs["bytes"]), fmt(rs.get("broker_bytes_sent"))),
        "| memory | RSS of one mqseal with %d peers (node-00) | %s KiB |" % (n - 1, mem["mqseal_rss_kib_node00"]),
        "| memory | RSS of the %d mqseal: median / max | %s / %s KiB |" % (n, mem["mqseal_rss_kib_median"],
                                                                        mem["mqseal_rss_kib_max"]),
        "| memory | broker RSS | %s KiB |" % mem["broker_rss_kib"],
        "| start / rotation / restart | rejected (reason: count, summed over nodes) | %s / %s / %s |" % (
            reasons(s["rejected"]), reasons(rot["rejected"]), reasons(rs["rejected"])),
        "| health | sealed messages dropped | %d |" % r["health"]["dropped_total"],
        "",
        "Bytes in = the key-exchange payloads published into the broker (counted by an observer on "
        "`mqseal/#`); bytes out = mosquitto's `$SYS/broker/bytes/sent` over the same window, i.e. the "
        "fan-out to every subscriber with MQTT framing (it includes the observer's own copy and "
        "keepalives). Raw figures: `fleet.json`. The model built on them: `docs/SCALING.md`.",
        "",
    ]
    return "\n".join(lines)


def reasons(d):
    return ", ".join("%s: %d" % kv for kv in sorted(d.items())) or "none"


def scaling_table(runs):
    """One line per group size: how the figures grow with N."""
    lines = ["", "## Growth with the group size", "",
             "| N | announcement | keyed after start | start: msgs / bytes in / out | rotation round: msgs / "
             "bytes in / out | per rotation: bytes in / out | activated by confirmation | broker CPU per round "
             "| RSS one node |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s, rot = r["start"], r["rotation"]
        lines.append("| %d | %d B | %.1f s | %d / %s / %s | %d / %s / %s | %s / %s | %d of %d | %.2f s | %s KiB |" % (
            r["nodes"], rot["keyex"]["size_max"], s["launch_to_all_keyed_s"], s["messages"], fmt(s["bytes"]),
            fmt(s.get("broker_bytes_sent")), rot["messages"], fmt(rot["bytes"]), fmt(rot.get("broker_bytes_sent")),
            fmt(rot.get("per_rotation", {}).get("bytes_in")), fmt(rot.get("per_rotation", {}).get("broker_bytes_sent")),
            rot["activations_by_confirmation"], rot["rotations"], rot["broker_cpu_seconds"],
            r["memory"]["mqseal_rss_kib_node00"]))
    return "\n".join(lines) + "\n"


def fmt(b):
    if b is None:
        return "n/a"
    b = float(b)
    for unit, div in (("MB", 1e6), ("kB", 1e3)):
        if b >= div:
            return "%.2f %s" % (b / div, unit)
    return "%d B" % b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--sweep", default="", help="comma-separated group sizes run one after the other, "
                    "e.g. 10,25,50 (the summary table is for the largest)")
    ap.add_argument("--interval", type=int, default=30, help="keyex.interval_seconds of every node")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "fleet"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.sweep.split(",") if x] or [args.nodes]
    check(all(2 <= n <= 257 for n in sizes), "group sizes: 2..257 (a node has at most 256 peers)")
    check(os.access(harness.MQSEAL, os.X_OK), "no mqseal binary at %s (scripts/build.sh release, or MQSEAL_BIN)"
          % harness.MQSEAL)
    command = "bench/fleet.py " + " ".join(sys.argv[1:])
    runs = []
    for n in sorted(sizes):
        args.nodes = n
        log("--- %d nodes" % n)
        runs.append(run(args))
        runs[-1]["command"] = command
    with open(args.out + ".json", "w") as f:
        json.dump({"runs": runs}, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(args.out + ".md", "w") as f:
        f.write(markdown(runs[-1]))
        if len(runs) > 1:
            f.write(scaling_table(runs))
    log("wrote %s.json and %s.md" % (args.out, args.out))


if __name__ == "__main__":
    main()
