"""Faults under continuous QoS 1 traffic through a sealed pair (issue 9, part 1): a publisher device
behind node a, a subscriber device with a persistent session behind node b, and a count of what was
lost among the messages whose PUBLISH was acknowledged to the publishing device.

  - the broker killed (SIGKILL) and restarted on the same port with persistence on;
  - the publisher's node killed (SIGKILL) and restarted: no (key id, counter) pair ever repeats at
    the broker (an eavesdropper on '#' records envelope bytes 2..18);
  - the broker stopped (SIGSTOP) for 10 s under a flood: mqseal's RSS stays bounded, the devices
    are slowed, not dropped;
  - a subscriber device that never reads: the publisher is unaffected, memory bounded;
  - a peer whose clock is off by more than keyex.max_skew_seconds: refused (clock_skew / expired).

Every figure (sent, acknowledged, lost, duplicated; RSS) is printed; docs/RELIABILITY.md has them.
"""
# ctest-labels: reliability faults
# ctest-timeout: 600
import os
import select
import signal
import socket
import struct
import threading
import time

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from harness import (HOST, Broker, Client, Node, RssSampler, check, connect_packet, eventually, publish_packet,
                     raw_connect, rss_kb, run, sanitized, small_asan_quarantine, stop_clean, mqtt_str, varint)

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
# A persistent broker that writes its database after every change, so that a SIGKILL loses nothing
# the broker acknowledged (mosquitto's default is a periodic save).
PERSIST = "autosave_on_changes true\n"


def pair(workdir, broker_kw=None, conf=None, names=("a", "b")):
    broker = Broker(workdir, **(broker_kw or {})).start()
    nodes = [Node(workdir, n, broker.port, conf=conf) for n in names]
    for n in nodes:
        n.trust(*[m for m in nodes if m is not n])
        n.start()
    wait_keyed(nodes)
    return broker, nodes


def wait_keyed(nodes, timeout=20):
    for n in nodes:
        eventually(lambda: n.metric("mqseal_peers_keyed") == len(nodes) - 1 and n.metric("mqseal_broker_connected") == 1,
                   timeout, interval=0.2, msg="%s connected and keyed" % n.node_id)


def published(info):
    """True once the PUBACK came (paho's is_published() raises for a message queued while offline)."""
    return info._published


class Publisher:
    """A paho device (reconnecting by itself) publishing "<tag>-<n>" every interval seconds on a
    thread (QoS 1 unless told; topic may be a list, used in turn). Counts a message as sent when
    handed to paho, acknowledged when its PUBACK (QoS 2: PUBCOMP) came."""

    def __init__(self, port, topic, tag, interval=0.01, size=0, inflight=20, qos=1, retain=False):
        self.topics = topic if isinstance(topic, list) else [topic]
        self.tag, self.interval, self.size, self.qos, self.retain = tag, interval, size, qos, retain
        self.c = mqtt.Client(client_id="pub-" + tag, clean_session=True, protocol=mqtt.MQTTv311)
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.max_inflight_messages_set(inflight)
        self.connects, self.disconnects = 0, 0
        self.connected = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.ack_times = []
        self.c.on_publish = lambda c, u, mid: self.ack_times.append(time.monotonic())
        self.infos = []  # (payload, MQTTMessageInfo, time handed over)
        self.stop_ev = threading.Event()
        self.c.connect(HOST, port, 60)
        self.c.loop_start()
        eventually(self.connected.is_set, 10, msg="publisher connected")
        self.t = threading.Thread(target=self._run, daemon=True)

    def _on_connect(self, c, u, flags, rc):
        if rc == 0:
            self.connects += 1
            self.connected.set()

    def _on_disconnect(self, c, u, rc):
        self.disconnects += 1
        self.connected.clear()

    def payload(self, i):
        p = b"%s-%06d" % (self.tag.encode(), i)
        return p + b"." * max(0, self.size - len(p))

    def start(self):
        self.t.start()
        return self

    def _run(self):
        i = 0
        while not self.stop_ev.is_set():
            p = self.payload(i)
            topic = self.topics[i % len(self.topics)]
            self.infos.append((p, self.c.publish(topic, p, self.qos, self.retain), time.monotonic()))
            i += 1
            if self.interval:
                time.sleep(self.interval)
            else:  # as fast as the in-flight window allows
                while self.c._inflight_messages >= self.c._max_inflight_messages and not self.stop_ev.is_set():
                    time.sleep(0.001)

    def acked(self):
        return [p for p, info, _ in self.infos if published(info) or (self.qos == 0 and info.rc == 0)]

    def acked_count(self):
        return sum(1 for _, info, _ in list(self.infos) if published(info))

    def finish(self, settle=20):
        """Stops publishing; gives what is still unacknowledged up to settle seconds (paho resends it)."""
        self.stop_ev.set()
        self.t.join(10)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and self.qos and self.acked_count() < len(self.infos):
            time.sleep(0.1)
        self.c.disconnect()
        self.c.loop_stop()
        return self.acked()


class Subscriber:
    """A paho device with a persistent session (clean_session false), reconnecting by itself."""

    def __init__(self, port, topic, tag, qos=1):
        self.got = []
        self.lock = threading.Lock()
        self.connects, self.disconnects = 0, 0
        self.connected = threading.Event()
        self.c = mqtt.Client(client_id="sub-" + tag, clean_session=False, protocol=mqtt.MQTTv311)
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_message = self._on_message
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.connect(HOST, port, 60)
        self.c.loop_start()
        eventually(self.connected.is_set, 10, msg="subscriber connected")
        rc, mid = self.c.subscribe(topic, qos)
        check(rc == 0, "subscribe sent")
        time.sleep(0.3)

    def _on_connect(self, c, u, flags, rc):
        if rc == 0:
            self.connects += 1
            self.connected.set()

    def _on_disconnect(self, c, u, rc):
        self.disconnects += 1
        self.connected.clear()

    def _on_message(self, c, u, m):
        with self.lock:
            self.got.append(bytes(m.payload))

    def received(self):
        with self.lock:
            return list(self.got)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def account(name, pub, sub, settle=30):
    """Stops the publisher, waits for every acknowledged message at the subscriber; prints and
    returns (sent, acked, lost, duplicated)."""
    acked = pub.finish()
    want = set(acked)
    try:
        eventually(lambda: want <= set(sub.received()), settle, interval=0.2, msg="every acknowledged message arrived")
    except AssertionError:
        pass  # counted below
    time.sleep(0.5)
    got = sub.received()
    lost = want - set(got)
    dup = len(got) - len(set(got))
    print("  %s: sent %d, acknowledged %d, received %d, lost %d, duplicated %d; publisher reconnects %d, "
          "subscriber reconnects %d" % (name, len(pub.infos), len(acked), len(got), len(lost), dup,
                                        pub.connects - 1, sub.connects - 1), flush=True)
    check(not lost, "%s: %d acknowledged messages lost, e.g. %r" % (name, len(lost), sorted(lost)[:5]))
    check(set(got) <= set(p for p, _, _ in pub.infos), "%s: nothing received that was not sent" % name)
    return len(pub.infos), len(acked), len(lost), dup


# ---------------------------------------------------------------- broker killed and restarted

def test_broker_killed_and_restarted(workdir):
    kw = {"persistence": True, "extra": PERSIST}
    broker, (a, b) = pair(workdir, broker_kw=kw)
    sub = Subscriber(b.port, "faults/bk", "bk")
    pub = Publisher(a.port, "faults/bk", "bk").start()
    eventually(lambda: len(sub.received()) >= 100, 20, msg="traffic flowing")
    reconnects = (a.metric("mqseal_control_reconnects_total"), b.metric("mqseal_control_reconnects_total"))
    broker.kill()
    acked_at_kill = pub.acked_count()
    time.sleep(2)
    broker = Broker(workdir, port=broker.port, **kw).start()
    wait_keyed([a, b], timeout=30)
    check(a.metric("mqseal_control_reconnects_total") > reconnects[0] and
          b.metric("mqseal_control_reconnects_total") > reconnects[1], "both control connections came back")
    eventually(lambda: pub.acked_count() >= acked_at_kill + 200, 30, interval=0.2,
               msg="the publisher reconnected through mqseal and is acknowledged again")
    eventually(lambda: sub.connects >= 2, 10, msg="the subscriber reconnected through mqseal")
    account("broker SIGKILL + restart", pub, sub)
    check(pub.connects >= 2, "the publisher reconnected")
    for n in (a, b):
        check(n.alive(), "%s survived" % n.node_id)
        drops = {k: v for k, v in n.metrics().items() if k.startswith("mqseal_dropped_total") and v}
        print("  %s dropped (duplicates refused as replays are expected): %r" % (n.node_id, drops))
        check(all('"replay"' in k for k in drops), "%s dropped nothing but replays: %r" % (n.node_id, drops))
        stop_clean(n)


# ---------------------------------------------------------------- the publisher's node killed

class Eavesdropper:
    """Directly at the broker on '#': records (key id, counter) = envelope bytes 2..18 of every
    PUBLISH on the data topics."""

    def __init__(self, broker, prefix):
        self.pairs = []
        self.c = Client("eve-%d" % time.monotonic_ns())
        self.c.c.on_message = self._on_message
        self.prefix = prefix
        self.c.connect(broker.port)
        self.c.subscribe("#", 1)

    def _on_message(self, c, u, m):
        if m.topic.startswith(self.prefix):
            self.pairs.append(bytes(m.payload[2:18]))


def test_publisher_node_killed_and_restarted(workdir):
    broker, (a, b) = pair(workdir)
    eve = Eavesdropper(broker, "faults/")
    sub = Subscriber(b.port, "faults/nk", "nk")
    pub = Publisher(a.port, "faults/nk", "nk").start()
    eventually(lambda: len(sub.received()) >= 100, 20, msg="traffic flowing")
    epoch = a.metric("mqseal_epoch")
    a.kill()
    acked_at_kill = pub.acked_count()
    time.sleep(1)
    a.start()
    wait_keyed([a, b], timeout=30)
    check(a.metric("mqseal_epoch") > epoch, "the restarted node runs a new epoch")
    eventually(lambda: pub.acked_count() >= acked_at_kill + 200, 30, interval=0.2,
               msg="the publisher reconnected through the restarted node")
    # A second kill while the first restart's key is barely confirmed.
    acked = pub.acked_count()
    a.kill()
    a.start()
    wait_keyed([a, b], timeout=30)
    eventually(lambda: pub.acked_count() >= acked + 100, 30, interval=0.2, msg="traffic after the second restart")
    account("publisher's node SIGKILL + restart (x2)", pub, sub)
    time.sleep(1)
    pairs = eve.pairs
    keys = {p[:8] for p in pairs}
    repeats = len(pairs) - len(set(pairs))
    print("  broker saw %d sealed messages under %d keys; repeated (key id, counter) pairs: %d"
          % (len(pairs), len(keys), repeats))
    check(len(keys) >= 3, "three epochs of node a seen at the broker (start, two restarts)")
    check(repeats == 0, "no (key id, counter) pair repeats at the broker")
    for n in (a, b):
        stop_clean(n)


# ---------------------------------------------------------------- broker stopped (SIGSTOP)

class Flooder:
    """A raw device pushing QoS 0 PUBLISHes of size bytes as fast as its socket accepts them, on a
    thread; records (time, total bytes accepted by the kernel)."""

    def __init__(self, port, topic, size=4096, client_id="flooder"):
        self.s = raw_connect(port)
        self.s.sendall(connect_packet(client_id))
        check(self.s.recv(4)[:1] == b"\x20", "flooder CONNACK")
        self.s.setblocking(False)
        self.pkt = publish_packet(topic, b"F" * size)
        self.total = 0
        self.marks = []
        self.error = None
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        pending = b""
        try:
            while not self.stop_ev.is_set():
                if not pending:
                    pending = self.pkt * 16
                _, w, _ = select.select([], [self.s], [], 0.1)
                if w:
                    n = self.s.send(pending)
                    self.total += n
                    pending = pending[n:]
                self.marks.append((time.monotonic(), self.total))
            if pending:  # finish the packet in progress
                self.s.setblocking(True)
                self.s.sendall(pending)
        except OSError as e:
            self.error = e

    def bytes_between(self, t0, t1):
        before = [b for t, b in self.marks if t <= t0]
        upto = [b for t, b in self.marks if t <= t1]
        return (upto[-1] if upto else 0) - (before[-1] if before else 0)

    def stop_and_ping(self):
        """Stops flooding; the connection must still answer a PINGREQ."""
        self.stop_ev.set()
        self.t.join(30)
        check(self.error is None, "flooder connection failed: %r" % self.error)
        self.s.setblocking(True)
        self.s.settimeout(20)
        self.s.sendall(b"\xc0\x00")
        data = b""
        while b"\xd0\x00" not in data:
            chunk = self.s.recv(4096)
            check(chunk, "flooder connection closed by mqseal")
            data += chunk
        self.s.close()


def mib(kb):
    return kb / 1024.0


def test_broker_stopped_under_load(workdir):
    small_asan_quarantine()
    broker, (a, b) = pair(workdir)
    sub = Subscriber(b.port, "faults/st", "st")
    pub = Publisher(a.port, "faults/st", "st").start()
    eventually(lambda: len(sub.received()) >= 50, 20, msg="traffic flowing")
    flood = Flooder(a.port, "flood/x")
    time.sleep(3)
    base = {n.node_id: rss_kb(n.pid) for n in (a, b)}
    t_stop = time.monotonic()
    rate_before = flood.bytes_between(t_stop - 2, t_stop) / 2
    sampler = RssSampler([a.pid, b.pid], 0.1)
    broker.signal(signal.SIGSTOP)
    time.sleep(10)
    t_cont = time.monotonic()
    broker.signal(signal.SIGCONT)
    sampler.stop()
    during = flood.bytes_between(t_stop, t_cont)
    acked_at_cont = pub.acked_count()
    acked_during = sum(1 for t in list(pub.ack_times) if t_stop + 0.5 < t < t_cont)
    eventually(lambda: pub.acked_count() >= acked_at_cont + 100, 30, interval=0.2, msg="traffic resumed after SIGCONT")
    time.sleep(2)
    after = flood.bytes_between(time.monotonic() - 2, time.monotonic()) / 2
    flood.stop_and_ping()
    dropped = pub.disconnects + sub.disconnects  # before account() disconnects them itself
    sent, acked, lost, dup = account("broker SIGSTOP 10 s", pub, sub)
    peak_a, peak_b = sampler.peak(a.pid), sampler.peak(b.pid)
    print("  node a RSS: %.1f MiB before the stop, peak %.1f MiB while stopped; node b: %.1f -> %.1f MiB"
          % (mib(base["a"]), mib(peak_a), mib(base["b"]), mib(peak_b)))
    print("  flooding device: %.1f MiB/s before, %.2f MiB accepted in the 10 s of the stop, %.1f MiB/s after; "
          "the QoS 1 publisher got %d acks during the stop"
          % (rate_before / 2**20, during / 2**20, after / 2**20, acked_during))
    check(dropped == 0, "no device was dropped (slowed, not dropped)")
    # Bounded: per session one read (at most listen.max_packet_size) plus the 512 KiB output high
    # watermark; 16 MiB is far below what 10 s of an unthrottled loopback flood would have queued.
    check(peak_a - base["a"] < 16 * 1024, "node a RSS bounded while the broker was stopped: +%.1f MiB"
          % mib(peak_a - base["a"]))
    check(peak_b - base["b"] < 16 * 1024, "node b RSS bounded: +%.1f MiB" % mib(peak_b - base["b"]))
    check(during < 48 * 2**20, "the flooding device was slowed: %.1f MiB accepted while stopped" % (during / 2**20))
    check(a.alive() and b.alive(), "both nodes survived")
    for n in (a, b):
        stop_clean(n)


# ---------------------------------------------------------------- a subscriber that never reads

def test_subscriber_stops_reading(workdir):
    small_asan_quarantine()
    broker, (a, b) = pair(workdir)
    healthy = Subscriber(b.port, "faults/slow/#", "healthy")
    pub = Publisher(a.port, "faults/slow/x", "slow", interval=0, size=4096)
    pub.start()
    # Warm-up with the same traffic, so that the baseline includes the allocator's working set.
    eventually(lambda: pub.acked_count() >= 1500, 120, interval=0.2, msg="warm-up traffic")
    stuck = raw_connect(b.port)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(connect_packet("stuck"))
    check(stuck.recv(4)[:1] == b"\x20", "stuck subscriber CONNACK")
    body = struct.pack(">H", 1) + mqtt_str("faults/slow/#") + b"\x01"
    stuck.sendall(b"\x82" + varint(len(body)) + body)
    check(stuck.recv(5)[:1] == b"\x90", "stuck subscriber SUBACK")
    # From here on the stuck subscriber never reads.
    t_stuck = time.monotonic()
    base_b = rss_kb(b.pid)
    sampler = RssSampler([b.pid], 0.1)
    acked0 = pub.acked_count()
    eventually(lambda: pub.acked_count() >= acked0 + 4000, 120, interval=0.2,
               msg="4000 more messages of 4 KiB acknowledged")
    dropped = pub.disconnects + healthy.disconnects
    sampler.stop()
    sent, acked, lost, dup = account("subscriber that never reads (healthy subscriber beside it)", pub, healthy)
    times = sorted(t for t in pub.ack_times if t > t_stuck)
    gaps = [y - x for x, y in zip(times, times[1:])]
    before = sum(1 for t in pub.ack_times if t_stuck - 1 < t <= t_stuck)
    after = sum(1 for t in pub.ack_times if times[-1] - 1 < t <= times[-1])
    peak_b = sampler.peak(b.pid)
    print("  publisher: %d acks in the second before the subscriber got stuck, %d in the last second; longest "
          "pause between acks %.2f s" % (before, after, max(gaps)))
    print("  node b RSS %.1f MiB before, peak %.1f MiB (%.1f MiB were published to the stuck subscriber)"
          % (mib(base_b), mib(peak_b), (len(times)) * 4096 / 2**20))
    check(max(gaps) < 5, "the publisher never stalled (longest pause %.2f s)" % max(gaps))
    check(peak_b - base_b < 16 * 1024, "node b RSS bounded: +%.1f MiB" % mib(peak_b - base_b))
    check(dropped == 0, "no other device was dropped")
    check(a.alive() and b.alive(), "both nodes survived")
    for n in (a, b):
        stop_clean(n)
    stuck.close()


# ---------------------------------------------------------------- a retained message under an erased key

def test_stale_retained_does_not_stall_device(workdir):
    """A retained message sealed under a key the receiving node has since erased (its sender
    stopped, so nobody re-seals it) is dropped; meanwhile the device's other traffic (SUBACK,
    PINGRESP, fresh messages) must keep flowing within its keepalive."""
    conf = {"keyex": {"interval_seconds": 2, "activation_seconds": 1}}
    broker, (a, b) = pair(workdir, conf=conf)
    old = Client("old-pub")
    old.connect(a.port)
    old.publish("faults/ret/old", b"sealed-before-the-stop", 1, retain=True)
    old.disconnect()
    a.stop()  # the sender goes away: its retained value stays at the broker, sealed under its key
    time.sleep(4)  # b erases a's keys 1.5 x interval (3 s) after installing them
    dev = Client("ka2-sub")
    dev.connect(b.port, keepalive=2)
    t0 = time.monotonic()
    dev.subscribe("faults/ret/#", 1)
    t1 = time.monotonic()
    try:
        dev.subscribe("faults/other", 1, timeout=4)
        suback = time.monotonic() - t1
    except AssertionError:
        suback = None
    alive = not dev.disconnected.wait(6)
    dropped = {k: v for k, v in b.metrics().items() if k.startswith("mqseal_dropped_total") and v}
    print("  stale retained value: first SUBACK %.2f s, second SUBACK %s, device (keepalive 2) %s; dropped %r"
          % (t1 - t0, "%.2f s" % suback if suback is not None else "not within 4 s",
             "still connected after 6 s" if alive else "disconnected", dropped))
    check(suback is not None, "the second SUBACK came within 4 s (not held behind the stale message)")
    check(alive, "the device with keepalive 2 stayed connected (its PINGRESPs were not held)")
    check(sum(dropped.values()) >= 1, "the stale message was dropped and counted")
    dev.disconnect()
    stop_clean(b)


# ---------------------------------------------------------------- a peer with a wrong clock

def faketime_env(offset):
    env = dict(os.environ)
    env.update({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "FAKETIME_NO_CACHE": "1"})
    if sanitized():  # libfaketime comes before libasan in the library list; that is fine here
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    return env


def resign(ann, topic, key, issued_at_ms, rev_bump):
    """Our own node's announcement with a new issued_at and rev, signed again (PROTOCOL.md §7.2)."""
    body = bytearray(ann[:-64])
    off = 8 + 1 + body[8] + 8  # magic..flags, str8 sender_id, epoch -> rev
    struct.pack_into(">I", body, off, struct.unpack_from(">I", body, off)[0] + rev_bump)
    struct.pack_into(">Q", body, off + 4, issued_at_ms)
    msg = b"mqseal v1 announce" + struct.pack(">H", len(topic)) + topic.encode() + bytes(body)
    return bytes(body) + key.sign(msg)


def test_peer_clock_skew(workdir):
    conf = {"keyex": {"max_skew_seconds": 10, "interval_seconds": 20, "activation_seconds": 1}}
    broker = Broker(workdir).start()
    a = Node(workdir, "a", broker.port, conf=conf)
    fast = Node(workdir, "fast", broker.port, conf=conf)   # clock 120 s ahead
    slow = Node(workdir, "slow", broker.port, conf=conf)   # clock 120 s behind: 1.5 x 20 + 10 < 120
    for n in (a, fast, slow):
        n.trust(*[m for m in (a, fast, slow) if m is not n])
    a.start()
    real = os.path.exists(FAKETIME_LIB)
    if real:
        fast.env, slow.env = faketime_env("+120"), faketime_env("-120")
        fast.start()
        slow.start()
    else:
        # No libfaketime (Debian package faketime): the skewed peers' announcements are forged
        # with their own identity keys, as their processes would have made them.
        print("  libfaketime not installed: forging the skewed announcements in Python")
        for n in (fast, slow):
            n.start()
        eventually(lambda: a.metric("mqseal_peers_keyed") == 2, 20, msg="keyed with true clocks")
        for n, off in ((fast, 120000), (slow, -120000)):
            n.stop()
            topic = "mqseal/kx/a/" + n.node_id  # its announcement to a (protocol v2: per recipient)
            ann = captured_retained(broker, topic)
            with open(n.identity, "rb") as f:
                key = load_pem_private_key(f.read(), None)
            inj = Client("inj-" + n.node_id)
            inj.connect(broker.port)
            inj.publish(topic, resign(ann, topic, key, int(time.time() * 1000) + off, 1000), 1)
            inj.disconnect()

    def rejected(reason):
        return a.metric('mqseal_announcements_rejected_total{reason="%s"}' % reason)

    eventually(lambda: rejected("clock_skew") >= 1 and rejected("expired") >= 1, 20, interval=0.2,
               msg="announcements from skewed peers refused")
    out = a.output()
    line_fast = [ln for ln in out.splitlines() if "rejected clock_skew" in ln and "peer fast" in ln]
    line_slow = [ln for ln in out.splitlines() if "rejected expired" in ln and "peer slow" in ln]
    check(line_fast and "check its clock" in line_fast[0], "clear log line for the fast clock")
    check(line_slow and "clock is behind" in line_slow[0], "clear log line for the slow clock")
    print("  %s\n  %s" % (line_fast[0].strip()[:200], line_slow[0].strip()[:200]))
    if real:
        time.sleep(3)
        check(a.metric("mqseal_peers_keyed") == 0, "node a holds no key of a skewed peer")
        check(a.metric("mqseal_announcements_accepted_total") == 0, "nothing accepted from skewed peers")
    print("  via %s: clock_skew %d, expired %d" % ("libfaketime on the peers' processes" if real else "forged announcements",
                                                  rejected("clock_skew"), rejected("expired")))
    stop_clean(a)


def captured_retained(broker, topic):
    c = Client("cap-%d" % time.monotonic_ns())
    c.connect(broker.port)
    c.subscribe(topic, 1)
    m = c.expect(1)[0]
    c.disconnect()
    return m.payload


if __name__ == "__main__":
    run([test_broker_killed_and_restarted, test_publisher_node_killed_and_restarted, test_broker_stopped_under_load,
         test_subscriber_stops_reading, test_stale_retained_does_not_stall_device, test_peer_clock_skew])
