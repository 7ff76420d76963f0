"""peers_file (issue 15 item 4): nodes that list each other in peers files (one peer a line, the
line each node prints with `mqseal peerline`) key up over a real broker and exchange sealed
messages; `mqseal check` says how many peers came from where, and names a bad line as FILE:LINE;
a SIGHUP after a line is added keys the new peer; a SIGHUP after the file is broken is refused
with PEERS_FILE:LINE in the log, and the old peers stay in use (`mqseal reload` refuses the file
before signalling, exit 2)."""
# ctest-labels: ops keyex
# ctest-timeout: 300
import os
import signal
import subprocess

from harness import MQSEAL, Broker, Client, Node, check, eventually, run, write_conf


def mq(*args):
    return subprocess.run([MQSEAL] + list(args), capture_output=True, text=True, timeout=30)


def file_node(workdir, name, broker):
    """A node whose peers are in <its dir>/peers (relative peers_file), empty for now."""
    n = Node(workdir, name, broker.port, conf={"peers_file": "peers"})
    n.peers_path = os.path.join(n.dir, "peers")
    with open(n.peers_path, "w") as f:
        f.write("# peers of %s, one a line: <id> <public_key> [publish=...]\n" % name)
    write_conf(n.conf_path, n.conf)
    return n


def peerline(node):
    out = mq("peerline", "-c", node.conf_path)
    check(out.returncode == 0, "peerline: exit %d: %s" % (out.returncode, out.stderr))
    return out.stdout


def add_lines(node, *lines):
    with open(node.peers_path, "a") as f:
        f.write("".join(lines))


def sealed_roundtrip(src, dst, topic, payload):
    """A device on src publishes; a device on dst reads the plaintext."""
    pub, sub = Client("pf-pub-" + topic), Client("pf-sub-" + topic)
    pub.connect(src.port)
    sub.connect(dst.port)
    sub.subscribe(topic, 1)
    pub.publish(topic, payload, 1)
    got = sub.expect(1)
    check(got[0].payload == payload, "%s -> %s: %r" % (src.node_id, dst.node_id, got))
    pub.disconnect()
    sub.disconnect()


def test_keyed_from_peers_files(workdir):
    broker = Broker(workdir).start()
    a, b = file_node(workdir, "a", broker), file_node(workdir, "b", broker)
    line_a, line_b = peerline(a), peerline(b)
    check(line_a == "a %s\n" % a.pubkey and line_b == "b %s\n" % b.pubkey, "peerline: %r %r" % (line_a, line_b))
    add_lines(a, "\n", line_b.rstrip("\n") + " publish=pf/#\n")
    add_lines(b, line_a)
    out = mq("check", "-c", a.conf_path)
    check(out.returncode == 0, "check: %s" % out.stderr)
    check("%s: 1 peer: 0 in the peers list, 1 in %s\n" % (a.conf_path, a.peers_path) in out.stderr,
          "check says where the peers came from: %r" % out.stderr)
    check('peers_file = "peers";' in out.stdout and "# 1 peer read from" in out.stdout, "the dump names the file")
    a.start()
    b.start()
    for n in (a, b):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 1, 20, msg="%s keyed from its peers file" % n.node_id)
    check(a.metric("mqseal_peers_configured") == 1, "one peer")
    sealed_roundtrip(a, b, "pf/x", b"from-a")
    sealed_roundtrip(b, a, "pf/y", b"from-b")


def trio_from_files(workdir):
    """a trusts b (file); b and c trust a (files); all started, a-b keyed."""
    broker = Broker(workdir).start()
    a, b, c = (file_node(workdir, n, broker) for n in ("a", "b", "c"))
    add_lines(a, peerline(b))
    add_lines(b, peerline(a))
    add_lines(c, peerline(a))
    for n in (a, b, c):
        n.start()
    eventually(lambda: a.metric("mqseal_peers_keyed") == 1 and b.metric("mqseal_peers_keyed") == 1, 20,
               msg="a and b keyed")
    return broker, a, b, c


def test_sighup_adds_peer_from_file(workdir):
    broker, a, b, c = trio_from_files(workdir)
    check(c.metric("mqseal_peers_keyed") == 0, "c is not a peer of a yet")
    add_lines(a, "# added later\n", peerline(c))
    a.signal(signal.SIGHUP)
    a.wait_log("SIGHUP: reloaded")
    check("2 peers, 2 of them from %s" % a.peers_path in a.output(), "the reload says where the peers came from")
    eventually(lambda: a.metric("mqseal_peers_configured") == 2, 5, msg="a has two peers")
    eventually(lambda: a.metric("mqseal_peers_keyed") == 2 and c.metric("mqseal_peers_keyed") == 1, 20,
               msg="the added peer keyed")
    sealed_roundtrip(a, c, "pf/new", b"to-the-added-peer")
    sealed_roundtrip(a, b, "pf/old", b"still-to-b")


def test_sighup_broken_file_refused(workdir):
    broker, a, b, c = trio_from_files(workdir)
    # line 1 comment, line 2 b; line 3 breaks the file, line 4 repeats b
    add_lines(a, "c ed25519:AAAA\n", peerline(b))
    out = mq("check", "-c", a.conf_path)
    check(out.returncode == 2, "check refuses the file: exit %d" % out.returncode)
    for want in ("%s:3: public_key: \"ed25519:AAAA\" is not" % a.peers_path,
                 "%s:4: id: peer \"b\" is listed twice (first at %s:2)" % (a.peers_path, a.peers_path)):
        check(want in out.stderr, "check names %r: %r" % (want, out.stderr))
    out = mq("reload", "-c", a.conf_path)
    check(out.returncode == 2 and "%s:3: public_key:" % a.peers_path in out.stderr,
          "mqseal reload refuses the file before signalling: exit %d %r" % (out.returncode, out.stderr))
    a.signal(signal.SIGHUP)
    a.wait_log("is invalid; the running configuration stays")
    check("reload: %s:3: public_key:" % a.peers_path in a.output(), "the log names the line")
    check(a.alive() and a.metric("mqseal_peers_configured") == 1, "still running with the old peers")
    sealed_roundtrip(a, b, "pf/kept", b"old-config-still-works")
    # fixed: the next reload takes it
    with open(a.peers_path, "w") as f:
        f.write(peerline(b) + peerline(c))
    a.signal(signal.SIGHUP)
    eventually(lambda: a.metric("mqseal_peers_configured") == 2, 10, msg="the fixed file is taken")
    eventually(lambda: a.metric("mqseal_peers_keyed") == 2, 20, msg="c keyed after the fix")


if __name__ == "__main__":
    run([test_keyed_from_peers_files, test_sighup_adds_peer_from_file, test_sighup_broken_file_refused])
