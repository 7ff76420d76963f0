"""End-to-end sealing on the data path (issue: sealing): unmodified clients publish plaintext to
one mqseal, the broker stores and forwards only ciphertext, the subscriber behind another mqseal
gets the original bytes with every MQTT guarantee; whatever the broker forges, alters, re-routes
or replays is dropped and counted, and the legitimate stream flows on."""
# ctest-labels: sealing
# ctest-timeout: 600
import os
import signal
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness import Broker, Client, Node, RawClient, check, eventually, run, write_conf

BIG = {"listen": {"max_packet_size": 2 * 1024 * 1024}}


def pair(workdir, conf=None, broker_kw=None, names=("a", "b")):
    broker = Broker(workdir, **(broker_kw or {})).start()
    nodes = [Node(workdir, n, broker.port, conf=conf) for n in names]
    for n in nodes:
        n.trust(*[m for m in nodes if m is not n])
        n.start()
    for n in nodes:
        eventually(lambda: n.metric("mqseal_peers_keyed") == len(nodes) - 1, 10, msg="%s keyed" % n.node_id)
    return broker, nodes


def eavesdropper(broker):
    eve = Client("eve-%d" % time.monotonic_ns())
    eve.connect(broker.port)
    eve.subscribe("#", 2)
    return eve


def no_plaintext(seen, payloads):
    """No payload, and no 12-byte substring of any payload (or the whole of a shorter one), appears
    in what the eavesdropper saw."""
    blob = b"\x00".join(m.payload for m in seen)
    for p in payloads:
        if len(p) >= 4:
            check(p not in blob, "plaintext payload visible at the broker")
        step = max(1, len(p) // 256)  # at most ~256 probes per payload
        for i in range(0, max(0, len(p) - 12), step):
            check(p[i:i + 12] not in blob, "a 12-byte piece of a payload is visible at the broker")


def device(node, client_id, *filters):
    """A device connected through node, subscribed (QoS 1) to filters."""
    c = Client(client_id)
    c.connect(node.port)
    for f in filters:
        c.subscribe(f, 1)
    return c


def dropped(node, reason):
    return node.metric('mqseal_dropped_total{reason="%s"}' % reason)


def test_round_trip_all_sizes_and_qos(workdir):
    broker, (a, b) = pair(workdir, conf=BIG, broker_kw={"extra": "message_size_limit 0"})
    eve = eavesdropper(broker)
    sizes = [0, 1, 64, 64 * 1024, 1024 * 1024]
    for version in (4, 5):
        sub = Client("rt-sub-%d" % version, version)
        sub.connect(b.port)
        sub.subscribe("rt/#", 2)
        pub = Client("rt-pub-%d" % version, version)
        pub.connect(a.port)
        sent = []
        for qos in (0, 1, 2):
            for size in sizes:
                p = os.urandom(size) if size > 64 else (b"reading=%d;" % size * 64)[:size]
                pub.publish("rt/q%d/s%d" % (qos, size), p, qos, timeout=30)
                sent.append(("rt/q%d/s%d" % (qos, size), p, qos))
        got = sub.expect(len(sent), timeout=60)
        check(sorted((m.topic, m.payload, m.qos) for m in got) == sorted(sent), "every byte arrives, QoS kept")
    seen = eve.quiet(2.0)
    check(any(m.topic.startswith("rt/") for m in seen), "the eavesdropper saw the traffic")
    check(all(len(m.payload) >= 50 for m in seen if m.topic.startswith("rt/")), "only envelopes at the broker")
    no_plaintext([m for m in seen if m.topic.startswith("rt/")], [p for _, p, _ in sent])
    check(a.metric("mqseal_sealed_total") >= len(sent) and b.metric("mqseal_opened_total") >= len(sent),
          "counted")


def test_mqtt5_properties_protected(workdir):
    broker, (a, b) = pair(workdir)
    eve = eavesdropper(broker)
    sub = Client("p-sub", 5)
    sub.connect(b.port)
    sub.subscribe("pp/#", 1)
    pub = Client("p-pub", 5)
    pub.connect(a.port)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("sensor", "kitchen-7")]
    props.ContentType = "application/x-secret"
    props.ResponseTopic = "pp/reply-here"
    props.CorrelationData = b"corr-42"
    props.PayloadFormatIndicator = 1
    pub.publish("pp/x", b"with properties", 1, properties=props)
    m = sub.expect(1)[0]
    check(m.payload == b"with properties", "payload")
    check(m.props.ContentType == "application/x-secret" and m.props.ResponseTopic == "pp/reply-here",
          "protected string properties restored")
    check(m.props.CorrelationData == b"corr-42" and ("sensor", "kitchen-7") in m.props.UserProperty,
          "protected binary and user properties restored")
    check(m.props.PayloadFormatIndicator == 1, "payload format indicator restored")
    raw = [x for x in eve.quiet(1.0) if x.topic == "pp/x"]
    check(raw, "broker saw the message")
    outer = raw[0].props
    check(not getattr(outer, "UserProperty", None) and not getattr(outer, "ContentType", None) and
          not getattr(outer, "PayloadFormatIndicator", None), "no protected property outside")
    no_plaintext(raw, [b"kitchen-7", b"application/x-secret", b"pp/reply-here", b"corr-42"])


def inject(broker, topic, payload, qos=1, retain=False):
    c = Client("inj-%d" % time.monotonic_ns())
    c.connect(broker.port)
    c.publish(topic, payload, qos, retain=retain)
    c.disconnect()


def test_attacks_at_the_broker(workdir):
    broker, (a, b) = pair(workdir)
    cap = Client("capture")
    cap.connect(broker.port)
    cap.subscribe("atk/#", 1)
    sub = Client("atk-sub")
    sub.connect(b.port)
    sub.subscribe("atk/x", 1)
    sub.subscribe("atk/other", 1)
    pub = Client("atk-pub")
    pub.connect(a.port)
    pub.publish("atk/x", b"original", 1)
    check(sub.expect(1)[0].payload == b"original", "legit message")
    env = cap.expect(1)[0].payload
    pub.publish("atk/hidden", b"for another topic", 1)  # the device does not subscribe to this one
    hidden = cap.expect(1)[0].payload
    fresh = []  # envelopes on atk/x the device never received (sealed while it was not subscribed)
    sub.c.unsubscribe("atk/x")
    time.sleep(0.3)
    for i in range(8):
        pub.publish("atk/x", b"unseen-%d" % i, 1)
        fresh.append(cap.expect(1)[0].payload)
    sub.subscribe("atk/x", 1)

    def attack(reason, topic, payload, wait=5.0):
        before = dropped(b, reason)
        inject(broker, topic, payload)
        eventually(lambda: dropped(b, reason) > before, wait + 5, msg="%s counted" % reason)
        check(not sub.quiet(0.3), "%s: nothing reached the device" % reason)
        tag = b"legit-after-" + reason.encode()
        pub.publish("atk/x", tag, 1)
        check(sub.expect(1)[0].payload == tag, "stream flows after %s" % reason)

    attack("replay", "atk/x", env)                                  # captured and re-published
    attack("auth", "atk/other", hidden)                             # ciphertext moved to another topic
    for k, pos in enumerate((1, 5, 12, 20, len(env) // 2, len(env) - 1)):  # flipped bits anywhere
        flipped = bytearray(fresh[k])
        flipped[pos] ^= 0x10
        reason = {1: "malformed", 5: "unknown_key", 12: "limit"}.get(pos, "auth")  # 12: a high counter byte
        attack(reason, "atk/x", bytes(flipped))
    attack("plaintext", "atk/x", fresh[6][:30])                     # truncated envelope
    attack("auth", "atk/x", fresh[7][:-1])                          # truncated by one byte
    attack("plaintext", "atk/x", b"I am plaintext on a sealed topic")
    attack("unknown_key", "atk/x", b"\x02\x00" + os.urandom(8) + b"\x00" * 16 + os.urandom(40), wait=6.0)
    attack("empty", "atk/x", b"")


def test_redelivery_after_reconnect(workdir):
    broker, (a, b) = pair(workdir)
    for qos in (1, 2):
        cid = "redeliver-%d" % qos
        dev = RawClient(b.port, cid, clean=False)
        dev.subscribe("rd/%d" % qos, qos)
        pub = Client("rd-pub-%d" % qos)
        pub.connect(a.port)
        pub.publish("rd/%d" % qos, b"must-arrive-%d" % qos, qos)
        topic, payload, q, pid, dup, _ = dev.read_publish()
        check(payload == b"must-arrive-%d" % qos and q == qos, "first delivery opened")
        dev.close()  # disconnect without acknowledging
        time.sleep(0.3)
        dev = RawClient(b.port, cid, clean=False)
        check(dev.session_present, "persistent session")
        topic, payload, q, pid2, dup, _ = dev.read_publish()
        check(payload == b"must-arrive-%d" % qos, "redelivered and opened again: %r" % payload)
        check(dup and pid2 == pid, "it is the redelivery (DUP, same packet id)")
        dev.ack(4 if qos == 1 else 5, pid2)
        if qos == 2:
            t, _, body = dev.read_packet()
            check(t == 6, "PUBREL")
            dev.ack(7, pid2)
        dev.close()
    check(dropped(b, "replay") == 0, "the replay window did not eat the redelivery")


def test_two_devices_behind_one_node(workdir):
    broker, (a, b) = pair(workdir)
    subs = []
    for i in range(3):
        c = Client("same-node-%d" % i)
        c.connect(b.port)
        c.subscribe("fan/#", 1)
        subs.append(c)
    over = Client("overlap", 4)
    over.connect(b.port)
    over.subscribe("fan/#", 1)
    over.subscribe("fan/x", 1)
    pub = Client("fan-pub")
    pub.connect(a.port)
    for i in range(10):
        pub.publish("fan/x", b"f-%d" % i, 1)
    for c in subs:
        check([m.payload for m in c.expect(10)] == [b"f-%d" % i for i in range(10)], "each device opens each")
    got = over.expect(10)
    check(sorted(set(m.payload for m in got)) == sorted(b"f-%d" % i for i in range(10)), "overlapping subs")
    own = Client("own-pub")
    own.connect(b.port)
    own.publish("fan/x", b"from-the-same-node", 1)
    for c in subs:
        check(c.expect(1)[0].payload == b"from-the-same-node", "a node opens its own devices' messages")


def test_retained_survives_rotation(workdir):
    broker, (a, b) = pair(workdir, conf={"keyex": {"interval_seconds": 2, "activation_seconds": 1}})
    pub = Client("ret-pub")
    pub.connect(a.port)
    pub.publish("ret/t", b"old-value", 1, retain=True)
    pub.publish("ret/t", b"latest-value", 1, retain=True)
    e0 = a.metric("mqseal_epoch")
    eventually(lambda: a.metric("mqseal_activations_total") >= 4 and a.metric("mqseal_epoch") > e0, 15,
               msg="two rotations")
    time.sleep(3.5)  # past the lifetime of the keys the value was first sealed under
    late = Client("ret-late")
    late.connect(b.port)
    late.subscribe("ret/#", 1)
    m = late.expect(1)[0]
    check(m.payload == b"latest-value" and m.retain, "late subscriber opens the latest retained value: %r" % m)
    check(not late.quiet(1.0), "and only that")
    pub.publish("ret/t", b"", 1, retain=True)
    later = Client("ret-later")
    later.connect(b.port)
    later.subscribe("ret/#", 1)
    check(not later.quiet(1.0), "retained delete deleted")


def test_will_sealed(workdir):
    broker, (a, b) = pair(workdir)
    eve = eavesdropper(broker)
    watcher = Client("will-watch")
    watcher.connect(b.port)
    watcher.subscribe("will/#", 1)
    dev = Client("will-dev")
    dev.c.will_set("will/dev", b"device-went-away", 1, False)
    dev.connect(a.port)
    time.sleep(0.2)
    dev.drop()
    m = watcher.expect(1)[0]
    check(m.payload == b"device-went-away", "will opened at the peer: %r" % m)
    raw = [x for x in eve.quiet(1.0) if x.topic == "will/dev"]
    check(raw and b"went-away" not in raw[0].payload, "the will was sealed at the broker")


def test_plaintext_and_deny_policy(workdir):
    conf = {"topics": {"plaintext": ["public/#"], "deny": ["secret/blocked/#"]}}
    broker, (a, b) = pair(workdir, conf=conf)
    direct = Client("direct")
    direct.connect(broker.port)
    direct.subscribe("public/#", 1)
    dev = Client("pol-dev", 5)
    dev.connect(a.port)
    dev.publish("public/weather", b"sunny", 1)
    check(direct.expect(1)[0].payload == b"sunny", "plaintext topic passes unchanged device->broker")
    sub = Client("pol-sub")
    sub.connect(a.port)
    sub.subscribe("public/#", 1)
    direct.publish("public/news", b"plain-in", 1)
    check(sub.expect(1)[0].payload == b"plain-in", "plaintext topic passes unchanged broker->device")
    info = dev.c.publish("secret/blocked/x", b"never", 1)
    info.wait_for_publish(5)
    check(a.metric("mqseal_denied_total") >= 1, "deny counted")
    watch = Client("deny-watch")
    watch.connect(broker.port)
    watch.subscribe("secret/#", 1)
    check(not watch.quiet(0.5), "the denied message never reached the broker")
    rc = Client("deny-sub", 5)
    rc.connect(b.port)
    codes = rc.subscribe("secret/blocked/#", 1)
    check(codes[0].value >= 0x80, "SUBSCRIBE to a denied topic refused: %r" % codes)
    codes = rc.subscribe("mqseal/#", 1)
    check(codes[0].value >= 0x80, "key-exchange topics denied to devices")
    # One SUBSCRIBE, three filters, the middle one denied: the broker gets the other two, the
    # device gets one SUBACK with the failure code in the middle.
    for version in (4, 5):
        mixed = Client("mixed-%d" % version, version)
        mixed.connect(b.port)
        codes = mixed.subscribe([("ok/one", 1), ("secret/blocked/#", 1), ("ok/two", 0)])
        values = [c.value if version == 5 else c for c in codes]
        check(values == [1, 0x87 if version == 5 else 0x80, 0], "SUBACK codes in order: %r" % values)
        dev.publish("ok/two", b"granted", 0)
        check(mixed.expect(1)[0].payload == b"granted", "the other filters were subscribed")


def test_peer_publish_lists(workdir):
    """PROTOCOL.md R6, §6.1 step 9: node b lets peer a publish only on sensors/a/#, and peer c
    nowhere (publish = [ ]). Messages that a's devices send elsewhere open, but are dropped at b
    (counted as unauthorized, acknowledged for the device) while the allowed stream flows on;
    b's own devices publish anywhere; the lists are b's alone (a still gets c's messages)."""
    broker = Broker(workdir).start()
    a, b, c = (Node(workdir, n, broker.port) for n in ("a", "b", "c"))
    a.trust(b, c)
    c.trust(a, b)
    b.trust(a, c)
    b.conf["peers"][0]["publish"] = ["sensors/a/#", "status/+"]
    b.conf["peers"][1]["publish"] = []
    for n in (a, b, c):
        n.start()
    for n in (a, b, c):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 2, 10, msg="%s keyed" % n.node_id)
    sub = device(b, "r6-sub", "sensors/#", "status/#", "actuators/#")
    at_a = device(a, "r6-at-a", "sensors/c/#")
    dev_a = device(a, "r6-dev-a")
    dev_c = device(c, "r6-dev-c")
    local = device(b, "r6-local")

    def refused(dev, topic, payload):
        before = dropped(b, "unauthorized")
        dev.publish(topic, payload, 1)  # acknowledged to the device by its own node as usual
        eventually(lambda: dropped(b, "unauthorized") > before, 10, msg="%s counted as unauthorized" % topic)
        check(not sub.quiet(0.5), "%s did not reach b's device" % topic)

    dev_a.publish("sensors/a/temp", b"21.5", 1)
    dev_a.publish("status/a", b"up", 1)
    got = sub.expect(2)
    check(sorted((m.topic, m.payload) for m in got) == [("sensors/a/temp", b"21.5"), ("status/a", b"up")],
          "a's messages inside its publish list are delivered")
    refused(dev_a, "actuators/valve", b"open")      # outside the list
    refused(dev_a, "sensors/b/temp", b"forged")     # another node's subtree
    refused(dev_a, "status/a/deeper", b"x")         # '+' is one level only
    refused(dev_c, "sensors/c/temp", b"19.0")       # c may publish nowhere on b
    check(at_a.expect(1)[0].payload == b"19.0", "a has no list for c: c's message reaches a's device")
    local.publish("actuators/valve", b"close", 1)  # a device of b itself
    check(sub.expect(1)[0].payload == b"close", "b's own devices publish on every sealed topic")
    dev_a.publish("sensors/a/temp", b"21.6", 1)
    check(sub.expect(1)[0].payload == b"21.6", "the allowed stream flows on")
    check(dropped(b, "unauthorized") == 4, "four refused, each counted once: %d" % dropped(b, "unauthorized"))
    check(dropped(b, "auth") == 0 and dropped(b, "replay") == 0, "opened before being refused")
    check("dropped a sealed message (unauthorized)" in b.output(), "logged")
    # The lists are reloaded with SIGHUP: a may now write actuators/#, c's list is gone.
    b.conf["peers"][0]["publish"] = ["sensors/a/#", "actuators/#"]
    del b.conf["peers"][1]["publish"]
    write_conf(b.conf_path, b.conf)
    b.signal(signal.SIGHUP)
    b.wait_log("SIGHUP: reloaded")
    dev_a.publish("actuators/valve", b"open", 1)
    check(sub.expect(1)[0].payload == b"open", "after the reload a may publish on actuators/#")
    dev_c.publish("sensors/c/temp", b"19.1", 1)
    check(sub.expect(1)[0].payload == b"19.1", "after the reload c may publish anywhere")
    refused(dev_a, "status/a", b"down")             # no longer in a's list


def test_publish_before_peer_keyed(workdir):
    broker = Broker(workdir).start()
    a = Node(workdir, "a", broker.port)
    b = Node(workdir, "b", broker.port)
    a.trust(b)
    b.trust(a)
    # The subscriber's persistent session exists at the broker before anything is keyed.
    b.start()
    sub = Client("early-sub", clean=False)
    sub.connect(b.port)
    sub.subscribe("early/#", 1)
    sub.disconnect()
    b.stop()
    a.conf["seal"] = {"hold_seconds": 30}
    a.start()
    pub = Client("early-pub")
    pub.connect(a.port)
    infos = [pub.publish("early/%d" % (i % 2), b"e-%d" % i, 1, wait=False) for i in range(10)]
    time.sleep(1.0)
    check(a.metric("mqseal_held_total") >= 1, "held while no peer holds the key")
    check(a.metric("mqseal_sealed_total") == 0, "nothing sent before the peer is keyed")
    b.start()
    for info in infos:
        info.wait_for_publish(20)
    sub = Client("early-sub", clean=False)
    sub.connect(b.port)
    got = sub.expect(10, timeout=20)
    for t in ("early/0", "early/1"):
        seq = [m.payload for m in got if m.topic == t]
        want = [b"e-%d" % i for i in range(10) if "early/%d" % (i % 2) == t]
        check(seq == want, "in order per topic on %s: %r" % (t, seq))


def bridged_brokers(workdir):
    """Broker A bridged to broker B (mosquitto's own bridge, on loopback), every topic with its
    prefix rewritten: local/... at A is remote/... at B. Returns (A, B) once the bridge carries
    messages."""
    b = Broker(workdir, name="broker-b").start()
    a = Broker(workdir, name="broker-a", extra="\n".join([
        "connection a-to-b", "address 127.0.0.1:%d" % b.port, "cleansession true", "restart_timeout 1",
        "topic # both 1 local/ remote/"])).start()
    probe = Client("bridge-probe-sub")
    probe.connect(b.port)
    probe.subscribe("remote/probe", 1)
    tx = Client("bridge-probe-pub")
    tx.connect(a.port)

    def crossed():
        tx.publish("local/probe", b"p", 1)
        return bool(probe.quiet(0.3))
    eventually(crossed, 15, msg="the bridge carries local/ to remote/")
    probe.disconnect()
    tx.disconnect()
    return a, b


def test_bridge_prefix_map(workdir):
    """R24, PROTOCOL.md §5.4: a bridge between two brokers rewrites local/... (A) to remote/... (B).
    A sealed message binds the topic its sender published, so node b (at B) cannot open what node
    a (at A) sealed on local/t/1 and receives on remote/t/1, unless b's topic_prefix_map says that
    remote/ is local/ here. The key exchange crosses the same bridge (keyex.topic_prefix
    local/mqseal at a, remote/mqseal at b), its signatures bound to the canonical names too. With
    the rule, keys are agreed, both directions flow and the broker sees only ciphertext; a copy
    re-routed at B is still dropped; the rule taken away with SIGHUP, messages fail authentication
    at b and are not delivered."""
    broker_a, broker_b = bridged_brokers(workdir)
    a = Node(workdir, "a", broker_a.port, conf={"keyex": {"topic_prefix": "local/mqseal"}})
    b = Node(workdir, "b", broker_b.port, conf={"keyex": {"topic_prefix": "remote/mqseal"},
                                                "topic_prefix_map": [{"local": "remote/", "canonical": "local/"}]})
    a.trust(b)
    b.trust(a)
    for n in (a, b):
        n.start()
    for n in (a, b):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 1, 15, msg="%s keyed across the bridge" % n.node_id)
    eve = eavesdropper(broker_b)
    at_b = device(b, "br-at-b", "remote/t/#")
    at_a = device(a, "br-at-a", "local/cmd/#")
    pub_a = device(a, "br-pub-a")
    pub_b = device(b, "br-pub-b")
    pub_a.publish("local/t/1", b"reading 21.5", 1)
    m = at_b.expect(1, timeout=15)[0]
    check((m.topic, m.payload) == ("remote/t/1", b"reading 21.5"), "a -> b across the bridge: %r" % m)
    pub_b.publish("remote/cmd/valve", b"open valve", 1)
    m = at_a.expect(1, timeout=15)[0]
    check((m.topic, m.payload) == ("local/cmd/valve", b"open valve"), "b -> a across the bridge: %r" % m)
    seen = [x for x in eve.quiet(1.0) if x.topic in ("remote/t/1", "remote/cmd/valve")]
    check(sorted(x.topic for x in seen) == ["remote/cmd/valve", "remote/t/1"],
          "broker B carried both: %r" % [x.topic for x in seen])
    no_plaintext(seen, [b"reading 21.5", b"open valve"])
    # The canonical name is still bound: a copy moved to another topic is dropped.
    # (b has seen its counter already, so it goes as a replay before its tag is even tried)
    before = dropped(b, "auth") + dropped(b, "replay")
    inject(broker_b, "remote/t/2", [x for x in seen if x.topic == "remote/t/1"][0].payload)
    eventually(lambda: dropped(b, "auth") + dropped(b, "replay") == before + 1, 10, msg="re-routed copy dropped")
    check(not at_b.quiet(0.5), "the re-routed copy was not delivered")
    # Without the rule, b opens remote/t/3 where a sealed local/t/3: dropped, never delivered.
    del b.conf["topic_prefix_map"]
    write_conf(b.conf_path, b.conf)
    b.signal(signal.SIGHUP)
    b.wait_log("SIGHUP: reloaded")
    before = dropped(b, "auth")
    pub_a.publish("local/t/3", b"unmapped", 1)
    eventually(lambda: dropped(b, "auth") == before + 1, 15, msg="unmapped message dropped at b")
    check(not at_b.quiet(0.5), "the unmapped message was not delivered")
    check(b.alive() and a.alive(), "both nodes still run")


if __name__ == "__main__":
    run([test_round_trip_all_sizes_and_qos, test_mqtt5_properties_protected, test_attacks_at_the_broker,
         test_redelivery_after_reconnect, test_two_devices_behind_one_node, test_retained_survives_rotation,
         test_will_sealed, test_plaintext_and_deny_policy, test_peer_publish_lists, test_publish_before_peer_keyed,
         test_bridge_prefix_map])
