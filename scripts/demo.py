#!/usr/bin/env python3
"""demo.py - the helper programs of scripts/demo.sh, which starts every process and stops them.

    demo.py ports N        print N free TCP ports on 127.0.0.1
    demo.py publish ...    the legacy sensor: one reading per second from scripts/telemetry.csv,
                           each sent by a fresh mosquitto_pub through the sensor's sidecar (QoS 1),
                           logged to a file as it is sent
    demo.py view ...       follows what the device sent, what the eavesdropper saw at the broker,
                           what the subscriber received and the nodes' logs, and prints them side
                           by side; on SIGUSR1 it waits briefly for messages in flight, prints the
                           summary and exits 0 only when nothing was lost and the broker never saw
                           a reading in plaintext

Only the Python standard library is used (Debian's /usr/bin/python3 is enough).
"""
import argparse
import csv
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HOST = "127.0.0.1"
TOPIC_ROOT = "plant"
DRAIN_SECONDS = 3.0  # a reading not received this long after it was sent is lost (loopback: ms)


class Stop(Exception):
    """Raised by the signal handlers to leave a sleep or a running child at once."""


def on_signal(signum, frame):
    raise Stop()


# ---------------------------------------------------------------- ports

def cmd_ports(args):
    socks = []
    try:
        for _ in range(args.n):  # all bound at once, so the ports are distinct
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()
    return 0


# ---------------------------------------------------------------- readings

def load_readings(path):
    with open(path, newline="", encoding="ascii") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit("demo.py: %s has no readings" % path)
    return rows


def reading(seq, row):
    """(topic, payload) of reading number seq: what the legacy device publishes."""
    topic = "%s/%s" % (TOPIC_ROOT, row["sensor"])
    return topic, "#%d %sC %s%%" % (seq, row["temperature_c"], row["humidity_pct"])


def secrets_of(payload):
    """The byte strings of a reading that the broker must never see: the whole payload and each
    measured value with its unit (at least 5 bytes each, so a chance match in ciphertext has a
    probability below 2^-40 per position)."""
    parts = [payload.encode()]
    parts += [tok.encode() for tok in payload.split()[1:] if len(tok) >= 5]
    return parts


# ---------------------------------------------------------------- publisher

def publish_once(args, sensor, topic, payload):
    """One mosquitto_pub run (QoS 1: it exits 0 once the sidecar acknowledged); its exit status,
    or 124 when it hangs. subprocess.run kills the child when Stop interrupts it."""
    try:
        r = subprocess.run([args.mosquitto_pub, "-h", HOST, "-p", str(args.port), "-q", "1",
                            "-i", "dev-" + sensor, "-t", topic, "-m", payload],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=5, check=False)
    except subprocess.TimeoutExpired:
        sys.stderr.write("mosquitto_pub %s: no acknowledgement within 5 s\n" % topic)
        return 124
    if r.returncode != 0:
        sys.stderr.write("mosquitto_pub %s: exit %d: %s" % (topic, r.returncode,
                                                          r.stderr.decode("utf-8", "replace")))
    return r.returncode


def cmd_publish(args):
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rows = load_readings(args.csv)
    start = time.monotonic()
    seq = 0
    try:
        with open(args.out, "a", encoding="utf-8") as log:
            while True:
                seq += 1
                delay = start + (seq - 1) * args.interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                row = rows[(seq - 1) % len(rows)]
                topic, payload = reading(seq, row)
                sent_at = time.time()
                rc = publish_once(args, row["sensor"], topic, payload)
                log.write("%.6f\t%d\t%s\t%d\t%s\n" % (sent_at, seq, topic, rc, payload))
                log.flush()
    except Stop:
        pass
    return 0


# ---------------------------------------------------------------- viewer: inputs

class Tail:
    """The complete lines appended to a file since the last call."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.rest = b""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return []
        self.pos += len(data)
        data = self.rest + data
        *done, self.rest = data.split(b"\n")
        return [d.decode("utf-8", "replace") for d in done]


def parse_log_time(stamp):
    """Seconds since the epoch of an mqseal log timestamp (2026-11-25T16:19:34.280Z), or None."""
    try:
        dt = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def metrics(port):
    """GET /metrics of a node as {'name{labels}': value}; {} when it cannot be read."""
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, port), timeout=3) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


# ---------------------------------------------------------------- viewer: output

class Style:
    def __init__(self, enabled):
        self.on = enabled

    def __call__(self, code, text):
        return "\033[%sm%s\033[0m" % (code, text) if self.on else text


def fit(text, width):
    return text if len(text) <= width else text[:width - 2] + ".."


def span(values):
    values = list(values)
    lo, hi = min(values), max(values)
    return "%d" % lo if lo == hi else "%d-%d" % (lo, hi)


def hexview(data):
    h = data.hex()
    shown = h if len(h) <= 18 else h[:12] + ".." + h[-4:]
    return "%-18s %3d B" % (shown, len(data))


# Column widths: time, topic, device sent, broker saw, subscriber got.
COLS = (6, 18, 18, 24, 18)


def row_text(cells):
    return "  ".join(c + " " * max(0, w - len(c)) if i < len(COLS) - 1 else c
                     for i, (c, w) in enumerate(zip(cells, COLS)))


class Viewer:
    LOG_RE = re.compile(r"^(\S+) \w+ keyex epoch (\d+) (started|active) \(([^)]*)\)")

    def __init__(self, args):
        self.args = args
        self.style = Style(sys.stdout.isatty() and not os.environ.get("NO_COLOR")
                           and os.environ.get("TERM") != "dumb")
        self.t0 = args.t0 or time.time()
        self.sent_tail = Tail(args.sent)
        self.got_tail = Tail(args.got)
        self.eve_tail = Tail(args.eve)
        self.node_tails = [(name, Tail(path)) for name, path in args.node]
        self.sent = []        # dicts: t, seq, topic, rc, payload, k (index among the topic's sent)
        self.per_topic = {}   # topic -> readings sent on it (published successfully)
        self.got = {}         # (topic, payload) -> times received
        self.eve = {}         # topic -> [payload bytes] seen at the broker, in order
        self.kex_seen = 0     # messages on the key-exchange topics
        self.starting = {}    # (node, epoch) -> start time of an epoch begun by rotation
        self.events = []      # (time, text) of rotations not printed yet
        self.next = 0         # first reading whose row is not printed yet
        self.finishing = False

    # -- input

    def poll(self):
        for line in self.sent_tail.lines():
            t, seq, topic, rc, payload = line.split("\t", 4)
            k = self.per_topic.get(topic, 0)
            if int(rc) == 0:
                self.per_topic[topic] = k + 1
            self.sent.append({"t": float(t), "seq": int(seq), "topic": topic, "rc": int(rc),
                              "payload": payload, "k": k})
        for line in self.got_tail.lines():
            topic, sep, payload = line.partition(" ")
            if sep and topic.startswith(TOPIC_ROOT + "/"):  # -d debug lines start with "Client"
                self.got[(topic, payload)] = self.got.get((topic, payload), 0) + 1
        for line in self.eve_tail.lines():
            topic, sep, hexdata = line.partition(" ")
            if not sep:
                continue
            try:
                data = bytes.fromhex(hexdata)
            except ValueError:
                continue
            if not topic.startswith(TOPIC_ROOT + "/"):
                self.kex_seen += 1
            self.eve.setdefault(topic, []).append(data)
        for name, tail in self.node_tails:
            for line in tail.lines():
                self.node_line(name, line)

    def node_line(self, node, line):
        m = self.LOG_RE.match(line)
        if not m:
            return
        stamp, epoch, what, why = m.groups()
        t = parse_log_time(stamp) or time.time()
        if what == "started":
            if why != "start":  # the first epoch of a node is not a rotation
                self.starting[(node, epoch)] = t
            return
        began = self.starting.pop((node, epoch), None)
        if began is None:
            return
        text = ("%s: new key, epoch %s (%s in %.0f ms); old key erased"
                % (node, epoch, why, (t - began) * 1000))
        self.events.append((t, text))

    # -- output

    def header(self):
        print("  %-13s %-18s %-40s pid %d" % ("viewer", "demo.py view", "this table", os.getpid()))
        print()
        print(self.style("1", row_text(("time", "topic", "device sent", "broker saw (hex)",
                                        "subscriber got"))))
        print(row_text(tuple("-" * w for w in COLS)))

    def flush_events(self, until):
        self.events.sort()
        while self.events and self.events[0][0] <= until:
            t, text = self.events.pop(0)
            print(self.style("33", "%5.1fs  ~~ %s" % (t - self.t0, text)), flush=True)

    def broker_payload(self, s):
        seen = self.eve.get(s["topic"], [])
        return seen[s["k"]] if s["rc"] == 0 and s["k"] < len(seen) else None

    def row(self, s, final):
        """Prints the row of reading s if it is complete (or overdue); returns whether it did."""
        got = self.got.get((s["topic"], s["payload"]), 0) > 0
        seen = self.broker_payload(s)
        overdue = final or time.time() - s["t"] > DRAIN_SECONDS
        if not overdue and not (got and seen is not None):
            return False
        self.flush_events(s["t"])
        leak = seen is not None and any(p in seen for p in secrets_of(s["payload"]))
        broker = hexview(seen) if seen is not None else "(not seen)"
        if s["rc"] != 0:
            verdict, mark = "publish failed (%d)" % s["rc"], self.style("31", "FAILED")
        elif got:
            verdict, mark = s["payload"], self.style("32", "ok")
        else:
            verdict, mark = "-", self.style("31;1", "LOST")
        if leak:
            mark += " " + self.style("31;1", "PLAINTEXT AT BROKER")
        cells = ("%5.1fs" % (s["t"] - self.t0), fit(s["topic"], COLS[1]), fit(s["payload"], COLS[2]),
                 self.style("2", broker), fit(verdict, COLS[4]))
        print(row_text(cells) + "  " + mark, flush=True)
        return True

    def emit(self, final=False):
        while self.next < len(self.sent) and self.row(self.sent[self.next], final):
            self.next += 1
        if final:
            self.flush_events(float("inf"))

    # -- the end

    def leak_check(self):
        """Counts the broker-side payloads that contain any byte string of any reading."""
        needles = [p for s in self.sent for p in secrets_of(s["payload"])]
        seen = [d for msgs in self.eve.values() for d in msgs]
        return sum(1 for d in seen if any(n in d for n in needles)), len(needles)

    def summary(self):
        sent = len(self.sent)
        received = sum(1 for s in self.sent if self.got.get((s["topic"], s["payload"]), 0))
        lost = sent - received
        rot, dropped, reasons = {}, 0, []
        for name, port in self.args.metrics:
            m = metrics(port)
            rot[name] = max(0, int(m.get("mqseal_rotations_total", 1)) - 1)  # minus the first epoch
            for k, v in m.items():
                if k.startswith("mqseal_dropped_total{") and v:
                    dropped += int(v)
                    reasons.append("%s %s %d" % (name, k.split('"')[1], v))
        leaks, checked = self.leak_check()
        sealed = [d for t, msgs in self.eve.items() if t.startswith(TOPIC_ROOT + "/") for d in msgs]
        plain = [len(s["payload"]) for s in self.sent]
        print()
        print(self.style("1", "summary: sent %d  received %d  lost %d  rotations %d (%s)  dropped %d%s"
                         % (sent, received, lost, sum(rot.values()),
                            ", ".join("%s %d" % kv for kv in rot.items()), dropped,
                            (" (" + ", ".join(reasons) + ")") if reasons else "")))
        if sealed and plain:
            print("broker view: %d sealed payloads of %s B (the readings: %s B) and %d key-exchange messages;"
                  % (len(sealed), span(map(len, sealed)), span(plain), self.kex_seen))
            print("             %s of them contains any of the %d plaintext byte strings of the readings"
                  % ("none" if not leaks else "%d" % leaks, checked))
        ok = sent > 0 and lost == 0 and leaks == 0
        if ok:
            print(self.style("32;1", "OK: every reading arrived, and the broker never saw one in plaintext."))
        else:
            why = []
            if sent == 0:
                why.append("nothing was sent")
            if lost:
                why.append("%d reading(s) lost" % lost)
            if leaks:
                why.append("plaintext seen at the broker")
            print(self.style("31;1", "FAILED: " + ", ".join(why) + "."))
        sys.stdout.flush()
        return 0 if ok else 1


def cmd_view(args):
    v = Viewer(args)
    signal.signal(signal.SIGUSR1, lambda s, f: setattr(v, "finishing", True))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # demo.sh decides when to finish (SIGUSR1)
    v.header()
    try:
        while not v.finishing:
            v.poll()
            v.emit()
            time.sleep(0.1)
        last = max([s["t"] for s in v.sent] or [time.time()])
        deadline = max(time.time(), last + DRAIN_SECONDS)
        while time.time() < deadline:
            v.poll()
            v.emit()
            if v.next == len(v.sent):
                break
            time.sleep(0.1)
        v.poll()
        v.emit(final=True)
        return v.summary()
    except Stop:
        return 1


# ---------------------------------------------------------------- command line

def name_port(text):
    name, _, port = text.partition("=")
    return name, int(port)


def name_path(text):
    name, _, path = text.partition("=")
    return name, path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ports")
    p.add_argument("n", type=int)
    p = sub.add_parser("publish")
    p.add_argument("--csv", required=True)
    p.add_argument("--port", type=int, required=True, help="the sensor node's device port")
    p.add_argument("--out", required=True, help="log of what was sent")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--mosquitto-pub", default="mosquitto_pub")
    p = sub.add_parser("view")
    p.add_argument("--t0", type=float, default=None, help="time the publisher started (seconds since the epoch)")
    p.add_argument("--sent", required=True, help="the publisher's log")
    p.add_argument("--got", required=True, help="output of mosquitto_sub -v behind the backend node")
    p.add_argument("--eve", required=True, help="output of mosquitto_sub -F '%%t %%x' at the broker")
    p.add_argument("--node", type=name_path, action="append", default=[], help="NAME=LOGFILE")
    p.add_argument("--metrics", type=name_port, action="append", default=[], help="NAME=PORT")
    args = ap.parse_args()
    return {"ports": cmd_ports, "publish": cmd_publish, "view": cmd_view}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
