"""Protocol errors look the same through mqseal as against the broker (issue 14, items 1 and 4).

Paired tests: each case runs the same hand-built MQTT 5 (or 3.1.1) packets twice, once straight
against mosquitto and once through an mqseal node in front of another mosquitto (a node with no
peers seals and opens its own messages), and asserts that the device observes the same thing:
which packets arrive after the CONNACK (a DISCONNECT and its reason code, or nothing), that the
connection is closed, and whether the device's will is published (seen by a watcher that takes the
same path as the device). Cases: Topic Alias 0 / above the maximum / never bound; malformed
properties, topics, filters and lengths; packet too large; a second CONNECT; reserved type 0; keep
alive expired; server shutdown; and MQTT 3.1.1, which stays a plain close.

Then a small fake broker in the test sends the device's session a malformed SUBACK / PUBACK (bad
property, bad reason code): mqseal must not forward it, must close the device's connection (no
DISCONNECT: a broker that breaks looks like a closed link, docs/OPERATIONS.md), must tell the
broker DISCONNECT 0x04 (MQTT 5; 3.1.1: plain close) and count it in mqseal_broker_malformed_total.
"""
# ctest-labels: mqtt5
# ctest-timeout: 300
import socket
import struct
import threading
import time

from harness import (HOST, Broker, Node, RawClient, check, connect_packet, eventually, mqtt_str, raw_connect,
                     run, stop_clean, varint)

MAX_PACKET = 1000


# ---------------------------------------------------------------- packets

def connect5(cid, will=True, keepalive=60):
    flags = 0x02 | (0x04 if will else 0)
    body = mqtt_str(b"MQTT") + bytes([5, flags]) + struct.pack(">H", keepalive) + b"\x00" + mqtt_str(cid)
    if will:
        body += b"\x00" + mqtt_str("will/" + cid) + mqtt_str("gone " + cid)
    return b"\x10" + varint(len(body)) + body


def publish5(topic, payload, props=b"", qos=0, pid=1):
    t = topic if isinstance(topic, bytes) else topic.encode()
    body = struct.pack(">H", len(t)) + t + (struct.pack(">H", pid) if qos else b"") + varint(len(props)) + props
    return bytes([0x30 | (qos << 1)]) + varint(len(body) + len(payload)) + body + payload


def subscribe5(flt, opts=0, props=b""):
    body = b"\x00\x01" + varint(len(props)) + props + mqtt_str(flt) + bytes([opts])
    return b"\x82" + varint(len(body)) + body


def parse_packets(data):
    """[(type, body)] of a byte string of whole packets (a cut tail is returned as ('cut', rest))."""
    out, pos = [], 0
    while pos < len(data):
        n, mult, i = 0, 1, pos + 1
        while i < len(data):
            n += (data[i] & 0x7F) * mult
            mult *= 128
            i += 1
            if not data[i - 1] & 0x80:
                break
        if i + n > len(data):
            out.append(("cut", data[pos:]))
            break
        out.append((data[pos] >> 4, data[i:i + n]))
        pos = i + n
    return out


def read_until_closed(s, timeout=5.0):
    """(bytes read, closed): reads until EOF or the deadline; keeps what came before a timeout."""
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def describe(pkts):
    names = {2: "CONNACK", 3: "PUBLISH", 9: "SUBACK", 14: "DISCONNECT"}
    return [("%s %s" % (names.get(t, t), b.hex())).strip() for t, b in pkts]


# ---------------------------------------------------------------- the paired run

class Path:
    """Where a device connects: straight to a broker, or to a node."""

    def __init__(self, name, port):
        self.name = name
        self.port = port


def observe(path, cid, steps, level=5, will=True, keepalive=60):
    """Connects a device (MQTT 5 with a will, or 3.1.1), runs steps(sock), and returns what the device
    saw after its CONNACK until the connection closed: (packets, closed, will_published)."""
    watcher = RawClient(path.port, "watch-" + cid, level=5)
    watcher.subscribe("will/#", 0)
    s = raw_connect(path.port, timeout=10)
    s.sendall(connect5(cid, will, keepalive) if level == 5 else connect_packet(cid, level, keepalive))
    first = RawClient.__new__(RawClient)
    first.s, first.buf = s, b""
    t, _, body = first.read_packet(10)
    check(t == 2 and body[1] == 0, "%s via %s: CONNACK accepted (%r)" % (cid, path.name, body))
    steps(s)
    data, closed = read_until_closed(s, 5)
    pkts = parse_packets(first.buf + data)
    s.close()
    published = False
    if will:
        try:
            topic = watcher.read_publish(3)[0]
            published = topic == "will/" + cid
        except (socket.timeout, OSError, AssertionError):
            published = False
    watcher.close()
    return pkts, closed, published


def paired(direct, via, cid, steps, want, level=5, will=True, will_differs=False, keepalive=60):
    """Runs the case on both paths; both must show want (a list of (type, body)) and a close, and
    agree on the will (will_differs: a known difference where mosquitto drops the will against MQTT 5
    §3.1.2.5 and mqseal keeps it; asserted as such, so that a change shows)."""
    seen = {}
    for path in (direct, via):
        pkts, closed, published = observe(path, "%s-%s" % (cid, path.name), steps, level, will, keepalive)
        seen[path.name] = (describe(pkts), closed, published)
        print("  %-22s %-6s -> %s, %s, will %s" % (cid, path.name, describe(pkts) or "nothing",
                                                  "closed" if closed else "OPEN", published))
    d, v = seen[direct.name], seen[via.name]
    check(d[0] == describe(want), "%s: the broker itself answers %r (expected %r)" % (cid, d[0], describe(want)))
    check(d[1], "%s: the broker closes the connection" % cid)
    if will_differs:
        check(not d[2] and v[2], "%s: mosquitto drops the will, mqseal's broker session publishes it" % cid)
        d = (d[0], d[1], v[2])
    check(v == d, "%s: through mqseal the device sees %r, against the broker %r" % (cid, v, d))


def setup(workdir):
    """A mosquitto with max_packet_size for the direct runs; a node in front of another mosquitto
    (without that limit: the node's listen.max_packet_size is what answers there)."""
    direct_broker = Broker(workdir, "direct", extra="max_packet_size %d" % MAX_PACKET).start()
    behind = Broker(workdir, "behind").start()
    node = Node(workdir, "n5", behind.port, conf={"listen": {"max_packet_size": MAX_PACKET}}).start()
    eventually(lambda: node.metric("mqseal_broker_connected") == 1, 10, msg="control connection up")
    return Path("broker", direct_broker.port), Path("mqseal", node.port), node


DISCONNECT = 14


# ---------------------------------------------------------------- device errors, MQTT 5

def test_topic_alias_errors(workdir):
    direct, via, node = setup(workdir)
    # Topic Alias 0 is a property value out of range: mosquitto calls it a malformed packet.
    paired(direct, via, "alias0", lambda s: s.sendall(publish5("t/a", b"x", b"\x23\x00\x00")),
           [(DISCONNECT, b"\x81")])
    # Above the Topic Alias Maximum of the CONNACK (mosquitto: 10): Topic Alias invalid.
    paired(direct, via, "alias11", lambda s: s.sendall(publish5("t/a", b"x", b"\x23\x00\x0b")),
           [(DISCONNECT, b"\x94")])
    # An alias never bound on this connection, with an empty topic: Protocol Error.
    paired(direct, via, "aliasnew", lambda s: s.sendall(publish5("", b"x", b"\x23\x00\x03")),
           [(DISCONNECT, b"\x82")])
    # A valid alias first, then its use: delivered, nothing closes (control).
    check(node.alive(), "node alive")
    stop_clean(node)


def test_malformed_packets(workdir):
    direct, via, node = setup(workdir)
    paired(direct, via, "badprop", lambda s: s.sendall(publish5("t/a", b"x", b"\x7f\x00")),
           [(DISCONNECT, b"\x81")])
    paired(direct, via, "badutf", lambda s: s.sendall(publish5(b"t/\xff", b"x")), [(DISCONNECT, b"\x81")])
    paired(direct, via, "wildtopic", lambda s: s.sendall(publish5("t/#", b"x")), [(DISCONNECT, b"\x82")])
    paired(direct, via, "pid0", lambda s: s.sendall(publish5("t/a", b"x", qos=1, pid=0)), [(DISCONNECT, b"\x82")])
    paired(direct, via, "badfilter", lambda s: s.sendall(subscribe5("t/#/x")), [(DISCONNECT, b"\x81")])
    paired(direct, via, "badsubopt", lambda s: s.sendall(subscribe5("t/x", 0xC0)), [(DISCONNECT, b"\x81")])
    # A remaining length of five bytes: mosquitto closes without a DISCONNECT.
    paired(direct, via, "badrl", lambda s: s.sendall(b"\x30\xff\xff\xff\xff\x01"), [])
    # A duplicate single-instance property: mosquitto closes without a DISCONNECT too.
    paired(direct, via, "dupprop", lambda s: s.sendall(publish5("t/a", b"x", b"\x01\x00\x01\x00")), [])
    check(node.metric("mqseal_broker_malformed_total") == 0, "device errors are not broker errors")
    stop_clean(node)


def test_malformed_acks(workdir):
    """A malformed ack from the device (issue 18: ack packet ids are read by mqtt_ack_parse alone) is
    not acted on by the node and reaches the broker as it came, so the device sees what the broker
    answers: mosquitto 2.0 closes without a DISCONNECT (where mqtt_reason_of would say 0x81/0x82
    for the same faults in a PUBLISH), and publishes the will."""
    direct, via, node = setup(workdir)
    cases = [("ackpid0", b"\x40\x02\x00\x00"),                 # PUBACK packet id 0
             ("ackprop", b"\x40\x06\x00\x01\x00\x02\x7f\x00"),  # PUBACK with an unknown property
             ("relpid0", b"\x62\x02\x00\x00"),                 # PUBREL packet id 0
             ("recpid0", b"\x50\x02\x00\x00"),                 # PUBREC packet id 0
             ("comptrunc", b"\x70\x01\x00")]                   # PUBCOMP cut short
    for cid, pkt in cases:
        paired(direct, via, cid, lambda s, pkt=pkt: s.sendall(pkt), [])
    check(node.metric("mqseal_broker_malformed_total") == 0, "device errors are not broker errors")
    stop_clean(node)


def test_packet_too_large(workdir):
    direct, via, node = setup(workdir)
    paired(direct, via, "big", lambda s: s.sendall(publish5("t/a", b"x" * (2 * MAX_PACKET))),
           [(DISCONNECT, b"\x95")])
    stop_clean(node)


def test_protocol_errors(workdir):
    direct, via, node = setup(workdir)
    # A second CONNECT [MQTT-3.1.0-2]: mosquitto closes without a DISCONNECT. It also discards the
    # will, where §3.1.2.5 says a connection closed without DISCONNECT 0x00 publishes it; mqseal does
    # not relay the second CONNECT (its will would reach the broker unsealed) and ends the broker
    # session with DISCONNECT 0x04, so the will is published (docs/OPERATIONS.md).
    paired(direct, via, "connect2", lambda s: s.sendall(connect5("connect2-again", will=False)), [],
           will_differs=True)
    # Reserved packet type 0: Protocol Error.
    paired(direct, via, "type0", lambda s: s.sendall(b"\x00\x00"), [(DISCONNECT, b"\x82")])
    # Keep alive 1 s and silence: closed after 1.5 x keep alive without a DISCONNECT (mosquitto sends
    # no 0x8D), the will is published.
    paired(direct, via, "keepalive", lambda s: None, [], keepalive=1)
    stop_clean(node)


def test_shutdown(workdir):
    """The server stops (SIGTERM): mosquitto closes its MQTT 5 clients without a DISCONNECT 0x8B,
    and so does a node."""
    broker = Broker(workdir, "direct").start()
    behind = Broker(workdir, "behind").start()
    node = Node(workdir, "n5", behind.port).start()
    eventually(lambda: node.metric("mqseal_broker_connected") == 1, 10, msg="control connection up")
    seen = []
    for name, port, server in (("broker", broker.port, broker), ("mqseal", node.port, node)):
        s = raw_connect(port, timeout=10)
        s.sendall(connect5("stop-" + name, will=False))
        c = RawClient.__new__(RawClient)
        c.s, c.buf = s, b""
        check(c.read_packet(10)[0] == 2, "CONNACK")
        server.signal(15)
        data, closed = read_until_closed(s, 10)
        s.close()
        seen.append((describe(parse_packets(c.buf + data)), closed))
        print("  shutdown %-6s -> %s, %s" % (name, seen[-1][0] or "nothing", "closed" if closed else "OPEN"))
    check(seen[0] == ([], True), "mosquitto closes without a DISCONNECT: %r" % (seen[0],))
    check(seen[1] == seen[0], "a node closes the same way: %r" % (seen[1],))
    stop_clean(node)  # exited 0, no sanitizer report


def test_mqtt311_closes_without_disconnect(workdir):
    direct, via, node = setup(workdir)
    pub311 = b"\x30" + varint(len(mqtt_str("t/#")) + 1) + mqtt_str("t/#") + b"x"
    paired(direct, via, "v4wild", lambda s: s.sendall(pub311), [], level=4, will=False)
    sub311 = b"\x82" + varint(2 + len(mqtt_str("t/#/x")) + 1) + b"\x00\x01" + mqtt_str("t/#/x") + b"\x00"
    paired(direct, via, "v4filter", lambda s: s.sendall(sub311), [], level=4, will=False)
    paired(direct, via, "v4big", lambda s: s.sendall(b"\x30" + varint(2005) + mqtt_str("t/a") + b"x" * 2000), [],
           level=4, will=False)
    stop_clean(node)


# ---------------------------------------------------------------- broker errors

def read_packet(s):
    first = s.recv(1)
    if not first:
        return None
    n, mult = 0, 1
    while True:
        b = s.recv(1)
        if not b:
            return None
        n += (b[0] & 0x7F) * mult
        mult *= 128
        if not b[0] & 0x80:
            break
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return first[0] >> 4, first[0] & 0x0F, body


class FakeBroker:
    """Accepts MQTT 5 / 3.1.1 connections. The control connection (client id mqseal-*) is served
    well enough; a device connection gets a CONNACK and, for each SUBSCRIBE or QoS 1 PUBLISH, the
    answer chosen by the client id's first word. Records what each connection sent after that."""

    ANSWERS = {
        # SUBACK with an unknown property identifier 0x7F
        "suback": lambda pid, v5: b"\x90" + varint(6) + pid + b"\x02\x7f\x00" + b"\x00",
        # SUBACK with a reason code MQTT 5 does not define
        "subackrc": lambda pid, v5: b"\x90" + varint(4) + pid + b"\x00" + b"\x05",
        # PUBACK with a Reason String that is not UTF-8
        "puback": lambda pid, v5: b"\x40" + varint(8) + pid + b"\x00\x04\x1f\x00\x01\xff",
        # a well-formed SUBACK / PUBACK (control)
        "good": lambda pid, v5: (b"\x90" + varint(4) + pid + b"\x00\x00") if v5 else (b"\x90\x03" + pid + b"\x00"),
        # 3.1.1 SUBACK with return code 0x03 (reserved)
        "v4suback": lambda pid, v5: b"\x90\x03" + pid + b"\x03",
    }

    def __init__(self):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((HOST, 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.seen = {}  # client id -> list of (type, body) received after the answer, 'EOF' at the end
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        try:
            self._session(s)
        except OSError:
            pass
        finally:
            s.close()

    def _session(self, s):
        p = read_packet(s)
        if not p or p[0] != 1:
            return
        body = p[2]
        nlen = struct.unpack(">H", body[:2])[0]
        level = body[2 + nlen]
        pos = 2 + nlen + 4
        if level == 5:
            plen = body[pos]  # short property blocks only (what mqseal and the tests send)
            pos += 1 + plen
        clen = struct.unpack(">H", body[pos:pos + 2])[0]
        cid = body[pos + 2:pos + 2 + clen].decode()
        v5 = level == 5
        s.sendall(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
        log = self.seen.setdefault(cid, [])
        answer = self.ANSWERS.get(cid.split("-")[0], self.ANSWERS["good"])
        answered = False
        while True:
            p = read_packet(s)
            if p is None:
                log.append("EOF")
                return
            t, flags, b = p
            if answered or cid.startswith("mqseal"):
                log.append((t, b))
                if t == 12:
                    s.sendall(b"\xd0\x00")
                continue
            if t == 8 or (t == 3 and (flags >> 1) & 3 == 1):
                if t == 8:
                    pid = b[:2]
                else:
                    tl = struct.unpack(">H", b[:2])[0]
                    pid = b[2 + tl:4 + tl]
                s.sendall(answer(pid, v5))
                answered = not cid.startswith("good")
            elif t == 12:
                s.sendall(b"\xd0\x00")

    def close(self):
        self.ls.close()


def broker_case(fb, node, cid, level, send):
    """A device on node whose broker answers its SUBSCRIBE / PUBLISH with a bad packet: returns what the
    device received after the CONNACK and whether it was closed."""
    s = raw_connect(node.port, timeout=10)
    s.sendall(connect5(cid, will=False) if level == 5 else connect_packet(cid, level))
    c = RawClient.__new__(RawClient)
    c.s, c.buf = s, b""
    t, _, _ = c.read_packet(10)
    check(t == 2, "%s: CONNACK" % cid)
    s.sendall(send)
    data, closed = read_until_closed(s, 3)
    s.close()
    return parse_packets(c.buf + data), closed


def test_broker_malformed_packets(workdir):
    fb = FakeBroker()
    node = Node(workdir, "nb", fb.port, conf={"topics": {"plaintext": ["plain/#"]}}).start()
    eventually(lambda: "mqseal-nb" in fb.seen, 10, msg="control connection up")
    sub = subscribe5("plain/x", 1)
    pub = publish5("plain/x", b"hello", qos=1, pid=7)
    cases = [("suback", 5, sub), ("subackrc", 5, sub), ("puback", 5, pub)]
    for n, (cid, level, send) in enumerate(cases, 1):
        pkts, closed = broker_case(fb, node, cid + "-1", level, send)
        print("  %-10s device got %s, %s; the broker got %s" % (cid, describe(pkts) or "nothing",
              "closed" if closed else "OPEN", eventually(lambda: fb.seen[cid + "-1"][-1:] == ["EOF"] and
                                                          fb.seen[cid + "-1"], 5, msg="upstream closed")))
        check(pkts == [], "%s: the device received nothing of the bad packet: %r" % (cid, describe(pkts)))
        check(closed, "%s: the device's connection is closed" % cid)
        check(fb.seen[cid + "-1"] == [(14, b"\x04"), "EOF"],
              "%s: the broker got DISCONNECT 0x04 (will kept) and a close: %r" % (cid, fb.seen[cid + "-1"]))
        eventually(lambda: node.metric("mqseal_broker_malformed_total") == n, 5, msg="%s counted" % cid)
        check(any("client=%s-1]" % cid in ln and "from the broker" in ln for ln in node.output().splitlines()),
              "%s: logged" % cid)
    # MQTT 3.1.1: a reserved SUBACK return code closes both sides without any DISCONNECT.
    sub311 = b"\x82" + varint(2 + len(mqtt_str("plain/x")) + 1) + b"\x00\x01" + mqtt_str("plain/x") + b"\x01"
    pkts, closed = broker_case(fb, node, "v4suback-1", 4, sub311)
    check(pkts == [] and closed, "3.1.1: nothing forwarded, closed: %r" % describe(pkts))
    eventually(lambda: fb.seen["v4suback-1"][-1:] == ["EOF"], 5, msg="3.1.1 upstream closed")
    check(fb.seen["v4suback-1"] == ["EOF"], "3.1.1: no DISCONNECT to the broker: %r" % fb.seen["v4suback-1"])
    eventually(lambda: node.metric("mqseal_broker_malformed_total") == 4, 5, msg="3.1.1 counted")
    # A well-formed answer still flows (control: the check does not refuse valid packets).
    pkts, closed = broker_case(fb, node, "good-1", 5, sub)
    check(not closed and describe(pkts) == ["SUBACK 00010000"], "good SUBACK forwarded: %r" % describe(pkts))
    check(node.metric("mqseal_broker_malformed_total") == 4, "the good SUBACK is not counted")
    stop_clean(node)
    fb.close()


if __name__ == "__main__":
    run([test_topic_alias_errors, test_malformed_packets, test_malformed_acks, test_packet_too_large, test_protocol_errors,
         test_shutdown, test_mqtt311_closes_without_disconnect, test_broker_malformed_packets])
