"""Revocation (issue 15 item 6, PROTOCOL.md §9.6): three nodes a, b, x trust each other; a reload of a
removes x, while x keeps its old configuration (it still lists a and b).

- What a seals after the reload never opens at x's devices (a's new epoch has no wrap for x): a
  drop at x, counted.
- x still holds a's previous epoch key, and an epoch key is symmetric: x could seal messages that b
  opens as a's for as long as b keeps that receive key (1.5 x T + grace, 90 minutes by default).
  a's new epoch is announced with the REVOKE flag, and b shortens a's older receive keys to
  keyex.revoke_seconds. Stand-in for x's forgery: a message sealed by a under the old key before
  the reload and held by the broker for a device of b (a persistent session) is delivered to b after
  keyex.revoke_seconds: refused, counted as a drop, while a's new traffic opens."""
# ctest-labels: keyex
# ctest-timeout: 300
import signal
import time

from harness import Broker, Client, Node, check, eventually, run, write_conf

REVOKE_S = 10  # the default keyex.revoke_seconds


def dropped(node):
    m = node.metrics()
    return sum(v for k, v in m.items() if k.startswith("mqseal_dropped_total{"))


def test_reload_revokes_removed_peer(workdir):
    broker = Broker(workdir).start()
    a, b, x = (Node(workdir, n, broker.port) for n in ("a", "b", "x"))
    a.trust(b, x)
    b.trust(a, x)
    x.trust(a, b)
    for n in (a, b, x):
        n.start()
    for n in (a, b, x):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 2, 15, msg="%s keyed" % n.node_id)
    # d: a device of b with a persistent session; it subscribes and goes away
    d = Client("rv-d", clean=False)
    d.connect(b.port)
    d.subscribe("rv/#", 1)
    d.disconnect()
    at_x = Client("rv-x")
    at_x.connect(x.port)
    at_x.subscribe("rv/#", 1)
    pub = Client("rv-pub")
    pub.connect(a.port)
    pub.publish("rv/held", b"sealed under the old key", 1)
    check([m.payload for m in at_x.expect(1)] == [b"sealed under the old key"], "control: x reads a's traffic")
    # the reload: a removes x; x keeps its configuration
    a.trust(b)
    write_conf(a.conf_path, a.conf)
    a.signal(signal.SIGHUP)
    a.wait_log("SIGHUP: reloaded")
    eventually(lambda: a.metric("mqseal_peers_keyed") == 1, 10, msg="a keyed with b only")
    x_drops = dropped(x)
    pub.publish("rv/new", b"after the reload", 1, timeout=15)
    got = [m.payload for m in at_x.quiet(2.0)]
    print("  x's device got %r of what a sealed after the reload" % got)
    check(not got, "a message sealed by a after the reload opened at x's device: %r" % got)
    eventually(lambda: dropped(x) > x_drops, 5, msg="the message counted as a drop at x")
    # b keeps a's old receive key only keyex.revoke_seconds more
    time.sleep(REVOKE_S + 2)
    b_drops = dropped(b)
    d = Client("rv-d", clean=False)
    d.connect(b.port)
    got = [m.payload for m in d.quiet(3.0)]
    print("  %d s after the reload, b delivered %r sealed under a's old key" % (REVOKE_S + 2, got))
    check(b"sealed under the old key" not in got, "b still opens a's old key %d s after a revoked it: %r"
          % (REVOKE_S + 2, got))
    check(got == [b"after the reload"], "a's traffic under its new key still reaches b's device: %r" % got)
    eventually(lambda: dropped(b) > b_drops, 5, msg="the old-key message counted as a drop at b")
    b.wait_log("REVOKE")


if __name__ == "__main__":
    run([test_reload_revokes_removed_peer])
