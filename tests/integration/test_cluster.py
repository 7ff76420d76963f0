"""mqseal on a clustered broker (issue 10): a two-node RabbitMQ 3.10 cluster with the MQTT plugin
(rabbitmq.py), the publishing device's node connected to broker node 1, the subscribing device's node
to broker node 2, so that every key-exchange message and every sealed PUBLISH crosses the cluster.

Checked: the broker facts that docs/BROKERS.md relies on (retained messages are kept per broker node
and delivered only to subscriptions without wildcards, so mqseal's retained announcements never reach
a peer: keying relies on the re-issue of PROTOCOL.md §7.4; MQTT 5 refused; QoS 2 downgraded to 1);
keying in either start order; QoS 0 and 1 sealed traffic round-trips intact; an eavesdropper at either
broker node sees only ciphertext; rotation every 2 s under QoS 1 traffic loses nothing; a peer killed
and restarted is keyed again and loses nothing; the topic permissions of BROKERS.md let each node do
exactly what it needs and nothing else; a '.' in a topic or node id, which RabbitMQ turns into a level
separator, fails closed.

Issues in mqseal found here are fixed and checked: test_broker_disconnect_while_peer_rotates (a peer
whose key-exchange connection drops while another node rotates gets that epoch by a re-issue,
§7.4, since RabbitMQ has no retained delivery to it); test_topic_permissions (a retained re-publish
the broker refuses closes the key-exchange connection once, not for good). The second part of
test_unknown_key_messages_held_aside checks the documented cost of held QoS 1 messages: once they
fill the broker's in-flight window, the device's other topics wait too, at most the 5 s of R35
(PROTOCOL.md §6.1). test_mosquitto_acl checks the mosquitto ACLs of BROKERS.md on a plain mosquitto
(no cluster needed).

One cluster serves every test (it takes 30-90 s to boot); each test uses its own node ids, its own
key-exchange prefix and its own topics, so the tests do not see each other's traffic."""
# ctest-labels: cluster
# ctest-timeout: 600
import atexit
import calendar
import functools
import os
import shutil
import subprocess
import tempfile
import threading
import time

import harness
from harness import Broker, Client, Node, TestFailure, check, eventually, run, stop_clean
from rabbitmq import RabbitCluster, available

FAST = {"interval_seconds": 2, "activation_seconds": 1}
_cluster = None
_made = []  # the mqseal nodes of the running test


def stops_clean(test):
    """After a test that passed, its mqseal nodes must stop on SIGTERM with status 0 and no sanitizer
    report (harness.stop_clean; under ASan, LeakSanitizer runs at exit)."""
    @functools.wraps(test)
    def wrapper(workdir):
        del _made[:]
        test(workdir)
        for n in _made:
            if n.alive():
                stop_clean(n)
    return wrapper


def cluster():
    """The shared cluster, booted on first use."""
    global _cluster
    if _cluster is None:
        check(available(), "rabbitmq-server / epmd not installed (scripts/deps.sh installs them)")
        workdir = tempfile.mkdtemp(prefix="mqseal-rabbitmq-")
        if not os.environ.get("MQSEAL_KEEP_TMP"):
            atexit.register(shutil.rmtree, workdir, True)  # runs after the cluster's own atexit stop
        c = RabbitCluster(workdir, shared=True)
        try:
            c.start()
        except Exception:
            for name, text in c.logs().items():
                print("---- %s (tail)\n%s" % (name, text[-3000:]))
            raise
        print("  cluster of %s up in %.1fs (boot %.1fs, join %.1fs)" % (
            ", ".join(n.nodename for n in c.nodes), c.timings["total"], c.timings["boot"], c.timings["join"]))
        _cluster = c
    return _cluster


def nodes(workdir, tag, keyex=None, ids=("a", "b"), start=True, each=None):
    """mqseal nodes <tag>-a on broker node 1 and <tag>-b on broker node 2, trusting each other, with the
    key-exchange prefix mqseal-<tag>. each: per-node keyex settings merged over keyex."""
    c = cluster()
    out = []
    for k, i in enumerate(ids):
        kx = {"topic_prefix": "mqseal-" + tag}
        kx.update(keyex or {})
        kx.update((each or {}).get(i, {}))
        out.append(Node(workdir, "%s-%s" % (tag, i), c.nodes[k % len(c.nodes)].port, conf={"keyex": kx}))
    _made.extend(out)
    for n in out:
        n.trust(*[m for m in out if m is not n])
    if start:
        for n in out:
            n.start()
    return out


def keyed(node, npeers=1):
    m = node.metrics()
    return m.get("mqseal_peers_keyed") == npeers and m.get("mqseal_broker_connected") == 1


def wait_keyed(ns, timeout=15.0):
    t0 = time.monotonic()
    for n in ns:
        eventually(lambda: keyed(n, len(ns) - 1), timeout, interval=0.1, msg="%s keyed" % n.node_id)
    return time.monotonic() - t0


def eavesdroppers(topic_filter):
    """A plain MQTT subscriber directly at each broker node."""
    out = []
    for bn in cluster().nodes:
        eve = Client("eve-%s-%d" % (bn.name, time.monotonic_ns()))
        eve.connect(bn.port)
        eve.subscribe(topic_filter, 1)
        out.append(eve)
    return out


def only_ciphertext(seen, plaintexts):
    """Every message an eavesdropper saw is a version-1 envelope of the right size class
    (PROTOCOL.md §5.1: 50..65 bytes more than the payload at padding 16), and no payload or 12-byte
    piece of one appears anywhere in what it saw."""
    sizes = sorted(len(p) for p in plaintexts)
    for m in seen:
        check(len(m.payload) >= 50 and m.payload[0] == 2, "not an envelope: %r" % m)
        check(any(50 <= len(m.payload) - s <= 65 for s in sizes), "envelope size %d fits no payload" % len(m.payload))
    blob = b"\x00".join(m.payload for m in seen)
    for p in plaintexts:
        if len(p) >= 4:
            check(p not in blob, "plaintext payload visible at the broker")
        for i in range(0, max(0, len(p) - 12), max(1, len(p) // 256)):
            check(p[i:i + 12] not in blob, "a 12-byte piece of a payload is visible at the broker")


def dropped(node):
    return {k: v for k, v in node.metrics().items() if k.startswith("mqseal_dropped_total") and v}


# ---------------------------------------------------------------- the broker itself

@stops_clean
def test_broker_facts(workdir):
    """What BROKERS.md says about RabbitMQ 3.10, checked on this cluster: messages cross nodes; a
    retained message is kept by the node it was published to, and is delivered (RETAIN=1) only to a
    new subscription without wildcards at that same node; an empty retained message at the other node
    does not delete it; MQTT 5 is refused; QoS 2 subscriptions are granted QoS 1."""
    n1, n2 = cluster().nodes
    pub = Client("facts-pub")
    pub.connect(n1.port)
    sub2 = Client("facts-live")
    sub2.connect(n2.port)
    check(sub2.subscribe("facts/live/#", 2) == (1,), "QoS 2 subscription granted QoS 1")
    pub.publish("facts/live/x", b"across", 1)
    got = sub2.expect(1)
    check(got[0].payload == b"across" and got[0].qos == 1, "node 1 -> node 2: %r" % got)
    pub.publish("facts/ret/x", b"kept at node 1", 1, retain=True)
    time.sleep(0.3)

    def first_sub(port, flt, name):
        c = Client("facts-%s-%d" % (name, time.monotonic_ns()))
        c.connect(port)
        c.subscribe(flt, 1)
        msgs = c.quiet(1.5)
        c.disconnect()
        return msgs

    same_exact = first_sub(n1.port, "facts/ret/x", "n1-exact")
    check([(m.payload, m.retain) for m in same_exact] == [(b"kept at node 1", True)],
          "exact subscription at the same node gets the retained message: %r" % same_exact)
    check(first_sub(n1.port, "facts/ret/+", "n1-plus") == [], "a '+' subscription gets no retained message")
    check(first_sub(n1.port, "facts/#", "n1-hash") == [], "a '#' subscription gets no retained message")
    check(first_sub(n2.port, "facts/ret/x", "n2-exact") == [], "the other node does not have it")
    clear = Client("facts-clear")
    clear.connect(n2.port)
    clear.publish("facts/ret/x", b"", 1, retain=True)
    check(len(first_sub(n1.port, "facts/ret/x", "n1-after")) == 1, "a delete at node 2 leaves node 1's copy")
    pub.publish("facts/ret/x", b"", 1, retain=True)  # tidy up
    v5 = Client("facts-v5", version=5)
    try:
        v5.connect(n1.port, timeout=5)
        raise TestFailure("RabbitMQ 3.10 accepted an MQTT 5 CONNECT")
    except TestFailure as e:
        check("CONNACK" in str(e), "MQTT 5 refused (no CONNACK): %s" % e)
    print("  retained: per node, exact-topic subscriptions only; MQTT 5 refused; QoS 2 granted as 1")


# ---------------------------------------------------------------- key exchange across the cluster

@stops_clean
def test_keyed_across_nodes_either_order(workdir):
    """Neither node ever receives the other's retained announcement (it subscribes with '+'); the one
    that starts later announces, the earlier one re-issues with an entry for it (§7.4), and the later
    one re-issues in turn: keyed both ways within seconds, in either order."""
    for first, second in ((0, 1), (1, 0)):
        tag = "ko%d" % first
        sub = os.path.join(workdir, tag)
        os.makedirs(sub)
        ns = nodes(sub, tag, start=False)
        eves = eavesdroppers("mqseal-%s/#" % tag)
        ns[first].start()
        eventually(lambda: ns[first].metric("mqseal_announcements_sent_total") >= 1, 10, msg="first announced")
        time.sleep(1.0)
        ns[second].start()
        t = wait_keyed(ns, timeout=15)
        for n in ns:
            check(n.metric("mqseal_announcements_sent_total") >= 2, "%s re-issued" % n.node_id)
        # What crossed the broker: both announcements reached the eavesdropper at each node (live
        # delivery), and none was delivered as retained.
        for eve in eves:
            seen = eve.quiet(0.5)
            anns = [m for m in seen if "/kx/" in m.topic]
            check({m.topic.rsplit("/", 1)[1] for m in anns} == {n.node_id for n in ns}, "both announced: %r" % anns)
            check(not any(m.retain for m in seen), "nothing delivered as retained")
            eve.disconnect()
        print("  node %d first: keyed both ways %.2fs after the second node started" % (first + 1, t))
        for n in ns:
            stop_clean(n)


# ---------------------------------------------------------------- sealed traffic

@stops_clean
def test_sealed_round_trip_qos0_qos1(workdir):
    a, b = nodes(workdir, "rt")
    wait_keyed([a, b])
    n1, n2 = cluster().nodes
    check("mqseal-rt-a" in cluster().mqtt_clients(n1) and "mqseal-rt-b" in cluster().mqtt_clients(n2),
          "a's key-exchange connection is at broker node 1, b's at node 2")
    eves = eavesdroppers("rt/#")
    sub = Client("rt-sub")
    sub.connect(b.port)
    sub.subscribe("rt/#", 1)
    pub = Client("rt-pub")
    pub.connect(a.port)
    sizes = [1, 15, 16, 100, 1000, 16 * 1024, 100 * 1024]
    sent = []
    for qos in (0, 1):
        for i, n in enumerate(sizes):
            body = (b"%d:%d:" % (qos, i) + os.urandom(n))[:n] if n >= 8 else os.urandom(n)
            pub.publish("rt/q%d" % qos, body, qos)
            sent.append((qos, body))
    got = sub.expect(len(sent), timeout=20)
    for qos in (0, 1):
        want = [p for q, p in sent if q == qos]
        have = [m.payload for m in got if m.topic == "rt/q%d" % qos]
        same = sum(x == y for x, y in zip(have, want))
        check(have == want, "QoS %d: %d of %d intact, in order" % (qos, same, len(want)))
        check(all(m.qos == qos for m in got if m.topic == "rt/q%d" % qos), "QoS %d kept" % qos)
    # QoS 2: the broker treats it as QoS 1 (no exactly-once); it still arrives once, sealed and intact.
    pub.publish("rt/q2", b"exactly-once wished", 2, timeout=10)
    m2 = sub.expect(1)[0]
    check(m2.payload == b"exactly-once wished" and m2.qos == 1, "QoS 2 delivered as QoS 1: %r" % m2)
    check(not sub.quiet(0.5), "nothing extra")
    plain = [p for _, p in sent] + [b"exactly-once wished"]
    for eve in eves:
        seen = eve.expect(len(plain), timeout=10)
        only_ciphertext(seen, plain)
        check(not eve.quiet(0.3), "eavesdropper saw exactly one copy of each")
    check(not dropped(b), "b dropped nothing: %r" % dropped(b))
    check(b.metric("mqseal_opened_total") >= len(plain), "b opened every message")
    print("  %d messages (1 B..100 KiB, QoS 0/1/2->1) intact; brokers at both nodes saw ciphertext only"
          % len(plain))


class Stream:
    """QoS 1 traffic at ~100 messages/s from a device behind one node to a device behind another."""

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
        self.t.start()

    def run(self):
        try:
            while not self.stop.is_set():
                self.pub.publish(self.topic, b"%s-%06d" % (self.tag.encode(), self.sent), 1, timeout=20)
                self.sent += 1
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self, timeout=30):
        self.stop.set()
        self.t.join(30)
        check(self.error is None, "publisher failed: %r" % self.error)
        got = self.sub.expect(self.sent, timeout=timeout)
        want = [b"%s-%06d" % (self.tag.encode(), i) for i in range(self.sent)]
        check([m.payload for m in got] == want, "%s: all %d in order" % (self.tag, self.sent))
        check(not self.sub.quiet(0.5), "%s: nothing extra" % self.tag)
        return self.sent


@stops_clean
def test_rotation_under_traffic(workdir):
    a, b = nodes(workdir, "rot", keyex=FAST)
    wait_keyed([a, b])
    r0 = (a.metric("mqseal_rotations_total"), b.metric("mqseal_rotations_total"))
    ab = Stream(a.port, b.port, "rot/ab", "ab")
    ba = Stream(b.port, a.port, "rot/ba", "ba")
    eventually(lambda: a.metric("mqseal_rotations_total") >= r0[0] + 8 and
               b.metric("mqseal_rotations_total") >= r0[1] + 8, 90, interval=0.5, msg="8 rotations on each node")
    n1, n2 = ab.finish(), ba.finish()
    for n in (a, b):
        check(not dropped(n), "%s dropped nothing: %r" % (n.node_id, dropped(n)))
        check(n.metric("mqseal_activations_total") >= 9, "%s activated each epoch" % n.node_id)
    confirmed = a.output().count("confirmed by every live peer")
    print("  %d + %d QoS 1 messages across >= 8 rotations per node, none lost; %d activations of a by "
          "confirmation" % (n1, n2, confirmed))


# ---------------------------------------------------------------- recovery without retained announcements

def kick(port, client_id):
    """Makes the broker disconnect the client with this id: a new connection with the same client id
    takes the session over (MQTT-3.1.4-2); RabbitMQ does this cluster-wide."""
    k = Client(client_id)
    k.connect(port)
    time.sleep(0.3)
    k.disconnect()


def last_rotation(node):
    """Wall-clock time of the node's latest "epoch ... started" log line."""
    stamps = [line.split()[0] for line in node.output().splitlines() if " started (" in line]
    ts = stamps[-1]
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float(ts[19:-1] or 0)


def started_epochs(node):
    return [int(line.split("epoch ")[1].split()[0]) for line in node.output().splitlines() if " started (" in line]


def installed_since_reconnect(node, peer, epoch):
    """node logged, after its latest key-exchange (re)connection, that it installed peer's epoch."""
    lines = node.output().splitlines()
    up = max(i for i, line in enumerate(lines) if "key-exchange connection" in line and " up" in line)
    return any("peer %s keyed (epoch %d)" % (peer.node_id, epoch) in line for line in lines[up:])


@stops_clean
def test_peer_restart(workdir):
    """b is killed and restarted: nothing retained reaches it (its '+' subscription gets no retained
    announcement on RabbitMQ); its new announcement makes a re-issue, and traffic resumes."""
    a, b = nodes(workdir, "rs", keyex={"interval_seconds": 4, "activation_seconds": 1})
    wait_keyed([a, b])
    b.kill()
    b.start()
    t = wait_keyed([a, b])
    st = Stream(a.port, b.port, "rs/ab", "rs")
    time.sleep(5.0)  # across one rotation of each
    n = st.finish()
    check(not dropped(b), "b dropped nothing: %r" % dropped(b))
    print("  b killed and restarted: keyed again after %.2fs; %d QoS 1 messages after, none lost" % (t, n))



def log_time(line):
    ts = line.split()[0]
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float(ts[19:-1] or 0)


@stops_clean
def test_broker_disconnect_while_peer_rotates(workdir):
    """The broker drops b's key-exchange connection (client-id takeover) just before a rotates (a: T = 8 s,
    jitter <= 0.4 s; b reconnects 1-2.25 s later; b: T = 120 s, so b does not rotate meanwhile). a's
    announcement of its new epoch is published while b is away, and on RabbitMQ b does not get it when
    it resubscribes (no retained delivery to '+'). b's reconnect announcement still names a's previous
    epoch; for b to open a's messages, a must re-issue its new epoch for b (§7.4) within the 5 s that b
    waits for an unknown key (R35).

    a's last announcement already wraps to b's (unchanged) ephemeral key, but b announced well after
    it, so a knows b did not see it and re-issues (§7.4)."""
    a, b = nodes(workdir, "dis", keyex={"activation_seconds": 1},
                 each={"a": {"interval_seconds": 8}, "b": {"interval_seconds": 120}})
    wait_keyed([a, b])
    # The first rotation after start comes anywhere in [T/2, T) (PROTOCOL.md §9.2); from the
    # second on they come every T (less a jitter of at most T/20): time the kick from there.
    eventually(lambda: len(started_epochs(a)) >= 2, 12, interval=0.05, msg="a's first rotation")
    st = Stream(a.port, b.port, "dis/ab", "dis")
    time.sleep(1.0)
    recon = b.metric("mqseal_control_reconnects_total")
    eventually(lambda: time.time() < last_rotation(a) + 7.0, 12, interval=0.02, msg="a rotation just happened")
    before = max(started_epochs(a))
    while time.time() < last_rotation(a) + 7.4:
        time.sleep(0.01)
    kick(cluster().nodes[1].port, "mqseal-" + b.node_id)
    eventually(lambda: b.metric("mqseal_control_reconnects_total") > recon, 10, msg="b saw the disconnect")
    new = eventually(lambda: max(started_epochs(a)) if max(started_epochs(a)) > before else None, 10,
                     msg="a rotated")
    eventually(lambda: b.metric("mqseal_broker_connected") == 1, 10, msg="b reconnected")
    lines = b.output().splitlines()
    lost_at = max(log_time(x) for x in lines if "key-exchange connection lost" in x)
    up_at = max(log_time(x) for x in lines if "key-exchange connection" in x and " up" in x)
    check(lost_at < last_rotation(a) < up_at, "a rotated while b was away")
    eventually(lambda: installed_since_reconnect(b, a, new), 4, msg="b installed a's epoch %d" % new)
    time.sleep(2.0)
    n = st.finish()
    check(not dropped(b), "b dropped nothing: %r" % dropped(b))
    print("  b's key-exchange connection dropped while a rotated: a re-issued epoch %d; %d QoS 1 "
          "messages, none lost" % (new, n))


def forged_envelope():
    """A well-formed version-2 envelope (PROTOCOL.md §5.1) under a key id nobody announced."""
    return bytes([2, 0]) + os.urandom(8) + bytes(16) + os.urandom(32 + 16)


@stops_clean
def test_unknown_key_messages_held_aside(workdir):
    """Sealed messages under a key id that never comes (forged at broker node 1) are kept aside for
    5 s and then dropped (unknown_key), while b's keys change (b rotates every 2 s): later messages
    on their topic arrive after them, in order; messages on other topics are not delayed.

    Second part, the documented cost (PROTOCOL.md §6.1 step 3): a held QoS 1 message is not
    acknowledged to the broker until it is opened or dropped, and RabbitMQ delivers at most
    mqtt.prefetch = 10 unacknowledged QoS 1 messages to a connection (mosquitto: 20). So 12 forged
    envelopes on one topic delay the device's other topics too, for at most the 5 s of R35; nothing
    is lost."""
    a, b = nodes(workdir, "uk", keyex={"activation_seconds": 1}, each={"b": {"interval_seconds": 2}})
    wait_keyed([a, b])
    sub = Client("uk-sub")
    sub.connect(b.port)
    sub.subscribe("uk/#", 1)
    pub = Client("uk-pub")
    pub.connect(a.port)
    mallory = Client("uk-mallory")
    mallory.connect(cluster().nodes[0].port)
    # 1. one forged message: its topic waits, the others do not
    mallory.publish("uk/x", forged_envelope(), 1)
    t0 = time.monotonic()
    for i in range(3):
        pub.publish("uk/x", b"same-%d" % i, 1)
        pub.publish("uk/y", b"other-%d" % i, 1)
    got = []
    for _ in range(6):
        m = sub.expect(1, timeout=15)[0]
        got.append((m.topic, m.payload, time.monotonic() - t0))
    other = [g for g in got if g[0] == "uk/y"]
    same = [g for g in got if g[0] == "uk/x"]
    check([g[1] for g in other] == [b"other-%d" % i for i in range(3)] and other[-1][2] < 2.5,
          "other topic not delayed: %r" % got)
    check([g[1] for g in same] == [b"same-%d" % i for i in range(3)] and same[0][2] > 4.0,
          "same topic after the forged one, in order: %r" % got)
    eventually(lambda: dropped(b) == {'mqseal_dropped_total{reason="unknown_key"}': 1.0}, 5,
               msg="the forged message dropped as unknown_key")
    check(b.metric("mqseal_rotations_total") >= 3, "b's keys changed during the wait")
    print("  one unknown key id: its topic waited %.1fs, other topics %.1fs; dropped as unknown_key"
          % (same[0][2], other[-1][2]))
    # 2. more forged QoS 1 messages than the broker's in-flight window
    for _ in range(12):
        mallory.publish("uk/z", forged_envelope(), 1)
    time.sleep(0.3)
    t0 = time.monotonic()
    pub.publish("uk/y", b"after-flood", 1)
    late = sub.expect(1, timeout=15)[0]
    delay = time.monotonic() - t0
    check(late.payload == b"after-flood", "delivered: %r" % late)
    # the late message gets through at the latest when the first held one is dropped (5 s)
    check(delay < 10.0, "another topic delayed %.1fs: more than the 5 s a held message may wait" % delay)
    eventually(lambda: dropped(b).get('mqseal_dropped_total{reason="unknown_key"}', 0) >= 13, 10,
               msg="every forged message dropped as unknown_key")
    print("  12 unknown key ids on one topic: another topic delayed %.1fs (RabbitMQ's in-flight window "
          "is 10; at most 5 s by design)" % delay)


def rabbit_user(node, user, password, prefix, retained=None):
    """A RabbitMQ user for the mqseal node whose node_id is user, with the permissions of
    docs/BROKERS.md: the queues of its own key-exchange connection (client id mqseal-<id>) and the
    exchange amq.topic only; topic permissions: publish <prefix>/kx/<peer>/<id>,
    <prefix>/ack/<peer>/<id> and <prefix>/presence/<id>, subscribe <prefix>/kx/<id>/<peer> (exact,
    one per peer), <prefix>/ack/<id>/+ and <prefix>/presence/<peer> (as AMQP routing keys: '/' is
    '.', '+' is '*'). retained: a routing-key regex of the sealed topics its devices
    publish retained messages on, which the node watches and re-publishes over its key-exchange
    connection (read and write)."""
    p = prefix.replace(".", "\\.")
    q = "mqtt-subscription-mqseal-%sqos[01]" % user
    node.ctl("add_user", user, password)
    node.ctl("set_permissions", "-p", "/", user, "^%s$" % q, "^(amq\\.topic|%s)$" % q, "^(amq\\.topic|%s)$" % q)
    own = "((kx|ack)\\.[^.]+\\.{username}|presence\\.{username})"
    write = "^%s\\.%s$" % (p, own)
    if retained:
        write = "^(%s\\.%s|%s)$" % (p, own, retained)
    mine = "(kx\\.{username}\\.[^.*]+|ack\\.{username}\\.\\*|presence\\.[^.*]+)"
    read = "^%s\\.%s$" % (p, mine)
    if retained:  # the node watches the topics of its retained cache (PROTOCOL.md §10.1)
        read = "^(%s\\.%s|%s)$" % (p, mine, retained)
    node.ctl("set_topic_permissions", "-p", "/", user, "amq.topic", write, read)


@stops_clean
def test_topic_permissions(workdir):
    """The RabbitMQ permissions of BROKERS.md: the nodes key and exchange sealed traffic with them;
    with a node's credentials nothing else is possible (RabbitMQ 3.10 closes the connection on a
    refused SUBSCRIBE or PUBLISH). A node whose devices publish retained messages re-publishes them
    after each activation over its key-exchange connection: without write permission on those topics,
    RabbitMQ closes that connection every time (a is allowed acl/r/#, b is not)."""
    n1, n2 = cluster().nodes
    prefix = "mqseal-acl"
    rabbit_user(n1, "acl-a", "pw-acl-a", prefix, retained="acl\\.r\\..*")
    rabbit_user(n1, "acl-b", "pw-acl-b", prefix)
    a, b = nodes(workdir, "acl", keyex={"interval_seconds": 4, "activation_seconds": 1},
                 each={"a": {"username": "acl-a", "password": "pw-acl-a"},
                       "b": {"username": "acl-b", "password": "pw-acl-b"}})
    wait_keyed([a, b])
    sub = Client("acl-sub")
    sub.connect(b.port)
    sub.subscribe("acl/#", 1)
    pub = Client("acl-pub")
    pub.connect(a.port)
    pub.publish("acl/x", b"with permissions", 1)
    check(sub.expect(1)[0].payload == b"with permissions", "sealed traffic flows")
    for n, dev in ((a, pub), (b, Client("acl-pub-b"))):
        if dev is not pub:
            dev.connect(b.port)
        dev.publish("acl/r/" + n.node_id, b"retained", 1, retain=True)
    r0 = (a.metric("mqseal_control_reconnects_total"), b.metric("mqseal_control_reconnects_total"))
    eventually(lambda: a.metric("mqseal_activations_total") >= 3, 15, msg="two rotations of a")
    eventually(lambda: b.metric("mqseal_control_reconnects_total") > r0[1], 10,
               msg="b's re-publish refused: connection closed")
    check(a.metric("mqseal_control_reconnects_total") == r0[0], "a re-publishes its retained message freely")
    # The refused PUBLISH is not sent again after the reconnect (a fresh client per connection),
    # and b stops re-publishing: its key-exchange connection closes once and stays up.
    time.sleep(6.0)
    flaps = b.metric("mqseal_control_reconnects_total") - r0[1]
    check(flaps <= 1, "b's key-exchange connection closed %d times: the refused PUBLISH is re-sent" % flaps)
    b.wait_log("retained values are no longer re-sealed")
    print("  b's refused re-publish closed its key-exchange connection once; it came back and stayed")
    # b's credentials, tried with b's own client id (its queue permissions name it) while b is down
    stop_clean(b)

    def as_b(what, fn, allowed):
        m = Client("mqseal-acl-b")
        m.c.username_pw_set("acl-b", "pw-acl-b")
        m.connect(n2.port)
        try:
            fn(m)
            ok = True
        except TestFailure:
            ok = False
        closed = m.disconnected.wait(0.5 if ok else 3.0)
        check(ok == allowed and closed != allowed, "%s with b's credentials: %s" % (
            what, "allowed" if allowed else "refused"))
        m.disconnect()
    as_b("subscribe kx/acl-b/acl-a", lambda m: m.subscribe(prefix + "/kx/acl-b/acl-a", 1, timeout=3), True)
    as_b("subscribe ack/acl-b/+", lambda m: m.subscribe(prefix + "/ack/acl-b/+", 1, timeout=3), True)
    as_b("publish kx/acl-a/acl-b", lambda m: m.publish(prefix + "/kx/acl-a/acl-b", b"x", 1, timeout=3), True)
    as_b("publish ack/acl-a/acl-b", lambda m: m.publish(prefix + "/ack/acl-a/acl-b", b"x", 1, timeout=3), True)
    as_b("subscribe ack/acl-a/+ (a's confirmations)", lambda m: m.subscribe(prefix + "/ack/acl-a/+", 1, timeout=3),
         False)
    as_b("subscribe #", lambda m: m.subscribe("#", 1, timeout=3), False)
    as_b("publish kx/acl-b/acl-a (impersonation)",
         lambda m: m.publish(prefix + "/kx/acl-b/acl-a", b"x", 1, timeout=3), False)
    as_b("publish ack/acl-b/acl-a", lambda m: m.publish(prefix + "/ack/acl-b/acl-a", b"x", 1, timeout=3), False)
    as_b("publish a data topic", lambda m: m.publish("acl/x", b"x", 1, timeout=3), False)
    spoof = Client("mqseal-acl-a-spoof")  # another client id: its subscription queue is not b's
    spoof.c.username_pw_set("acl-b", "pw-acl-b")
    spoof.connect(n2.port)
    check(not spoof.disconnected.is_set(), "connected")
    try:
        spoof.subscribe(prefix + "/kx/acl-b/acl-a", 1, timeout=3)
        raise TestFailure("a subscription under another client id was allowed")
    except TestFailure as e:
        check("SUBACK" in str(e) and spoof.disconnected.wait(3.0), "refused: %s" % e)
    b.start()
    wait_keyed([a, b])
    print("  permissions: the nodes keyed; with b's credentials 4 allowed, 6 refused as documented")


MOSQ_USERS = {"gw-a": "pw-a", "gw-b": "pw-b", "dev1": "pw-d"}

# docs/BROKERS.md, mosquitto, variant 1: pattern lines (user name of a node's key-exchange connection
# = its node_id); any client may read the announcements, which are public by design (PROTOCOL.md §2).
MOSQ_ACL_PATTERN = """pattern write mqseal/kx/+/%u
pattern write mqseal/ack/+/%u
pattern write mqseal/presence/%u
pattern read mqseal/kx/+/+
pattern read mqseal/ack/%u/+
pattern read mqseal/presence/+
user dev1
topic readwrite home/#
"""

# Variant 2: one block per node; devices get nothing under mqseal/.
MOSQ_ACL_BLOCKS = "".join("""user %s
topic write mqseal/kx/+/%s
topic write mqseal/ack/+/%s
topic write mqseal/presence/%s
topic read mqseal/kx/%s/+
topic read mqseal/ack/%s/+
topic read mqseal/presence/+
""" % ((n,) * 6) for n in ("gw-a", "gw-b")) + """user dev1
topic readwrite home/#
"""


def mosquitto_acl_case(workdir, acl, devices_see_announcements):
    pw = os.path.join(workdir, "passwd")
    for k, (u, p) in enumerate(MOSQ_USERS.items()):
        subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if k == 0 else []) + [pw, u, p], check=True,
                       capture_output=True, timeout=30)
    with open(os.path.join(workdir, "acl"), "w") as f:
        f.write(acl)
    broker = Broker(workdir, extra="allow_anonymous false\npassword_file %s\nacl_file %s" % (
        pw, os.path.join(workdir, "acl"))).start()
    a, b = (Node(workdir, n, broker.port, conf={"keyex": {"username": n, "password": MOSQ_USERS[n]}})
            for n in ("gw-a", "gw-b"))
    _made.extend((a, b))
    a.trust(b)
    b.trust(a)
    a.start()
    b.start()
    wait_keyed([a, b])

    def client(user, port=broker.port):
        c = Client("%s-%d" % (user, time.monotonic_ns()))
        c.c.username_pw_set(user, MOSQ_USERS[user])
        c.connect(port)
        return c
    sub, pub = client("dev1", b.port), client("dev1", a.port)
    sub.subscribe("home/#", 1)
    pub.publish("home/x", b"through the ACL", 1)
    check(sub.expect(1)[0].payload == b"through the ACL", "devices' sealed traffic flows")
    # b's credentials cannot overwrite a's retained announcement, nor confirm as a
    mallory = client("gw-b")
    mallory.publish("mqseal/kx/gw-b/gw-a", b"junk", 1, retain=True)
    mallory.publish("mqseal/ack/gw-b/gw-a", b"junk", 1)
    check([m.payload[:4] for m in captured(client("gw-b"), "mqseal/kx/gw-b/gw-a")] == [b"MQSL"],
          "a's retained announcement to b intact")
    # b's credentials cannot read a's confirmations; a's can
    spy, reader = client("gw-b"), client("gw-a")
    spy.subscribe("mqseal/ack/gw-a/+", 1)
    reader.subscribe("mqseal/ack/gw-a/+", 1)
    mallory.publish("mqseal/ack/gw-a/gw-b", b"an ack from b", 1)
    check(reader.expect(1)[0].payload == b"an ack from b", "a reads its confirmations")
    check(spy.quiet(1.0) == [], "b cannot read a's confirmations")
    # devices: no writing under mqseal/; reading announcements only with the pattern variant
    dev = client("dev1")
    dev.publish("mqseal/kx/gw-b/gw-a", b"junk", 1, retain=True)
    seen = captured(client("dev1"), "mqseal/#")
    check(len(seen) == (4 if devices_see_announcements else 0) and all(m.payload[:4] == b"MQSL" for m in seen),
          "devices see %s: %r" % ("the announcements and presence only" if devices_see_announcements else "nothing", seen))
    return a, b


def captured(c, flt, wait=1.0):
    c.subscribe(flt, 1)
    out = c.quiet(wait)
    c.disconnect()
    return out


@stops_clean
def test_mosquitto_acl(workdir):
    """The mosquitto ACLs of BROKERS.md (mosquitto 2.0 grants every SUBSCRIBE and filters what it
    delivers; a refused PUBLISH is acknowledged and dropped): the nodes key and relay sealed
    traffic; a node's credentials can neither impersonate another node nor read its confirmations;
    devices cannot write under mqseal/, and with per-node blocks cannot read there either."""
    for name, acl, public in (("pattern", MOSQ_ACL_PATTERN, True), ("blocks", MOSQ_ACL_BLOCKS, False)):
        sub = os.path.join(workdir, name)
        os.makedirs(sub)
        for n in mosquitto_acl_case(sub, acl, public):
            stop_clean(n)
        harness.stop_all()
    print("  mosquitto acl_file, pattern lines and per-node blocks: as documented")


@stops_clean
def test_dot_in_topic_fails_closed(workdir):
    """RabbitMQ maps MQTT '/' to AMQP '.', and a '.' inside a level becomes a level separator: a topic
    'dot/a.b' is delivered as 'dot/a/b'. The topic is in the AAD (§5.4), so the receiving node drops
    the message (auth) instead of delivering it under a topic the publisher did not use."""
    a, b = nodes(workdir, "dot")
    wait_keyed([a, b])
    sub = Client("dot-sub")
    sub.connect(b.port)
    sub.subscribe("dot/#", 1)
    eve = eavesdroppers("dot/#")[1]
    pub = Client("dot-pub")
    pub.connect(a.port)
    pub.publish("dot/a.b", b"dotted", 1)
    seen = eve.expect(1)
    check(seen[0].topic == "dot/a/b", "the broker rewrote the topic: %r" % seen)
    eventually(lambda: b.metric('mqseal_dropped_total{reason="auth"}') >= 1, 5, msg="dropped as auth")
    check(sub.quiet(1.0) == [], "nothing delivered")
    pub.publish("dot/a-b", b"dashed", 1)
    check(sub.expect(1)[0].payload == b"dashed", "a topic without '.' goes through")
    # A node id with a '.': its announcement topic mqseal-dotid/kx/x.b/x.a has six AMQP words and
    # arrives as another topic than the one signed. Nothing is accepted, nothing keys.
    x, y = nodes(os.path.join(workdir, "ids"), "dotid", ids=("x.a", "x.b"))
    time.sleep(5.0)
    for n in (x, y):
        m = n.metrics()
        check(m.get("mqseal_peers_keyed") == 0 and m.get("mqseal_announcements_accepted_total", 0) == 0,
              "%s cannot key over RabbitMQ with a '.' in the ids" % n.node_id)
    print("  '.' in a topic: rewritten by the broker, dropped (auth); '.' in node ids: never keyed")


if __name__ == "__main__":
    run([test_broker_facts, test_keyed_across_nodes_either_order, test_sealed_round_trip_qos0_qos1,
         test_rotation_under_traffic, test_peer_restart, test_broker_disconnect_while_peer_rotates,
         test_unknown_key_messages_held_aside, test_topic_permissions, test_mosquitto_acl,
         test_dot_in_topic_fails_closed])
