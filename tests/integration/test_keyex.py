"""Key exchange and rotation between peer sidecars over a real broker (issue: key exchange):
keying in either start order, rotation under continuous traffic without loss, a peer killed and
restarted mid-stream, forged/altered/re-routed/replayed announcements refused and counted, and
one-to-many / many-to-one fan-out."""
# ctest-labels: keyex sealing
# ctest-timeout: 600
import os
import struct
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness import Broker, Client, Node, check, eventually, run

FAST = {"keyex": {"interval_seconds": 2, "activation_seconds": 1}}


def pair(workdir, conf=None, start=True, names=("a", "b")):
    broker = Broker(workdir).start()
    nodes = [Node(workdir, n, broker.port, conf=conf) for n in names]
    for n in nodes:
        n.trust(*[m for m in nodes if m is not n])
    if start:
        for n in nodes:
            n.start()
    return broker, nodes


def keyed(node, npeers=1):
    m = node.metrics()
    return m.get("mqseal_peers_keyed") == npeers and m.get("mqseal_broker_connected") == 1


def wait_keyed(nodes, timeout=10.0):
    t0 = time.monotonic()
    for n in nodes:
        eventually(lambda: keyed(n, len(nodes) - 1), timeout, msg="%s keyed" % n.node_id)
    return time.monotonic() - t0


def test_keyed_within_2s_either_order(workdir):
    for order in ((0, 1), (1, 0)):
        sub = os.path.join(workdir, "order%d%d" % order)
        os.makedirs(sub)
        broker, nodes = pair(sub, start=False)
        first, second = nodes[order[0]], nodes[order[1]]
        first.start()
        time.sleep(0.5)
        second.start()
        t = wait_keyed(nodes, timeout=10)
        check(t < 2.0, "keyed both ways %.2fs after both were up (order %r)" % (t, order))
        print("  keyed %.3fs after both up (order %r)" % (t, order))
        for n in nodes + [broker]:
            n.stop()


class Stream:
    """Continuous QoS 1 traffic from a device behind one node to a device behind another."""

    def __init__(self, pub_port, sub_port, topic, tag):
        self.topic, self.tag = topic, tag
        self.sub = Client("sub-" + tag)
        self.sub.connect(sub_port)
        self.sub.subscribe(topic, 1)
        self.pub = Client("pub-" + tag)
        self.pub.connect(pub_port)
        self.sent = 0
        self.stop = threading.Event()
        self.error = None
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            while not self.stop.is_set():
                self.pub.publish(self.topic, b"%s-%06d" % (self.tag.encode(), self.sent), 1, timeout=20)
                self.sent += 1
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self, timeout=20):
        self.stop.set()
        self.t.join(30)
        check(self.error is None, "publisher failed: %r" % self.error)
        got = self.sub.expect(self.sent, timeout=timeout)
        want = [b"%s-%06d" % (self.tag.encode(), i) for i in range(self.sent)]
        check([m.payload for m in got] == want, "%s: all %d in order" % (self.tag, self.sent))
        check(not self.sub.quiet(0.5), "%s: nothing extra" % self.tag)
        return self.sent


def dropped_total(node):
    return sum(v for k, v in node.metrics().items() if k.startswith("mqseal_dropped_total"))


def test_rotation_under_traffic(workdir):
    broker, (a, b) = pair(workdir, conf=FAST)
    wait_keyed([a, b])
    e0 = (a.metric("mqseal_epoch"), b.metric("mqseal_epoch"))
    ab = Stream(a.port, b.port, "rot/ab", "ab")
    ba = Stream(b.port, a.port, "rot/ba", "ba")
    ab.t.start()
    ba.t.start()
    eventually(lambda: a.metric("mqseal_rotations_total") >= 11 and b.metric("mqseal_rotations_total") >= 11,
               60, interval=0.5, msg="10 rotations on each node")
    n1, n2 = ab.finish(), ba.finish()
    for n in (a, b):
        check(dropped_total(n) == 0, "%s dropped nothing: %r" % (n.node_id, {
            k: v for k, v in n.metrics().items() if k.startswith("mqseal_dropped") and v}))
        check(n.metric("mqseal_activations_total") >= 11, "%s activated each epoch" % n.node_id)
    e1 = (a.metric("mqseal_epoch"), b.metric("mqseal_epoch"))
    check(e1[0] >= e0[0] + 10 and e1[1] >= e0[1] + 10, "epochs advanced: %r -> %r" % (e0, e1))
    check(a.output().count("active (confirmed by every live peer)") >= 10, "activation by confirmation")
    print("  %d + %d messages across >= 10 rotations, none lost" % (n1, n2))


def test_activation_time_measured(workdir):
    """Not a speed assertion: prints how long a rotation takes to activate (for the closing note)."""
    broker, (a, b) = pair(workdir, conf={"keyex": {"interval_seconds": 3}})
    wait_keyed([a, b])
    eventually(lambda: a.metric("mqseal_activations_total") >= 4, 20, msg="rotations")
    starts, acts = {}, {}
    for line in a.output().splitlines():
        if " started (" in line or " active (" in line:
            ts, epoch = line.split()[0], line.split("epoch ")[1].split()[0]
            t = time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float(ts[19:23])
            (starts if " started (" in line else acts)[epoch] = t
    lat = [acts[e] - starts[e] for e in starts if e in acts and "first" not in e]
    check(len(lat) >= 3, "saw rotations: %r" % lat)
    print("  rotation start -> activation: %s ms" % ", ".join("%.0f" % (x * 1000) for x in lat[1:]))


def captured(broker, topic_filter, n=1, timeout=10):
    eve = Client("eve-%d" % time.monotonic_ns())
    eve.connect(broker.port)
    eve.subscribe(topic_filter, 1)
    msgs = eve.expect(n, timeout)
    eve.disconnect()
    return msgs


def test_peer_restart_mid_stream(workdir):
    broker, (a, b) = pair(workdir, conf=FAST)
    wait_keyed([a, b])
    old_ann = captured(broker, "mqseal/kx/a/b")[0].payload  # b's retained announcement to a, pre-restart
    sub = Client("restart-sub")
    sub.connect(b.port)
    sub.subscribe("rs/#", 1)
    pub = Client("restart-pub")
    pub.connect(a.port)
    for i in range(20):
        pub.publish("rs/x", b"before-%d" % i, 1)
    check([m.payload for m in sub.expect(20)] == [b"before-%d" % i for i in range(20)], "before restart")
    b.kill()  # SIGKILL: no goodbye
    b.start()
    t0 = time.monotonic()
    sub = Client("restart-sub2")
    sub.connect(b.port)
    sub.subscribe("rs/#", 1)
    after = []
    for i in range(50):
        pub.publish("rs/x", b"after-%d" % i, 1)
        after.append(b"after-%d" % i)
        time.sleep(0.02)
    got = sub.expect(50, timeout=20)
    print("  traffic resumed; last message arrived %.2fs after the restart" % (time.monotonic() - t0))
    check([m.payload for m in got] == after, "every message published after the restart arrived, in order")
    # The broker replays b's pre-restart announcement to a: refused as stale, keys unchanged.
    stale_before = a.metric('mqseal_announcements_rejected_total{reason="stale"}')
    inj = Client("inject-replay")
    inj.connect(broker.port)
    inj.publish("mqseal/kx/a/b", old_ann, 1)
    eventually(lambda: a.metric('mqseal_announcements_rejected_total{reason="stale"}') > stale_before, 5,
               msg="replayed pre-restart announcement refused")
    pub.publish("rs/x", b"still-flowing", 1)
    check(sub.expect(1)[0].payload == b"still-flowing", "traffic continues after the replay")


def resign(body, topic, key):
    msg = b"mqseal v1 announce" + struct.pack(">H", len(topic)) + topic.encode() + body
    return body + key.sign(msg)


def test_forged_announcements_rejected(workdir):
    broker, (a, b, c) = pair(workdir, conf=FAST, names=("a", "b", "c"))
    wait_keyed([a, b, c])
    ann_b = captured(broker, "mqseal/kx/a/b")[0].payload  # b's announcement to a
    ann_bc = captured(broker, "mqseal/kx/c/b")[0].payload  # b's announcement to c
    inj = Client("mallory")
    inj.connect(broker.port)
    sub = Client("forge-sub")
    sub.connect(a.port)
    sub.subscribe("fg/#", 1)
    pub = Client("forge-pub")
    pub.connect(b.port)

    def rejected(reason):
        return a.metric('mqseal_announcements_rejected_total{reason="%s"}' % reason)

    def expect_reject(reason, payload, topic="mqseal/kx/a/b"):
        before = rejected(reason)
        inj.publish(topic, payload, 1)
        eventually(lambda: rejected(reason) > before, 5, msg="%s counted" % reason)
        tag = b"after-" + reason.encode()
        pub.publish("fg/x", tag, 1)
        check(sub.expect(1)[0].payload == tag, "traffic continues after %s" % reason)

    # Forgeries must look newer than what a accepted, or they are dropped before verification:
    # the rev field (after magic..flags, sender id and epoch) gets a large increment.
    rev_off = 8 + 1 + len("b") + 8
    body = bytearray(ann_b[:-64])
    struct.pack_into(">I", body, rev_off, struct.unpack_from(">I", body, rev_off)[0] + 1000)
    # 1. signed by an untrusted key, on b's topic
    expect_reject("bad_signature", resign(bytes(body), "mqseal/kx/a/b", Ed25519PrivateKey.generate()))
    # 2. b's genuine announcement with one flipped byte (a rev bit: fresh, so it reaches the signature)
    flipped = bytearray(ann_b)
    flipped[rev_off] ^= 0x40
    expect_reject("bad_signature", bytes(flipped))
    # 3. b's genuine announcement re-routed to the topic of another peer, and b's announcement to c
    #    re-routed to a (protocol v2: one message per recipient; the entry names c, not a)
    expect_reject("wrong_topic", ann_b, "mqseal/kx/a/c")
    expect_reject("wrong_topic", ann_bc, "mqseal/kx/a/b")
    # 4. replayed from an older epoch: once b has rotated, its captured announcement is old
    captured_epoch = struct.unpack_from(">Q", ann_b, 8 + 1 + len("b"))[0]
    eventually(lambda: b.metric("mqseal_epoch") > captured_epoch, 10, msg="b rotated")
    expect_reject("stale", ann_b)
    # 5. an announcement from a node that is not a configured peer never reaches a (v2: a
    #    subscribes to its peers' exact topics only); a confirmation addressed to a by such a node
    #    does, and is a failure (it lists a as its peer): unknown_peer
    ignored = lambda: a.metric('mqseal_announcements_ignored_total{reason="not_a_peer"}')  # noqa: E731
    before = ignored(), rejected("unknown_peer"), rejected("wrong_topic")
    inj.publish("mqseal/kx/a/mallory", ann_b, 1)
    time.sleep(1.0)
    check((ignored(), rejected("unknown_peer"), rejected("wrong_topic")) == before,
          "an announcement of a non-peer is not even delivered to a")
    expect_reject("unknown_peer", ann_b, "mqseal/ack/a/mallory")
    check(keyed(a, 2), "a still keyed with both peers")


def fan(workdir, one_pub):
    names = ("p", "s1", "s2", "s3")
    broker, nodes = pair(workdir, names=names)
    wait_keyed(nodes, timeout=15)
    hub, leaves = nodes[0], nodes[1:]
    if one_pub:
        subs = []
        for n in leaves:
            c = Client("fan-sub-" + n.node_id)
            c.connect(n.port)
            c.subscribe("fan/#", 1)
            subs.append(c)
        pub = Client("fan-pub")
        pub.connect(hub.port)
        for i in range(30):
            pub.publish("fan/x", b"m-%d" % i, 1)
        for c in subs:
            check([m.payload for m in c.expect(30)] == [b"m-%d" % i for i in range(30)], "every subscriber opens all")
    else:
        sub = Client("fan-in-sub")
        sub.connect(hub.port)
        sub.subscribe("fan/#", 1)
        for n in leaves:
            c = Client("fan-pub-" + n.node_id)
            c.connect(n.port)
            for i in range(10):
                c.publish("fan/" + n.node_id, b"%s-%d" % (n.node_id.encode(), i), 1)
        got = sub.expect(30)
        check(sorted(m.payload for m in got) == sorted(b"%s-%d" % (n.node_id.encode(), i)
                                                       for n in leaves for i in range(10)), "all opened")


def test_one_publisher_three_subscribers(workdir):
    fan(workdir, True)


def test_three_publishers_one_subscriber(workdir):
    fan(workdir, False)


if __name__ == "__main__":
    run([test_keyed_within_2s_either_order, test_rotation_under_traffic, test_activation_time_measured,
         test_peer_restart_mid_stream, test_forged_announcements_rejected, test_one_publisher_three_subscribers,
         test_three_publishers_one_subscriber])
