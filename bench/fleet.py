#!/usr/bin/python3
"""fleet.py - fleet-scale key exchange on one machine (issues 10 and 15): one mosquitto and many real
mqseal processes, in one of two topologies:

  --mesh N     N nodes, every node trusting every other one (the issue 10 scenario);
  --star B,S   B backends and S sensors: each sensor trusts only the backends, each backend trusts
               every sensor and the other backends (a fleet of sidecars around a few backends).

Phases, each with a timeout that stops the run with a message saying which phase and which nodes:

  1. cold start: the processes are launched in batches (--batch, default 50; the next batch as soon
               as the previous one listens), then the time until every pair that should be keyed is
               keyed (each node's /metrics mqseal_peers_keyed = its number of peers), the
               key-exchange messages per kind, broker bytes in/out, CPU and RSS per node;
  2. rotation: one rotation round (every node starts a new epoch after keyex.interval_seconds, less
               up to min(T/20, 30 s) of jitter; nothing triggers a rotation from outside, so T is the
               knob: it must exceed the cold start): messages and bytes of the round, time until
               every node rotated and activated, and the model of docs/SCALING.md beside it;
  3. restart:  one backend (mesh: the middle node) killed (--restart-signal) and started again:
               time until it is keyed with all its peers and every peer holds its new epoch's key
               (GET /peers their_epoch_held), messages and bytes;
  4. per node: CPU seconds per phase and RSS, median and max, backends and sensors apart.

What crosses the broker is counted by an observer subscribed to <prefix>/# (QoS 1), classifying each
message by the topic's second level (v1: keyex, ack; v2: kx, ack, presence), and by mosquitto's
$SYS counters (sys_interval 1). The observer's own copy of every message (and of the $SYS messages)
is subtracted from the broker's bytes sent, so "bytes out" is what the nodes received.

Nodes are polled through a thread pool, only those not done yet. Every process is stopped by its
PID at the end, also on failure and Ctrl-C (all nodes are sent SIGTERM at once, then waited for;
tests/integration/harness.py does the bookkeeping). The soft RLIMIT_NOFILE is raised (the broker
inherits it); node ports are assigned below the ephemeral port range.

Writes <out>.json and <out>.md; --out defaults to bench/results/fleet-star or fleet-mesh
(bench/results/fleet.{json,md} are the version 1 baseline of issue 10; --baseline shows runs of
other files side by side).

Usage: bench/fleet.py --star 1,20 [--interval 60] [--peers-file] [--batch 50]
       bench/fleet.py --mesh 10 [--sweep 10,25,50] [--interval 30]
       (MQSEAL_BIN picks the mqseal binary; default build/proxy/mqseal)
"""
import argparse
import atexit
import concurrent.futures
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from harness import Broker, Client, Node, check  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_S = 3.0  # a phase ends when no key-exchange message crossed the broker for this long
PREFIX = "mqseal"
FLEET = []  # every node started, for the parallel stop
STARTED = {}  # node_id: monotonic time of its (last) launch


class PhaseTimeout(harness.TestFailure):
    pass


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
    harness.free_port() probes the ephemeral range, where ports probed in a row can repeat or be
    taken by the nodes' own outgoing connections before they bind."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    port = 12000 + (os.getpid() % 8) * 2500
    for n in nodes:
        got = []
        while len(got) < 2:
            check(port < low, "no free ports below %d for %d nodes" % (low, len(nodes)))
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


def proc_nofile(pid):
    """The soft RLIMIT_NOFILE of a process (/proc/<pid>/limits)."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def varint_len(n):
    return 1 if n < 128 else 2 if n < 16384 else 3 if n < 2097152 else 4


def publish_size(topic_len, payload_len, qos):
    """Bytes of an MQTT 3.1.1 PUBLISH packet on the wire."""
    rem = 2 + topic_len + (2 if qos else 0) + payload_len
    return 1 + varint_len(rem) + rem


# ---------------------------------------------------------------- the broker side

class Observer:
    """Subscribes to <prefix>/# and to mosquitto's $SYS byte and message counters; keeps every
    key-exchange message as (monotonic time, kind, topic, size, retain, wire size of its copy to us)."""

    def __init__(self, port, prefix):
        self.prefix = prefix
        self.lock = threading.Lock()
        self.msgs = []
        self.sys = {}
        self.sys_copies = []  # (time, wire size) of the $SYS messages sent to us
        self.c = Client("fleet-observer")
        self.c.c.on_message = self.on_message
        self.c.connect(port)
        self.c.subscribe(prefix + "/#", 1)
        for t in ("$SYS/broker/bytes/received", "$SYS/broker/bytes/sent", "$SYS/broker/messages/received",
                  "$SYS/broker/messages/sent"):
            self.c.subscribe(t, 0)

    def on_message(self, client, userdata, m):
        now = time.monotonic()
        wire = publish_size(len(m.topic.encode()), len(m.payload), m.qos)
        if m.topic.startswith("$SYS/"):
            with self.lock:
                self.sys[m.topic.rsplit("/", 2)[-2] + "_" + m.topic.rsplit("/", 1)[-1]] = (now, int(m.payload))
                self.sys_copies.append((now, wire))
            return
        kind = m.topic[len(self.prefix) + 1:].split("/", 1)[0]  # v1: keyex | ack; v2: kx | ack | presence
        with self.lock:
            self.msgs.append((now, kind, m.topic, len(m.payload), bool(m.retain), wire, m.qos))

    def last_time(self):
        with self.lock:
            return self.msgs[-1][0] if self.msgs else 0.0

    def count(self):
        with self.lock:
            return len(self.msgs)

    def at(self, i):
        with self.lock:
            return self.msgs[i]

    def kinds(self):
        with self.lock:
            return sorted({m[1] for m in self.msgs})

    def sys_snapshot(self):
        with self.lock:
            return {k: v for k, (_, v) in self.sys.items()}

    def window(self, t0, t1):
        with self.lock:
            return [m for m in self.msgs if t0 <= m[0] < t1], sum(w for t, w in self.sys_copies if t0 <= t < t1)

    def wait_quiet(self, timeout, what, quiet=QUIET_S):
        """Waits until no key-exchange message arrived for quiet seconds; returns the last one's time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.last_time()
            if time.monotonic() - last >= quiet:
                return last
            time.sleep(0.2)
        raise PhaseTimeout("%s: key-exchange traffic did not settle (no %.0f s without a message) within %ss"
                           % (what, quiet, timeout))


def summarize(msgs):
    """Counts and bytes per kind of a list of observed messages."""
    out = {"messages": len(msgs), "bytes": sum(m[3] for m in msgs), "kinds": {}}
    for kind in sorted({m[1] for m in msgs}):
        sel = [m[3] for m in msgs if m[1] == kind]
        out["kinds"][kind] = {"messages": len(sel), "bytes": sum(sel), "size_min": min(sel), "size_max": max(sel),
                              "retained": sum(1 for m in msgs if m[1] == kind and m[4])}
    return out


# ---------------------------------------------------------------- the nodes

def get_json(n, path, timeout=5):
    with urllib.request.urlopen("http://%s:%d%s" % (harness.HOST, n.metrics_port, path), timeout=timeout) as r:
        return json.loads(r.read().decode())


class Pool:
    """Polls many nodes at once; wait_each polls only the nodes not done yet."""

    def __init__(self, workers=32):
        self.ex = concurrent.futures.ThreadPoolExecutor(workers)

    def map(self, fn, items):
        return list(self.ex.map(fn, items))

    def wait_each(self, items, fn, timeout, what, interval=0.25):
        """fn(node) -> (done, value). Returns {node_id: monotonic time first seen done}. A node that
        exited ends the wait at once; the deadline raises PhaseTimeout naming the nodes left."""
        def safe(n):
            if not n.alive():
                return (None, "exited: " + n.output()[-600:])
            try:
                return fn(n)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                return (False, "unreachable: %s" % e)
        pending, done_at, last = list(items), {}, {}
        deadline = time.monotonic() + timeout
        while pending:
            res = self.map(safe, pending)
            t = time.monotonic()
            left = []
            for n, (ok, val) in zip(pending, res):
                if ok is None:
                    raise PhaseTimeout("%s: node %s %s" % (what, n.node_id, val))
                if ok:
                    done_at[n.node_id] = t
                else:
                    left.append(n)
                    last[n.node_id] = val
            pending = left
            if not pending:
                break
            # a sweep over hundreds of nodes takes about a second of this process's CPU: poll less often
            interval = max(interval, min(1.0, len(pending) / 400))
            if t > deadline:
                raise PhaseTimeout("%s: %d of %d nodes not done after %ss, e.g. %s" % (
                    what, len(pending), len(items), timeout,
                    "; ".join("%s: %s" % (n.node_id, last[n.node_id]) for n in pending[:5])))
            time.sleep(interval)
        return done_at

    def shutdown(self):
        self.ex.shutdown(wait=False)


class Fleet:
    """The nodes, who trusts whom, and each node's role (backend / sensor / node)."""

    def __init__(self, workdir, broker_port, args, pool):
        conf = {"keyex": {"interval_seconds": args.interval, "activation_seconds": 10}, "log": {"level": "info"},
                "metrics": {"peer_series_max": 0}}
        if args.star:
            b, s = args.star
            names = [("be-%02d" % i, "backend") for i in range(b)] + [("s-%04d" % i, "sensor") for i in range(s)]
        else:
            names = [("node-%03d" % i, "node") for i in range(args.mesh)]
        self.nodes = pool.map(lambda nm: Node(workdir, nm[0], broker_port, conf=conf), names)
        self.role = {n.node_id: r for n, (_, r) in zip(self.nodes, names)}
        self.by_id = {n.node_id: n for n in self.nodes}
        if args.star:
            backends = [n for n in self.nodes if self.role[n.node_id] == "backend"]
            self.peers = {n.node_id: ([m for m in self.nodes if m is not n] if self.role[n.node_id] == "backend"
                                      else backends) for n in self.nodes}
        else:
            self.peers = {n.node_id: [m for m in self.nodes if m is not n] for n in self.nodes}
        for n in self.nodes:
            if args.peers_file:
                path = os.path.join(n.dir, "peers")
                with open(path, "w") as f:
                    f.write("# %s's peers: <id> <public_key>\n" % n.node_id)
                    f.writelines("%s %s\n" % (p.node_id, p.pubkey) for p in self.peers[n.node_id])
                n.conf.pop("peers", None)
                n.conf["peers_file"] = path
            else:
                n.trust(*self.peers[n.node_id])
        assign_ports(self.nodes)
        self.configured = self.nodes
        if args.star and args.launch is not None:
            # only the backends and the first --launch sensors run; the others stay configured peers
            self.nodes = [n for n in self.nodes if self.role[n.node_id] == "backend" or
                          int(n.node_id.split("-")[1]) < args.launch]
        live = {n.node_id for n in self.nodes}
        self.live_peers = {k: [p for p in v if p.node_id in live] for k, v in self.peers.items()}

    def roles(self):
        return sorted(set(self.role.values()))

    def of_role(self, role):
        return [n for n in self.nodes if self.role[n.node_id] == role]

    def want(self, n):
        return len(self.live_peers[n.node_id])

    def pairs(self):
        """Directed trust pairs (sender, recipient) between running nodes."""
        return [(n.node_id, p.node_id) for n in self.nodes for p in self.live_peers[n.node_id]]


def stop_fleet():
    """SIGTERM to every node at once, then wait (SIGKILL after 20 s); harness.stop_all does the rest."""
    live = [n for n in FLEET if n.alive()]
    for n in live:
        try:
            os.kill(n.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 20
    for n in live:
        try:
            n.p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            n.kill()
    harness.stop_all()


def on_signal(signum, frame):
    stop_fleet()
    sys.exit(128 + signum)


def launch(fleet, pool, args):
    """Starts the nodes in batches; the next batch as soon as every node of this one listens."""
    order = sorted(fleet.nodes, key=lambda n: fleet.role[n.node_id] != "backend")
    for i in range(0, len(order), args.batch):
        batch = order[i:i + args.batch]
        for n in batch:
            STARTED[n.node_id] = time.monotonic()
            n.start(wait=False)
            FLEET.append(n)
        pool.wait_each(batch, lambda n: (harness.port_open(n.metrics_port), "not listening"), args.batch_timeout,
                       "launch batch %d (nodes %d-%d) listening" % (i // args.batch, i, i + len(batch) - 1),
                       interval=0.05)


def keyed(fleet):
    def fn(n):
        m = n.metrics()
        got = m.get("mqseal_peers_keyed")
        return (got == fleet.want(n), "keyed %s of %d" % (got, fleet.want(n)))
    return fn


def metric_all(pool, nodes, name):
    return dict(zip([n.node_id for n in nodes], pool.map(lambda n: n.metrics().get(name, 0.0), nodes)))


def cpu_all(nodes):
    """{node_id: (pid, CPU seconds)} of the nodes running."""
    out = {}
    for n in nodes:
        if n.p is None:
            continue
        try:
            out[n.node_id] = (n.pid, cpu_seconds(n.pid))
        except OSError:
            pass
    return out


def cpu_delta(cpu0, cpu1):
    """CPU seconds spent between two cpu_all() snapshots (a process started since counts from 0)."""
    return {k: c - (cpu0[k][1] if k in cpu0 and cpu0[k][0] == pid else 0.0) for k, (pid, c) in cpu1.items()}


def rejected(pool, nodes):
    """Rejected (and ignored) announcements and confirmations per reason, summed over the nodes;
    presence messages (version 2) as presence_<reason>."""
    out = {}
    for m in pool.map(lambda n: n.metrics(), nodes):
        for k, v in m.items():
            if not v or 'reason="' not in k:
                continue
            if k.startswith("mqseal_announcements_rejected_total") or k.startswith("mqseal_announcements_ignored_total"):
                reason = k.split('reason="', 1)[1].split('"', 1)[0]
            elif k.startswith("mqseal_presence_rejected_total"):
                reason = "presence_" + k.split('reason="', 1)[1].split('"', 1)[0]
            else:
                continue
            out[reason] = out.get(reason, 0) + int(v)
    return out


def diff(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def dist(values):
    values = list(values)
    if not values:
        return None
    return {"n": len(values), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def per_role(fleet, values):
    """{role: {n, median, max}} of a {node_id: value} dict."""
    return {r: dist(v for k, v in values.items() if fleet.role[k] == r) for r in fleet.roles()}


class CpuSampler:
    """Samples the CPU time of the broker every period seconds (for peak figures)."""

    def __init__(self, pid, period=0.5):
        self.pid, self.period = pid, period
        self.samples = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic(), cpu_seconds(self.pid)))
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


class Phase:
    """Broker counters, broker CPU and node CPU at the start of a phase; figures() at its end."""

    def __init__(self, obs, broker, fleet, sampler, t0=None):
        self.obs, self.broker, self.fleet, self.sampler = obs, broker, fleet, sampler
        self.t0 = time.monotonic() if t0 is None else t0
        self.sys0, self.bcpu0, self.cpu0 = obs.sys_snapshot(), cpu_seconds(broker.pid), cpu_all(fleet.nodes)

    def figures(self, t1):
        time.sleep(1.2)  # the next $SYS update
        sys1, bcpu1, cpu1 = self.obs.sys_snapshot(), cpu_seconds(self.broker.pid), cpu_all(self.fleet.nodes)
        msgs, sys_copies = self.obs.window(self.t0, t1 + 0.001)
        fig = summarize(msgs)
        fig["seconds"] = round(t1 - self.t0, 3)
        fig["broker_cpu_seconds"] = round(bcpu1 - self.bcpu0, 3)
        fig["broker_cpu_percent_avg"] = round((bcpu1 - self.bcpu0) / max(t1 - self.t0, 1e-3) * 100, 1)
        fig["broker_cpu_percent_peak_0_5s"] = self.sampler.peak_percent(self.t0, t1)
        for k in ("bytes_received", "bytes_sent", "messages_received", "messages_sent"):
            if k in self.sys0 and k in sys1:
                fig["broker_" + k] = sys1[k] - self.sys0[k]
        copy = sum(m[5] for m in msgs) + sys_copies
        fig["observer_copy_bytes"] = copy
        if "broker_bytes_sent" in fig:
            # what the nodes received: without the observer's copies (its PUBACKs are 4 bytes each)
            fig["broker_bytes_sent_to_nodes"] = fig["broker_bytes_sent"] - copy
            fig["broker_bytes_received_from_nodes"] = fig["broker_bytes_received"] - 4 * sum(1 for m in msgs if m[6])
            fig["broker_messages_sent_to_nodes"] = fig["broker_messages_sent"] - len(msgs)
        fig["cpu_seconds"] = per_role(self.fleet, cpu_delta(self.cpu0, cpu1))
        return fig


# ---------------------------------------------------------------- the model (docs/SCALING.md)

MODEL_TEXT = {
    2: ["per rotation round, D = directed trust pairs (sum over the nodes of their peers), ids of k bytes",
        "announcement A = 228 + k_S + k_R B (one entry), confirmation C = 90 + k_S + k_R B, each on its own topic",
        "per pair 1 announcement and 1 confirmation (a re-issue to each peer's new eph_pub, PROTOCOL.md 7.4 "
        "third case, would add D announcements)",
        "broker bytes in ~ sum over nodes of peers x (A + C) = D (A + C) + MQTT framing: O(D)",
        "broker bytes out ~ the same: each message has one subscriber: O(D)",
        "wraps actually needed = one entry (97 + k_R B) per trust pair: D (97 + k_R)"],
    1: ["per rotation round, N nodes, D = directed trust pairs, ids of k bytes",
        "announcement of a node with P peers A(P) = 67 + k + P (97 + k) + 64 B, to every node (<prefix>/keyex/+)",
        "broker bytes in ~ sum over nodes of A(P) + D C (C = 90 + 2k)",
        "broker bytes out ~ N x sum over nodes of A(P) + D C: O(N x D)",
        "wraps actually needed = one entry (97 + k_R B) per trust pair: D (97 + k_R)"],
}


def model(fleet, version):
    """Predicted messages and bytes of one rotation round (every node rotates once, no re-issue),
    payload bytes and MQTT bytes at the broker (PUBLISH packets and the 4-byte PUBACKs of QoS 1),
    without the observer."""
    n_nodes = len(fleet.nodes)
    pairs = fleet.pairs()
    out = {"version": version, "directed_pairs": len(pairs), "formula": MODEL_TEXT[version]}
    wraps = sum(97 + len(r) for _, r in pairs)
    ack_pay = sum(90 + len(s) + len(r) for s, r in pairs)
    ack_wire = sum(publish_size(len("%s/ack/%s/%s" % (PREFIX, s, r)), 90 + len(s) + len(r), 1) + 4 for s, r in pairs)
    if version == 2:
        ann_pay = sum(228 + len(s) + len(r) for s, r in pairs)
        ann_wire = sum(publish_size(len("%s/kx/%s/%s" % (PREFIX, r, s)), 228 + len(s) + len(r), 1) + 4
                       for s, r in pairs)
        out.update({"messages": 2 * len(pairs), "payload_bytes_in": ann_pay + ack_pay,
                    "broker_bytes_in": ann_wire + ack_wire, "broker_bytes_out": ann_wire + ack_wire})
    else:
        sizes = {n.node_id: 67 + len(n.node_id) + sum(97 + len(p.node_id) for p in fleet.live_peers[n.node_id]) + 64
                 for n in fleet.nodes}
        wire = sum(publish_size(len("%s/keyex/%s" % (PREFIX, k)), v, 1) for k, v in sizes.items())
        # each announcement: in once plus a PUBACK from each of the N subscribers; out N times plus a PUBACK
        out.update({"messages": n_nodes + len(pairs), "payload_bytes_in": sum(sizes.values()) + ack_pay,
                    "broker_bytes_in": wire + 4 * n_nodes * n_nodes + ack_wire,
                    "broker_bytes_out": n_nodes * wire + 4 * n_nodes + ack_wire})
    out["wraps_needed_bytes"] = wraps
    out["one_announcement_per_pair_bytes"] = sum(228 + len(s) + len(r) for s, r in pairs)
    return out


# ---------------------------------------------------------------- the run

def cold_start(fleet, pool, obs, broker, sampler, args):
    ph = Phase(obs, broker, fleet, sampler)
    t_launch = ph.t0
    launch(fleet, pool, args)
    t_up = time.monotonic()
    log("%d nodes listening %.1fs after launch; waiting until every pair is keyed" % (len(fleet.nodes),
                                                                                     t_up - t_launch))
    done = pool.wait_each(fleet.nodes, keyed(fleet), args.start_timeout, "cold start (every pair keyed)")
    t_keyed = max(done.values())
    log("all %d nodes keyed %.1fs after launch" % (len(fleet.nodes), t_keyed - t_launch))
    t_settled = obs.wait_quiet(60, "cold start")
    fig = ph.figures(t_settled)
    fig.update({"rejected": rejected(pool, fleet.nodes),
                "launch_to_listening_s": round(t_up - t_launch, 3),
                "launch_to_all_keyed_s": round(t_keyed - t_launch, 3),
                "launch_to_keyed_s": per_role(fleet, {k: v - t_launch for k, v in done.items()}),
                "own_start_to_keyed_s": per_role(fleet, {k: v - STARTED[k] for k, v in done.items()}),
                "last_listening_to_all_keyed_s": round(t_keyed - t_up, 3),
                "launch_to_quiet_s": round(t_settled - t_launch, 3)})
    return fig


def rotation(fleet, pool, obs, broker, sampler, args):
    rot0 = metric_all(pool, fleet.nodes, "mqseal_rotations_total")
    act0 = metric_all(pool, fleet.nodes, "mqseal_activations_total")
    check(max(rot0.values()) <= 1, "rotation: %d nodes already started a second epoch during the cold start; "
          "use a larger --interval (now %ds)" % (sum(1 for v in rot0.values() if v > 1), args.interval))
    sent0 = {k: sum(metric_all(pool, fleet.nodes, k).values())
             for k in ("mqseal_announcements_sent_total", "mqseal_acks_sent_total")}
    rej0 = rejected(pool, fleet.nodes)
    log("waiting for the rotation round (interval %ds)" % args.interval)
    n_before = obs.count()
    deadline = time.monotonic() + args.interval + 60
    while obs.count() <= n_before:
        if time.monotonic() > deadline:
            raise PhaseTimeout("rotation: no key-exchange message within %ds + 60 s after the cold start"
                               % args.interval)
        time.sleep(0.05)
    t_rot0 = obs.at(n_before)[0] - 0.001
    ph = Phase(obs, broker, fleet, sampler, t0=t_rot0)

    def rotated(n):
        m = n.metrics()
        r, a = m.get("mqseal_rotations_total", 0), m.get("mqseal_activations_total", 0)
        return (r > rot0[n.node_id] and a > act0[n.node_id], "rotations %s, activations %s" % (r, a))
    done = pool.wait_each(fleet.nodes, rotated, args.round_timeout, "rotation round (every node rotated and "
                          "activated its new epoch)")
    t_activated = max(done.values())
    t_rot1 = obs.wait_quiet(60, "rotation")
    fig = ph.figures(t_rot1)
    rotations = sum(metric_all(pool, fleet.nodes, "mqseal_rotations_total").values()) - sum(rot0.values())
    output = pool.map(lambda n: n.output(), fleet.nodes)
    fig.update({
        "rotations": rotations,
        "first_to_all_activated_s": round(t_activated - t_rot0, 3),
        "announcements_sent": sum(metric_all(pool, fleet.nodes, "mqseal_announcements_sent_total").values())
        - sent0["mqseal_announcements_sent_total"],
        "acks_sent": sum(metric_all(pool, fleet.nodes, "mqseal_acks_sent_total").values())
        - sent0["mqseal_acks_sent_total"],
        "activations_by_confirmation": sum(o.count("confirmed by every live peer") for o in output),
        "rejected": diff(rejected(pool, fleet.nodes), rej0),
    })
    if rotations:
        fig["per_rotation"] = {"messages": round(fig["messages"] / rotations, 2),
                               "bytes_in": round(fig["bytes"] / rotations, 1),
                               "broker_bytes_sent_to_nodes": round(fig.get("broker_bytes_sent_to_nodes", 0)
                                                                   / rotations, 1)}
    return fig


def restart(fleet, pool, obs, broker, sampler, args):
    backends = fleet.of_role("backend")
    victim = backends[0] if backends else fleet.nodes[len(fleet.nodes) // 2]
    others = [n for n in fleet.nodes if victim in fleet.live_peers[n.node_id]]
    old_epoch = get_json(victim, "/peers")["epoch"]
    rej0 = rejected(pool, others)
    ph = Phase(obs, broker, fleet, sampler)
    if args.restart_signal == "kill":
        victim.kill()
    else:
        victim.stop(timeout=20)
    victim.start(wait=True)
    epoch = harness.eventually(lambda: get_json(victim, "/peers")["epoch"] > old_epoch and
                               get_json(victim, "/peers")["epoch"], 30, msg="restart: the new epoch of %s"
                               % victim.node_id)

    def holds_new(n):
        if n is victim:
            return keyed(fleet)(n)
        for p in get_json(n, "/peers")["peers"]:
            if p["id"] == victim.node_id:
                return (p["keyed"] and p["their_epoch_held"] >= epoch, "holds epoch %s of %s (new: %s)" % (
                    p["their_epoch_held"], victim.node_id, epoch))
        return (False, "%s not in /peers" % victim.node_id)
    done = pool.wait_each([victim] + others, holds_new, args.restart_timeout, "restart of %s (it is keyed with "
                          "all its peers, and they hold its new epoch)" % victim.node_id)
    t_keyed = max(done.values())
    t1 = obs.wait_quiet(60, "restart")
    fig = ph.figures(t1)
    fig.update({"node": victim.node_id, "signal": args.restart_signal,
                "restart_to_all_keyed_s": round(t_keyed - ph.t0, 3),
                "restart_to_peers_keyed_s": dist(v - ph.t0 for k, v in done.items() if k != victim.node_id),
                "rejected": diff(rejected(pool, others), rej0)})
    for k, v in rejected(pool, [victim]).items():
        fig["rejected"][k] = fig["rejected"].get(k, 0) + v
    return fig


def memory(fleet, broker):
    rss = {}
    for n in fleet.nodes:
        try:
            rss[n.node_id] = rss_kib(n.pid)
        except OSError:
            pass
    return {"rss_kib": per_role(fleet, rss), "broker_rss_kib": rss_kib(broker.pid)}


def run(args):
    total = (args.star[0] + args.star[1]) if args.star else args.mesh
    nofile = raise_nofile()
    check(nofile >= total + 1000, "RLIMIT_NOFILE %d is too low for %d nodes (the broker needs one descriptor "
          "per node, this script one log file per node)" % (nofile, total))
    workdir = tempfile.mkdtemp(prefix="mqseal-fleet-")
    if not os.environ.get("MQSEAL_KEEP_TMP"):
        atexit.register(shutil.rmtree, workdir, True)  # after harness's stop_all (registered first)
    result = {"topology": ("star %d,%d" % args.star) if args.star else "mesh %d" % args.mesh,
              "nodes": total, "backends": args.star[0] if args.star else None,
              "sensors": args.star[1] if args.star else None, "interval_seconds": args.interval,
              "peers_file": args.peers_file, "batch": args.batch, "machine": machine()}
    pool = Pool(args.workers)
    try:
        broker = Broker(workdir, extra="sys_interval 1\nmax_connections -1")
        # the observer receives every key-exchange message: a mesh of 200 sends 100,000s in its cold start,
        # more than the harness's per-client queue of 100,000 QoS 1 messages would hold while it lags
        with open(os.path.join(workdir, "broker.conf")) as f:
            text = f.read()
        with open(os.path.join(workdir, "broker.conf"), "w") as f:
            f.write(text.replace("max_queued_messages 100000", "max_queued_messages 10000000"))
        broker.start()
        result["broker_nofile"] = proc_nofile(broker.pid)
        check(result["broker_nofile"] >= total + 100, "the broker may open %s descriptors, fewer than the %d nodes "
              "need" % (result["broker_nofile"], total))
        obs = Observer(broker.port, PREFIX)
        log("broker on %d (nofile %d); creating %d identities" % (broker.port, nofile, total))
        fleet = Fleet(workdir, broker.port, args, pool)
        result["pairs"] = len(fleet.pairs())
        result["launched"] = len(fleet.nodes)
        sampler = CpuSampler(broker.pid)
        time.sleep(1.5)  # the observer has the $SYS baseline
        result["start"] = cold_start(fleet, pool, obs, broker, sampler, args)
        result["memory_after_start"] = memory(fleet, broker)
        kinds = obs.kinds()
        version = 2 if "kx" in kinds else 1
        result["protocol_version"] = version
        result["model"] = model(fleet, version)
        result["rotation"] = rotation(fleet, pool, obs, broker, sampler, args)
        log("rotation round: %d rotations, %d messages, %d bytes in, %s bytes out to the nodes" % (
            result["rotation"]["rotations"], result["rotation"]["messages"], result["rotation"]["bytes"],
            result["rotation"].get("broker_bytes_sent_to_nodes")))
        result["restart"] = restart(fleet, pool, obs, broker, sampler, args)
        log("restart of %s: keyed again after %.1fs, %d messages, %d bytes" % (
            result["restart"]["node"], result["restart"]["restart_to_all_keyed_s"], result["restart"]["messages"],
            result["restart"]["bytes"]))
        result["memory"] = memory(fleet, broker)
        dropped = sum(v for m in pool.map(lambda n: n.metrics(), fleet.nodes) for k, v in m.items()
                      if k.startswith("mqseal_dropped_total"))
        result["health"] = {"dropped_total": dropped, "rejected_total": rejected(pool, fleet.nodes),
                            "load_avg_end": os.getloadavg()}
        sampler.finish()
        obs.c.disconnect()
    except harness.TestFailure as e:
        result["error"] = str(e)
        log("FAILED: %s" % e)
    finally:
        pool.shutdown()
        stop_fleet()
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
            "python": platform.python_version(), "mosquitto": mosq, "mqseal": harness.MQSEAL, "git_head": rev,
            "mem_total_kib": meminfo_total()}


def meminfo_total():
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- the report

def fmt(b):
    if b is None:
        return "n/a"
    b = float(b)
    for unit, div in (("MB", 1e6), ("kB", 1e3)):
        if b >= div:
            return "%.2f %s" % (b / div, unit)
    return "%d B" % b


def pct(v):
    return "n/a" if v is None else "%s%%" % v


def reasons(d):
    return ", ".join("%s: %d" % kv for kv in sorted(d.items())) or "none"


def kinds_text(fig):
    return ", ".join("%s %d (%s, %d-%d B)" % (k, v["messages"], fmt(v["bytes"]), v["size_min"], v["size_max"])
                     for k, v in sorted(fig["kinds"].items())) or "none"


def roles_text(d, unit, scale=1.0, digits=1):
    if not d:
        return "n/a"
    return "; ".join("%s (%d): %.*f / %.*f %s" % (r, v["n"], digits, v["median"] * scale, digits, v["max"] * scale,
                                                   unit) for r, v in sorted(d.items()) if v)


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "n/a"


def markdown(r):
    lines = ["# Fleet scale: %s on one mosquitto (key exchange version %s)" % (r["topology"],
                                                                             r.get("protocol_version", "?")), ""]
    m = r["machine"]
    lines += ["`%s` (tree %s; %s) on %d CPUs, load average %.1f at the start of this run%s; keyex.interval_seconds "
              "%d; peers given as %s; launched in batches of %d. %d nodes%s, %d directed trust pairs%s." % (
                  r["command"], m["git_head"] or "?", m["mosquitto"] or "mosquitto", m["cpus"],
                  m["load_avg_start"][0],
                  " and %.1f at its end" % r["health"]["load_avg_end"][0] if "health" in r else "",
                  r["interval_seconds"], "a peers_file" if r["peers_file"] else "a `peers` list", r["batch"],
                  r["nodes"], "" if r.get("launched", r["nodes"]) == r["nodes"] else
                  " configured, %d of them running (--launch)" % r["launched"], r.get("pairs", 0),
                  "" if r.get("launched", r["nodes"]) == r["nodes"] else " between running nodes"), ""]
    if "error" in r:
        lines += ["**The run stopped: %s**" % r["error"], ""]
    lines += ["| phase | figure | value |", "|---|---|---|"]
    s = r.get("start")
    if s:
        lines += [
            "| start | launch until every node listens | %.1f s |" % s["launch_to_listening_s"],
            "| start | launch until every pair keyed | %.1f s |" % s["launch_to_all_keyed_s"],
            "| start | launch until keyed, per node: median / max | %s |" % roles_text(s["launch_to_keyed_s"], "s"),
            "| start | node's own launch until keyed: median / max | %s |" % roles_text(s["own_start_to_keyed_s"], "s"),
            "| start | key-exchange messages by kind (bytes, sizes) | %s |" % kinds_text(s),
            "| start | payload bytes in / broker bytes in / out to the nodes ($SYS) | %s / %s / %s |" % (
                fmt(s["bytes"]), fmt(s.get("broker_bytes_received_from_nodes")),
                fmt(s.get("broker_bytes_sent_to_nodes"))),
            "| start | broker CPU (avg over the phase / peak 0.5 s) | %.1f s (%.0f%% / %s) |" % (
                s["broker_cpu_seconds"], s["broker_cpu_percent_avg"], pct(s["broker_cpu_percent_peak_0_5s"])),
            "| start | CPU per node: median / max | %s |" % roles_text(s["cpu_seconds"], "s", digits=2),
        ]
    rot = r.get("rotation")
    if rot:
        pr = rot.get("per_rotation", {})
        lines += [
            "| rotation | rotations in the round | %d |" % rot["rotations"],
            "| rotation | messages by kind (bytes, sizes) | %s |" % kinds_text(rot),
            "| rotation | round: messages; payload bytes in / broker bytes in / out to the nodes ($SYS) | "
            "%d; %s / %s / %s |" % (rot["messages"], fmt(rot["bytes"]), fmt(rot.get("broker_bytes_received_from_nodes")),
                                    fmt(rot.get("broker_bytes_sent_to_nodes"))),
            "| rotation | broker MQTT packets of any type in / out ($SYS, less the observer's) | %s / %s |" % (
                rot.get("broker_messages_received", "n/a"), rot.get("broker_messages_sent_to_nodes", "n/a")),
            "| rotation | per rotation: messages, payload bytes in, bytes out | %s, %s, %s |" % (
                pr.get("messages"), fmt(pr.get("bytes_in")), fmt(pr.get("broker_bytes_sent_to_nodes"))),
            "| rotation | announcements + confirmations: sent (the nodes' counters) / seen by the observer | "
            "%d + %d / %d + %d |" % (rot["announcements_sent"], rot["acks_sent"],
                                     sum(v["messages"] for k, v in rot["kinds"].items() if k in ("kx", "keyex")),
                                     rot["kinds"].get("ack", {}).get("messages", 0)),
            "| rotation | round duration (first message to quiet) | %.1f s |" % rot["seconds"],
            "| rotation | first message until every node activated | %.1f s |" % rot["first_to_all_activated_s"],
            "| rotation | activations by confirmation (else by the 10 s delay) | %d of %d |" % (
                rot["activations_by_confirmation"], rot["rotations"]),
            "| rotation | broker CPU (avg / peak 0.5 s) | %.2f s (%.0f%% / %s) |" % (
                rot["broker_cpu_seconds"], rot["broker_cpu_percent_avg"], pct(rot["broker_cpu_percent_peak_0_5s"])),
            "| rotation | CPU per node: median / max | %s |" % roles_text(rot["cpu_seconds"], "s", digits=3),
        ]
    rs = r.get("restart")
    if rs:
        lines += [
            "| restart | %s (%s) restarted: until it and every peer hold each other's new keys | %.1f s |" % (
                rs["node"], rs["signal"], rs["restart_to_all_keyed_s"]),
            "| restart | messages by kind (bytes, sizes) | %s |" % kinds_text(rs),
            "| restart | payload bytes in / broker bytes in / out to the nodes ($SYS) | %s / %s / %s |" % (
                fmt(rs["bytes"]), fmt(rs.get("broker_bytes_received_from_nodes")),
                fmt(rs.get("broker_bytes_sent_to_nodes"))),
        ]
    for key, label in (("memory_after_start", "after the start"), ("memory", "at the end")):
        if r.get(key):
            lines.append("| memory | RSS %s: median / max | %s; broker %d KiB |" % (
                label, roles_text(r[key]["rss_kib"], "KiB", digits=0), r[key]["broker_rss_kib"]))
    if s and rot and rs:
        lines.append("| start / rotation / restart | rejected or ignored (reason: count, summed over nodes) | "
                     "%s / %s / %s |" % (reasons(s["rejected"]), reasons(rot["rejected"]), reasons(rs["rejected"])))
    if "health" in r:
        lines.append("| health | sealed messages dropped | %d |" % r["health"]["dropped_total"])
    lines += [""] + model_section(r) + [
        "Payload bytes in = the key-exchange payloads published into the broker (counted by an observer on "
        "`mqseal/#`); broker bytes in / out = mosquitto's `$SYS/broker/bytes/received` / `sent` over the same "
        "window (MQTT framing, PUBACKs, keepalives included), less the observer's own copies and PUBACKs. "
        "Raw figures: the `.json` next to this file. The model: `docs/SCALING.md`.", ""]
    return "\n".join(lines)


def model_section(r):
    md, rot = r.get("model"), r.get("rotation")
    if not md or not rot:
        return []
    lines = ["## One rotation round: model and measurement", ""]
    lines += ["Model (key exchange version %d): %s." % (md["version"], "; ".join(md["formula"])), ""]
    lines += ["| per round | model | measured | measured / model |", "|---|---|---|---|"]
    meas = [("messages", md["messages"], rot["messages"]),
            ("payload bytes in", md["payload_bytes_in"], rot["bytes"]),
            ("broker bytes in (MQTT)", md["broker_bytes_in"], rot.get("broker_bytes_received_from_nodes")),
            ("broker bytes out to the nodes (MQTT)", md["broker_bytes_out"], rot.get("broker_bytes_sent_to_nodes"))]
    for name, a, b in meas:
        lines.append("| %s | %s | %s | %s |" % (name, fmt(a) if "bytes" in name else a,
                                               fmt(b) if "bytes" in name else b, ratio(b, a)))
    out = rot.get("broker_bytes_sent_to_nodes")
    lines += ["", "Wraps actually needed, %d trust pairs: one entry (97 + k_R B) each = %s, or one single-entry "
              "version 2 announcement (228 + k_S + k_R B) each = %s. Broker bytes out to the nodes in the round "
              "(announcements, confirmations, MQTT framing) are %s times the first and %s times the second "
              "(issue 15's goal: within 2x)." % (
                  md["directed_pairs"], fmt(md["wraps_needed_bytes"]), fmt(md["one_announcement_per_pair_bytes"]),
                  ratio(out, md["wraps_needed_bytes"]), ratio(out, md["one_announcement_per_pair_bytes"])), ""]
    return lines


def side_by_side(runs):
    """One line per run (this file's and --baseline files'): how the figures compare."""
    lines = ["", "## Side by side", "",
             "| run | version | nodes | keyed after start | round: msgs / bytes in / out | out per rotation "
             "| restart: keyed again, bytes out | RSS median (max) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s, rot, rs = r.get("start", {}), r.get("rotation", {}), r.get("restart", {})
        mem = r.get("memory_after_start") or r.get("memory") or {}
        if "rss_kib" in mem:
            rss = "; ".join("%s %d (%d) KiB" % (k, v["median"], v["max"]) for k, v in sorted(mem["rss_kib"].items())
                            if v)
        else:  # the issue 10 format
            rss = "%s (%s) KiB" % (mem.get("mqseal_rss_kib_median"), mem.get("mqseal_rss_kib_max"))
        out = rot.get("broker_bytes_sent_to_nodes", rot.get("broker_bytes_sent"))
        per = rot.get("per_rotation", {})
        lines.append("| %s | %s | %s | %s | %s / %s / %s | %s | %s, %s | %s |" % (
            r.get("label") or r.get("topology") or "mesh %d" % r["nodes"], r.get("protocol_version", 1), r["nodes"],
            "%.1f s" % s["launch_to_all_keyed_s"] if s else "n/a", rot.get("messages", "n/a"),
            fmt(rot.get("bytes")), fmt(out), fmt(per.get("broker_bytes_sent_to_nodes", per.get("broker_bytes_sent"))),
            "%.1f s" % rs["restart_to_all_keyed_s"] if rs else "n/a",
            fmt(rs.get("broker_bytes_sent_to_nodes", rs.get("broker_bytes_sent"))), rss))
    lines += ["", "Bytes out: to the nodes, without the observer's copy; in the issue 10 runs (fleet.json) with it "
              "(`broker_bytes_sent`, one more subscriber)."]
    return "\n".join(lines) + "\n"


def load_baselines(paths):
    runs = []
    for p in paths:
        try:
            with open(p) as f:
                for r in json.load(f)["runs"]:
                    r["label"] = "%s (%s)" % (r.get("topology") or "mesh %d" % r["nodes"], os.path.basename(p))
                    runs.append(r)
        except (OSError, ValueError, KeyError) as e:
            log("baseline %s not read: %s" % (p, e))
    return runs


def parse_star(text):
    try:
        b, s = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("--star B,S: two numbers, e.g. 1,1000")
    if b < 1 or s < 1:
        raise argparse.ArgumentTypeError("--star B,S: at least one backend and one sensor")
    return (b, s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    topo = ap.add_mutually_exclusive_group()
    topo.add_argument("--star", type=parse_star, help="B,S: B backends, S sensors")
    topo.add_argument("--mesh", type=int, help="N nodes, all trusting each other")
    topo.add_argument("--nodes", type=int, help=argparse.SUPPRESS)  # the issue 10 spelling of --mesh
    ap.add_argument("--sweep", default="", help="mesh only: group sizes run one after the other, e.g. 10,25,50")
    ap.add_argument("--interval", type=int, default=30, help="keyex.interval_seconds of every node (default 30); "
                    "the rotation round comes after it, so it must exceed the cold start")
    ap.add_argument("--peers-file", action="store_true", help="give each node its peers in a peers_file (one "
                    "'<id> <public_key>' a line) instead of a peers list")
    ap.add_argument("--launch", type=int, default=None, help="star only, for trying a backend with many "
                    "configured peers on a small machine: run only the first LAUNCH sensors (the backends still "
                    "list all S); the model then counts only the pairs that run")
    ap.add_argument("--batch", type=int, default=50, help="nodes launched at once (default 50)")
    ap.add_argument("--batch-timeout", type=float, default=60, help="seconds for one batch to listen")
    ap.add_argument("--start-timeout", type=float, default=300, help="seconds for every pair to be keyed")
    ap.add_argument("--round-timeout", type=float, default=180, help="seconds for every node to rotate and "
                    "activate once the round began")
    ap.add_argument("--restart-timeout", type=float, default=120, help="seconds to re-key after the restart")
    ap.add_argument("--restart-signal", choices=("kill", "term"), default="kill",
                    help="how the restarted node is stopped (kill: a crash, as in issue 10; term: a clean stop)")
    ap.add_argument("--workers", type=int, default=32, help="threads polling the nodes")
    ap.add_argument("--baseline", action="append", default=None,
                    help="results file whose runs go in the side-by-side table (default for a mesh: "
                    "bench/results/fleet.json, the version 1 runs of issue 10)")
    ap.add_argument("--out", default=None, help="default bench/results/fleet-star or fleet-mesh")
    args = ap.parse_args()
    if args.nodes and not args.mesh:
        args.mesh = args.nodes
    if not args.star and not args.mesh:
        args.mesh = 50
    sizes = [int(x) for x in args.sweep.split(",") if x] if args.mesh else []
    sizes = sizes or ([args.mesh] if args.mesh else [None])
    check(all(n is None or n >= 2 for n in sizes), "--mesh: at least 2 nodes")
    check(os.access(harness.MQSEAL, os.X_OK), "no mqseal binary at %s (scripts/build.sh release, or MQSEAL_BIN)"
          % harness.MQSEAL)
    out = args.out or os.path.join(HERE, "results", "fleet-star" if args.star else "fleet-mesh")
    baselines = args.baseline if args.baseline is not None else (
        [os.path.join(HERE, "results", "fleet.json")] if args.mesh else [])
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    command = "bench/fleet.py " + " ".join(sys.argv[1:])
    runs = []
    for n in sorted(sizes, key=lambda x: x or 0):
        if n is not None:
            args.mesh = n
        log("--- %s" % ("star %d,%d" % args.star if args.star else "mesh %d" % n))
        runs.append(run(args))
        runs[-1]["command"] = command
        if "error" in runs[-1]:
            break
    with open(out + ".json", "w") as f:
        json.dump({"runs": runs}, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(out + ".md", "w") as f:
        f.write(markdown(runs[-1]))
        f.write(side_by_side(load_baselines(baselines) + runs))
    log("wrote %s.json and %s.md" % (out, out))
    sys.exit(1 if "error" in runs[-1] else 0)


if __name__ == "__main__":
    main()
