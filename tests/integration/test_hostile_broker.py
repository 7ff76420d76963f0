"""A hostile broker (issue 9, part 3): a small MQTT server written here accepts each CONNECT with a
CONNACK and then misbehaves according to the client id of the connection: malformed packets, a
lying remaining length, a frame cut short, an oversize packet (over listen.max_packet_size), a
second CONNACK, a client-to-server packet, a PUBLISH flood, sealed-topic garbage, half-open silence
before or after the CONNACK. mqseal must survive, close that one upstream (the device sees its
connection closed), log it, and keep serving the other device session on the same node, whose
connection the server treats well (an echo broker).

Also keepalive violations by a device: keepalive 2 and silent -> closed after 1.5 x keepalive
(after > 2 s, before 6 s), here behind the hostile server's well-behaved mode, which never enforces
keepalive itself, so the close can only come from mqseal.
"""
# ctest-labels: reliability hostile
# ctest-timeout: 600
import socket
import struct
import threading
import time

from harness import (HOST, Client, Node, RssSampler, check, connect_packet, eventually, mqtt_str, publish_packet,
                     raw_connect, read_closed, rss_kb, run, small_asan_quarantine, stop_clean, varint)

MAX_PACKET = 4096


# ---------------------------------------------------------------- the hostile broker

def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_packet(s):
    """(type, flags, body) or None at EOF."""
    first = read_exact(s, 1)
    if first is None:
        return None
    n, mult = 0, 1
    while True:
        b = read_exact(s, 1)
        if b is None:
            return None
        n += (b[0] & 0x7F) * mult
        mult *= 128
        if not b[0] & 0x80:
            break
    body = read_exact(s, n) if n else b""
    if body is None:
        return None
    return first[0] >> 4, first[0] & 0x0F, body


def connect_client_id(body):
    """The client id of an MQTT 3.1.1 CONNECT body."""
    nlen = struct.unpack(">H", body[:2])[0]
    pos = 2 + nlen + 1 + 1 + 2  # name, level, flags, keepalive
    clen = struct.unpack(">H", body[pos:pos + 2])[0]
    return body[pos + 2:pos + 2 + clen].decode()


def topic_matches(flt, topic):
    if flt == topic:
        return True
    return flt.endswith("/#") and (topic + "/").startswith(flt[:-1])


CONNACK = b"\x20\x02\x00\x00"


class Conn:
    def __init__(self, cid):
        self.cid = cid
        self.opened = time.monotonic()
        self.closed = None      # when the server saw the connection closed by mqseal
        self.sent = 0           # bytes the server managed to send
        self.received = []      # packet types received after CONNECT
        self.pubacks = 0


class HostileBroker:
    """One thread per connection; the scenario is chosen by the client id's first word."""

    def __init__(self):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((HOST, 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.conns = {}
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def conn(self, cid, timeout=10):
        return eventually(lambda: self.conns.get(cid), timeout, msg="the server saw %s" % cid)

    def _serve(self, s):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pkt = read_packet(s)
        if pkt is None or pkt[0] != 1:
            s.close()
            return
        c = Conn(connect_client_id(pkt[2]))
        with self.lock:
            self.conns[c.cid] = c
        kind = c.cid.split("-")[0]
        try:
            getattr(self, "scenario_" + kind.replace(".", "_"), self.scenario_good)(s, c)
        except OSError:
            pass
        finally:
            if c.closed is None:
                c.closed = time.monotonic()
            s.close()

    def send(self, s, c, data):
        s.sendall(data)
        c.sent += len(data)

    def drain_until_eof(self, s, c):
        """Reads (and ignores) until mqseal closes the connection."""
        while True:
            p = read_packet(s)
            if p is None:
                c.closed = time.monotonic()
                return
            c.received.append(p[0])

    # Well-behaved: the control connection and the good devices. Echoes each PUBLISH back to the
    # sender when it subscribed to the topic (QoS 0), answers every packet that needs an answer.
    def scenario_good(self, s, c):
        self.send(s, c, CONNACK)
        subs = []
        while True:
            p = read_packet(s)
            if p is None:
                c.closed = time.monotonic()
                return
            t, flags, body = p
            c.received.append(t)
            if t == 8:  # SUBSCRIBE
                pos, granted = 2, b""
                while pos < len(body):
                    tl = struct.unpack(">H", body[pos:pos + 2])[0]
                    subs.append(body[pos + 2:pos + 2 + tl].decode())
                    granted += bytes([min(body[pos + 2 + tl] & 3, 1)])
                    pos += 3 + tl
                self.send(s, c, b"\x90" + varint(2 + len(granted)) + body[:2] + granted)
            elif t == 3:  # PUBLISH
                qos = (flags >> 1) & 3
                tl = struct.unpack(">H", body[:2])[0]
                topic = body[2:2 + tl].decode()
                pos = 2 + tl
                if qos:
                    pid = body[pos:pos + 2]
                    pos += 2
                    self.send(s, c, (b"\x40\x02" if qos == 1 else b"\x50\x02") + pid)
                if any(topic_matches(f, topic) for f in subs):
                    self.send(s, c, publish_packet(topic, body[pos:]))
            elif t == 6:  # PUBREL
                self.send(s, c, b"\x70\x02" + body[:2])
            elif t == 10:  # UNSUBSCRIBE
                self.send(s, c, b"\xb0\x02" + body[:2])
            elif t == 12:  # PINGREQ
                self.send(s, c, b"\xd0\x00")
            elif t == 14:  # DISCONNECT
                return

    def scenario_malformed(self, s, c):  # packet type 0 is reserved
        self.send(s, c, CONNACK + b"\x00\x02\x00\x00")
        self.drain_until_eof(s, c)

    def scenario_badqos(self, s, c):  # PUBLISH with QoS 3
        self.send(s, c, CONNACK + b"\x36\x07\x00\x01t\x00\x01ab")
        self.drain_until_eof(s, c)

    def scenario_liar(self, s, c):  # remaining length 6, topic length 256 inside it
        self.send(s, c, CONNACK + b"\x30\x06\x01\x00abcd")
        self.drain_until_eof(s, c)

    def scenario_truncated(self, s, c):  # announces 1000 bytes, sends 20, closes
        self.send(s, c, CONNACK + b"\x30" + varint(1000) + mqtt_str("plain/t") + b"x" * 11)
        time.sleep(0.3)
        s.shutdown(socket.SHUT_WR)
        self.drain_until_eof(s, c)

    def scenario_oversize(self, s, c):  # over listen.max_packet_size, streamed
        self.send(s, c, CONNACK + b"\x30" + varint(100000) + mqtt_str("plain/t"))
        for _ in range(100):
            self.send(s, c, b"y" * 1000)
        self.drain_until_eof(s, c)

    def scenario_connack2(self, s, c):
        self.send(s, c, CONNACK + CONNACK)
        self.drain_until_eof(s, c)

    def scenario_clientpkt(self, s, c):  # a SUBSCRIBE sent by the "broker"
        body = struct.pack(">H", 1) + mqtt_str("plain/#") + b"\x00"
        self.send(s, c, CONNACK + b"\x82" + varint(len(body)) + body)
        self.drain_until_eof(s, c)

    def scenario_flood(self, s, c):  # valid QoS 0 PUBLISHes as fast as the socket takes them
        self.send(s, c, CONNACK)
        pkt = publish_packet("plain/flood", b"z" * 1000) * 64
        while True:
            self.send(s, c, pkt)

    def scenario_envelopes(self, s, c):  # 200 QoS 1 garbage "envelopes" on a sealed topic
        self.send(s, c, CONNACK)
        p = read_packet(s)
        check(p and p[0] == 8, "the device subscribes first")
        self.send(s, c, b"\x90\x03" + p[2][:2] + b"\x01")
        for i in range(200):
            payload = (b"\x02\x00" + struct.pack(">I", i) * 14) if i % 2 else b"not an envelope %d" % i
            self.send(s, c, publish_packet("sealed/x", payload, 1, pid=i + 1))
        while True:
            p = read_packet(s)
            if p is None:
                c.closed = time.monotonic()
                return
            c.received.append(p[0])
            if p[0] == 4:
                c.pubacks += 1

    def scenario_silent(self, s, c):  # never answers the CONNECT
        self.drain_until_eof(s, c)

    def scenario_mute(self, s, c):  # CONNACK, then never another byte (half-open)
        self.send(s, c, CONNACK)
        self.drain_until_eof(s, c)

    def close(self):
        self.stopping = True
        self.ls.close()


# ---------------------------------------------------------------- setup and checks

def setup(workdir):
    hb = HostileBroker()
    node = Node(workdir, "hb", hb.port, conf={
        "topics": {"plaintext": ["plain/#"]},
        "listen": {"max_packet_size": MAX_PACKET},
        "broker": {"connect_timeout_seconds": 2}}).start()
    hb.conn("mqseal-hb")
    eventually(lambda: node.metric("mqseal_broker_connected") == 1, 10, msg="control connection up")
    good = Client("good-1")
    good.connect(node.port)
    good.subscribe("plain/good", 1)
    good_still_works(good, b"before")
    return hb, node, good


def good_still_works(good, tag):
    good.publish("plain/good", tag, 1)
    m = good.expect(1)[0]
    check(m.payload == tag, "the good device still works (%r)" % tag)


def device(node, cid, keepalive=60):
    s = raw_connect(node.port, timeout=10)
    s.sendall(connect_packet(cid, keepalive=keepalive))
    return s


def attack(hb, node, good, cid, reason):
    """A device whose broker connection misbehaves: mqseal closes the device, cuts that upstream,
    logs REASON 'from the broker', counts a protocol error; the good device goes on."""
    errors = node.metric("mqseal_protocol_errors_total")
    s = device(node, cid)
    data = read_closed(s, 10)
    s.close()
    check(data is not None, "%s: the device saw its connection closed" % cid)
    check(data.startswith(CONNACK), "%s: the device got the CONNACK first: %r" % (cid, data[:8]))
    c = hb.conn(cid)
    eventually(lambda: c.closed is not None, 10, msg="%s: mqseal closed the upstream" % cid)
    eventually(lambda: node.metric("mqseal_protocol_errors_total") == errors + 1, 5, msg="%s: counted" % cid)
    line = [ln for ln in node.output().splitlines() if "client=%s]" % cid in ln and "closing connection" in ln]
    check(line and reason in line[0] and "from the broker" in line[0], "%s: logged %r: %r" % (cid, reason, line))
    check(node.alive(), "mqseal survived %s" % cid)
    good_still_works(good, cid.encode())
    print("  %-10s device closed, upstream closed, logged: %s" % (cid, line[0].split("closing connection: ")[1]))
    return data


def test_malformed_packets(workdir):
    hb, node, good = setup(workdir)
    attack(hb, node, good, "malformed", "reserved")
    attack(hb, node, good, "badqos", "QoS")
    attack(hb, node, good, "connack2", "second CONNACK")
    attack(hb, node, good, "clientpkt", "client-to-server packet")
    stop_clean(node)


def test_lying_remaining_length(workdir):
    hb, node, good = setup(workdir)
    attack(hb, node, good, "liar", "")
    # A frame announced longer than what arrives before the broker closes: nothing of it reaches
    # the device, whose connection is closed.
    s = device(node, "truncated")
    data = read_closed(s, 10)
    s.close()
    check(data == CONNACK, "truncated: the device got the CONNACK and nothing of the cut frame: %r" % data)
    eventually(lambda: hb.conn("truncated").closed is not None, 10, msg="upstream closed")
    check(node.alive(), "survived")
    good_still_works(good, b"after-truncated")
    stop_clean(node)


def test_oversize_packet(workdir):
    hb, node, good = setup(workdir)
    data = attack(hb, node, good, "oversize", "limit")
    check(data == CONNACK, "nothing of the oversize packet reached the device: %r" % data[:16])
    c = hb.conn("oversize")
    print("  oversize: the server got %d bytes out before the close (of 100,004 announced)" % c.sent)
    stop_clean(node)


def test_sealed_garbage(workdir):
    hb, node, good = setup(workdir)
    s = device(node, "envelopes")
    check(read_exact(s, 4) == CONNACK, "CONNACK")
    body = struct.pack(">H", 1) + mqtt_str("sealed/#") + b"\x01"
    s.sendall(b"\x82" + varint(len(body)) + body)
    check(read_exact(s, 5)[:1] == b"\x90", "SUBACK")
    c = hb.conn("envelopes")
    eventually(lambda: c.pubacks == 200, 15, msg="mqseal acknowledged all 200 on the device's behalf (got %d)"
               % c.pubacks)
    s.settimeout(1.0)
    try:
        extra = s.recv(65536)
    except socket.timeout:
        extra = b""
    check(extra == b"", "the device received none of them: %r" % extra[:32])
    m = node.metrics()
    dropped = {k: v for k, v in m.items() if k.startswith("mqseal_dropped_total") and v}
    check(sum(dropped.values()) == 200, "all 200 dropped and counted: %r" % dropped)
    print("  200 forged sealed messages: dropped %r, 200 PUBACKs on the device's behalf" % dropped)
    s.close()
    good_still_works(good, b"after-garbage")
    stop_clean(node)


def test_publish_flood(workdir):
    small_asan_quarantine()
    hb, node, good = setup(workdir)
    s = device(node, "flood")
    got, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 2:  # reads for 2 s: mqseal relays the flood
        chunk = s.recv(1 << 20)
        check(chunk, "flood: connection closed while reading")
        got += len(chunk)
    c = hb.conn("flood")
    base = rss_kb(node.pid)
    sent_before = c.sent
    sampler = RssSampler([node.pid], 0.1)
    t1 = time.monotonic()
    for i in range(5):  # stops reading for 5 s; the good device keeps working meanwhile
        time.sleep(1)
        good_still_works(good, b"during-flood-%d" % i)
    sampler.stop()
    pushed = c.sent - sent_before
    peak = sampler.peak(node.pid)
    print("  flood: device read %.1f MiB in 2 s; then, not reading for %.0f s, the server got %.1f MiB more out; "
          "node RSS %.1f MiB -> peak %.1f MiB" % (got / 2**20, time.monotonic() - t1, pushed / 2**20,
                                                   base / 1024, peak / 1024))
    check(got > 1 << 20, "the flood was relayed while the device read")
    check(peak - base < 16 * 1024, "node RSS bounded during the flood: +%.1f MiB" % ((peak - base) / 1024))
    s.close()
    eventually(lambda: c.closed is not None, 10, msg="the flooding upstream closed after the device left")
    check(node.alive(), "survived the flood")
    good_still_works(good, b"after-flood")
    stop_clean(node)


def test_silent_broker(workdir):
    hb, node, good = setup(workdir)
    # Silent before the CONNACK: a device with keepalive 2 that waits for it is closed by mqseal's
    # keepalive bound (1.5 x 2 s), and the upstream with it.
    t0 = time.monotonic()
    s = device(node, "silent-1", keepalive=2)
    data = read_closed(s, 10)
    dt = time.monotonic() - t0
    s.close()
    check(data == b"", "silent: device closed without a CONNACK after %.1f s: %r" % (dt, data))
    eventually(lambda: hb.conn("silent-1").closed is not None, 5, msg="silent upstream closed")
    print("  silent before CONNACK: device (keepalive 2) closed after %.1f s" % dt)
    # A device that gives up by itself: the upstream goes with it.
    s = device(node, "silent-2")
    hb.conn("silent-2")
    time.sleep(1)
    t1 = time.monotonic()
    s.close()
    c = hb.conn("silent-2")
    eventually(lambda: c.closed is not None, 5, msg="upstream closed when the device gave up")
    print("  silent before CONNACK, device gives up: upstream closed %.2f s later" % (c.closed - t1))
    # Half-open after the CONNACK: paho (keepalive 2) gets no PINGRESP and closes; so does mqseal.
    mute = Client("mute-1")
    mute.connect(node.port, keepalive=2)
    t2 = time.monotonic()
    check(mute.disconnected.wait(15), "the device noticed the silent broker")
    gave_up = time.monotonic() - t2
    mute.c.loop_stop()
    c = hb.conn("mute-1")
    eventually(lambda: c.closed is not None, 5, msg="mute upstream closed after the device left")
    print("  mute after CONNACK: device gave up after %.1f s, upstream closed %.2f s later"
          % (gave_up, c.closed - t2 - gave_up))
    check(node.alive(), "survived")
    good_still_works(good, b"after-silence")
    stop_clean(node)


# ---------------------------------------------------------------- device keepalive violations

def test_device_keepalive_violation(workdir):
    hb, node, good = setup(workdir)
    errors = node.metric("mqseal_protocol_errors_total")
    s = device(node, "kalive-silent", keepalive=2)
    check(read_exact(s, 4) == CONNACK, "CONNACK")
    t0 = time.monotonic()  # the CONNECT was the device's last packet
    data = read_closed(s, 10)
    dt = time.monotonic() - t0
    s.close()
    check(data == b"", "closed by mqseal: %r" % data)
    check(2.0 < dt < 9.0, "closed at about 1.5 x keepalive: %.2f s" % dt)
    check(node.metric("mqseal_protocol_errors_total") == errors + 1, "counted")
    check("keepalive timeout" in node.output(), "logged")
    eventually(lambda: hb.conn("kalive-silent").closed is not None, 5, msg="upstream closed too")
    # Within the bound: a PINGREQ every 2 s (= keepalive) keeps the connection for 10 s.
    s = device(node, "kalive-ok", keepalive=2)
    check(read_exact(s, 4) == CONNACK, "CONNACK")
    for _ in range(5):
        time.sleep(2)
        s.sendall(b"\xc0\x00")
        check(read_exact(s, 2) == b"\xd0\x00", "PINGRESP: still connected")
    s.close()
    print("  keepalive 2, silent: closed after %.2f s; pinging every 2 s: kept for 10 s" % dt)
    good_still_works(good, b"after-keepalive")
    stop_clean(node)


if __name__ == "__main__":
    run([test_malformed_packets, test_lying_remaining_length, test_oversize_packet, test_sealed_garbage,
         test_publish_flood, test_silent_broker, test_device_keepalive_violation])
