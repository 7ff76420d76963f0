"""Signals (issue: operations): SIGHUP reloads peers, topic policy and log level without dropping
device connections - a removed peer cannot read what is sent afterwards, an invalid file changes
nothing - and SIGTERM lets in-flight QoS 1 publishes finish, so none is lost across a restart."""
# ctest-labels: ops keyex
# ctest-timeout: 300
import signal
import threading
import time

from harness import Broker, Client, Node, check, eventually, free_port, run, write_conf


def trio(workdir):
    broker = Broker(workdir).start()
    a, b, c = (Node(workdir, n, broker.port) for n in ("a", "b", "c"))
    a.trust(b, c)
    b.trust(a, c)
    c.trust(a, b)
    for n in (a, b, c):
        n.start()
    for n in (a, b, c):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 2, 10, msg="%s keyed" % n.node_id)
    return broker, a, b, c


def test_reload_removes_peer(workdir):
    broker, a, b, c = trio(workdir)
    pub = Client("rl-pub")
    pub.connect(a.port)
    at_b, at_c = Client("rl-b"), Client("rl-c")
    at_b.connect(b.port)
    at_c.connect(c.port)
    at_b.subscribe("rl/#", 1)
    at_c.subscribe("rl/#", 1)
    pub.publish("rl/x", b"before", 1)
    check(at_b.expect(1)[0].payload == b"before" and at_c.expect(1)[0].payload == b"before", "all read it")
    conns = a.metric("mqseal_device_connections_total")
    epoch = a.metric("mqseal_epoch")
    a.trust(b)  # c removed
    write_conf(a.conf_path, a.conf)
    a.signal(signal.SIGHUP)
    a.wait_log("SIGHUP: reloaded")
    check("peer c removed by reload" in a.output(), "removal logged")
    eventually(lambda: a.metric("mqseal_epoch") > epoch, 5, msg="a new epoch at once")
    eventually(lambda: a.metric("mqseal_activations_total") >= 2, 15, msg="the new epoch active")
    for i in range(5):
        pub.publish("rl/x", b"after-%d" % i, 1)
    check([m.payload for m in at_b.expect(5)] == [b"after-%d" % i for i in range(5)], "b still reads")
    check(not at_c.quiet(1.5), "the removed peer reads nothing sent after the reload")
    eventually(lambda: c.metric('mqseal_dropped_total{reason="unknown_key"}') >= 1, 10,
               msg="c got them and could not open them")
    check(not at_c.quiet(0.5), "still nothing at the removed peer's device")
    check(a.metric("mqseal_device_connections_total") == conns and not pub.disconnected.is_set(),
          "the device stayed connected")
    check(a.metric("mqseal_peers_configured") == 1, "one peer configured now")


def test_invalid_reload_keeps_config(workdir):
    broker, a, b, c = trio(workdir)
    bad = dict(a.conf)
    bad["listen"] = dict(a.conf["listen"], port=70000)
    bad["bogus_option"] = 1
    write_conf(a.conf_path, bad)
    a.signal(signal.SIGHUP)
    a.wait_log("is invalid; the running configuration stays")
    check("70000 is out of range" in a.output() and "bogus_option" in a.output(), "each problem logged")
    check(a.alive(), "still running")
    pub, sub = Client("ir-pub"), Client("ir-sub")
    pub.connect(a.port)
    sub.connect(b.port)
    sub.subscribe("ir/#", 1)
    pub.publish("ir/x", b"still-sealing", 1)
    check(sub.expect(1)[0].payload == b"still-sealing", "traffic with the old configuration")
    check(a.metric("mqseal_peers_configured") == 2, "peers unchanged")


def test_reload_log_level_and_topics(workdir):
    broker = Broker(workdir).start()
    a = Node(workdir, "a", broker.port).start()
    direct = Client("lt-direct")
    direct.connect(broker.port)
    direct.subscribe("open/#", 1)
    dev = Client("lt-dev")
    dev.connect(a.port)
    dev.publish("open/x", b"sealed-first", 1)
    check(direct.expect(1)[0].payload != b"sealed-first", "sealed before the reload")
    a.conf["topics"] = {"plaintext": ["open/#"]}
    a.conf["log"] = {"level": "error"}
    write_conf(a.conf_path, a.conf)
    a.signal(signal.SIGHUP)
    eventually(lambda: "reloaded" in a.output() or a.metric("mqseal_device_connections_open") == 1, 5)
    time.sleep(0.3)
    dev.publish("open/x", b"plain-now", 1)
    check(direct.expect(1)[0].payload == b"plain-now", "the new topic policy applies to a connected device")
    before = len(a.output())
    dev.publish("open/y", b"x", 1)
    time.sleep(0.3)
    check("debug" not in a.output()[before:], "log level lowered to error")


def test_reload_keeps_restart_only_options(workdir):
    broker = Broker(workdir).start()
    a = Node(workdir, "a", broker.port).start()
    a.conf["broker"] = dict(a.conf["broker"], port=free_port())  # a restart-only option
    write_conf(a.conf_path, a.conf)
    a.signal(signal.SIGHUP)
    a.wait_log("takes a restart")
    a.wait_log("SIGHUP: reloaded")
    dev = Client("rk-dev")
    dev.connect(a.port)  # still relayed to the running broker, not the port in the file
    dev.subscribe("rk/#", 1)
    dev.publish("rk/x", b"same-broker", 1)
    check(dev.expect(1)[0].payload == b"same-broker", "new connections go to the broker it started with")


def test_sigterm_loses_no_qos1(workdir):
    broker = Broker(workdir).start()
    a, b = Node(workdir, "a", broker.port), Node(workdir, "b", broker.port)
    a.trust(b)
    b.trust(a)
    a.conf["shutdown_grace_seconds"] = 5
    a.start()
    b.start()
    eventually(lambda: a.metric("mqseal_peers_keyed") == 1 and b.metric("mqseal_peers_keyed") == 1, 10)
    sub = Client("term-sub")
    sub.connect(b.port)
    sub.subscribe("term/#", 1)
    pub = Client("term-pub")
    pub.c.reconnect_delay_set(1, 2)
    pub.c.max_inflight_messages_set(50)
    pub.connect(a.port)
    infos = []
    N = 3000

    def produce():  # as fast as the client's 50-message in-flight window allows
        for i in range(N):
            infos.append(pub.publish("term/x", b"t-%05d" % i, 1, wait=False))
            if i % 50 == 49:
                time.sleep(0.01)
    t = threading.Thread(target=produce, daemon=True)
    t.start()
    time.sleep(0.3)
    # Freeze the broker so that publishes are surely in flight (relayed, not acknowledged) when
    # SIGTERM comes; it acknowledges them within the grace time.
    broker.signal(signal.SIGSTOP)
    time.sleep(0.3)
    a.signal(signal.SIGTERM)
    time.sleep(1.0)
    check(a.alive(), "still waiting for the broker's acks")
    broker.signal(signal.SIGCONT)
    rc = a.p.wait(15)
    check(rc == 0, "clean exit on SIGTERM: %r" % rc)
    check("in-flight" in a.output(), "graceful stop logged")
    a.start()
    t.join(30)
    # Publishes made while a was down stay queued in the client and go out after it reconnects.
    msgs = [m.payload for m in sub.expect(N, timeout=60)]
    msgs += [m.payload for m in sub.quiet(1.0)]
    missing = sorted(set(b"t-%05d" % i for i in range(N)) - set(msgs))
    check(not missing, "no QoS 1 message lost across SIGTERM and restart: missing %r" % missing[:10])
    # The graceful stop waited for the broker's acks of what was in flight and delivered them to
    # the device, so the device had nothing to send twice.
    check(len(msgs) == N, "no duplicates: %d deliveries for %d messages" % (len(msgs), N))


def test_reload_revokes_at_once(workdir):
    """Revocation (PROTOCOL.md §9.6): from the moment a reload removes a peer, nothing is sealed
    under a key it holds, even while another peer is slow to confirm the new epoch (b is down: a
    would otherwise go on with the old key until the activation delay ran out). A message published
    right after the reload reaches no device of the removed peer."""
    broker, a, b, c = trio(workdir)
    pub = Client("rv-pub")
    pub.connect(a.port)
    at_c = Client("rv-c")
    at_c.connect(c.port)
    at_c.subscribe("rv/#", 1)
    pub.publish("rv/x", b"before", 1)
    check(at_c.expect(1)[0].payload == b"before", "control: c reads it before the reload")
    b.kill()  # the remaining peer cannot confirm the new epoch
    a.trust(b)  # c removed
    write_conf(a.conf_path, a.conf)
    a.signal(signal.SIGHUP)
    a.wait_log("SIGHUP: reloaded")
    for i in range(3):
        pub.publish("rv/x", b"after-%d" % i, 1, timeout=15)
    got = [m.payload for m in at_c.quiet(2.0)]
    print("  removed peer c got %r of what a sealed right after the reload" % got)
    check(not got, "the removed peer read messages sealed after the reload: %r" % got)
    b.start()
    eventually(lambda: a.metric("mqseal_peers_keyed") == 1, 15, msg="a and b keyed again")
    at_b = Client("rv-b")
    at_b.connect(b.port)
    at_b.subscribe("rv/#", 1)
    pub.publish("rv/x", b"later", 1)
    check([m.payload for m in at_b.expect(1)] == [b"later"], "legit traffic to the remaining peer")


if __name__ == "__main__":
    run([test_reload_removes_peer, test_reload_revokes_at_once, test_invalid_reload_keeps_config, test_reload_log_level_and_topics,
         test_reload_keeps_restart_only_options, test_sigterm_loses_no_qos1])
