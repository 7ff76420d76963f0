"""Read groups and writers enforced (issue 17, PROTOCOL.md §5.8, §6.1 steps 3 and 6, §11.1), on a real
mosquitto with the example fleet of docs/OPERATIONS.md: backend, actuator-1, actuator-2, sensor-1,
sensor-2, one shared groups definition (telemetry: sensors/# read by the backend; commands: cmd/#
read by the actuators, written by the backend). Sensors trust only the backend, actuators the
backend and each other, the backend everyone.

(a) sensor-2's device subscribed to sensors/# gets nothing of sensor-1's data nor of what the
    backend publishes there, while the backend's device gets sensor-1's data (not_a_reader at
    sensor-2).
(b) sensor-1's device subscribed to cmd/# gets no command, the actuators' devices get the
    backend's commands (not_a_reader at sensor-1).
(c) actuator-1's device publishing on cmd/# is refused by actuator-1 (PUBACK 0x87, counted as
    denied): nothing reaches actuator-2.
(d) a dishonest actuator-1 sidecar forges a command: actuator-1 is reloaded with a groups
    definition that names itself a writer of commands, so it seals commands under a key of its own
    for the commands group, wraps that key for actuator-2 (a reader) and signs with its real
    identity key: real key material, a real envelope. actuator-2, whose definition says only the
    backend writes commands, opens it with that key and drops it (writer_not_proven): its device
    gets nothing.
(e) a reload on every node removes actuator-2 from the readers of commands: afterwards
    actuator-2's device receives no new command (counted not_a_reader), actuator-1's still does.
(f) a reload on every node adds actuator-2 back: it reads new commands again.
test_group_without_key_refused_after_hold: a publish on a group whose key is not there yet is
refused after seal.hold_seconds, not held until the key comes.

Every attack is tried and reported before any check fails, so a run on a build without the
enforcement shows which of them got through."""
# ctest-labels: keyex
# ctest-timeout: 300
import signal

from harness import Broker, Client, Node, RawClient, check, eventually, publish_packet, run, write_conf

FLEET = ("backend", "actuator-1", "actuator-2", "sensor-1", "sensor-2")


def groups(cmd_readers=("actuator-1", "actuator-2"), cmd_writers=("backend",)):
    return [{"name": "telemetry", "topics": ["sensors/#"], "readers": ["backend"]},
            {"name": "commands", "topics": ["cmd/#"], "readers": list(cmd_readers),
             "writers": list(cmd_writers)}]


def dropped(node, reason):
    return node.metric('mqseal_dropped_total{reason="%s"}' % reason)


def reload_groups(node, g):
    node.conf["groups"] = g
    write_conf(node.conf_path, node.conf)
    n = node.output().count("SIGHUP: reloaded")
    node.signal(signal.SIGHUP)
    eventually(lambda: node.output().count("SIGHUP: reloaded") > n or not node.alive(), 10,
               msg="%s reloaded" % node.node_id)
    check(node.alive(), "%s exited at the reload" % node.node_id)


def start_fleet(workdir):
    broker = Broker(workdir).start()
    conf = {"groups": groups()}
    n = {i: Node(workdir, i, broker.port, conf=dict(conf)) for i in FLEET}
    n["backend"].trust(*[n[i] for i in FLEET if i != "backend"])
    n["actuator-1"].trust(n["backend"], n["actuator-2"])
    n["actuator-2"].trust(n["backend"], n["actuator-1"])
    n["sensor-1"].trust(n["backend"])
    n["sensor-2"].trust(n["backend"])
    for node in n.values():
        node.start()
    want = {"backend": 4, "actuator-1": 2, "actuator-2": 2, "sensor-1": 1, "sensor-2": 1}
    for i, node in n.items():
        eventually(lambda: node.metric("mqseal_peers_keyed") == want[i], 30, msg="%s keyed" % i)
    return broker, n


def device(node, name, sub=None):
    c = Client(name)
    c.connect(node.port)
    if sub:
        c.subscribe(sub, 1)
    return c


def payloads(msgs):
    return sorted(m.payload for m in msgs)


def test_groups_enforced(workdir):
    _, n = start_fleet(workdir)
    failures = []

    def attack(name, ok, detail):
        print("  %s: %s (%s)" % (name, "refused" if ok else "GOT THROUGH", detail), flush=True)
        if not ok:
            failures.append("%s: %s" % (name, detail))

    be_tel = device(n["backend"], "g-be-tel", "sensors/#")
    be_pub = device(n["backend"], "g-be-pub")
    s1_pub = device(n["sensor-1"], "g-s1-pub")
    s2_tel = device(n["sensor-2"], "g-s2-tel", "sensors/#")
    s1_cmd = device(n["sensor-1"], "g-s1-cmd", "cmd/#")
    a1_cmd = device(n["actuator-1"], "g-a1-cmd", "cmd/#")
    a2_cmd = device(n["actuator-2"], "g-a2-cmd", "cmd/#")

    # (a) telemetry: the backend reads it, the other sensor does not
    before = dropped(n["sensor-2"], "not_a_reader")
    s1_pub.publish("sensors/s1/temp", b"s1 21.5C", 1)
    be_pub.publish("sensors/all/config", b"backend config for sensors", 1)
    got_be = payloads(be_tel.expect(2, timeout=15))
    check(got_be == [b"backend config for sensors", b"s1 21.5C"], "backend's device gets telemetry: %r" % got_be)
    got = payloads(s2_tel.quiet(6.0))
    attack("(a) sensor-2 reads telemetry", not got, "sensor-2's device got %r; backend's %r" % (got, got_be))
    nar = dropped(n["sensor-2"], "not_a_reader") - before
    attack("(a) counted at sensor-2", nar == 2, "not_a_reader +%d" % nar)

    # (b) commands: the actuators read them, a sensor does not
    before = dropped(n["sensor-1"], "not_a_reader")
    be_pub.publish("cmd/valve/1", b"open valve 1", 1)
    for name, c in (("actuator-1", a1_cmd), ("actuator-2", a2_cmd)):
        got_a = payloads(c.expect(1, timeout=15))
        check(got_a == [b"open valve 1"], "%s's device gets the backend's command: %r" % (name, got_a))
    got = payloads(s1_cmd.quiet(6.0))
    attack("(b) sensor-1 reads commands", not got, "sensor-1's device got %r" % got)
    nar = dropped(n["sensor-1"], "not_a_reader") - before
    attack("(b) counted at sensor-1", nar == 1, "not_a_reader +%d" % nar)

    # (c) an actuator's device publishing a command: refused by its own node, MQTT 5 0x87
    denied = n["actuator-1"].metric("mqseal_denied_total")
    raw = RawClient(n["actuator-1"].port, "g-a1-raw", level=5)
    raw.s.sendall(publish_packet("cmd/valve/1", b"close valve 1 (from actuator-1)", qos=1, pid=7, level=5))
    t, _, body = raw.read_packet()
    reason = body[2] if len(body) > 2 else 0
    raw.close()
    check(t == 4, "PUBACK expected, got type %d" % t)
    attack("(c) actuator-1's device publishes a command", reason == 0x87, "PUBACK reason 0x%02x" % reason)
    got = payloads(a2_cmd.quiet(4.0))
    attack("(c) nothing reached actuator-2", not got, "actuator-2's device got %r" % got)
    d = n["actuator-1"].metric("mqseal_denied_total") - denied
    attack("(c) counted as denied at actuator-1", d >= 1, "denied +%d" % d)

    # (d) a dishonest actuator-1 sidecar that seals and signs commands as a writer
    before = {r: dropped(n["actuator-2"], r) for r in ("writer_not_proven", "unknown_key")}
    reload_groups(n["actuator-1"], groups(cmd_writers=("backend", "actuator-1")))
    eventually(lambda: n["actuator-1"].metric("mqseal_peers_keyed") == 2, 20, msg="actuator-1 keyed again")
    a1_pub = device(n["actuator-1"], "g-a1-pub")
    a1_pub.publish("cmd/valve/2", b"forged: open valve 2", 1, timeout=15)
    got = payloads(a2_cmd.quiet(8.0))
    attack("(d) actuator-2 accepts actuator-1's forged command", not got, "actuator-2's device got %r" % got)
    after = {r: dropped(n["actuator-2"], r) - v for r, v in before.items()}
    attack("(d) counted at actuator-2", after == {"writer_not_proven": 1, "unknown_key": 0}, "drops %r" % after)
    reload_groups(n["actuator-1"], groups())
    a1_cmd.quiet(1.0)

    # (e) actuator-2 removed from the readers of commands on every node
    g = groups(cmd_readers=("actuator-1",))
    for i in FLEET:
        reload_groups(n[i], g)
    for i, want in (("backend", 4), ("actuator-1", 2), ("actuator-2", 2)):
        eventually(lambda: n[i].metric("mqseal_peers_keyed") == want, 30, msg="%s keyed after the reload" % i)
    before = dropped(n["actuator-2"], "not_a_reader")
    be_pub.publish("cmd/valve/3", b"open valve 3", 1, timeout=15)
    got_a1 = payloads(a1_cmd.expect(1, timeout=15))
    check(got_a1 == [b"open valve 3"], "actuator-1's device still gets commands: %r" % got_a1)
    got = payloads(a2_cmd.quiet(6.0))
    attack("(e) removed actuator-2 reads a new command", not got, "actuator-2's device got %r" % got)
    nar = dropped(n["actuator-2"], "not_a_reader") - before
    attack("(e) counted at actuator-2", nar == 1, "not_a_reader +%d" % nar)

    # (f) the other direction: actuator-2 added back to the readers on every node, actuator-2
    # last: the backend re-issues its message with the commands entry at its own reload, which
    # actuator-2, not a reader yet by its own configuration, ignores. Its reload must then take the
    # backend's announcement again (PROTOCOL.md §11.1): actuator-2 reads new commands again.
    ignored = n["actuator-2"].metric("mqseal_group_entries_ignored_total")
    for i in FLEET:
        if i != "actuator-2":
            reload_groups(n[i], groups())
    eventually(lambda: n["actuator-2"].metric("mqseal_group_entries_ignored_total") > ignored, 30,
               msg="actuator-2 ignored the backend's commands entry before its own reload")
    reload_groups(n["actuator-2"], groups())
    for i, want in (("backend", 4), ("actuator-1", 2), ("actuator-2", 2)):
        eventually(lambda: n[i].metric("mqseal_peers_keyed") == want, 30, msg="%s keyed after the reload" % i)
    got_a2 = []
    for k in range(10):  # until actuator-2 holds the backend's commands key again
        be_pub.publish("cmd/valve/4", b"open valve 4.%d" % k, 1, timeout=15)
        got_a1 = payloads(a1_cmd.expect(1, timeout=15))
        check(got_a1 == [b"open valve 4.%d" % k], "actuator-1's device gets commands: %r" % got_a1)
        got_a2 = payloads(a2_cmd.quiet(1.0))
        if got_a2:
            break
    check(got_a2 and got_a2[-1].startswith(b"open valve 4."),
          "actuator-2, a reader again, reads new commands: %r" % got_a2)

    for c in (be_tel, be_pub, s1_pub, s2_tel, s1_cmd, a1_cmd, a2_cmd, a1_pub):
        c.disconnect()
    check(not failures, "attacks that got through: %r" % failures)


def test_group_without_key_refused_after_hold(workdir):
    """A device publish on a group whose key this node does not have yet (a reload added the group;
    its key comes with the next epoch, which waits for a peer that does not answer) waits
    seal.hold_seconds at most, then is refused with 0x97 like any publish without a key. Before, it
    waited hold after hold until the key came: the no-key check saw the default group's key."""
    broker = Broker(workdir).start()
    conf = {"seal": {"hold_seconds": 2}, "keyex": {"activation_seconds": 60}}
    a = Node(workdir, "a", broker.port, conf=dict(conf))
    b = Node(workdir, "b", broker.port, conf=dict(conf))
    a.trust(b)
    b.trust(a)
    a.start()
    b.start()
    for node in (a, b):
        eventually(lambda: node.metric("mqseal_peers_keyed") == 1, 30, msg="%s keyed" % node.node_id)
    b.signal(signal.SIGSTOP)  # live for a (its presence says online) but confirms nothing
    try:
        reload_groups(a, [{"name": "g2", "topics": ["g2/#"], "readers": ["a", "b"]}])
        refused = a.metric("mqseal_refused_total")
        raw = RawClient(a.port, "g-hold", level=5)
        raw.s.sendall(publish_packet("g2/x", b"needs the g2 key", qos=1, pid=9, level=5))
        t, _, body = raw.read_packet(timeout=12.0)
        raw.close()
        reason = body[2] if len(body) > 2 else 0
        check(t == 4 and reason == 0x97, "PUBACK 0x97 expected, got type %d reason 0x%02x" % (t, reason))
        check(a.metric("mqseal_refused_total") == refused + 1, "counted as refused")
    finally:
        b.signal(signal.SIGCONT)


if __name__ == "__main__":
    run([test_groups_enforced, test_group_without_key_refused_after_hold])
