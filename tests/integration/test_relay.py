"""The relay is invisible: every MQTT feature behaves through mqseal as it does directly against
mosquitto, for MQTT 3.1, 3.1.1 and 5.0 clients (issue: foundation). mqseal runs as a plain relay
here (every topic plaintext, no peers), so a client behind it and a client directly at the broker
can talk to each other and compare bytes.
"""
# ctest-labels: relay
# ctest-timeout: 400
import os
import socket
import subprocess
import time

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from harness import (HOST, Broker, Client, Node, RawClient, check, eventually, run, free_port, stop_clean,
                     connect_packet)

PLAIN = {"topics": {"plaintext": ["#"]}}


def setup(workdir, conf=None, broker_kw=None):
    broker = Broker(workdir, **(broker_kw or {})).start()
    c = dict(PLAIN)
    c.update(conf or {})
    node = Node(workdir, "relay", broker.port, conf=c).start()
    return broker, node


def qos_both_ways(workdir, version):
    broker, node = setup(workdir)
    for qos in (0, 1, 2):
        topic = "t/qos%d/v%d" % (qos, version)
        via = Client("via-%d-%d" % (qos, version), version)      # behind mqseal
        direct = Client("dir-%d-%d" % (qos, version), version)   # straight to the broker
        via.connect(node.port)
        direct.connect(broker.port)
        via.subscribe(topic + "/down", qos)
        direct.subscribe(topic + "/up", qos)
        payloads = [b"up-%d-%d" % (qos, i) for i in range(20)]
        for p in payloads:
            via.publish(topic + "/up", p, qos)
        got = direct.expect(20)
        check([m.payload for m in got] == payloads, "device->broker order/bytes at QoS %d" % qos)
        check(all(m.qos == qos for m in got), "QoS preserved device->broker")
        for p in payloads:
            direct.publish(topic + "/down", p, qos)
        got = via.expect(20)
        check([m.payload for m in got] == payloads, "broker->device order/bytes at QoS %d" % qos)
        check(all(m.qos == qos for m in got), "QoS preserved broker->device")
        check(not via.quiet(0.3) and not direct.quiet(0.1), "exactly once")
        via.disconnect()
        direct.disconnect()


def test_qos_v311(workdir):
    qos_both_ways(workdir, 4)


def test_qos_v5(workdir):
    qos_both_ways(workdir, 5)


def test_qos_v31(workdir):
    qos_both_ways(workdir, 3)


def test_retained(workdir):
    broker, node = setup(workdir)
    pub = Client("ret-pub")
    pub.connect(node.port)
    pub.publish("ret/a", b"latest-1", 1, retain=True)
    pub.publish("ret/a", b"latest-2", 1, retain=True)
    for port in (node.port, broker.port):
        sub = Client("ret-sub-%d" % port)
        sub.connect(port)
        sub.subscribe("ret/#", 1)
        m = sub.expect(1)[0]
        check(m.payload == b"latest-2" and m.retain, "retained value delivered: %r" % m)
        sub.disconnect()
    pub.publish("ret/a", b"", 1, retain=True)  # retained delete
    late = Client("ret-late")
    late.connect(node.port)
    late.subscribe("ret/#", 1)
    check(not late.quiet(0.7), "retained delete deleted")


def test_will_on_abrupt_disconnect(workdir):
    for version in (4, 5):
        broker, node = setup(workdir) if version == 4 else (broker, node)
        watcher = Client("will-watch-%d" % version, version)
        watcher.connect(broker.port)
        watcher.subscribe("will/#", 1)
        dev = Client("will-dev-%d" % version, version)
        dev.c.will_set("will/dev%d" % version, b"gone-%d" % version, 1, False)
        dev.connect(node.port)
        time.sleep(0.2)
        dev.drop()
        m = watcher.expect(1, timeout=10)[0]
        check(m.payload == b"gone-%d" % version, "will delivered after abrupt close: %r" % m)
        # An orderly DISCONNECT sends no will.
        dev2 = Client("will-dev2-%d" % version, version)
        dev2.c.will_set("will/dev2", b"should-not", 1, False)
        dev2.connect(node.port)
        dev2.disconnect()
        check(not watcher.quiet(1.0), "no will after DISCONNECT")
        watcher.disconnect()


def test_persistent_session_redelivery(workdir):
    broker, node = setup(workdir)
    for version in (4, 5):
        cid = "persist-%d" % version
        sub = Client(cid, version, clean=False)
        kw = {}
        if version == 5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 300
            kw["properties"] = props
        sub.connect(node.port, **kw)
        sub.subscribe("persist/%d" % version, 1)
        sub.disconnect()
        pub = Client("persist-pub-%d" % version)
        pub.connect(broker.port)
        for i in range(10):
            pub.publish("persist/%d" % version, b"queued-%d" % i, 1)
        pub.disconnect()
        sub2 = Client(cid, version, clean=False)
        flags = sub2.connect(node.port, **kw)
        check(flags.get("session present") == 1, "session present after reconnect: %r" % flags)
        got = sub2.expect(10)
        check([m.payload for m in got] == [b"queued-%d" % i for i in range(10)], "queued messages redelivered")
        sub2.disconnect()


def test_keepalive_pings_relayed(workdir):
    broker, node = setup(workdir)
    c = Client("pinger")
    c.connect(node.port, keepalive=1)
    before = node.metric("mqseal_packets_total{direction=\"from_device\"}")
    time.sleep(4.0)  # only PINGREQ/PINGRESP keep the session alive now
    check(not c.disconnected.is_set(), "connection survived 4 keepalive periods")
    after = node.metric("mqseal_packets_total{direction=\"from_device\"}")
    check(after - before >= 2, "PINGREQs went through mqseal (%s -> %s)" % (before, after))
    c.publish("ka/x", b"still-here", 1)
    c.disconnect()


def test_large_payload(workdir):
    broker, node = setup(workdir, conf={"listen": {"max_packet_size": 2 * 1024 * 1024}},
                         broker_kw={"extra": "message_size_limit 0"})
    sub = Client("big-sub")
    sub.connect(node.port)
    sub.subscribe("big/#", 1)
    pub = Client("big-pub")
    pub.connect(node.port)
    payload = os.urandom(1024 * 1024)
    pub.publish("big/one", payload, 1, timeout=30)
    m = sub.expect(1, timeout=30)[0]
    check(m.payload == payload, "1 MiB payload intact")


def test_200_concurrent_clients(workdir):
    broker, node = setup(workdir)
    sub = Client("fan-sub")
    sub.connect(node.port)
    sub.subscribe("fan/#", 1)
    clients = []
    for i in range(200):
        c = Client("fan-%d" % i)
        c.connect(node.port)
        clients.append(c)
    check(node.metric("mqseal_device_connections_open") >= 201, "201 device connections open")
    for i, c in enumerate(clients):
        c.publish("fan/%d" % i, b"hello-%d" % i, 1, wait=False)
    got = sub.expect(200, timeout=30)
    check(sorted(m.payload for m in got) == sorted(b"hello-%d" % i for i in range(200)), "all 200 delivered")
    for c in clients:
        c.disconnect()
    eventually(lambda: node.metric("mqseal_device_connections_open") == 1, 10, msg="connections closed")


def test_mqtt5_properties_and_aliases(workdir):
    broker, node = setup(workdir)
    direct = Client("p5-direct", 5)
    direct.connect(broker.port)
    direct.subscribe("p5/#", 1)
    dev = Client("p5-dev", 5)
    dev.connect(node.port)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("k1", "v1"), ("k2", "v2")]
    props.ContentType = "text/plain"
    props.ResponseTopic = "p5/reply"
    props.CorrelationData = b"\x00\x01corr"
    props.PayloadFormatIndicator = 1
    dev.publish("p5/props", b"with-props", 1, properties=props)
    m = direct.expect(1)[0]
    check(m.payload == b"with-props", "payload")
    check(m.props.ContentType == "text/plain" and m.props.ResponseTopic == "p5/reply", "string properties")
    check(m.props.CorrelationData == b"\x00\x01corr", "binary property")
    check(("k1", "v1") in m.props.UserProperty and ("k2", "v2") in m.props.UserProperty, "user properties")
    # Topic alias from the device: first with topic, then alias only.
    a1 = Properties(PacketTypes.PUBLISH)
    a1.TopicAlias = 1
    dev.publish("p5/alias", b"alias-1", 1, properties=a1)
    a2 = Properties(PacketTypes.PUBLISH)
    a2.TopicAlias = 1
    dev.publish("", b"alias-2", 1, properties=a2)
    got = direct.expect(2)
    check([(x.topic, x.payload) for x in got] == [("p5/alias", b"alias-1"), ("p5/alias", b"alias-2")],
          "topic alias resolved by the broker: %r" % got)


def test_shared_subscription(workdir):
    broker, node = setup(workdir)
    a = Client("share-a", 5)
    b = Client("share-b", 5)
    a.connect(node.port)
    b.connect(node.port)
    a.subscribe("$share/g/shared/t", 1)
    b.subscribe("$share/g/shared/t", 1)
    pub = Client("share-pub")
    pub.connect(broker.port)
    for i in range(20):
        pub.publish("shared/t", b"s-%d" % i, 1)
    got = a.quiet(1.5) + b.quiet(0.5)
    check(sorted(m.payload for m in got) == sorted(b"s-%d" % i for i in range(20)),
          "each shared message delivered once to the group: %d" % len(got))


def make_test_ca(workdir):
    """A test CA and a server certificate for 127.0.0.1 / localhost."""
    ca_key, ca = os.path.join(workdir, "ca.key"), os.path.join(workdir, "ca.crt")
    key, csr, crt = (os.path.join(workdir, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(workdir, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key,
         "-out", ca, "-days", "2", "-subj", "/CN=mqseal test CA")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=localhost")
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt, "-days", "2",
         "-extfile", ext)
    return {"ca": ca, "cert": crt, "key": key}


def test_tls_upstream(workdir):
    tls = make_test_ca(workdir)
    broker = Broker(workdir, tls=tls).start()
    node = Node(workdir, "tls", broker.port,
                conf={"topics": {"plaintext": ["#"]},
                      "broker": {"tls": {"enabled": True, "ca_file": tls["ca"], "server_name": "localhost"}}}
                ).start()
    sub = Client("tls-sub")
    sub.connect(node.port)
    sub.subscribe("tls/#", 1)
    sub.publish("tls/x", b"over-tls", 1)
    check(sub.expect(1)[0].payload == b"over-tls", "round trip over a TLS upstream")
    # A name the certificate does not carry fails verification: the device is refused.
    bad = Node(workdir, "tls-bad", broker.port,
               conf={"topics": {"plaintext": ["#"]},
                     "broker": {"tls": {"enabled": True, "ca_file": tls["ca"], "server_name": "wrong.example"}}}
               ).start()
    dev = Client("tls-bad-dev")
    dev.connect(bad.port, expect_rc=3)
    bad.wait_log("unreachable")


def test_slow_device_catches_up(workdir):
    """A device that stops reading while the broker keeps sending, then reads again, gets every
    message in order and intact, and later messages still flow: mqseal writes to the device
    directly while its socket takes everything, hands the rest to the write event when the socket
    is full (and stops reading the broker at the output high watermark), and goes back to direct
    writes once the queue has drained."""
    # No in-flight limit at the broker: it sends the whole backlog at once (12.5 MiB, more than
    # the device's socket buffers take), so mqseal's queue for the device fills up.
    broker, node = setup(workdir, broker_kw={"extra": "max_inflight_messages 0"})
    slow = RawClient(node.port, "slow-dev")
    slow.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 262144)
    check(slow.subscribe("t/slow", 1) == 1, "SUBACK QoS 1")
    pub = Client("slow-pub")
    pub.connect(broker.port)
    size, count = 16384, 800
    payloads = [(b"%06d" % i) * (size // 6) + b"." * (size % 6) for i in range(count)]
    t0 = time.monotonic()
    for p in payloads:  # each acknowledged by the broker: the device reads nothing meanwhile
        pub.publish("t/slow", p, 1)
    print("  published %d x %d B in %.2f s" % (count, size, time.monotonic() - t0))
    time.sleep(1.0)
    check(node.alive(), "mqseal survived the backlog")
    got = []
    for _ in range(count):
        topic, payload, qos, pid, _, _ = slow.read_publish(timeout=30)
        slow.ack(4, pid)
        got.append(payload)
    print("  read in %.2f s" % (time.monotonic() - t0))
    check(got == payloads, "every message in order and intact (%d of %d equal)"
          % (sum(1 for a, b in zip(got, payloads) if a == b), count))
    # Caught up: the next messages come through at once.
    for i in range(20):
        pub.publish("t/slow", b"after-%d" % i, 1)
    after = []
    for _ in range(20):
        _, payload, _, pid, _, _ = slow.read_publish(timeout=5)
        slow.ack(4, pid)
        after.append(payload)
    check(after == [b"after-%d" % i for i in range(20)], "later messages flow after the catch-up")
    slow.close()
    pub.disconnect()


def test_broker_unreachable(workdir):
    dead_port = free_port()
    node = Node(workdir, "lonely", dead_port, conf=PLAIN).start()
    c4 = Client("nobroker4", 4)
    c4.connect(node.port, expect_rc=3)  # 0x03 server unavailable
    c5 = Client("nobroker5", 5)
    c5.connect(node.port, expect_rc=136)  # 0x88 server unavailable
    check(node.output().count("unreachable") >= 1, "logged")


def test_broker_connect_timeout(workdir):
    """A broker that takes the TCP connection but never answers the TLS handshake: after
    broker.connect_timeout_seconds the device is refused (CONNACK 0x03) with a log line saying
    so. A device that leaves while its broker connection is still being made: the attempt ends with
    the session (no refusal logged for it, nothing left open, no leak)."""
    tls = make_test_ca(workdir)
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.bind((HOST, 0))
    mute.listen(16)  # the kernel completes the TCP handshakes; nobody ever reads
    try:
        node = Node(workdir, "mute", mute.getsockname()[1],
                    conf={"topics": {"plaintext": ["#"]},
                          "broker": {"connect_timeout_seconds": 1,
                                     "tls": {"enabled": True, "ca_file": tls["ca"], "server_name": "localhost"}}}
                    ).start()
        t0 = time.monotonic()
        d = socket.create_connection((HOST, node.port), timeout=5)
        d.sendall(connect_packet("slowbroker"))
        d.settimeout(5)
        got = d.recv(4)
        check(got == b"\x20\x02\x00\x03", "CONNACK 0x03 (server unavailable): %r" % got)
        check(time.monotonic() - t0 >= 0.9, "refused before the timeout")
        d.close()
        node.wait_log("unreachable (timed out after 1s); refusing the device")
        check(node.metric("mqseal_upstream_failures_total") == 1, "one upstream failure counted")
        s = socket.create_connection((HOST, node.port), timeout=5)
        s.sendall(connect_packet("gone"))
        eventually(lambda: "client=gone] state await-connect -> connecting" in node.output(), 5,
                   msg="the second device's broker connection under way")
        s.close()
        eventually(lambda: node.metric("mqseal_device_connections_open") == 0, 8,
                   msg="the session of the device that left is gone")
        check(node.metric("mqseal_upstream_failures_total") == 1, "no refusal counted for a device that left")
        stop_clean(node)
    finally:
        mute.close()


if __name__ == "__main__":
    run([test_qos_v311, test_qos_v5, test_qos_v31, test_retained, test_will_on_abrupt_disconnect,
         test_persistent_session_redelivery, test_keepalive_pings_relayed, test_large_payload,
         test_200_concurrent_clients, test_mqtt5_properties_and_aliases, test_shared_subscription,
         test_tls_upstream, test_slow_device_catches_up, test_broker_unreachable, test_broker_connect_timeout])
