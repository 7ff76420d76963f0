"""Operations hardening (issue 13, items 7-9), against real nodes:

- test_metrics_exhaustion: 300 idle connections to the metrics port of a node whose descriptor
  limit is 200 (metrics.max_connections = 64). A device still gets its CONNACK, the node does not
  spin (CPU time over 3 s well under the elapsed time) and does not flood stderr, the idle
  connections are closed by the node (at most 10 s each), and /metrics answers afterwards.
- test_metrics_accept_pause: the same with the cap out of the way (4096) and the limit lowered to
  100 under the running node: accept() fails (EMFILE), the endpoint pauses 500 ms at a time
  instead of spinning, logs rate-limited, counts mqseal_metrics_accept_errors_total.
- test_log_injection: a hostile broker delivers a PUBLISH whose topic carries a newline and a
  forged log line (and a device's client id carries one too, which the session already replaces): every line of the node's text log
  is a log line, the forgery appears only escaped (\\x0a); in JSON every line is one object.
- test_check_warns_weakening: `mqseal check` warns (exit 0, one line each, FILE:LINE) about every
  topic plaintext, seal.padding below 16, keyex.max_skew_seconds above 300, a state_dir that others
  can write; the node logs the same at start; /healthz says that nothing is sealed.
"""
# ctest-labels: reliability hostile
# ctest-timeout: 300
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from harness import (HOST, MQSEAL, Broker, Client, Node, check, eventually, raise_nofile, read_closed, run,
                     stop_clean)
from test_hostile_broker import CONNACK, HostileBroker, read_packet, varint
from harness import mqtt_str

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) [a-z]+ ")


def with_nofile(node, soft, hard):
    """Runs node's mqseal with RLIMIT_NOFILE soft/hard set in the child (as a shell's ulimit would)."""
    code = "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d)); " \
           "os.execv(sys.argv[1], sys.argv[1:])" % (soft, hard)
    node.argv = [sys.executable, "-c", code] + node.argv


def cpu_seconds(pid):
    """utime + stime of pid (/proc/<pid>/stat fields 14 and 15), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_get(port, path, timeout=5):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (HOST, port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# ---------------------------------------------------------------- item 7: metrics port exhaustion

def open_idle(port, n):
    """n TCP connections to port that never send a byte; those the connect times out on are skipped."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((HOST, port))
            socks.append(s)
        except OSError:
            s.close()
    return socks


def test_metrics_exhaustion(workdir):
    raise_nofile(4096)  # this process holds the 300 client ends
    broker = Broker(workdir).start()
    # metrics.max_connections is left at its default, 64.
    node = Node(workdir, "m", broker.port, conf={"listen": {"max_connections": 32}})
    with_nofile(node, 200, 200)
    node.start()
    check(http_get(node.metrics_port, "/metrics")[0] == 200, "/metrics answers before")
    idle = open_idle(node.metrics_port, 300)
    try:
        time.sleep(1.0)
        log_before, cpu_before, t0 = len(node.output()), cpu_seconds(node.pid), time.monotonic()
        time.sleep(3.0)
        cpu = cpu_seconds(node.pid) - cpu_before
        elapsed = time.monotonic() - t0
        grown = len(node.output()) - log_before
        print("  300 idle connections (%d connected): node CPU %.2f s in %.2f s, log +%d bytes"
              % (len(idle), cpu, elapsed, grown))
        check(cpu < 0.5 * elapsed, "the node does not spin: CPU %.2f s in %.2f s" % (cpu, elapsed))
        check(grown < 64 * 1024, "stderr does not flood: +%d bytes in %.1f s" % (grown, elapsed))
        dev = Client("dev-under-attack")
        dev.connect(node.port, timeout=5)  # raises without a CONNACK
        dev.disconnect()
        print("  a device got its CONNACK while the idle connections were open")
        # The endpoint closes the ones it took after at most 10 s; the others were refused at once.
        deadline = time.monotonic() + 15
        closed = 0
        for s in idle:
            data = read_closed(s, max(0.1, deadline - time.monotonic()))
            closed += data is not None
        print("  closed by the node within 15 s: %d of %d" % (closed, len(idle)))
        check(closed == len(idle), "every idle connection was closed by the node: %d of %d" % (closed, len(idle)))
    finally:
        for s in idle:
            s.close()
    status, body = eventually(lambda: (lambda r: r if r[0] == 200 else None)(http_get(node.metrics_port, "/metrics")),
                              5, msg="/metrics answers again")
    rejected = float(re.search(r"^mqseal_metrics_connections_rejected_total (\S+)$", body, re.M).group(1))
    check(rejected >= len(idle) - 64, "refusals counted: %r" % rejected)
    print("  /metrics answers again; mqseal_metrics_connections_rejected_total %d" % rejected)
    check(node.alive(), "the node survived")
    stop_clean(node)


def test_metrics_accept_pause(workdir):
    """Out of descriptors below the cap (the limit lowered to 100 under a running node with
    metrics.max_connections = 4096): accept() fails with EMFILE, and the endpoint pauses instead
    of spinning; the failures are counted and logged a few times, not per attempt."""
    import resource
    raise_nofile(4096)
    broker = Broker(workdir).start()
    node = Node(workdir, "p", broker.port, conf={"listen": {"max_connections": 16},
                                                  "metrics": {"max_connections": 4096}}).start()
    resource.prlimit(node.pid, resource.RLIMIT_NOFILE, (100, 100))
    idle = open_idle(node.metrics_port, 150)
    try:
        time.sleep(1.0)
        log_before, cpu_before, t0 = len(node.output()), cpu_seconds(node.pid), time.monotonic()
        time.sleep(3.0)
        cpu, elapsed = cpu_seconds(node.pid) - cpu_before, time.monotonic() - t0
        grown = len(node.output()) - log_before
        print("  EMFILE: node CPU %.2f s in %.2f s, log +%d bytes" % (cpu, elapsed, grown))
        check(cpu < 0.5 * elapsed, "the node does not spin: CPU %.2f s in %.2f s" % (cpu, elapsed))
        check(grown < 16 * 1024, "stderr does not flood: +%d bytes" % grown)
        check("accept failed: Too many open files; pausing the endpoint 500 ms" in node.output(), "logged")
    finally:
        for s in idle:
            s.close()
    status, body = eventually(lambda: (lambda r: r if r[0] == 200 else None)(http_get(node.metrics_port, "/metrics")),
                              15, msg="/metrics answers again")
    errors = float(re.search(r"^mqseal_metrics_accept_errors_total (\S+)$", body, re.M).group(1))
    print("  /metrics answers again; mqseal_metrics_accept_errors_total %d" % errors)
    check(errors >= 1, "accept failures counted")
    stop_clean(node)


def test_metrics_http(workdir):
    """The endpoint's own HTTP server: request forms, refusals, HEAD, query strings, half-close."""
    broker = Broker(workdir).start()
    node = Node(workdir, "h", broker.port).start()

    def raw(req):
        s = socket.create_connection((HOST, node.metrics_port), timeout=5)
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return data

    check(raw(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 200 OK\r\n"), "query ignored")
    check(raw(b"GET /metrics HTTP/1.0\n\n").startswith(b"HTTP/1.1 200 "), "bare LF")
    check(raw(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405 "), "POST is 405")
    check(raw(b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 "), "404")
    check(raw(b"GET /metrics\r\n\r\n").startswith(b"HTTP/1.1 400 "), "HTTP/0.9 is 400")
    check(raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n").startswith(b"HTTP/1.1 400 "), "TLS hello is 400")
    check(raw(b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 2000 + b"\r\n").startswith(b"HTTP/1.1 431 "),
          "over 8 KiB of headers is 431")
    head = raw(b"HEAD /healthz HTTP/1.1\r\n\r\n")
    check(head.endswith(b"\r\n\r\n") and b"Content-Length: " in head, "HEAD: headers only: %r" % head)
    # A client that half-closes after its request still gets the whole response.
    s = socket.create_connection((HOST, node.metrics_port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    length = int(re.search(rb"Content-Length: (\d+)", data).group(1))
    check(len(data.split(b"\r\n\r\n", 1)[1]) == length, "whole body after a half-close")
    stop_clean(node)


# ---------------------------------------------------------------- item 8: log injection

FORGED = "2030-01-01T00:00:00.000Z error node FORGED-LINE key material leaked"


class InjectBroker(HostileBroker):
    def scenario_inject(self, s, c):
        """CONNACK, SUBACK, then a QoS 0 PUBLISH on a sealed topic whose name carries a newline, a
        carriage return and an ANSI escape; its payload is no envelope (dropped and logged)."""
        self.send(s, c, CONNACK)
        p = read_packet(s)
        check(p and p[0] == 8, "the device subscribes first")
        self.send(s, c, b"\x90\x03" + p[2][:2] + b"\x00")
        topic = "sealed/x\n" + FORGED + "\r\x1b[31m\x7f"
        body = mqtt_str(topic) + b"not an envelope"
        self.send(s, c, b"\x30" + varint(len(body)) + body)
        self.drain_until_eof(s, c)


def inject_run(workdir, hb, name, fmt):
    node = Node(workdir, name, hb.port, conf={"log": {"level": "debug", "format": fmt}}).start()
    eventually(lambda: node.metric("mqseal_broker_connected") == 1, 10, msg="control connection up")
    dev = Client("inject-1\n" + FORGED.replace("FORGED-LINE", "FORGED-CID"))
    dev.connect(node.port)
    dev.subscribe("sealed/#", 0)
    eventually(lambda: "dropped a sealed message" in node.output(), 10, msg="the drop is logged")
    dev.disconnect()
    stop_clean(node)
    return node.output()


def test_log_injection(workdir):
    hb = InjectBroker()
    text = inject_run(workdir, hb, "t", "text")
    lines = text.splitlines()
    bad = [ln for ln in lines if not LOG_LINE.match(ln)]
    check(not bad, "every line of the text log is a log line; forged: %r" % bad[:3])
    forged = [ln for ln in lines if ln.startswith("2030-")]
    check(not forged, "no forged line: %r" % forged[:3])
    drop = [ln for ln in lines if "dropped a sealed message" in ln]
    check(drop and "sealed/x\\x0a2030-01-01T00:00:00.000Z error node FORGED-LINE" in drop[0]
          and "\\x0d\\x1b[31m\\x7f" in drop[0], "the topic appears escaped: %r" % drop[:1])
    print("  text: %d lines, all log lines; %s" % (len(lines), drop[0][drop[0].index("topic"):][:90]))
    js = inject_run(workdir, hb, "j", "json")
    objs = [json.loads(ln) for ln in js.splitlines()]
    drops = [o for o in objs if "dropped a sealed message" in o["msg"]]
    check(drops and ("sealed/x\n" + FORGED) in drops[0]["msg"], "JSON keeps the topic, escaped: %r" % drops[:1])
    print("  json: %d lines, each one object" % len(objs))
    hb.close()


# ---------------------------------------------------------------- item 9: silent weakening

def test_check_warns_weakening(workdir):
    broker = Broker(workdir).start()
    node = Node(workdir, "w", broker.port)
    os.chmod(node.dir, 0o777)
    node.conf["topics"] = {"plaintext": ["status/#", "#"]}
    node.conf["seal"] = {"padding": 1}
    node.conf["keyex"] = {"max_skew_seconds": 3600}
    node.start()
    path = node.conf_path
    with open(path) as f:
        text = f.read().splitlines()

    def line_of(word):
        return [i + 1 for i, ln in enumerate(text) if word in ln][0]

    out = subprocess.run([MQSEAL, "check", "-c", path], capture_output=True, text=True, timeout=30)
    warns = [ln for ln in out.stderr.splitlines() if ln.startswith("warning: ")]
    print("  mqseal check: exit %d\n    %s" % (out.returncode, "\n    ".join(warns)))
    check(out.returncode == 0, "exit 0: %r" % out.stderr)
    want = [
        "warning: %s:%d: state_dir: %s is mode 0777: group or others can rewrite the state file" % (
            path, line_of("state_dir"), node.dir),
        "warning: %s:%d: keyex.max_skew_seconds: 3600 is above 300" % (path, line_of("max_skew_seconds")),
        "warning: %s:%d: topics.plaintext: \"#\" makes every topic plaintext: nothing is sealed" % (
            path, line_of("plaintext")),
        "warning: %s:%d: seal.padding: 1 is below 16" % (path, line_of("padding")),
    ]
    for w in want:
        check(sum(1 for ln in warns if ln.startswith(w)) == 1, "one line %r in %r" % (w, warns))
    # check also warns that this node lists no peer (it verifies what start needs; not a weakening)
    no_peers = "warning: %s: peers: none listed" % path
    check(sum(1 for ln in warns if ln.startswith(no_peers)) == 1, "one line %r in %r" % (no_peers, warns))
    check(len(warns) == len(want) + 1, "nothing else: %r" % warns)
    log = node.output()
    for w in want:
        check(any(w[len("warning: "):] in ln and " warn node " in ln for ln in log.splitlines()),
              "the node logs %r at start" % w)
    status, body = http_get(node.metrics_port, "/healthz")
    print("  /healthz %d %s" % (status, body.strip()))
    check("every topic is plaintext" in json.loads(body).get("warning", ""), "/healthz warns: %r" % body)
    stop_clean(node)
    # The same node, protected again: no warning, /healthz without one.
    os.chmod(node.dir, 0o700)
    node.conf["topics"] = {"plaintext": ["status/#"]}
    node.conf["seal"] = {"padding": 16}
    node.conf["keyex"] = {"max_skew_seconds": 300}
    node.start()
    out = subprocess.run([MQSEAL, "check", "-c", path], capture_output=True, text=True, timeout=30)
    weakening = [ln for ln in out.stderr.splitlines() if ln.startswith("warning: ") and "peers: none listed" not in ln]
    check(out.returncode == 0 and not weakening, "no weakening warning: %r" % out.stderr)
    status, body = http_get(node.metrics_port, "/healthz")
    check("warning" not in json.loads(body), "/healthz without a warning: %r" % body)
    stop_clean(node)


if __name__ == "__main__":
    run([test_metrics_exhaustion, test_metrics_accept_pause, test_metrics_http, test_log_injection, test_check_warns_weakening])
