#!/usr/bin/python3
"""Key exchange version 2 at the broker (issue 15 item 3; PROTOCOL.md §7.1), with a real
mosquitto and real nodes:

- per-recipient delivery: in a star (one backend, three sensors that trust only the backend), the
  broker's own log of what it sends to each node's control connection shows that a node receives only
  announcements addressed to it, from its peers, and presence of its peers: no sensor ever receives
  a wrap meant for another sensor (version 1 sent every node the backend's announcement with every
  sensor's wrap in it);
(Presence is test_peer_presence.py; the broker observer's view of the same star is
test_keyex.py test_star_per_recipient.)
"""
# ctest-labels: keyex
# ctest-timeout: 180
import re
import time

from harness import Broker, Client, Node, check, eventually, run

PREFIX = "mqseal"
# mosquitto (log_type debug): "Sending PUBLISH to <client> (d0, q1, r1, m2, '<topic>', ... (244 bytes))."
SENT = re.compile(r"Sending PUBLISH to (\S+) \(d\d, q\d, r\d, m\d+, '([^']*)', \.\.\. \((\d+) bytes\)\)")


def star(workdir, sensors=3, conf=None):
    broker = Broker(workdir, extra="log_type debug").start()
    backend = Node(workdir, "backend", broker.port, conf=conf)
    ss = [Node(workdir, "s%d" % i, broker.port, conf=conf) for i in range(1, sensors + 1)]
    backend.trust(*ss)
    for s in ss:
        s.trust(backend)
    for n in [backend] + ss:
        n.start()
    for s in ss:
        eventually(lambda: s.metric("mqseal_peers_keyed") == 1, 30, msg="%s keyed" % s.node_id)
    eventually(lambda: backend.metric("mqseal_peers_keyed") == sensors, 30, msg="backend keyed")
    return broker, backend, ss


def sent_to_nodes(broker):
    """(node id, topic, bytes) of every key-exchange PUBLISH the broker sent to a node's control
    connection (client id mqseal-<node id>)."""
    out = []
    for client, topic, size in SENT.findall(broker.output()):
        if client.startswith("mqseal-") and topic.startswith(PREFIX + "/"):
            out.append((client[len("mqseal-"):], topic, int(size)))
    return out


def allowed(node_id, peers, topic):
    """May the control connection of node_id receive this key-exchange topic (§7.1)?"""
    parts = topic.split("/")
    if len(parts) == 4 and parts[1] in ("kx", "ack"):
        return parts[2] == node_id and parts[3] in peers
    if len(parts) == 3 and parts[1] == "presence":
        return parts[2] in peers or parts[2] == node_id  # its own: repaired if wrong (§9.7)
    return False


def test_wraps_reach_only_their_recipient(workdir):
    broker, backend, ss = star(workdir)
    # One message round trip through the star, so the keys are in use.
    dev_b = Client("dev-b")
    dev_b.connect(backend.port)
    dev_b.subscribe("sensors/#", 1)
    dev_s = Client("dev-s1")
    dev_s.connect(ss[0].port)
    dev_s.publish("sensors/s1/temp", b"21.5", qos=1)
    got = dev_b.expect(1)
    check(got[0].payload == b"21.5", got)
    time.sleep(1.0)  # the broker's log of the last deliveries
    peers = {"backend": {s.node_id for s in ss}}
    for s in ss:
        peers[s.node_id] = {"backend"}
    sent = sent_to_nodes(broker)
    check(sent, "the broker log shows no key-exchange delivery: " + broker.output()[-2000:])
    wrong = [(n, t, b) for n, t, b in sent if not allowed(n, peers[n], t)]
    check(not wrong, "messages delivered to nodes they are not addressed to: %r" % wrong[:10])
    for s in ss:
        mine = [t for n, t, _ in sent if n == s.node_id and t.startswith(PREFIX + "/kx/")]
        check(mine, "%s received no announcement" % s.node_id)
    # One announcement carries at most one entry: at most 356 bytes (§7.2).
    big = [(n, t, b) for n, t, b in sent if t.startswith(PREFIX + "/kx/") and b > 356]
    check(not big, "announcements larger than one entry: %r" % big[:5])
    for s in ss:
        m = s.metrics()
        check(m.get('mqseal_announcements_rejected_total{reason="unknown_peer"}', 0) == 0, m)
        check(m.get("mqseal_announcements_ignored_total", 0) == 0, m)


if __name__ == "__main__":
    run([test_wraps_reach_only_their_recipient])
