"""Presence (issue 15 item 5, OPERATIONS.md §9.3): each node's key-exchange connection carries an MQTT
will and a signed, retained presence message on <prefix>/presence/<id>.

- kill -9 of b: the broker publishes b's will when the connection closes (the kernel closes b's
  socket), or at the latest 1.5 x keyex.keepalive_seconds later when the connection dies silently
  (keepalive 5 s here: 7.5 s); a reports b away (/peers present=false, why=away, mqseal_peers_present 0, log
  "peer b away") well before b's announcement would expire (1.5 x T).
- b restarts: a logs "peer b back" and both are keyed again within seconds.
- b frozen (SIGSTOP): away within 1.5 x keepalive; thawed: back.
- a clean stop of b: b says offline itself before disconnecting: a reports it away at once."""
# ctest-labels: keyex
# ctest-timeout: 300
import json
import signal
import time
import urllib.request

from harness import HOST, Broker, Node, check, eventually, run

KEEPALIVE_S = 5
CONF = {"keyex": {"keepalive_seconds": KEEPALIVE_S, "interval_seconds": 600}}


def peer(node, pid):
    with urllib.request.urlopen("http://%s:%d/peers" % (HOST, node.metrics_port), timeout=5) as r:
        return {p["id"]: p for p in json.loads(r.read().decode())["peers"]}[pid]


def pair(workdir):
    broker = Broker(workdir).start()
    a, b = (Node(workdir, n, broker.port, conf=CONF) for n in ("a", "b"))
    a.trust(b)
    b.trust(a)
    a.start()
    b.start()
    eventually(lambda: a.metric("mqseal_peers_keyed") == 1 and b.metric("mqseal_peers_keyed") == 1, 15,
               msg="a and b keyed")
    eventually(lambda: a.metric("mqseal_peers_present") == 1, 5, msg="a sees b present")
    check(peer(a, "b")["present"] is True, peer(a, "b"))
    return broker, a, b


def test_kill_and_restart(workdir):
    broker, a, b = pair(workdir)
    b.kill()  # SIGKILL: no goodbye, only the will
    t0 = time.monotonic()
    bound = 1.5 * KEEPALIVE_S + 3
    eventually(lambda: peer(a, "b")["present"] is False, bound, interval=0.2,
               msg="a reports b away within 1.5 x keepalive")
    took = time.monotonic() - t0
    print("  b killed: a reported it away after %.1f s (bound 1.5 x %d s = %.1f s)" % (took, KEEPALIVE_S,
                                                                                   1.5 * KEEPALIVE_S))
    eventually(lambda: a.metric("mqseal_peers_present") == 0, 2, msg="gauge down")
    check(peer(a, "b")["why"] == "away" or peer(a, "b")["keyed"], peer(a, "b"))
    a.wait_log("peer b away")
    b.start()
    t1 = time.monotonic()
    eventually(lambda: a.metric("mqseal_peers_keyed") == 1 and b.metric("mqseal_peers_keyed") == 1
               and peer(a, "b")["present"] is True, 10, interval=0.2, msg="keyed again after b's restart")
    print("  b restarted: present and keyed both ways after %.1f s" % (time.monotonic() - t1))
    a.wait_log("peer b back")


def test_frozen_node_within_keepalive_bound(workdir):
    """b frozen (SIGSTOP): its socket stays open and silent; the broker publishes the will after
    1.5 x keepalive. Thawed, b reconnects with a new session and is back."""
    broker, a, b = pair(workdir)
    b.signal(signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        eventually(lambda: peer(a, "b")["present"] is False, 1.5 * KEEPALIVE_S + 5, interval=0.2,
                   msg="a reports the frozen b away within 1.5 x keepalive (+ the broker's check period)")
        took = time.monotonic() - t0
    finally:
        b.signal(signal.SIGCONT)
    print("  b frozen: a reported it away after %.1f s (bound 1.5 x %d s = %.1f s)" % (took, KEEPALIVE_S,
                                                                                   1.5 * KEEPALIVE_S))
    check(took >= KEEPALIVE_S, "not before the keepalive ran out: %.1f s" % took)
    eventually(lambda: peer(a, "b")["present"] is True, 15, interval=0.2, msg="b back after SIGCONT")
    a.wait_log("peer b back")


def test_clean_stop_says_offline(workdir):
    broker, a, b = pair(workdir)
    t0 = time.monotonic()
    b.stop()
    eventually(lambda: peer(a, "b")["present"] is False, 3, interval=0.1, msg="a reports b away at once")
    print("  b stopped cleanly: a reported it away after %.2f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    run([test_kill_and_restart, test_frozen_node_within_keepalive_bound, test_clean_stop_says_offline])
