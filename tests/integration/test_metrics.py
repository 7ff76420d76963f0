"""/metrics and /healthz of real nodes (issue 6, docs/OPERATIONS.md sections 8 and 9): the served
metrics are exactly the documented ones with their types and labels; counters move with real
traffic (sealed, opened, plaintext, bytes and packets, exactly); peers_keyed, epoch and health as a
peer is keyed; health 503 with a JSON reason while the broker is down (stopped by PID) and 200 again
when a new broker listens on the same port; 503 "shutting down" during a graceful stop; gauges
follow a SIGHUP reload; unknown paths 404; metrics.enabled = false means nothing listens."""
# ctest-labels: ops
# ctest-timeout: 600
import http.client
import json
import os
import re
import signal
import socket
import time

from harness import (HOST, SRC, Broker, Client, Node, RawClient, check, connect_packet, eventually, port_open,
                     publish_packet, raw_connect, run, write_conf)


def http_get(port, path, method="GET"):
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


def up(node):
    """Starts node and waits until its metrics endpoint listens too (it binds after the listener)."""
    node.start()
    eventually(lambda: port_open(node.metrics_port) or not node.alive(), 10, msg="metrics endpoint listens")
    check(node.alive(), "%s exited: %s" % (node.node_id, node.output()[-2000:]))
    return node


def health(node):
    status, ctype, body = http_get(node.metrics_port, "/healthz")
    check(ctype == "application/json", "healthz Content-Type %r" % ctype)
    return status, json.loads(body)


def healthy(node):
    return health(node) == (200, {"status": "ok"})


def unhealthy_because(node, reason):
    status, body = health(node)
    return status == 503 and body == {"status": "unavailable", "reason": reason}


def documented_metrics():
    """{name: (type, {label: [values]})} from the table of OPERATIONS.md section 8."""
    with open(os.path.join(SRC, "docs", "OPERATIONS.md")) as f:
        section = f.read().split("## 8. Metrics", 1)[1].split("\n## ", 1)[0]
    out = {}
    for name, mtype, labels in re.findall(r"^\| `((?:mqseal|process)_\w+)` \| (\w+) \|\s*([^|]*?)\s*\|", section,
                                          re.M):
        lab = {}
        m = re.match(r"`(\w+)`: (.*)$", labels.strip())
        if m:
            lab[m.group(1)] = re.findall(r"`(\w+)`", m.group(2))
        out[name] = (mtype, lab)
    check(len(out) > 20, "read the metrics table of OPERATIONS.md")
    return out


def scrape(node):
    """(families {name: type}, helps {name}, samples {name: {labels-tuple: value}})."""
    status, ctype, body = http_get(node.metrics_port, "/metrics")
    check(status == 200 and ctype == "text/plain; version=0.0.4", "/metrics %d %r" % (status, ctype))
    types, helps, samples = {}, set(), {}
    for line in body.decode().splitlines():
        m = re.match(r"^# TYPE (\w+) (counter|gauge)$", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        m = re.match(r"^# HELP (\w+) \S", line)
        if m:
            helps.add(m.group(1))
            continue
        if line.startswith("mqseal_build_info{"):  # several labels; test_metrics_format.py reads them
            samples.setdefault("mqseal_build_info", {})[("build", "info")] = 1
            continue
        m = re.match(r'^(\w+)(?:\{(\w+)="(\w+)"\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$', line)
        check(m, "sample line %r" % line)
        check(m.group(1) in types, "%s has a # TYPE before its samples" % m.group(1))
        samples.setdefault(m.group(1), {})[(m.group(2), m.group(3)) if m.group(2) else ()] = float(m.group(4))
    return types, helps, samples


def served(port):
    """Does a new device connecting to port get a CONNACK within a second?"""
    try:
        s = raw_connect(port, timeout=1)
    except OSError:
        return False  # refused
    try:
        s.sendall(connect_packet("late"))
        s.settimeout(1.0)
        return s.recv(1) == b"\x20"
    except OSError:  # timed out, reset
        return False
    finally:
        s.close()


def pair(workdir, conf=None, start=True):
    broker = Broker(workdir).start()
    a = Node(workdir, "a", broker.port, conf=conf)
    b = Node(workdir, "b", broker.port, conf=conf)
    a.trust(b)
    b.trust(a)
    if start:
        up(a)
        up(b)
    return broker, a, b


def keyed(*nodes):
    return all(n.metric("mqseal_peers_keyed") == n.metric("mqseal_peers_configured") and
               n.metric("mqseal_broker_connected") == 1 for n in nodes)


# ---------------------------------------------------------------- the exposition itself

def test_served_metrics_are_the_documented_ones(workdir):
    broker, a, b = pair(workdir, start=False)
    up(a)
    doc = documented_metrics()
    # Served only by a node with a TLS listener (one series each): test_listeners checks it.
    doc.pop("mqseal_tls_cert_expiry_seconds")
    types, helps, samples = scrape(a)
    check(set(types) == set(doc), "served vs documented: %r" % sorted(set(types) ^ set(doc)))
    check(helps == set(types), "every metric has # HELP")
    for name, (mtype, labels) in doc.items():
        check(types[name] == mtype, "%s is a %s (served %s)" % (name, mtype, types[name]))
        if name == "mqseal_build_info":
            continue
        if labels and not next(iter(labels.values())):  # per-peer series: one per peer id (peer b here)
            check(set(samples[name]) == {(next(iter(labels)), "b")}, "%s per peer: %r" % (name, samples[name]))
        elif labels:
            (label, values), = labels.items()
            check(set(samples[name]) == {(label, v) for v in values}, "%s{%s} values: served %r, documented %r" % (
                name, label, sorted(samples[name]), values))
        else:
            check(list(samples[name]) == [()], "%s has no labels" % name)
    # Unknown paths are 404; other methods are refused; the endpoint is read-only.
    for path in ("/", "/metrics/", "/healthz/", "/metricsx", "/favicon.ico", "/../metrics"):
        check(http_get(a.metrics_port, path)[0] == 404, "GET %s is 404" % path)
    check(http_get(a.metrics_port, "/metrics?x=1")[0] == 200, "a query string does not change the path")
    for method in ("POST", "PUT", "DELETE"):
        status = http_get(a.metrics_port, "/metrics", method)[0]
        check(status in (405, 501), "%s /metrics refused (%d)" % (method, status))
    status, ctype, body = http_get(a.metrics_port, "/healthz", "HEAD")
    check(status in (200, 503) and body == b"", "HEAD /healthz: status only")


def test_metrics_disabled_nothing_listens(workdir):
    broker = Broker(workdir).start()
    a = Node(workdir, "a", broker.port, conf={"metrics": {"enabled": False}})
    a.start()
    eventually(lambda: "key-exchange connection" in a.output(), 10, msg="a connected")
    check(not port_open(a.metrics_port), "nothing listens on the metrics port %d" % a.metrics_port)
    # The node itself works: a device relays through it.
    c = Client("dev")
    c.connect(a.port)
    c.disconnect()
    check(a.alive(), "the node runs without metrics")
    check(not port_open(a.metrics_port), "still nothing on %d" % a.metrics_port)


# ---------------------------------------------------------------- keying and traffic

def test_keying_moves_gauges_and_health(workdir):
    t0 = int(time.time())
    broker, a, b = pair(workdir, start=False)
    up(a)
    eventually(lambda: a.metric("mqseal_broker_connected") == 1 and a.metric("mqseal_epoch") > 0, 10,
               msg="a's key-exchange connection and first epoch")
    m = a.metrics()
    check(m["mqseal_peers_configured"] == 1 and m["mqseal_peers_keyed"] == 0, "1 configured, 0 keyed")
    check(t0 - 5 <= m["mqseal_epoch"] <= time.time() + 5, "the epoch is about the start time: %r" % m["mqseal_epoch"])
    check(m["mqseal_rotations_total"] == 1 and m["mqseal_activations_total"] == 1, "one epoch, active")
    check(m["mqseal_announcements_sent_total"] >= 1, "announced")
    check(unhealthy_because(a, "0 of 1 peers keyed"), "a: 503 while b is away: %r" % (health(a),))
    up(b)
    eventually(lambda: keyed(a, b), 10, msg="a and b keyed")
    for n in (a, b):
        m = n.metrics()
        check(m["mqseal_peers_keyed"] == 1, "%s: peers_keyed 1" % n.node_id)
        check(m["mqseal_announcements_accepted_total"] >= 1 and m["mqseal_acks_sent_total"] >= 1,
              "%s: accepted the peer's announcement and confirmed it" % n.node_id)
        eventually(lambda: healthy(n), 5, msg="%s: healthz 200" % n.node_id)
    eventually(lambda: a.metric("mqseal_acks_accepted_total") >= 1, 5, msg="a got b's confirmation")
    rejected = sum(v for k, v in a.metrics().items() if k.startswith("mqseal_announcements_rejected_total"))
    check(rejected == 0, "nothing rejected between two honest peers")


def test_counters_move_with_traffic(workdir):
    broker, a, b = pair(workdir, conf={"topics": {"plaintext": ["plain/#"]}})
    eventually(lambda: keyed(a, b), 10, msg="a and b keyed")
    sub = Client("sub")
    sub.connect(b.port)
    sub.subscribe("t/#", 1)
    sub.subscribe("plain/#", 1)
    a0, b0 = a.metrics(), b.metrics()
    # A raw device on a: every byte and packet it sends is known.
    dev = raw_connect(a.port)
    sent = connect_packet("counted")
    dev.sendall(sent)
    check(dev.recv(4)[:1] == b"\x20", "CONNACK")
    n, payload = 20, b"x" * 100
    for i in range(n):
        pkt = publish_packet("t/%d" % i, payload)
        dev.sendall(pkt)
        sent += pkt
    plain = publish_packet("plain/x", b"visible")
    dev.sendall(plain)
    sent += plain
    got = sub.expect(n + 1, timeout=15)
    check(sorted(m.payload for m in got) == sorted([payload] * n + [b"visible"]), "all delivered, opened")
    eventually(lambda: a.metric("mqseal_packets_total{direction=\"from_device\"}") -
               a0['mqseal_packets_total{direction="from_device"}'] == n + 2, 5, msg="a counted the packets")
    a1, b1 = a.metrics(), b.metrics()

    def d(m1, m0, k):
        return m1[k] - m0[k]
    check(d(a1, a0, 'mqseal_bytes_total{direction="from_device"}') == len(sent),
          "from_device bytes: %d, sent %d" % (d(a1, a0, 'mqseal_bytes_total{direction="from_device"}'), len(sent)))
    check(d(a1, a0, "mqseal_sealed_total") == n, "a sealed %d" % d(a1, a0, "mqseal_sealed_total"))
    check(d(a1, a0, 'mqseal_plaintext_total{direction="out"}') == 1, "a: one plaintext out")
    check(d(b1, b0, "mqseal_opened_total") == n, "b opened %d" % d(b1, b0, "mqseal_opened_total"))
    check(d(b1, b0, 'mqseal_plaintext_total{direction="in"}') == 1, "b: one plaintext in")
    # Sealing adds at least 42 bytes per message on the way to the broker (PROTOCOL.md §5).
    up = d(a1, a0, 'mqseal_bytes_total{direction="to_broker"}')
    check(up >= len(sent) + 42 * n, "bytes_total{to_broker} grew by %d for %d bytes from the device, %d of "
          "them sealed publishes (each >= 50 bytes larger once sealed)" % (up, len(sent), n))
    down = d(b1, b0, 'mqseal_bytes_total{direction="to_device"}')
    check(down >= (n * len(payload)) and d(b1, b0, 'mqseal_bytes_total{direction="from_broker"}') >= down,
          "b: to_device %d, from_broker larger (ciphertext)" % down)
    check(d(b1, b0, 'mqseal_packets_total{direction="from_broker"}') >= n + 1, "b: packets from the broker")
    check(a1["mqseal_device_connections_open"] == 1 and d(a1, a0, "mqseal_device_connections_total") == 1,
          "a: one device connection open")
    for m in (a1, b1):
        check(sum(v for k, v in m.items() if k.startswith("mqseal_dropped_total")) == 0, "nothing dropped")
    dev.close()
    eventually(lambda: a.metric("mqseal_device_connections_open") == 0, 5, msg="the gauge goes back to 0")
    # A protocol error is counted: garbage instead of CONNECT.
    bad = raw_connect(a.port)
    bad.sendall(b"\x20\x02\x00\x00")
    eventually(lambda: a.metric("mqseal_protocol_errors_total") == a0["mqseal_protocol_errors_total"] + 1, 5,
               msg="protocol error counted")
    bad.close()


# ---------------------------------------------------------------- health and the broker

def test_health_follows_the_broker(workdir):
    broker, a, b = pair(workdir)
    eventually(lambda: keyed(a, b), 10, msg="a and b keyed")
    eventually(lambda: healthy(a) and healthy(b), 5, msg="both healthy")
    port = broker.port
    r0 = a.metric("mqseal_control_reconnects_total")
    broker.stop()  # SIGTERM to its PID
    for n in (a, b):
        eventually(lambda: unhealthy_because(n, "key-exchange connection to the broker is down"), 10,
                   msg="%s: 503 broker down" % n.node_id)
        check(n.metric("mqseal_broker_connected") == 0, "%s: broker_connected 0" % n.node_id)
    check(a.metric("mqseal_control_reconnects_total") == r0 + 1, "a: one loss counted")
    time.sleep(1)
    check(unhealthy_because(a, "key-exchange connection to the broker is down"), "still down without a broker")
    broker2 = Broker(workdir, name="broker2", port=port).start()
    for n in (a, b):
        eventually(lambda: healthy(n), 20, msg="%s: 200 again with the new broker" % n.node_id)
        check(n.metric("mqseal_broker_connected") == 1, "%s: broker_connected 1" % n.node_id)
    # Sealed traffic flows again through the new broker.
    sub = Client("sub")
    sub.connect(b.port)
    sub.subscribe("after/restart", 1)
    pub = Client("pub")
    pub.connect(a.port)
    opened = b.metric("mqseal_opened_total")
    pub.publish("after/restart", b"hello again", 1)
    check([m.payload for m in sub.expect(1, 10)] == [b"hello again"], "delivered after the broker came back")
    check(b.metric("mqseal_opened_total") == opened + 1, "b opened it")
    check(broker2.alive(), "the new broker runs")


def still_open(sock):
    """Is the connection open, with nothing to read yet (no EOF, no reset)?"""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False  # data or EOF
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_health_503_while_shutting_down(workdir):
    """Needs the graceful SIGTERM: a publish the broker has not acknowledged keeps the device's
    connection (and /healthz 503 "shutting down") until the acknowledgement reaches the device, or
    until shutdown_grace_seconds pass; without one the stop is immediate."""
    broker = Broker(workdir).start()
    # 1. The flow finishes within the grace: the PUBACK reaches the device, then the node exits.
    a = up(Node(workdir, "a", broker.port, conf={"shutdown_grace_seconds": 20, "topics": {"plaintext": ["p/#"]}}))
    eventually(lambda: healthy(a), 10, msg="a (no peers) healthy")
    dev = RawClient(a.port, "inflight")
    broker.signal(signal.SIGSTOP)  # the broker stops acknowledging
    try:
        dev.s.sendall(publish_packet("p/q1", b"unacknowledged", qos=1, pid=7))
        time.sleep(0.3)
        t0 = time.monotonic()
        a.signal(signal.SIGTERM)
        eventually(lambda: unhealthy_because(a, "shutting down"), 2, msg="503 shutting down")
        check(not served(a.port), "no new device is served while stopping")
        time.sleep(1)
        check(a.alive() and still_open(dev.s), "the device keeps its connection while its publish is in flight")
    finally:
        broker.signal(signal.SIGCONT)
    t, _, body = dev.read_packet(5)
    check(t == 4 and body[:2] == b"\x00\x07", "the device got the PUBACK of its publish (type %d)" % t)
    rc = a.p.wait(10)
    took = time.monotonic() - t0
    check(rc == 0 and took < 10, "exit %r, %.1fs after SIGTERM: once acknowledged, not at the end of the grace" % (
        rc, took))
    dev.close()
    # 2. The grace runs out: the node closes what is left and exits 0.
    b = up(Node(workdir, "b", broker.port, conf={"shutdown_grace_seconds": 3, "topics": {"plaintext": ["p/#"]}}))
    dev = RawClient(b.port, "inflight2")
    broker.signal(signal.SIGSTOP)
    try:
        dev.s.sendall(publish_packet("p/q1", b"never acknowledged", qos=1, pid=9))
        time.sleep(0.3)
        t0 = time.monotonic()
        b.signal(signal.SIGTERM)
        time.sleep(2)
        check(b.alive() and still_open(dev.s), "within the grace the connection stays")
        rc = b.p.wait(15)
        took = time.monotonic() - t0
    finally:
        broker.signal(signal.SIGCONT)
    print("  stopped %.1fs after SIGTERM, with a publish in flight and a 3 s grace" % took)
    check(rc == 0, "exit 0 after a graceful stop, got %r" % rc)
    check(2.5 <= took <= 9, "stopped after the 3 s grace (+ at most the 5 s close): %.1fs" % took)
    check("shutdown_grace_seconds passed" in b.output(), "logged that the grace ran out")
    dev.close()
    # 3. Nothing in flight: the stop is immediate.
    c = up(Node(workdir, "c", broker.port, conf={"shutdown_grace_seconds": 30}))
    eventually(lambda: healthy(c), 10, msg="c healthy")
    idle = Client("idle")  # a device that closes its side when mqseal closes (as MQTT clients do)
    idle.connect(c.port)
    t0 = time.monotonic()
    c.signal(signal.SIGTERM)
    rc = c.p.wait(10)
    took = time.monotonic() - t0
    check(rc == 0 and took < 10, "idle stop (grace 30 s): exit %r after %.1fs" % (rc, took))
    check(idle.disconnected.wait(2), "the idle device was disconnected")


# ---------------------------------------------------------------- reload

def test_reload_moves_peer_gauges(workdir):
    """Needs SIGHUP reload: peers added and removed without a restart; an invalid file is refused."""
    broker, a, b = pair(workdir, start=False)
    a.conf.pop("peers")  # a starts trusting nobody
    up(a)
    up(b)
    eventually(lambda: b.metric("mqseal_broker_connected") == 1 and a.metric("mqseal_broker_connected") == 1, 10,
               msg="both connected")
    time.sleep(1)
    check(a.metric("mqseal_peers_configured") == 0 and healthy(a), "a: no peers, healthy")
    check(unhealthy_because(b, "0 of 1 peers keyed"), "b: a does not trust it yet")
    dev = RawClient(a.port, "stays")  # a device connection that must survive the reloads
    # Add b.
    a.trust(b)
    write_conf(a.conf_path, a.conf)
    a.signal(signal.SIGHUP)
    eventually(lambda: a.metric("mqseal_peers_configured") == 1, 5, msg="a: 1 peer configured after SIGHUP")
    eventually(lambda: keyed(a, b) and healthy(a) and healthy(b), 10, msg="keyed after the reload")
    epoch = a.metric("mqseal_epoch")
    # An invalid file is refused; the running configuration stays.
    with open(a.conf_path, "a") as f:
        f.write("bogus_option = 1;\n")
    a.signal(signal.SIGHUP)
    a.wait_log("the running configuration stays")
    check(a.metric("mqseal_peers_configured") == 1 and healthy(a), "a: unchanged after a bad reload")
    # Remove b: a starts a new epoch at once, announced without b, so b cannot open what follows.
    a.conf.pop("peers")
    write_conf(a.conf_path, a.conf)
    a.signal(signal.SIGHUP)
    eventually(lambda: a.metric("mqseal_peers_configured") == 0 and a.metric("mqseal_epoch") > epoch, 5,
               msg="a: peer removed and a new epoch")
    eventually(lambda: unhealthy_because(b, "0 of 1 peers keyed"), 10, msg="b no longer holds a's key")
    check(a.alive() and b.alive(), "both still run")
    dev.s.sendall(b"\xc0\x00")  # PINGREQ
    t, _, _ = dev.read_packet(5)
    check(t == 13, "the device connection survived three reloads (PINGRESP)")
    dev.close()


if __name__ == "__main__":
    run([test_served_metrics_are_the_documented_ones, test_metrics_disabled_nothing_listens,
         test_keying_moves_gauges_and_health, test_counters_move_with_traffic, test_health_follows_the_broker,
         test_health_503_while_shutting_down, test_reload_moves_peer_gauges])
