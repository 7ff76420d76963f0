"""Replay and rollback at the broker (issue 13, items 1-4): an attacker with full rights at the
broker captures sealed payloads and publishes the same bytes again on the same topic (RETAIN set
where it helps him), and the node's own retained cache is checked for what it re-publishes.

The rule asserted (docs/PROTOCOL.md §2, §6, §10): a sealed message reaches a device (by client id,
or a device with no stable client id) at most once, and never if it was sealed more than the
tolerance (keyex.max_skew_seconds, 2 s in every node here) before that device's subscription
covering its topic existed, except the latest retained value of a topic (once per new
subscription) and what the broker queued for a persistent session. Reconnects, clean sessions,
session takeovers, zero-length client ids, node restarts and rotations do not reopen it; a topic's
retained value never goes back to an older one, across epochs too, and RETAIN=1 never passes the
window of a live subscription; the node re-publishes only retained values the broker accepted from
the device, and forgets one as soon as anyone writes the topic again.

Replays are counted under the drop reasons replay, before_subscription and rollback (summed, so
the exact split is free); every case also counts the legitimate traffic sent after the attack, and
checks the legitimate flow first, so a broken set-up fails with another message than the attack.
Each case prints what it observed ("observed: ...")."""
# ctest-labels: sealing replay
# ctest-timeout: 300
import os
import queue
import subprocess
import threading
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from harness import Broker, Client, Node, check, eventually, run

TOL = 2                      # keyex.max_skew_seconds of every node: the delivery rule's tolerance
PAST_TOL = TOL + 1.0         # a wait that is surely more than the tolerance
REPLAY_REASONS = ("replay", "before_subscription", "rollback")
UNLOCK = b"UNLOCK"


# ---------------------------------------------------------------- set-up

def merged(*confs):
    """Node configurations merged left to right, groups (dicts) merged one level deep."""
    out = {}
    for c in confs:
        for k, v in (c or {}).items():
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = dict(out[k], **v)
            else:
                out[k] = dict(v) if isinstance(v, dict) else v
    return out


def pair(workdir, conf=None, each=None, broker=None, ids=("a", "b")):
    """A broker (started here unless given) and nodes a, b trusting each other, keyed; every node
    with the tolerance TOL; conf for both, each = {id: conf} for one."""
    broker = broker or Broker(workdir).start()
    nodes = [Node(workdir, i, broker.port, conf=merged({"keyex": {"max_skew_seconds": TOL}}, conf,
                                                       (each or {}).get(i))) for i in ids]
    for n in nodes:
        n.trust(*[m for m in nodes if m is not n])
    for n in nodes:
        n.start()
    for n in nodes:
        eventually(lambda: n.metric("mqseal_peers_keyed") == len(nodes) - 1, 15, msg="%s keyed" % n.node_id)
    return [broker] + nodes


def device(node, cid, *filters, version=4, user=None, rap=False):
    """A device behind node, clean session, subscribed (QoS 1) to filters; rap: MQTT 5 Retain As
    Published. paho's automatic reconnect is pushed far out: a device reconnects only when the test
    says so."""
    c = Client(cid, version)
    c.c.reconnect_delay_set(60, 120)
    if user:
        c.c.username_pw_set(user, user + "-pw")
    c.connect(node.port)
    for f in filters:
        if rap:
            c.subscribe(f, 0, options=SubscribeOptions(qos=1, retainAsPublished=True))
        else:
            c.subscribe(f, 1)
    return c


def connections(node):
    return node.metric("mqseal_device_connections_open")


def reconnect(node, dev, cid, *filters, version=4):
    """dev disconnects and, once node has closed that connection (as for a device that comes back a
    moment later, not one racing its own close), connects again: same client id, clean session."""
    n = connections(node)
    dev.disconnect()
    eventually(lambda: connections(node) < n, 10, msg="%s closed the device connection" % node.node_id)
    return device(node, cid, *filters, version=version)


class Attacker:
    """A client of the broker with full rights: captures what it sees on filters, re-publishes it."""

    def __init__(self, broker_port, *filters, user=None):
        self.cap = Client("attacker-cap-%d" % time.monotonic_ns())
        self.pub = Client("attacker-pub-%d" % time.monotonic_ns())
        for c in (self.cap, self.pub):
            c.c.reconnect_delay_set(60, 120)
            if user:
                c.c.username_pw_set(user, user + "-pw")
            c.connect(broker_port)
        for f in filters:
            self.cap.subscribe(f, 1)
        self.seen = []  # (topic, payload) in arrival order

    def take(self, topic, n=1, timeout=10):
        """The next n captured payloads on topic (others seen meanwhile are kept in self.seen)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            m = next_msg(self.cap, deadline)
            check(m is not None, "attacker captured %d of %d messages on %s" % (len(out), n, topic))
            self.seen.append((m.topic, m.payload))
            if m.topic == topic:
                out.append(m.payload)
        return out

    def replay(self, topic, payload, retain=False, times=1):
        for _ in range(times):
            self.pub.publish(topic, payload, 1, retain=retain)


def metric_sum(node, reasons=None):
    """mqseal_dropped_total summed over reasons (None: every reason)."""
    m = node.metrics()
    if reasons is None:
        return sum(v for k, v in m.items() if k.startswith("mqseal_dropped_total"))
    return sum(m.get('mqseal_dropped_total{reason="%s"}' % r, 0.0) for r in reasons)


def replay_drops(node):
    return metric_sum(node, REPLAY_REASONS)


def next_msg(client, deadline):
    """The next message client receives before deadline (monotonic), or None."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    try:
        return client.msgs.get(timeout=left)
    except queue.Empty:
        return None


def upto(dev, topic, payload, timeout=10):
    """What dev receives up to and including (topic, payload); fails if that one never arrives. A
    legitimate message sent after an attack on the same topic comes after it at the device (one
    broker session, ordered per topic), so the attack's fate is decided when it arrives."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        m = next_msg(dev, deadline)
        check(m is not None, "legitimate %r on %s not delivered; got %r" % (payload, topic, got[:8]))
        got.append(m)
        if m.topic == topic and m.payload == payload:
            return got


def count(msgs, payload, topic=None):
    return sum(1 for m in msgs if m.payload == payload and (topic is None or m.topic == topic))


def observed(text):
    print("  observed: " + text, flush=True)


def activations(node):
    return node.metric("mqseal_activations_total")


def wait_activations(node, n, after, timeout=30):
    """Waits until node activated n more epochs than the count `after`."""
    eventually(lambda: activations(node) >= after + n, timeout, interval=0.1,
               msg="%s activated %d more epochs" % (node.node_id, n))


# ---------------------------------------------------------------- 1. reconnects, takeovers, new ids

def test_replay_after_clean_reconnect(workdir):
    """Case 1: a captured UNLOCK re-published after each of 4 clean-session reconnects of the same
    client id (MQTT 3.1.1 and 5): delivered 0 times, each replay counted, legit traffic flows."""
    broker, a, b = pair(workdir)
    atk = Attacker(broker.port, "door/#")
    pub = device(a, "dev-a1")
    got_unlocks, legit, replays = {}, 0, 0
    before = replay_drops(b)
    for v in (4, 5):
        cid, topic = "dev-b1-v%d" % v, "door/1-%d" % v
        dev = device(b, cid, topic, version=v)
        pub.publish(topic, UNLOCK, 1)
        check([m.payload for m in dev.expect(1)] == [UNLOCK], "control: the live UNLOCK is delivered")
        env = atk.take(topic)[0]
        got_unlocks[v] = 0
        for i in range(4):
            dev = reconnect(b, dev, cid, topic, version=v)
            atk.replay(topic, env)
            replays += 1
            tag = b"legit-%d-%d" % (v, i)
            pub.publish(topic, tag, 1)
            got = upto(dev, topic, tag)
            legit += 1
            got_unlocks[v] += count(got, UNLOCK)
        dev.disconnect()
    observed("captured UNLOCK delivered again after %d of 4 clean reconnects (MQTT 3.1.1), %d of 4 (MQTT 5); "
             "replay drops counted %d of %d; legit %d of %d delivered" % (
                 got_unlocks[4], got_unlocks[5], replay_drops(b) - before, replays, legit, replays))
    check(got_unlocks[4] == 0 and got_unlocks[5] == 0,
          "captured UNLOCK delivered again after a clean reconnect: %r (version: times of 4)" % got_unlocks)
    eventually(lambda: replay_drops(b) - before >= replays, 5, msg="each replay counted")


def test_replay_after_forced_takeover(workdir):
    """Case 2: the attacker connects to the broker with the device's client id (the broker takes the
    session over, mqseal closes the device), the device reconnects, the captured UNLOCK is
    re-published: not delivered (MQTT 3.1.1 and 5)."""
    broker, a, b = pair(workdir)
    atk = Attacker(broker.port, "door/#")
    pub = device(a, "dev-a2")
    got_unlocks, legit = {}, 0
    before = replay_drops(b)
    for v in (4, 5):
        cid, topic = "dev-b2-v%d" % v, "door/2-%d" % v
        dev = device(b, cid, topic, version=v)
        pub.publish(topic, UNLOCK, 1)
        check([m.payload for m in dev.expect(1)] == [UNLOCK], "control: the live UNLOCK is delivered")
        env = atk.take(topic)[0]
        n = connections(b)
        thief = Client(cid, v)  # straight to the broker, with the device's client id
        thief.c.reconnect_delay_set(60, 120)
        thief.connect(broker.port)
        eventually(dev.disconnected.is_set, 10, msg="control: mqseal closed the device whose session was taken")
        eventually(lambda: connections(b) < n, 10, msg="control: b closed the device connection")
        dev.disconnect()
        thief.disconnect()
        dev = device(b, cid, topic, version=v)
        atk.replay(topic, env)
        tag = b"legit-after-takeover-%d" % v
        pub.publish(topic, tag, 1)
        got = upto(dev, topic, tag)
        legit += 1
        got_unlocks[v] = count(got, UNLOCK)
        dev.disconnect()
    observed("after a forced takeover and reconnect the captured UNLOCK was delivered %d time(s) (MQTT 3.1.1), "
             "%d (MQTT 5); replay drops %d; legit %d of 2" % (got_unlocks[4], got_unlocks[5],
                                                                 replay_drops(b) - before, legit))
    check(got_unlocks == {4: 0, 5: 0}, "UNLOCK delivered after a forced takeover: %r" % got_unlocks)
    eventually(lambda: replay_drops(b) - before >= 2, 5, msg="each replay counted")


def test_replay_to_zero_length_client_id(workdir):
    """Case 3: a device with a zero-length client id (MQTT 3.1.1 clean session, MQTT 5) gets UNLOCK,
    more than the tolerance later reconnects (a new connection, again no client id) and the
    captured UNLOCK is re-published: not delivered."""
    broker, a, b = pair(workdir)
    atk = Attacker(broker.port, "door/#")
    pub = device(a, "dev-a3")
    topics = {v: "door/3-%d" % v for v in (4, 5)}
    devs = {v: device(b, "", topics[v], version=v) for v in (4, 5)}
    envs = {}
    for v in (4, 5):
        pub.publish(topics[v], UNLOCK, 1)
        check([m.payload for m in devs[v].expect(1)] == [UNLOCK], "control: the live UNLOCK is delivered")
        envs[v] = atk.take(topics[v])[0]
    sealed = time.monotonic()
    for v in (4, 5):
        devs[v].disconnect()
    time.sleep(max(0.0, sealed + PAST_TOL - time.monotonic()))
    before = replay_drops(b)
    got_unlocks = {}
    for v in (4, 5):
        dev = device(b, "", topics[v], version=v)
        atk.replay(topics[v], envs[v])
        tag = b"legit-zero-id-%d" % v
        pub.publish(topics[v], tag, 1)
        got_unlocks[v] = count(upto(dev, topics[v], tag), UNLOCK)
    observed("zero-length client id, reconnected %.0f s after the UNLOCK: delivered again %d time(s) (MQTT 3.1.1), "
             "%d (MQTT 5); replay drops %d; legit 2 of 2" % (PAST_TOL, got_unlocks[4], got_unlocks[5],
                                                             replay_drops(b) - before))
    check(got_unlocks == {4: 0, 5: 0}, "UNLOCK delivered to a zero-length client id again: %r" % got_unlocks)
    eventually(lambda: replay_drops(b) - before >= 2, 5, msg="each replay counted")


def test_replay_to_later_subscriber(workdir):
    """Case 4: a device that subscribes (with a new client id) more than the tolerance after the
    UNLOCK was sealed does not get the captured UNLOCK; nor does the device that saw it live."""
    broker, a, b = pair(workdir)
    atk = Attacker(broker.port, "door/#")
    pub = device(a, "dev-a4")
    topic = "door/4"
    first = device(b, "dev-b4-first", topic)
    pub.publish(topic, UNLOCK, 1)
    check([m.payload for m in first.expect(1)] == [UNLOCK], "control: the live UNLOCK is delivered")
    env = atk.take(topic)[0]
    time.sleep(PAST_TOL)
    later = {v: device(b, "dev-b4-later-v%d" % v, topic, version=v) for v in (4, 5)}
    before = replay_drops(b)
    atk.replay(topic, env)
    tag = b"legit-after-later"
    pub.publish(topic, tag, 1)
    got = {name: count(upto(d, topic, tag), UNLOCK) for name, d in
           (("first", first), ("later-3.1.1", later[4]), ("later-5", later[5]))}
    observed("UNLOCK re-published %.0f s later: delivered to the later subscribers %d (MQTT 3.1.1) and %d (MQTT 5) "
             "time(s), to the device that saw it live %d; replay drops %d; legit 3 of 3" % (
                 PAST_TOL, got["later-3.1.1"], got["later-5"], got["first"], replay_drops(b) - before))
    check(all(n == 0 for n in got.values()), "UNLOCK delivered again: %r" % got)
    eventually(lambda: replay_drops(b) - before >= 3, 5, msg="each of the 3 copies counted")


# ---------------------------------------------------------------- restarts and rotations

def test_replay_after_receiver_restart(workdir):
    """Case 5: a's device streams commands while node b is killed and restarted (its replay state is
    gone, it is keyed again); more than the tolerance later the device behind b reconnects with the
    same client id and the attacker re-publishes every captured command: none is delivered (each
    was sealed before the restart or before the subscription), each is counted (any reason)."""
    broker, a, b = pair(workdir)
    atk = Attacker(broker.port, "door/#")
    pub = device(a, "dev-a5")
    cid, topic = "dev-b5", "door/5"
    dev = device(b, cid, topic)
    sent, stop, errors = [], threading.Event(), []

    def stream():
        try:
            while not stop.is_set() and len(sent) < 3000:
                p = b"cmd-%05d" % len(sent)
                pub.publish(topic, p, 1, timeout=20)
                sent.append(p)
                time.sleep(0.005)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    t = threading.Thread(target=stream, daemon=True)
    t.start()
    eventually(lambda: len(sent) >= 50, 20, msg="control: the stream runs")
    b.kill()  # SIGKILL, no goodbye
    dev.disconnect()
    b.start()
    eventually(lambda: b.metric("mqseal_peers_keyed") == 1, 20, msg="b keyed again after its restart")
    time.sleep(0.5)
    stop.set()
    t.join(30)
    check(not errors, "publisher failed: %r" % errors)
    stopped = time.monotonic()
    live = set(m.payload for m in dev.quiet(0.2))  # delivered before the restart
    check(len(live) >= 20, "control: the device got the stream before the restart (%d)" % len(live))
    caps = atk.take(topic, len(sent), timeout=20)
    time.sleep(max(0.0, stopped + PAST_TOL - time.monotonic()))
    dev = device(b, cid, topic)  # the same client id as before the restart
    before = metric_sum(b)
    for env in caps:
        atk.replay(topic, env)
    tag = b"legit-after-restart"
    pub.publish(topic, tag, 1)
    got = [m.payload for m in upto(dev, topic, tag, timeout=20) if m.payload != tag]
    again = sum(1 for p in got if p in live)
    observed("%d commands captured (%d delivered live before b's restart); after the restart %d delivered again: "
             "%d twice (seen live before) and %d sealed before the subscription; drops (any reason) %d; legit 1 of 1"
             % (len(caps), len(live), len(got), again, len(got) - again, metric_sum(b) - before))
    check(not got, "pre-restart commands delivered after node b restarted: %d (%d of them twice): %r" % (
        len(got), again, got[:5]))
    eventually(lambda: metric_sum(b) - before >= len(caps), 10, msg="every replayed command counted")


ROTATING = {"keyex": {"interval_seconds": 3, "activation_seconds": 1, "grace_seconds": 10}}


def test_replay_after_rotation(workdir):
    """Case 6: UNLOCK sealed in epoch e1; a rotates (e2 active; e1's key still alive at b thanks to
    grace_seconds); the device reconnects (same client id, clean) and the captured e1 UNLOCK is
    re-published: not delivered."""
    broker, a, b = pair(workdir, conf=ROTATING)
    atk = Attacker(broker.port, "door/#")
    pub = device(a, "dev-a6")
    cid, topic = "dev-b6", "door/6"
    dev = device(b, cid, topic)
    pub.publish(topic, UNLOCK, 1)
    check([m.payload for m in dev.expect(1)] == [UNLOCK], "control: the live UNLOCK is delivered")
    env = atk.take(topic)[0]
    wait_activations(a, 1, activations(a))
    pub.publish(topic, b"legit-e2", 1)
    check([m.payload for m in dev.expect(1)] == [b"legit-e2"], "control: traffic of the new epoch flows")
    check(atk.take(topic)[0][2:10] != env[2:10], "control: the UNLOCK's key id is of an older epoch")
    dev = reconnect(b, dev, cid, topic)
    before = replay_drops(b)
    atk.replay(topic, env)
    tag = b"legit-after-rotation"
    pub.publish(topic, tag, 1)
    n = count(upto(dev, topic, tag), UNLOCK)
    observed("UNLOCK of the previous epoch re-published after a rotation and a reconnect: delivered %d time(s); "
             "replay drops %d; legit 2 of 2" % (n, replay_drops(b) - before))
    check(n == 0, "UNLOCK of the previous epoch delivered again after a rotation: %d" % n)
    eventually(lambda: replay_drops(b) - before >= 1, 5, msg="the replay counted")


# ---------------------------------------------------------------- retained values

NO_CACHE = {"seal": {"retained_cache_kb": 0}}  # a's own re-publications would overwrite the rollback


def test_retained_rollback_within_epoch(workdir):
    """Case 7: a's device publishes retained V1 then V2 (b has seen both: a device behind it watches
    the topic); the attacker re-publishes the captured V1 with RETAIN=1, so the broker stores V1; a
    new subscriber behind b gets no V1 (nothing, or V2), the watcher gets no V1 either, and a later
    legitimate V3 reaches both."""
    broker, a, b = pair(workdir, each={"a": NO_CACHE})
    atk = Attacker(broker.port, "thermo/#")
    topic = "thermo/set"
    watcher = device(b, "dev-b7-watch", "thermo/#")
    pub = device(a, "dev-a7")
    for v in (b"V1", b"V2"):
        pub.publish(topic, v, 1, retain=True)
    check([m.payload for m in watcher.expect(2)] == [b"V1", b"V2"], "control: V1, V2 delivered live")
    v1 = atk.take(topic, 2)[0]
    before = replay_drops(b)
    atk.replay(topic, v1, retain=True)
    fresh = device(b, "dev-b7-new", "thermo/#")
    pub.publish(topic, b"V3", 1, retain=True)
    got_new = upto(fresh, topic, b"V3")
    got_watch = upto(watcher, topic, b"V3")
    observed("V1 re-stored by the attacker: the new subscriber got %r, the watcher %r (V1 %d and %d time(s)); "
             "replay drops %d; legit V3 reached both" % (
                 [m.payload for m in got_new], [m.payload for m in got_watch], count(got_new, b"V1"),
                 count(got_watch, b"V1"), replay_drops(b) - before))
    check(count(got_new, b"V1") == 0 and count(got_watch, b"V1") == 0,
          "retained value rolled back to V1: new subscriber %r, watcher %r" % (
              [m.payload for m in got_new], [m.payload for m in got_watch]))
    eventually(lambda: replay_drops(b) - before >= 2, 5, msg="V1 counted at the watcher and the new subscriber")


def test_retained_rollback_across_epochs(workdir):
    """Case 8: V1 sealed in epoch e1, a rotates, V2 in e2; the device that saw both live re-subscribes
    after the attacker re-stored V1 (its key still alive at b): V1 is not delivered."""
    broker, a, b = pair(workdir, conf=merged(ROTATING, NO_CACHE))
    atk = Attacker(broker.port, "valve/#")
    topic = "valve/set"
    dev = device(b, "dev-b8", "valve/#")
    pub = device(a, "dev-a8")
    pub.publish(topic, b"V1", 1, retain=True)
    check([m.payload for m in dev.expect(1)] == [b"V1"], "control: V1 delivered live")
    wait_activations(a, 1, activations(a))
    pub.publish(topic, b"V2", 1, retain=True)
    check([m.payload for m in dev.expect(1)] == [b"V2"], "control: V2 delivered live")
    v1, v2 = atk.take(topic, 2)
    check(v1[2:10] != v2[2:10], "control: V1 and V2 were sealed under different epochs")
    before = replay_drops(b)
    atk.replay(topic, v1, retain=True)
    dev.c.unsubscribe("valve/#")
    time.sleep(0.2)
    dev.subscribe("valve/#", 1)
    pub.publish(topic, b"V3", 1, retain=True)
    got = upto(dev, topic, b"V3")
    observed("V1 (epoch e1) re-stored after V2 (e2): on re-subscribe the device got %r (V1 %d time(s)); "
             "replay drops %d; legit V3 delivered" % ([m.payload for m in got], count(got, b"V1"),
                                                     replay_drops(b) - before))
    check(count(got, b"V1") == 0, "retained value rolled back across epochs: %r" % [m.payload for m in got])
    eventually(lambda: replay_drops(b) - before >= 1, 5, msg="V1 counted")


def test_retained_repeats_to_live_rap_subscription(workdir):
    """Case 9: an MQTT 5 device subscribed with Retain As Published gets the retained value live;
    the attacker re-publishes it 5 times with RETAIN=1: delivered 0 more times; a later retained
    value and a live message still arrive."""
    broker, a, b = pair(workdir)
    atk = Attacker(broker.port, "rap/#")
    topic = "rap/setpoint"
    dev = device(b, "dev-b9", "rap/#", version=5, rap=True)
    pub = device(a, "dev-a9", version=5)
    time.sleep(PAST_TOL)  # a subscription this old is live by any measure, not one that just began
    pub.publish(topic, b"SET-21", 1, retain=True)
    first = dev.expect(1)[0]
    check(first.payload == b"SET-21" and first.retain, "control: delivered live with RETAIN=1 (RAP): %r" % first)
    env = atk.take(topic)[0]
    before = replay_drops(b)
    atk.replay(topic, env, retain=True, times=5)
    pub.publish(topic, b"SET-22", 1, retain=True)
    pub.publish(topic, b"live-tag", 1)
    got = upto(dev, topic, b"live-tag")
    observed("retained SET-21 re-published 5 times with RETAIN=1 to a live RAP subscription: delivered %d more "
             "time(s); replay drops %d; legit %r" % (count(got, b"SET-21"), replay_drops(b) - before,
                                                     [m.payload for m in got if m.payload != b"SET-21"]))
    check(count(got, b"SET-21") == 0, "RETAIN=1 repeats delivered %d times to a live subscription" %
          count(got, b"SET-21"))
    check([m.payload for m in got] == [b"SET-22", b"live-tag"], "legit retained and live messages: %r" % got)
    eventually(lambda: replay_drops(b) - before >= 5, 5, msg="each repeat counted")


# ---------------------------------------------------------------- the retained cache

ACL_USERS = ("gw-a", "gw-b", "dev1", "dev2")


def acl_broker(workdir):
    """mosquitto with passwords and an ACL file as docs/BROKERS.md §4 recommends (one block per node;
    node a's block may write the retained topics of its devices, home/#, and read them); device
    user dev1 may only read and write home/x/#, dev2 may read home/#."""
    pw = os.path.join(workdir, "passwd")
    for k, u in enumerate(ACL_USERS):
        subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if k == 0 else []) + [pw, u, u + "-pw"], check=True,
                       capture_output=True, timeout=30)
    acl = os.path.join(workdir, "acl")
    with open(acl, "w") as f:
        for n in ("gw-a", "gw-b"):
            f.write("user %s\ntopic write mqseal/kx/+/%s\ntopic write mqseal/ack/+/%s\n"
                    "topic read mqseal/kx/%s/+\ntopic read mqseal/ack/%s/+\n" % ((n,) * 5))
            if n == "gw-a":
                f.write("topic readwrite home/#\n")
        f.write("user dev1\ntopic readwrite home/x/#\nuser dev2\ntopic read home/#\n")
    return Broker(workdir, extra="allow_anonymous false\npassword_file %s\nacl_file %s" % (pw, acl)).start()


def test_retained_cache_acl_bypass(workdir):
    """Case 10: device user dev1 (write home/x/# only) publishes retained values through node a on
    home/x/state (allowed) and home/y/setpoint, home/y/mode (refused by the broker; MQTT 3.1.1 and
    5); after two of a's rotations (each re-publishes a's retained cache), a new subscriber with
    read rights gets home/x/state and nothing on home/y/."""
    broker = acl_broker(workdir)
    fast = {"keyex": {"interval_seconds": 2, "activation_seconds": 1}}
    _, a, b = pair(workdir, broker=broker, ids=("gw-a", "gw-b"),
                   each={"gw-a": merged(fast, {"keyex": {"username": "gw-a", "password": "gw-a-pw"}}),
                         "gw-b": {"keyex": {"username": "gw-b", "password": "gw-b-pw"}}})
    watcher = device(b, "dev2-watch", "home/#", user="dev2")
    dev4 = device(a, "dev1-v4", user="dev1")
    dev5 = device(a, "dev1-v5", version=5, user="dev1")
    dev4.publish("home/x/state", b"x-ok", 1, retain=True)
    dev4.publish("home/y/setpoint", b"FORGED-30", 1, retain=True)
    dev5.publish("home/y/mode", b"FORGED-MODE", 1, retain=True)
    dev4.publish("home/x/tag", b"x-tag", 1)
    got = [(m.topic, m.payload) for m in upto(watcher, "home/x/tag", b"x-tag")]
    check(("home/x/state", b"x-ok") in got and not [t for t, _ in got if t.startswith("home/y/")],
          "control: the broker relays dev1's home/x and refuses its home/y: %r" % got)
    wait_activations(a, 2, activations(a))
    fresh = device(b, "dev2-new", "home/#", user="dev2")
    seen = [(m.topic, m.payload) for m in fresh.quiet(2.0)]
    dev4.publish("home/x/tag", b"x-tag-2", 1)
    check(upto(watcher, "home/x/tag", b"x-tag-2"), "control: live traffic flows")
    forged = [t for t, _ in seen if t.startswith("home/y/")]
    observed("after 2 rotations of a, a new subscriber got %r: %d forged value(s) the broker had refused "
             "(%s); legit home/x/state %s" % (seen, len(forged), ", ".join(forged) or "none",
                                               "delivered" if ("home/x/state", b"x-ok") in seen else "MISSING"))
    check(not forged, "the node re-published values the broker refused from the device: %r" % forged)
    check(("home/x/state", b"x-ok") in seen, "control: the accepted retained value survives rotations: %r" % seen)


def test_retained_resurrection(workdir):
    """Case 11 (no attacker): a's device sets retained alarm/z1 = ON and alarm/z2 = ON; b's device
    sets alarm/z1 = OFF and clears alarm/z2 (zero-length retained); after two of a's rotations, new
    subscribers behind b and behind a get alarm/z1 = OFF and nothing on alarm/z2, never ON."""
    _, a, b = pair(workdir, each={"a": {"keyex": {"interval_seconds": 2, "activation_seconds": 1}}})
    watcher = device(b, "dev-b11-watch", "alarm/#")
    pa = device(a, "dev-a11")
    pb = device(b, "dev-b11")
    pa.publish("alarm/z1", b"ON", 1, retain=True)
    pa.publish("alarm/z2", b"ON", 1, retain=True)
    check([(m.topic, m.payload) for m in watcher.expect(2)] == [("alarm/z1", b"ON"), ("alarm/z2", b"ON")],
          "control: ON delivered live")
    wait_activations(a, 1, activations(a))
    time.sleep(0.3)  # past a's re-publication at that activation: b's writes are surely the newer ones
    pb.publish("alarm/z1", b"OFF", 1, retain=True)
    pb.publish("alarm/z2", b"", 1, retain=True)
    check([(m.topic, m.payload) for m in watcher.expect(1)] == [("alarm/z1", b"OFF")], "control: OFF live")
    wait_activations(a, 2, activations(a))
    fresh = {"behind b": device(b, "dev-b11-new", "alarm/#"), "behind a": device(a, "dev-a11-new", "alarm/#")}
    seen = {k: sorted((m.topic, m.payload) for m in d.quiet(2.0)) for k, d in fresh.items()}
    pa.publish("alarm/tag", b"tag", 1)
    later = [(m.topic, m.payload) for m in upto(watcher, "alarm/tag", b"tag")]
    legit = 1 + sum(1 for d in fresh.values() if upto(d, "alarm/tag", b"tag"))
    observed("after 2 rotations of a, new subscribers got %r (expected: alarm/z1 OFF, nothing on the cleared "
             "alarm/z2); the watcher got %r meanwhile; legit %d of 3" % (seen, later, legit))
    for k, s in seen.items():
        check(("alarm/z1", b"ON") not in s and ("alarm/z2", b"ON") not in s,
              "stale retained ON came back (subscriber %s): %r" % (k, s))
        check(s == [("alarm/z1", b"OFF")], "subscriber %s gets alarm/z1 = OFF only: %r" % (k, s))
    check(("alarm/z1", b"ON") not in later and ("alarm/z2", b"ON") not in later, "the watcher got ON again")


def test_retained_rollback_across_receiver_restart(workdir):
    """Retained rollback after the receiving node restarts (its device state and keys are gone; its
    retained order marks are saved in state_dir): V1 then V2 retained, seen by b; b restarts; a new
    subscriber still gets V2 (below the new floor, but the topic's newest); the attacker re-stores V1:
    a new subscriber gets no V1 (rollback), and a later V3 flows."""
    broker, a, b = pair(workdir, each={"a": NO_CACHE})
    atk = Attacker(broker.port, "valve/#")
    topic = "valve/set"
    watcher = device(b, "dev-b12-watch", "valve/#")
    pub = device(a, "dev-a12")
    for v in (b"V1", b"V2"):
        pub.publish(topic, v, 1, retain=True)
    check([m.payload for m in watcher.expect(2)] == [b"V1", b"V2"], "control: V1, V2 delivered live")
    v1 = atk.take(topic, 2)[0]
    watcher.disconnect()
    b.stop()   # SIGTERM: the marks are written at exit
    b.start()
    eventually(lambda: b.metric("mqseal_peers_keyed") == 1, 20, msg="b keyed again after its restart")
    ctl = device(b, "dev-b12-ctl", "valve/#")
    got_ctl = [m.payload for m in ctl.quiet(1.5)]
    check(got_ctl == [b"V2"], "control: after b's restart a new subscriber gets the retained V2: %r" % got_ctl)
    before = replay_drops(b)
    atk.replay(topic, v1, retain=True)
    fresh = device(b, "dev-b12-new", "valve/#")
    pub.publish(topic, b"V3", 1, retain=True)
    got = [m.payload for m in upto(fresh, topic, b"V3")]
    observed("V1 re-stored after b restarted: a new subscriber behind b got %r (V1 %d time(s)); drops %d" % (
        got, got.count(b"V1"), replay_drops(b) - before))
    check(b"V1" not in got, "retained value rolled back to V1 after the receiver restarted: %r" % got)
    eventually(lambda: b.metric('mqseal_dropped_total{reason="rollback"}') >= 1, 5, msg="the rollback counted")


def test_erased_key_is_stale_at_once(workdir):
    """A message under a key the receiver has already erased (its lifetime is over) is dropped at
    once as stale_key (PROTOCOL.md §6.1 step 3), not held 5 s for an announcement that never comes
    and counted as unknown_key."""
    broker, a, b = pair(workdir, conf={"keyex": {"interval_seconds": 3, "activation_seconds": 1,
                                                  "grace_seconds": 0}})
    atk = Attacker(broker.port, "old/#")
    pub = device(a, "dev-a13")
    dev = device(b, "dev-b13", "old/#")
    pub.publish("old/x", b"first", 1)
    check([m.payload for m in dev.expect(1)] == [b"first"], "control: delivered live")
    env = atk.take("old/x")[0]
    # Three more epochs of a: b holds at most three keys of a peer, so the first one is erased by
    # then (and its lifetime of 1.5 x 3 s is over).
    wait_activations(a, 4, activations(a))
    time.sleep(1.0)
    stale0 = b.metric('mqseal_dropped_total{reason="stale_key"}')
    unknown0 = b.metric('mqseal_dropped_total{reason="unknown_key"}')
    t0 = time.monotonic()
    atk.replay("old/x", env)
    eventually(lambda: b.metric('mqseal_dropped_total{reason="stale_key"}') > stale0, 3,
               msg="the message under the erased key counted as stale_key at once")
    took = time.monotonic() - t0
    pub.publish("old/x", b"later", 1)
    check([m.payload for m in dev.expect(1)] == [b"later"], "legit traffic flows")
    observed("message under an erased key: stale_key after %.2f s; unknown_key +%d" % (
        took, b.metric('mqseal_dropped_total{reason="unknown_key"}') - unknown0))
    check(b.metric('mqseal_dropped_total{reason="unknown_key"}') == unknown0, "not counted as unknown_key")


def sub_with_id(client, topic, qos, sid):
    """An MQTT 5 subscription with a Subscription Identifier."""
    props = Properties(PacketTypes.SUBSCRIBE)
    props.SubscriptionIdentifier = sid
    client.subscribe(topic, 0, options=SubscribeOptions(qos=qos), properties=props)


def test_overlapping_subscriptions_sealed_pair(workdir):
    """Issue 14 case 3 across a sealed pair, and its limit: a device behind b with two subscriptions
    matching a topic (QoS 2 with id 2, QoS 1 with id 1) gets one copy per subscription of a's
    message, each with its identifier, as directly from the broker (MQTT-3.3.4-5); a replay of the
    captured message after that is not a third copy."""
    broker, a, b = pair(workdir)
    atk = Attacker(broker.port, "ov/#")
    direct = Client("dev-ov-direct", 5)
    direct.connect(broker.port)
    dev = Client("dev-ov-b", 5)
    dev.connect(b.port)
    for c in (direct, dev):
        sub_with_id(c, "ov/+", 2, 2)
        sub_with_id(c, "ov/#", 1, 1)
    pub = device(a, "dev-ov-a")
    pub.publish("ov/x", b"twice", 1)
    want = sorted((m.qos, tuple(m.props.SubscriptionIdentifier)) for m in direct.expect(2))
    got = dev.expect(2)
    seen = sorted((m.qos, tuple(m.props.SubscriptionIdentifier)) for m in got)
    check(all(m.payload == b"twice" for m in got), "both copies opened: %r" % got)
    check(seen == want, "copies through the pair %r, directly %r" % (seen, want))
    env = atk.take("ov/x")[0]
    before = replay_drops(b)
    atk.replay("ov/x", env)
    pub.publish("ov/x", b"tag", 1)
    extra = [m.payload for m in dev.expect(2) if m.payload != b"tag"]
    extra += [m.payload for m in dev.quiet(0.5) if m.payload != b"tag"]
    observed("overlapping subscriptions through a sealed pair: copies %r (directly %r); after a replay %d more" % (
        seen, want, len(extra)))
    check(not extra, "a replay after the copies was delivered: %r" % extra)
    eventually(lambda: replay_drops(b) - before >= 2, 5, msg="the replay's two copies counted")


def test_retained_will_after_online(workdir):
    """The usual presence pattern is not a rollback: a device connects with a retained will
    "offline" (sealed at CONNECT), then publishes retained "online"; when it dies the broker
    publishes the will, which is older by seal time than "online" but newer as a value. A watcher
    behind b gets "offline" live, and a new subscriber gets "offline" as the retained value
    (PROTOCOL.md §6.3: a will is ordered by when the node first received it)."""
    broker, a, b = pair(workdir)
    watcher = device(b, "dev-b14-watch", "status/#")
    dev = Client("dev-a14", 4)
    dev.c.reconnect_delay_set(60, 120)
    dev.c.will_set("status/a14", b"offline", 1, retain=True)
    dev.connect(a.port)
    time.sleep(0.2)  # "online" is sealed after the will
    dev.publish("status/a14", b"online", 1, retain=True)
    check([m.payload for m in watcher.expect(1)] == [b"online"], "control: online delivered")
    dev.drop()  # no DISCONNECT: the broker publishes the will
    got = [m.payload for m in watcher.expect(1)]
    fresh = device(b, "dev-b14-new", "status/#")
    late = [m.payload for m in fresh.quiet(1.5)]
    observed("presence: the watcher got %r after the device died, a new subscriber %r" % (got, late))
    check(got == [b"offline"], "the will reaches the watcher: %r" % got)
    check(late == [b"offline"], "a new subscriber gets the will as the retained value: %r" % late)


if __name__ == "__main__":
    run([test_replay_after_clean_reconnect, test_replay_after_forced_takeover, test_replay_to_zero_length_client_id,
         test_replay_to_later_subscriber, test_replay_after_receiver_restart, test_replay_after_rotation,
         test_retained_rollback_within_epoch, test_retained_rollback_across_epochs,
         test_retained_repeats_to_live_rap_subscription, test_retained_cache_acl_bypass, test_retained_resurrection,
         test_retained_rollback_across_receiver_restart, test_erased_key_is_stale_at_once,
         test_overlapping_subscriptions_sealed_pair, test_retained_will_after_online])
