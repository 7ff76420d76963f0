"""Logs and units that fit the host (issue 16, items 3 and 4): journald priority prefixes when
JOURNAL_STREAM names stderr (and only then); JSON lines that all parse from the first line, start-up
warnings included, with fields named for what they hold (device, client_id, peer_id, epoch, topic,
reason); sd_notify messages on a NOTIFY_SOCKET (READY=1, STATUS=, RELOADING=1/READY=1 around SIGHUP,
WATCHDOG=1 with WATCHDOG_USEC, STOPPING=1), to a path and to an abstract name; `mqseal reload` exits
0 for a reload the node took, 1 for one it refused, 2 for a file that fails validation; the unit
file passes systemd-analyze verify."""
# ctest-labels: ops
# ctest-timeout: 300
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from harness import MQSEAL, SRC, Broker, Client, Node, check, eventually, run, write_conf

PREFIX_RE = re.compile(r"^<([3467])>")


def journal_env(path):
    """JOURNAL_STREAM naming the file at path (its device and inode, as systemd writes them)."""
    st = os.stat(path)
    return dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))


def lines_of(node):
    return [ln for ln in node.output().splitlines() if ln]


def warned_node(workdir, broker, name, **conf):
    """A node whose configuration makes a start-up warning (keyex.interval_seconds below 60)."""
    merged = {"keyex": {"interval_seconds": 30}, "log": {"level": "debug"}}
    merged.update(conf)
    return Node(workdir, name, broker.port, conf=merged)


def test_journald_prefixes_when_stderr_is_the_journal(workdir):
    broker = Broker(workdir).start()
    node = warned_node(workdir, broker, "j")
    open(node.log_path, "ab").close()  # the file stderr will be (Proc appends to it)
    node.env = journal_env(node.log_path)
    node.start()
    c = Client("dev1")
    c.connect(node.port)
    c.disconnect()
    node.wait_log("closing")
    check(node.stop() == 0, "node stopped")
    lines = lines_of(node)
    check(lines, "the node logged")
    for ln in lines:
        check(PREFIX_RE.match(ln), "every line has a priority prefix: %r" % ln)
    prios = {ln[1] for ln in lines}
    check({"4", "6", "7"} <= prios, "warning, info and debug priorities: %r" % prios)
    warn = [ln for ln in lines if "interval_seconds" in ln]
    check(warn and warn[0].startswith("<4>"), "the start-up warning is <4>: %r" % warn)
    check(any(ln.startswith("<6>") and " info node mqseal " in ln for ln in lines), "the start line is <6>")
    # A configuration error, before the format is known: still prefixed (<3>).
    bad = os.path.join(workdir, "bad.conf")
    with open(bad, "w") as f:
        f.write("node_id = 5;\n")
    errpath = os.path.join(workdir, "bad.log")
    with open(errpath, "wb") as err:
        rc = subprocess.run([MQSEAL, "-c", bad], stdout=subprocess.DEVNULL, stderr=err, env=journal_env(errpath),
                            timeout=30).returncode
    with open(errpath) as f:
        errlines = [ln for ln in f.read().splitlines() if ln]
    check(rc == 2 and errlines, "a bad configuration exits 2 with errors (%d, %r)" % (rc, errlines))
    check(all(ln.startswith("<3>") for ln in errlines), "configuration errors are <3>: %r" % errlines)

    # JOURNAL_STREAM naming another file (stderr was redirected away from the journal): no prefix.
    other = os.path.join(workdir, "other")
    open(other, "w").close()
    node2 = warned_node(workdir, broker, "k")
    node2.env = journal_env(other)
    node2.start()
    check(node2.stop() == 0, "node stopped")
    lines = lines_of(node2)
    check(lines and not any(PREFIX_RE.match(ln) for ln in lines), "no prefixes: %r" % lines[:3])
    check(not any(ln.startswith("<") for ln in lines), "no prefixes at all")


def test_json_lines_parse_from_the_first_line(workdir):
    broker = Broker(workdir).start()
    a = warned_node(workdir, broker, "a", log={"level": "debug", "format": "json"}, topics={"deny": ["secret/#"]})
    b = Node(workdir, "b", broker.port)
    a.trust(b)
    b.trust(a)
    a.start()
    b.start()
    eventually(lambda: a.metric("mqseal_peers_keyed") == 1, 20, msg="a keyed b")
    dev = Client("dev-json")
    dev.connect(a.port)
    dev.publish("secret/x", b"x", wait=False)  # refused by the topic policy, and logged
    a.wait_log('"topic":"secret/x"')
    dev.disconnect()
    check(a.stop() == 0, "a stopped")
    lines = lines_of(a)
    objs = []
    for i, ln in enumerate(lines):
        try:
            objs.append(json.loads(ln))
        except ValueError:
            check(False, "line %d is not JSON: %r" % (i + 1, ln))
    check("interval_seconds" in objs[0]["msg"] and objs[0]["level"] == "warn",
          "the first line is the start-up warning, as JSON: %r" % objs[0])
    allowed = {"ts", "level", "component", "msg", "device", "client_id", "peer_id", "epoch", "topic", "reason"}
    for o in objs:
        check(set(o) <= allowed, "known field names only: %r" % o)
        check("peer" not in o and "client" not in o, "the old names are gone: %r" % o)
    devs = [o for o in objs if "device" in o]
    check(devs and all(re.match(r"^127\.0\.0\.1:\d+$", o["device"]) for o in devs), "device is an address")
    check(any(o.get("client_id") == "dev-json" for o in devs), "client_id of the device")
    check(any(o.get("topic") == "secret/x" and o.get("client_id") == "dev-json" for o in objs), "topic field")
    keyed = [o for o in objs if o.get("peer_id") == "b"]
    check(keyed, "lines about peer b carry peer_id")
    check(any(isinstance(o.get("epoch"), int) and o["epoch"] > 0 for o in keyed), "and the epoch as a number")
    check(any(isinstance(o.get("epoch"), int) and "peer_id" not in o for o in objs), "own epochs carry epoch")


def notify_socket(workdir, abstract=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "mqseal-test-%d-%d" % (os.getpid(), int(time.monotonic() * 1000))
        s.bind("\0" + name)
        addr = "@" + name
    else:
        addr = os.path.join(workdir, "notify.sock")
        s.bind(addr)
    s.settimeout(0.2)
    return s, addr


class Notifications:
    def __init__(self, sock):
        self.sock = sock
        self.msgs = []

    def pump(self):
        while True:
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except socket.timeout:
                return

    def wait(self, pred, timeout=15, msg="notification"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if any(pred(m) for m in self.msgs):
                return
        check(False, "%s never came: %r" % (msg, self.msgs[-10:]))

    def sequence(self):
        """The messages but the watchdog's, in order."""
        return [m for m in self.msgs if m != "WATCHDOG=1"]


def test_sd_notify_ready_status_reload_watchdog(workdir):
    broker = Broker(workdir).start()
    a, b = Node(workdir, "a", broker.port), Node(workdir, "b", broker.port)
    a.trust(b)
    b.trust(a)
    sock, addr = notify_socket(workdir)
    n = Notifications(sock)
    a.env = dict(os.environ, NOTIFY_SOCKET=addr, WATCHDOG_USEC="400000", WATCHDOG_PID="")
    a.start()
    b.start()
    n.wait(lambda m: m == "READY=1", msg="READY=1")
    n.wait(lambda m: m == "STATUS=broker connected; 1 of 1 peers keyed, 0 devices", 20, msg="keyed STATUS")
    dev = Client("dev-n")
    dev.connect(a.port)
    n.wait(lambda m: m == "STATUS=broker connected; 1 of 1 peers keyed, 1 device", msg="STATUS with a device")
    dev.disconnect()
    first = n.msgs.index("READY=1")
    check(all(not m.startswith("STATUS=") for m in n.msgs[:first]), "READY=1 before the first STATUS=")
    # Watchdog: every 200 ms; a second's worth of messages holds several.
    before = n.msgs.count("WATCHDOG=1")
    time.sleep(1.0)
    n.pump()
    check(n.msgs.count("WATCHDOG=1") - before >= 3, "WATCHDOG=1 at half of WATCHDOG_USEC: %d in 1 s" % (
        n.msgs.count("WATCHDOG=1") - before))
    # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    mark = len(n.msgs)
    a.signal(signal.SIGHUP)
    n.wait(lambda m: "READY=1" in n.msgs[mark:], msg="READY=1 after the reload")
    seq = [m for m in n.msgs[mark:] if m != "WATCHDOG=1"]
    check(re.match(r"^RELOADING=1\nMONOTONIC_USEC=\d+$", seq[0]), "RELOADING=1 first: %r" % seq)
    check(seq[1] == "READY=1", "then READY=1: %r" % seq)
    mono = int(seq[0].split("=")[-1])
    check(abs(mono - time.monotonic_ns() // 1000) < 60 * 10**6, "MONOTONIC_USEC is CLOCK_MONOTONIC")
    mark = len(n.msgs)
    check(a.stop() == 0, "a stopped")
    n.pump()
    check("STOPPING=1" in n.msgs[mark:], "STOPPING=1 at SIGTERM: %r" % n.sequence()[-3:])

    # An abstract socket name ('@'), and no watchdog when WATCHDOG_PID names another process.
    sock2, addr2 = notify_socket(workdir, abstract=True)
    n2 = Notifications(sock2)
    a.env = dict(os.environ, NOTIFY_SOCKET=addr2, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    a.start()
    n2.wait(lambda m: m == "READY=1", msg="READY=1 on the abstract socket")
    time.sleep(0.5)
    n2.pump()
    check("WATCHDOG=1" not in n2.msgs, "WATCHDOG_PID names another process: no watchdog")


def mqseal_reload(node):
    return subprocess.run([MQSEAL, "reload", "-c", node.conf_path], capture_output=True, text=True, timeout=60)


def test_reload_command_reports_refusal(workdir):
    broker = Broker(workdir).start()
    node = Node(workdir, "r", broker.port)
    node.start()
    result = os.path.join(node.dir, "reload-result")
    eventually(lambda: os.path.exists(result), 10, msg="reload-result written at start")
    out = mqseal_reload(node)
    check(out.returncode == 0, "a good reload exits 0: %d %r" % (out.returncode, out.stderr))
    check("reloaded" in out.stderr, "and says so: %r" % out.stderr)
    # A change the node refuses (node_id): exit 1, the node keeps running.
    node.conf["node_id"] = "other"
    write_conf(node.conf_path, node.conf)
    out = mqseal_reload(node)
    check(out.returncode == 1, "a refused reload exits 1: %d %r" % (out.returncode, out.stderr))
    check("refused" in out.stderr and "node_id" in out.stderr, "and names the cause: %r" % out.stderr)
    check(node.alive(), "the node keeps running")
    node.wait_log("reload refused")
    # A file that fails validation: exit 2, the node is not signalled.
    hups = node.output().count("SIGHUP")
    with open(node.conf_path, "a") as f:
        f.write("no_such_option = 1;\n")
    out = mqseal_reload(node)
    check(out.returncode == 2, "an invalid file exits 2: %d %r" % (out.returncode, out.stderr))
    check("no_such_option" in out.stderr, "the error is shown: %r" % out.stderr)
    time.sleep(0.3)
    check(node.output().count("SIGHUP") == hups, "the node was not signalled")
    # Back to a good file: 0 again.
    node.conf["node_id"] = "r"
    write_conf(node.conf_path, node.conf)
    check(mqseal_reload(node).returncode == 0, "good again")
    check(node.stop() == 0, "stopped")
    check(not os.path.exists(result), "reload-result removed at exit")
    out = mqseal_reload(node)
    check(out.returncode == 1 and "cannot read" in out.stderr, "no node: exit 1 (%r)" % out.stderr)
    # A stale file naming a pid that another program now has: that one is not signalled.
    other = subprocess.Popen(["sleep", "60"])
    try:
        with open(result, "w") as f:
            f.write("pid %d\nreloads 0\nresult started\nmessage running\n" % other.pid)
        out = mqseal_reload(node)
        check(out.returncode == 1 and "not an mqseal node" in out.stderr, "stale pid: %r" % out.stderr)
        check(other.poll() is None, "the other program got no SIGHUP")
    finally:
        other.kill()
        other.wait(5)


def test_unit_file_verifies(workdir):
    analyze = shutil.which("systemd-analyze")
    check(analyze, "systemd-analyze is installed (scripts/deps.sh)")
    with open(os.path.join(SRC, "conf", "mqseal.service")) as f:
        unit = f.read()
    check(re.search(r"^Type=notify$", unit, re.M), "Type=notify")
    check(re.search(r"^NotifyAccess=main$", unit, re.M), "NotifyAccess=main")
    check(re.search(r"^ExecReload=/usr/bin/mqseal reload -c /etc/mqseal/mqseal.conf$", unit, re.M),
          "ExecReload= runs mqseal reload")
    check(re.search(r"^WatchdogSec=\d+", unit, re.M), "WatchdogSec=")
    # Verified with the paths of this build (systemd-analyze checks the binary exists).
    path = os.path.join(workdir, "mqseal.service")
    with open(path, "w") as f:
        f.write(unit.replace("/usr/bin/mqseal", MQSEAL))
    # Documentation=man:mqseal(1) is looked up with man(1): let it find docs/mqseal.1.
    mandir = os.path.join(workdir, "man")
    os.makedirs(os.path.join(mandir, "man1"))
    shutil.copy(os.path.join(SRC, "docs", "mqseal.1"), os.path.join(mandir, "man1", "mqseal.1"))
    out = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning", MANPATH=mandir))
    problems = [ln for ln in out.stderr.splitlines() if "mqseal.service" in ln]
    check(out.returncode == 0 and not problems, "systemd-analyze verify: %d %r" % (out.returncode, out.stderr))


if __name__ == "__main__":
    run([test_journald_prefixes_when_stderr_is_the_journal, test_json_lines_parse_from_the_first_line,
         test_sd_notify_ready_status_reload_watchdog, test_reload_command_reports_refusal, test_unit_file_verifies])
