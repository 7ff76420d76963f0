"""Exposure (issue 9, part 5): what mqseal lets the network see, and with which privileges.

  - by default the device listener and the metrics endpoint listen on loopback only (checked on the
    running process's own listening sockets in /proc);
  - a non-loopback listen.host or metrics.host is refused at start (exit 2 and the message) unless
    the matching allow_remote = true (checked with `mqseal check`, so that nothing here ever
    listens beyond loopback);
  - `user = "nobody"` (when the test runs as root): the node binds a privileged port, then runs as
    nobody (/proc/<pid>/status Uid/Gid) and keeps working: keyed with a peer, sealed messages both
    ways, rotations (its state file written as nobody), metrics;
  - an identity key readable by group or others is refused at start, naming the file.
"""
# ctest-labels: reliability exposure
# ctest-timeout: 300
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

from harness import (HOST, MQSEAL, Broker, Client, Node, check, eventually, port_open, proc_status, run, stop_clean,
                     write_conf)


def listening_addresses(pid):
    """(address, port) of every listening TCP socket the process holds, from /proc/<pid>/net/tcp{,6}."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        with open("/proc/%d/net/%s" % (pid, name)) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                    continue
                hexaddr, hexport = cols[1].split(":")
                raw = bytes.fromhex(hexaddr)
                if family == socket.AF_INET:
                    addr = socket.inet_ntop(family, raw[::-1])
                else:  # four host-order 32-bit words
                    addr = socket.inet_ntop(family, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                out.append((addr, int(hexport, 16)))
    return out


def test_default_listens_on_loopback_only(workdir):
    broker = Broker(workdir).start()
    node = Node(workdir, "deflt", broker.port)
    del node.conf["listen"]["host"]
    del node.conf["metrics"]["host"]
    node.start()
    addrs = sorted(listening_addresses(node.pid))
    print("  listening sockets with the default hosts: %r" % addrs)
    check(sorted(p for _, p in addrs) == sorted([node.port, node.metrics_port]),
          "exactly the device listener and the metrics endpoint: %r" % addrs)
    check(all(a == "127.0.0.1" for a, _ in addrs), "loopback only: %r" % addrs)
    check(node.metric("mqseal_broker_connected") == 1, "metrics served on loopback")
    stop_clean(node)


def check_conf(workdir, name, **over):
    """Writes a configuration (valid but for over) and runs `mqseal check` on it."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    key = os.path.join(d, "identity.key")
    if not os.path.exists(key):
        subprocess.run([MQSEAL, "keygen", key], check=True, capture_output=True, timeout=30)
    conf = {"node_id": name, "state_dir": d, "identity_file": key,
            "listen": {"host": HOST, "port": 18830}, "broker": {"host": HOST, "port": 2},
            "metrics": {"enabled": True, "host": HOST, "port": 18831}}
    for k, v in over.items():
        conf[k].update(v)
    path = os.path.join(d, "mqseal.conf")
    write_conf(path, conf)
    return path, subprocess.run([MQSEAL, "check", "-c", path], capture_output=True, text=True, timeout=30)


def start_refused(path, timeout=20):
    """Starts mqseal on a configuration that must be refused; returns (exit status, stderr)."""
    p = subprocess.run([MQSEAL, "-c", path], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


def test_remote_hosts_need_allow_remote(workdir):
    for group in ("listen", "metrics"):
        for host in ("0.0.0.0", "192.0.2.10", "::"):
            name = "%s-%s" % (group, host.replace(":", "x").replace(".", "-"))
            path, chk = check_conf(workdir, name, **{group: {"host": host}})
            check(chk.returncode == 2, "%s.host = %s: check exits 2 (%d)" % (group, host, chk.returncode))
            rc, err = start_refused(path)
            want = "%s.host" % group
            check(rc == 2, "%s.host = %s: start exits 2, not %d: %s" % (group, host, rc, err))
            check(want in err and "not a loopback address" in err and "%s.allow_remote = true" % group in err,
                  "the message names the option and the way out: %r" % err)
            _, ok = check_conf(workdir, name + "-allowed", **{group: {"host": host, "allow_remote": True}})
            check(ok.returncode == 0, "%s.host = %s with allow_remote = true is accepted: %s"
                  % (group, host, ok.stderr))
        print("  %s: %s" % (group, err.strip().splitlines()[0]))
    for host in ("127.0.0.2", "::1", "localhost"):
        _, ok = check_conf(workdir, "lo-" + host.replace(":", "x").replace(".", "-"), listen={"host": host})
        check(ok.returncode == 0, "loopback %s needs no allow_remote: %s" % (host, ok.stderr))


def privileged_port():
    for port in range(1000, 900, -1):
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
                return port
            except OSError:
                continue
    return None


def test_user_nobody(workdir):
    if os.geteuid() != 0:
        print("  SKIP: not running as root (the user option only matters for a root start)")
        return
    nobody = pwd.getpwnam("nobody")
    os.chmod(workdir, 0o711)  # nobody must reach its state_dir below the test's directory
    broker = Broker(workdir).start()
    fast = {"keyex": {"interval_seconds": 2, "activation_seconds": 1}}
    a = Node(workdir, "asnobody", broker.port, conf=dict(fast, user="nobody"))
    b = Node(workdir, "asroot", broker.port, conf=fast)
    port = privileged_port()
    if port:
        a.port = a.conf["listen"]["port"] = port
    a.trust(b)
    b.trust(a)
    a.start()
    b.start()
    uid = proc_status(a.pid, "Uid").split()
    gid = proc_status(a.pid, "Gid").split()
    print("  node started as root on port %d; now Uid %s, Gid %s" % (a.port, " ".join(uid), " ".join(gid)))
    check(uid == [str(nobody.pw_uid)] * 4, "real, effective, saved and fs uid are nobody's: %r" % uid)
    check(gid == [str(nobody.pw_gid)] * 4, "all gids are nobody's group: %r" % gid)
    check(proc_status(a.pid, "Groups") in ("", None), "no supplementary groups")
    check("running as user nobody" in a.output(), "logged")
    for n in (a, b):
        eventually(lambda: n.metric("mqseal_peers_keyed") == 1, 15, msg="%s keyed" % n.node_id)
    first = a.metric("mqseal_epoch")
    rot = a.metric("mqseal_rotations_total")
    eventually(lambda: a.metric("mqseal_rotations_total") >= rot + 2, 15, msg="rotations as nobody")
    state = os.path.join(a.dir, "state")
    st = os.stat(state)
    check(st.st_uid == nobody.pw_uid, "the state file is written by nobody")
    with open(state) as f:
        epoch = int([ln.split()[1] for ln in f if ln.startswith("epoch ")][0])
    check(epoch > first, "the state file follows the epochs: %d after %d" % (epoch, first))
    for src, dst, tag in ((a, b, b"from-nobody"), (b, a, b"to-nobody")):
        sub = Client("sub-%s" % dst.node_id)
        sub.connect(dst.port)
        sub.subscribe("exp/x", 1)
        pub = Client("pub-%s" % src.node_id)
        pub.connect(src.port)
        pub.publish("exp/x", tag, 1)
        check(sub.expect(1)[0].payload == tag, "sealed message %s" % tag.decode())
        pub.disconnect()
        sub.disconnect()
    print("  as nobody: keyed, %d rotations, sealed messages both ways, state file owned by uid %d"
          % (a.metric("mqseal_rotations_total"), st.st_uid))
    stop_clean(a)
    stop_clean(b)


def refused_keys(workdir, broker, tag):
    """Identity keys readable by group or others: refused at start, the message naming the file."""
    for mode in (0o644, 0o640, 0o604):
        node = Node(workdir, "k%o" % mode, broker.port)
        os.chmod(node.identity, mode)
        write_conf(node.conf_path, node.conf)
        p = subprocess.run([MQSEAL, "-c", node.conf_path], capture_output=True, text=True, timeout=20)
        check(p.returncode in (1, 2), "mode %o: refused at start (exit %d)" % (mode, p.returncode))
        check(not port_open(node.port), "nothing listens")
        msg = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
        print("  %s, mode %o: exit %d: %s" % (tag, mode, p.returncode, msg))
        check(node.identity in p.stderr and "chmod 600 %s" % node.identity in p.stderr,
              "mode %o: the message names the file (%d bytes) and the command that fixes it: %r"
              % (mode, len(node.identity), p.stderr))


def test_identity_key_readable_by_others(workdir):
    broker = Broker(workdir).start()
    short = tempfile.mkdtemp(prefix="mqk")  # a short path, as in /var/lib/mqseal/identity.key
    try:
        refused_keys(short, broker, "short path")
    finally:
        shutil.rmtree(short, ignore_errors=True)
    node = Node(workdir, "k600", broker.port)
    os.chmod(node.identity, 0o600)
    node.start()
    check(node.alive(), "mode 600 starts")
    stop_clean(node)


def test_identity_key_message_long_path(workdir):
    """The same with the key deeper in the file system (about 90 bytes of path: a temporary directory)."""
    broker = Broker(workdir).start()
    refused_keys(os.path.join(workdir, "keys-of-this-node"), broker, "long path")


if __name__ == "__main__":
    run([test_default_listens_on_loopback_only, test_remote_hosts_need_allow_remote, test_user_nobody,
         test_identity_key_readable_by_others, test_identity_key_message_long_path])
