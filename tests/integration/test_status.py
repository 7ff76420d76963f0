"""Day-2 operations, issue 16 items 1 and 2: `mqseal status` and GET /peers (every peer keyed or
why not, epochs both ways, last announcement and confirmation, messages opened per sender), the
victim of a one-sided configuration naming the cause in its status and its log, /livez staying 200
while /readyz turns 503 when the peer dies, readiness.ready_when, `mqseal health` exit codes,
announcements of nodes that are not peers counted apart from unknown_peer, and the per-peer metric
cardinality bound (metrics.peer_series_max). Real mosquitto, real nodes, loopback only."""
# ctest-labels: keyex ops
# ctest-timeout: 300
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from harness import HOST, MQSEAL, Broker, Client, Node, check, eventually, free_port, keygen, run, stop_clean

# Short epochs and a small skew: a killed peer's announcement expires 1.5 * 2 + 1 = 4 s after it was issued.
FAST = {"keyex": {"interval_seconds": 2, "activation_seconds": 1, "max_skew_seconds": 1}}


def get(node, path):
    """(status, body) of GET path on node's admin endpoint."""
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (HOST, node.metrics_port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def cli(*args):
    return subprocess.run([MQSEAL] + list(args), capture_output=True, text=True, timeout=30)


def status_json(node):
    out = cli("status", "-c", node.conf_path, "--json")
    check(out.returncode == 0, "status --json exited %d: %s" % (out.returncode, out.stderr))
    doc = json.loads(out.stdout)
    return doc, {p["id"]: p for p in doc["peers"]}


def status_table(node):
    out = cli("status", "-c", node.conf_path)
    check(out.returncode == 0, "status exited %d: %s" % (out.returncode, out.stderr))
    return out.stdout


def keyed(node, n):
    m = node.metrics()
    return m.get("mqseal_peers_keyed") == n and m.get("mqseal_broker_connected") == 1


def nodes_for(workdir, broker, names, conf=None):
    return {n: Node(workdir, n, broker.port, conf=conf) for n in names}


def test_status_keyed_peer(workdir):
    broker = Broker(workdir).start()
    nodes = nodes_for(workdir, broker, ("a", "b"))
    a, b = nodes["a"], nodes["b"]
    a.conf["peers"] = [{"id": "b", "public_key": b.pubkey, "publish": ["t/#"]}]
    b.trust(a)
    a.start()
    b.start()
    eventually(lambda: keyed(a, 1) and keyed(b, 1), 15, msg="a and b keyed")
    sub = Client("sub-a")
    sub.connect(a.port)
    sub.subscribe("t/x", 1)
    sub.subscribe("u/x", 1)
    pub = Client("pub-b")
    pub.connect(b.port)
    pub.publish("u/x", b"not b's topic", 1)  # outside b's publish list at a: dropped, unauthorized
    for i in range(3):
        pub.publish("t/x", b"m%d" % i, 1)
    check([m.payload for m in sub.expect(3)] == [b"m0", b"m1", b"m2"])
    doc, peers = status_json(a)
    check(doc["node_id"] == "a" and doc["public_key"] == a.pubkey and doc["broker_connected"] is True, doc)
    p = peers["b"]
    print("  a's view of b: %s" % json.dumps(p))
    check(p["keyed"] is True and p["why"] == "keyed", p)
    check(p["their_epoch_held"] >= 1 and p["their_epoch_held"] == p["their_epoch"], p)
    check(p["our_epoch_held"] >= 1, p)
    now = doc["now_ms"]
    check(0 < p["last_announcement_ms"] <= now and 0 < p["last_confirmation_ms"] <= now, p)
    check(p["opened"] == 3 and p["dropped"] == {"unauthorized": 1} and p["last_rejected"] is None, p)
    _, bpeers = status_json(b)
    check(bpeers["a"]["opened"] == 0 and bpeers["a"]["keyed"] is True, bpeers)
    table = status_table(a)
    print(table)
    row = [ln for ln in table.splitlines() if ln.startswith("b ")]
    check(len(row) == 1 and " yes " in row[0] and " keyed " in row[0] and row[0].split()[-2:] == ["3", "1"], table)
    check("1 of 1 peers keyed, ready" in table, table)
    status, body = get(a, "/peers")
    check(status == 200 and json.loads(body)["peers"][0]["id"] == "b", body)
    m = a.metrics()
    check(m.get('mqseal_peer_keyed{peer="b"}') == 1 and m.get('mqseal_peer_opened_total{peer="b"}') == 3, m)
    check(m.get('mqseal_peer_dropped_total{peer="b"}') == 1, m)
    for n in (a, b):
        stop_clean(n)  # exit 0, no sanitizer report after serving /peers and the per-peer series


def test_victim_names_the_cause(workdir):
    """a lists b and c. b lists a with another key; c does not list a at all. a's status and log say
    why neither is keyed; b's says a's announcements fail their signature. c sends a nothing and
    receives nothing from a (protocol v2: a node announces only to its peers and subscribes only to
    their topics), so a reports c as never announced, naming both causes, and c counts nothing."""
    broker = Broker(workdir).start()
    nodes = nodes_for(workdir, broker, ("a", "b", "c"))
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    wrong = keygen(os.path.join(workdir, "wrong.key"))
    a.trust(b, c)
    b.conf["peers"] = [{"id": "a", "public_key": wrong}, {"id": "c", "public_key": c.pubkey}]
    c.trust(b)
    for n in (a, b, c):
        n.start()
    eventually(lambda: keyed(b, 1) and keyed(c, 1), 15, msg="b and c keyed with each other")
    eventually(lambda: status_json(a)[1]["b"]["why"] == "no_entry", 15, msg="a sees no entry for itself from b")
    check(status_json(a)[1]["c"]["why"] == "never_announced", status_json(a)[1])
    a.wait_log("peer b announces epoch", 15)
    out = a.output()
    line = [ln for ln in out.splitlines() if "peer b announces epoch" in ln][0]
    print("  a's log: " + line)
    check("without an entry for this node a" in line and "b does not list a" in line, line)
    check(a.pubkey in line, "the warning names a's key: " + line)
    table = status_table(a)
    print(table)
    check("0 of 2 peers keyed, NOT ready" in table, table)
    check("  b: announces without an entry for a: b does not list a as a peer" in table, table)
    check("  c: no announcement received:" in table and "does not list a as a peer" in table, table)
    check('public_key = "%s"' % a.pubkey in table, table)
    _, bpeers = status_json(b)
    check(bpeers["a"]["why"] == "bad_signature" and bpeers["a"]["last_rejected"] == "bad_signature", bpeers)
    check(bpeers["c"]["why"] == "keyed", bpeers)
    m = c.metrics()
    check(m.get('mqseal_announcements_ignored_total{reason="not_a_peer"}', 0) == 0, m)
    check(m.get('mqseal_announcements_rejected_total{reason="unknown_peer"}') == 0, m)


def test_livez_readyz_peer_dies(workdir):
    broker = Broker(workdir).start()
    nodes = nodes_for(workdir, broker, ("a", "b"), conf=FAST)
    a, b = nodes["a"], nodes["b"]
    a.trust(b)
    b.trust(a)
    a.start()
    b.start()
    eventually(lambda: keyed(a, 1), 15, msg="a keyed")
    check(get(a, "/livez")[0] == 200 and get(a, "/readyz")[0] == 200 and get(a, "/healthz")[0] == 200)
    check(cli("health", "-c", a.conf_path).returncode == 0)
    check(cli("health", "http://%s:%d" % (HOST, a.metrics_port)).returncode == 0)
    b.kill()
    livez = []

    def not_ready():
        livez.append(get(a, "/livez")[0])
        return get(a, "/readyz")[0] == 503

    eventually(not_ready, 20, interval=0.2, msg="/readyz 503 after the peer died")
    check(set(livez) == {200}, "/livez answered %r while /readyz turned" % sorted(set(livez)))
    status, body = get(a, "/readyz")
    check(status == 503 and "0 of 1 peers keyed" in body, body)
    check(get(a, "/healthz")[0] == 503, "/healthz keeps its meaning")
    h = cli("health", "-c", a.conf_path)
    check(h.returncode == 1 and "not ready" in h.stdout, (h.returncode, h.stdout, h.stderr))
    _, peers = status_json(a)
    check(peers["b"]["keyed"] is False and peers["b"]["why"] == "stale", peers)
    table = status_table(a)
    print(table)
    check("  b: its last announcement expired: the peer is down" in table, table)
    broker.kill()
    eventually(lambda: "broker is down" in get(a, "/readyz")[1], 15, msg="readyz: broker down")
    check(get(a, "/livez")[0] == 200)


def test_ready_when(workdir):
    """a1 (any), a2 (2), a3 (0) and a4 (all) each list b and c; only b runs."""
    broker = Broker(workdir).start()
    policies = {"a1": "any", "a2": 2, "a3": 0, "a4": "all"}
    b = Node(workdir, "b", broker.port)
    c = Node(workdir, "c", broker.port)
    avs = {n: Node(workdir, n, broker.port, conf={"readiness": {"ready_when": v}}) for n, v in policies.items()}
    for av in avs.values():
        av.trust(b, c)
    b.trust(*avs.values())
    b.start()
    for av in avs.values():
        av.start()
    eventually(lambda: all(keyed(av, 1) for av in avs.values()), 20, msg="every a keyed with b")
    want = {"a1": 200, "a2": 503, "a3": 200, "a4": 503}
    for n, av in avs.items():
        status, body = get(av, "/readyz")
        print("  ready_when = %r: /readyz %d %s" % (policies[n], status, body.strip()))
        check(status == want[n], (n, status, body))
        check(get(av, "/healthz")[0] == 503, "%s: /healthz is still 'all peers keyed'" % n)
        h = cli("health", "http://%s:%d/readyz" % (HOST, av.metrics_port))
        check(h.returncode == (0 if want[n] == 200 else 1), (n, h.returncode, h.stdout, h.stderr))
    check("1 of 2 peers keyed, 2 needed" in get(avs["a2"], "/readyz")[1])
    dead = cli("health", "http://%s:%d/readyz" % (HOST, free_port()))
    check(dead.returncode == 1 and "cannot connect" in dead.stderr, (dead.returncode, dead.stderr))
    bad = cli("health", "ftp://x")
    check(bad.returncode == 2, (bad.returncode, bad.stderr))
    nocfg = cli("status", "--json")
    check(nocfg.returncode == 2 and "-c FILE" in nocfg.stderr, nocfg.stderr)


def test_peer_series_bound(workdir):
    """Per-peer series only while the peers are at most metrics.peer_series_max; /peers always."""
    broker = Broker(workdir).start()
    b = Node(workdir, "b", broker.port)
    extra = [{"id": "x%d" % i, "public_key": keygen(os.path.join(workdir, "x%d.key" % i))} for i in range(3)]
    small = Node(workdir, "small", broker.port, conf={"metrics": {"peer_series_max": 3}})
    big = Node(workdir, "big", broker.port)
    for n in (small, big):
        n.conf["peers"] = [{"id": "b", "public_key": b.pubkey}] + extra
    b.trust(small, big)
    for n in (b, small, big):
        n.start()
    eventually(lambda: keyed(small, 1) and keyed(big, 1), 15, msg="keyed with b")
    ms, mb = small.metrics(), big.metrics()
    series = lambda m: sorted(k for k in m if k.startswith("mqseal_peer_keyed{"))  # noqa: E731
    print("  4 peers, peer_series_max 3: %d series; default 64: %d series" % (len(series(ms)), len(series(mb))))
    check(series(ms) == [] and not any(k.startswith("mqseal_peer_") and "{" in k for k in ms), series(ms))
    check(ms.get("mqseal_peer_series_limit") == 3 and mb.get("mqseal_peer_series_limit") == 64)
    check(len(series(mb)) == 4 and mb.get('mqseal_peer_keyed{peer="b"}') == 1 and mb.get('mqseal_peer_keyed{peer="x0"}') == 0,
          series(mb))
    for n in (small, big):
        _, peers = status_json(n)
        check(sorted(peers) == ["b", "x0", "x1", "x2"] and peers["x1"]["why"] == "never_announced", peers)


if __name__ == "__main__":
    run([test_status_keyed_peer, test_victim_names_the_cause, test_livez_readyz_peer_dies, test_ready_when,
         test_peer_series_bound])
