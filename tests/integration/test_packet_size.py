"""Maximum Packet Size through a sealing node behaves as it does against the broker (issue 14, item 2;
PROTOCOL.md §5.1, §6.1): each test runs the same steps directly against mosquitto, through one
sealing node (no peers: it opens its own messages) and through a sealed pair (device on node a,
device on node b), and checks that the device observes the same thing.

- The device's own limit (CONNECT Maximum Packet Size 64): a 32-byte payload arrives, a 60-byte one
  does not (MQTT 5 §3.1.2.11.4: the server discards what the client cannot take), at QoS 0 and 1,
  on a sealed topic and on a plaintext one (the limit the broker sees is raised for both);
  a discarded QoS 1 message leaves nothing behind at the broker (mosquitto's $SYS store count less
  its retained count is 0; no redelivery after reconnecting to the kept session).
- The broker's limit (mosquitto max_packet_size 1024): the CONNACK a device sees leaves room for the
  seal; a publish of the advertised size arrives; one over it gets DISCONNECT 0x95 and the close,
  as one over the broker's own limit does directly.
Raw sockets, so that sizes are exact and the DISCONNECT is read byte for byte.
"""
# ctest-labels: sealing
# ctest-timeout: 300
import struct
import time

from harness import (Broker, Client, Node, RawClient, check, eventually, mqtt_str, publish_packet, raw_connect,
                     run, stop_clean, varint)

PROP_SESSION_EXPIRY = 0x11
PROP_MAX_PACKET = 0x27
DISCONNECT = 14
PACKET_TOO_LARGE = 0x95
BROKER_MAX = 1024  # room for the key exchange's announcements
MODES = ("direct", "node", "pair")
POLICY = {"topics": {"plaintext": ["plain/#"]}}  # everything else sealed

# MQTT 5 §2.2.2.2: the value type of each property identifier, to walk a property block.
_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_U16 = {0x13, 0x21, 0x22, 0x23}
_U32 = {0x02, 0x11, 0x18, 0x27}
_STR = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F, 0x09, 0x16}


def parse_props(b):
    """{id: value} of an MQTT 5 property block (without its length); user properties are skipped."""
    out, i = {}, 0
    while i < len(b):
        pid = b[i]
        i += 1
        if pid in _BYTE:
            out[pid], i = b[i], i + 1
        elif pid in _U16:
            out[pid], i = struct.unpack(">H", b[i:i + 2])[0], i + 2
        elif pid in _U32:
            out[pid], i = struct.unpack(">I", b[i:i + 4])[0], i + 4
        elif pid in _STR:
            n = struct.unpack(">H", b[i:i + 2])[0]
            out[pid], i = b[i + 2:i + 2 + n], i + 2 + n
        elif pid == 0x26:
            for _ in range(2):
                i += 2 + struct.unpack(">H", b[i:i + 2])[0]
        elif pid == 0x0B:
            while b[i] & 0x80:
                i += 1
            i += 1
        else:
            raise AssertionError("unknown property 0x%02x" % pid)
    return out


def read_varint(b, i):
    n, mult = 0, 1
    while True:
        n += (b[i] & 0x7F) * mult
        mult *= 128
        i += 1
        if not b[i - 1] & 0x80:
            return n, i


class Dev5(RawClient):
    """An MQTT 5 device on a raw socket whose CONNECT carries properties; keeps the CONNACK's."""

    def __init__(self, port, client_id, max_packet=None, session_expiry=None, clean=True):
        props = b""
        if session_expiry is not None:
            props += bytes([PROP_SESSION_EXPIRY]) + struct.pack(">I", session_expiry)
        if max_packet is not None:
            props += bytes([PROP_MAX_PACKET]) + struct.pack(">I", max_packet)
        body = mqtt_str("MQTT") + bytes([5, 0x02 if clean else 0]) + struct.pack(">H", 60)
        body += varint(len(props)) + props + mqtt_str(client_id)
        self.level = 5
        self.s = raw_connect(port, timeout=10)
        self.buf = b""
        self.s.sendall(b"\x10" + varint(len(body)) + body)
        t, _, body = self.read_packet()
        check(t == 2, "CONNACK expected, got type %d" % t)
        check(body[1] == 0, "CONNACK refused: 0x%02x" % body[1])
        self.session_present = bool(body[0] & 1)
        n, i = read_varint(body, 2)
        self.connack_props = parse_props(body[i:i + n])

    def publish(self, topic, payload, qos=0, pid=1):
        self.s.sendall(publish_packet(topic, payload, qos, pid, level=5))

    def packets_until_closed(self, timeout=5.0):
        """Every packet until the server closes the connection (fails if it stays open)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                out.append(self.read_packet(max(0.01, deadline - time.monotonic())))
            except AssertionError:  # harness: "connection closed"
                return out
            except OSError:
                check(time.monotonic() < deadline, "the connection stayed open: %r" % out)
                return out
            check(time.monotonic() < deadline, "the connection stayed open: %r" % out)


def publish_of_size(topic, total, qos=1):
    """A payload that makes the level-5 PUBLISH on topic exactly total bytes long."""
    head = 2 + len(topic) + (2 if qos else 0) + 1
    for vlen in (1, 2):
        payload_len = total - 1 - vlen - head
        if payload_len >= 0 and len(varint(head + payload_len)) == vlen:
            payload = (b"size-%d;" % total * (1 + total // 8))[:payload_len]
            assert len(publish_packet(topic, payload, qos, 1, level=5)) == total
            return payload
    raise AssertionError("no payload gives %d bytes" % total)


def setup(workdir, mode, broker_extra=""):
    """(broker, port of the publishing device, port of the receiving device, the nodes: the one that
    opens last)."""
    broker = Broker(workdir, name="broker-" + mode, extra=broker_extra).start()
    if mode == "direct":
        return broker, broker.port, broker.port, []
    if mode == "node":
        n = Node(workdir, "solo", broker.port, conf=POLICY).start()
        return broker, n.port, n.port, [n]
    a, b = Node(workdir, "a", broker.port, conf=POLICY), Node(workdir, "b", broker.port, conf=POLICY)
    a.trust(b)
    b.trust(a)
    for n in (a, b):
        n.start()
    for n in (a, b):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 1, 10, msg="%s keyed" % n.node_id)
    return broker, a.port, b.port, [a, b]


def held_count(broker):
    """Messages mosquitto holds for sessions (queued or in flight): all it stores less the retained
    ones. With sys_interval 1 both are sampled every second and republished (retained) when they
    change; the first second's samples disagree, so wait for a settled one, then read it."""
    time.sleep(2.5)
    watch = Client("sys-%d" % time.monotonic_ns())
    watch.connect(broker.port)
    watch.subscribe("$SYS/broker/store/messages/count", 0)
    watch.subscribe("$SYS/broker/retained messages/count", 0)
    got = {m.topic: int(m.payload) for m in watch.expect(2, timeout=5)}
    watch.disconnect()
    return got["$SYS/broker/store/messages/count"] - got["$SYS/broker/retained messages/count"]


def device_limit_run(workdir, mode):
    """What a device with Maximum Packet Size 64 receives of 32- and 60-byte payloads at QoS 0 and
    1, whether anything comes back after it reconnects to its kept session, and whether the broker
    still holds a message for it."""
    broker, pub_port, sub_port, nodes = setup(workdir, mode, "sys_interval 1")
    dev = Dev5(sub_port, "small-dev", max_packet=64, session_expiry=300)
    check(dev.subscribe("ps/t", 1) == 1, "subscribed at QoS 1")
    check(dev.subscribe("plain/t", 1, pid=2) == 1, "subscribed at QoS 1")
    pub = Client("ps-pub", 5)
    pub.connect(pub_port)
    for topic in ("ps/t", "plain/t"):  # sealed through a node, and plaintext
        for qos in (0, 1):
            for size in (32, 60):
                pub.publish(topic, bytes([0x41 + size % 26]) * size, qos)
    pub.publish("ps/t", b"end", 1)
    got = []
    deadline = time.monotonic() + 10
    while not got or got[-1][1] != b"end":
        check(time.monotonic() < deadline, "%s: the end marker never came (got %r)" % (mode, got))
        topic, payload, qos, pid, _, _ = dev.read_publish(max(0.01, deadline - time.monotonic()))
        got.append((topic, payload, qos))
        if qos:
            dev.ack(4, pid)
    left = held_count(broker)
    dev.close()
    dev = Dev5(sub_port, "small-dev", max_packet=64, session_expiry=300, clean=False)
    check(dev.session_present, "%s: the session was kept" % mode)
    again = []
    try:
        again.append(dev.read_publish(1.0))
    except OSError:  # socket.timeout: nothing came
        pass
    dev.close()
    dropped = None
    if nodes:
        dropped = {k: v for k, v in nodes[-1].metrics().items() if k.startswith("mqseal_dropped_total") and v}
    for n in nodes:
        stop_clean(n)  # exit 0, no sanitizer report (ASan builds: no leak)
    return [(t, len(p), q) for t, p, q in got[:-1]], again, left, dropped


def test_device_max_packet_size(workdir):
    results = {}
    for mode in MODES:
        results[mode] = device_limit_run(workdir, mode)
        print("  %s: received %r, after reconnect %r, left at the broker %d, dropped too_large %r"
              % ((mode,) + results[mode]))
    direct = results["direct"]
    check(sorted(direct[0]) == [("plain/t", 32, 0), ("plain/t", 32, 1), ("ps/t", 32, 0), ("ps/t", 32, 1)],
          "directly: only the 32-byte payloads: %r" % (direct[0],))
    check(direct[1] == [] and direct[2] == 0, "directly: nothing redelivered, nothing left at the broker")
    for mode in ("node", "pair"):
        got, again, left, dropped = results[mode]
        check(sorted(got) == sorted(direct[0]), "%s: the device receives what it does directly: %r" % (mode, got))
        check(again == [], "%s: nothing redelivered after reconnecting: %r" % (mode, again))
        check(left == 0, "%s: the broker holds nothing more for the device: %d" % (mode, left))
        check(dropped == {'mqseal_dropped_total{reason="too_large"}': 4},
              "%s: the 60-byte messages counted as too_large, once each, nothing else dropped: %r" % (mode, dropped))


def broker_limit_run(workdir, mode):
    """The CONNACK limit a device sees with mosquitto at max_packet_size 1024, a publish of exactly
    that size (does it arrive?), and what a publish 48 bytes over it gets."""
    broker, pub_port, sub_port, nodes = setup(workdir, mode, "max_packet_size %d" % BROKER_MAX)
    sub = Dev5(sub_port, "bl-sub")
    check(sub.subscribe("bl/t", 1) == 1, "subscribed")
    dev = Dev5(pub_port, "bl-dev")
    limit = dev.connack_props.get(PROP_MAX_PACKET)
    check(limit is not None and limit == sub.connack_props.get(PROP_MAX_PACKET), "%s: a limit in CONNACK" % mode)
    payload = publish_of_size("bl/t", limit)
    dev.publish("bl/t", payload, 1, pid=7)
    t, _, body = dev.read_packet()
    check(t == 4 and body[:2] == b"\x00\x07" and (len(body) == 2 or body[2] == 0),
          "%s: a publish of the advertised size is accepted: %r" % (mode, (t, body)))
    _, got, _, _, _, _ = sub.read_publish()
    check(got == payload, "%s: and delivered" % mode)
    dev.publish("bl/t", publish_of_size("bl/t", limit + 48), 1, pid=8)
    packets = dev.packets_until_closed()
    sub.close()
    for n in nodes:
        stop_clean(n)
    return limit, [(t, body[:1]) for t, _, body in packets]


def test_broker_max_packet_size(workdir):
    results = {mode: broker_limit_run(workdir, mode) for mode in MODES}
    for mode in MODES:
        print("  %s: CONNACK Maximum Packet Size %d; over it: %r" % ((mode,) + results[mode]))
    check(results["direct"][0] == BROKER_MAX, "directly: mosquitto's own limit")
    for mode in MODES:
        limit, packets = results[mode]
        check(packets == [(DISCONNECT, bytes([PACKET_TOO_LARGE]))],
              "%s: DISCONNECT 0x95, then the close: %r" % (mode, packets))
        if mode != "direct":
            # the advertised size sealed fits the broker, and 48 bytes more (still below the
            # broker's own limit as plaintext) would not: the room is at least the seal's minimum
            check(limit + 48 <= BROKER_MAX < limit + 48 + 42, "%s: room for the seal: %d" % (mode, limit))


if __name__ == "__main__":
    run([test_device_max_packet_size, test_broker_max_packet_size])
