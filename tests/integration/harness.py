"""harness.py - the integration tests' toolkit: a real mosquitto broker on a free loopback port,
real mqseal nodes, real MQTT clients (paho, mosquitto_pub/sub), raw sockets for hostile input.

Every process a test starts is registered and stopped by its PID when the test ends, also when it
fails or the test runner is interrupted. Every wait has a deadline. Loopback addresses only.
"""
import atexit
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

import paho.mqtt.client as mqtt

SRC = os.environ.get("MQSEAL_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MQSEAL_BUILD") or os.path.join(SRC, "build")
MQSEAL = os.environ.get("MQSEAL_BIN") or os.path.join(BUILD, "proxy", "mqseal")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HOST = "127.0.0.1"

_procs = []


class TestFailure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def eventually(fn, timeout=10.0, interval=0.05, msg="condition not reached"):
    """Polls fn() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise TestFailure("%s (after %.1fs; last value %r)" % (msg, timeout, last))


_ports_given = set()


def free_port():
    """A loopback port nothing listens on now, and never the same one twice in this process (the
    kernel may hand out a port again as soon as the probing socket is closed)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise TestFailure("no fresh free port")


def port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- processes

class Proc:
    """A child process with its output in a log file, stopped by PID at the end of the test."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, name + ".log")
        self.env = env
        self.p = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
                                  start_new_session=True)
        _procs.append(self)
        return self

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self.p is None:
            return None
        if self.alive():
            try:
                os.kill(self.p.pid, signal.SIGCONT)
                os.kill(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        rc = self.p.wait(5)
        if self in _procs:
            _procs.remove(self)
        self.log.close()
        return rc

    def kill(self):
        if self.alive():
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(5)

    def output(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, needle, timeout=10.0):
        return eventually(lambda: needle in self.output(), timeout, msg="%s never logged %r" % (self.name, needle))


def stop_all():
    for p in list(reversed(_procs)):
        try:
            p.stop(timeout=5)
        except Exception:  # noqa: BLE001 - cleanup must go on
            try:
                p.kill()
            except Exception:  # noqa: BLE001
                pass
    del _procs[:]


atexit.register(stop_all)


def _on_signal(signum, frame):
    stop_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


class Broker(Proc):
    """A private mosquitto on a free loopback port."""

    def __init__(self, workdir, name="broker", persistence=False, extra="", port=None, tls=None):
        self.port = port or free_port()
        self.workdir = workdir
        self.tls = tls
        conf = os.path.join(workdir, name + ".conf")
        lines = ["listener %d %s" % (self.port, HOST), "allow_anonymous true",
                 "persistence %s" % ("true" if persistence else "false"),
                 "persistence_location %s/" % workdir, "persistence_file %s.db" % name,
                 "autosave_interval 1", "max_queued_messages 100000", "set_tcp_nodelay true",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "connection_messages true", "log_timestamp true"]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to "mosquitto", who cannot read our temp dir
        if tls:
            lines += ["cafile %s" % tls["ca"], "certfile %s" % tls["cert"], "keyfile %s" % tls["key"]]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra + "\n")
        Proc.__init__(self, name, [MOSQUITTO, "-c", conf], workdir)

    def start(self):
        Proc.start(self)
        eventually(lambda: port_open(self.port) or not self.alive(), 10, msg="mosquitto did not start")
        check(self.alive(), "mosquitto exited: " + self.output()[-2000:])
        return self


def libconfig(value, indent=""):
    """Renders a Python value as libconfig text (dict = group, list of dicts = list, list = array)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        inner = indent + "  "
        body = "".join("%s%s = %s;\n" % (inner, k, libconfig(v, inner)) for k, v in value.items())
        return "{\n" + body + indent + "}"
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return "( " + ", ".join(libconfig(v, indent) for v in value) + " )"
        return "[ " + ", ".join(libconfig(v, indent) for v in value) + " ]"
    raise TypeError(value)


def write_conf(path, conf):
    with open(path, "w") as f:
        for k, v in conf.items():
            f.write("%s = %s;\n" % (k, libconfig(v)))


def keygen(path):
    out = subprocess.run([MQSEAL, "keygen", path], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "keygen failed: " + out.stderr)
    return out.stdout.strip()


class Node(Proc):
    """An mqseal node. conf: extra configuration merged over the defaults below."""

    def __init__(self, workdir, node_id, broker_port, peers=(), conf=None, tls=None):
        self.node_id = node_id
        self.dir = os.path.join(workdir, node_id)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.metrics_port = free_port()
        self.identity = os.path.join(self.dir, "identity.key")
        self.pubkey = keygen(self.identity) if not os.path.exists(self.identity) else pubkey(self.identity)
        self.conf = {
            "node_id": node_id,
            "state_dir": self.dir,
            "identity_file": self.identity,
            "listen": {"host": HOST, "port": self.port},
            "broker": {"host": HOST, "port": broker_port},
            "metrics": {"enabled": True, "host": HOST, "port": self.metrics_port},
            "log": {"level": "debug"},
        }
        if peers:
            self.conf["peers"] = [{"id": p.node_id, "public_key": p.pubkey} for p in peers]
        for k, v in (conf or {}).items():
            if isinstance(v, dict) and isinstance(self.conf.get(k), dict):
                self.conf[k].update(v)
            else:
                self.conf[k] = v
        self.conf_path = os.path.join(self.dir, "mqseal.conf")
        Proc.__init__(self, node_id, [MQSEAL, "-c", self.conf_path], workdir)

    def trust(self, *peers):
        self.conf["peers"] = [{"id": p.node_id, "public_key": p.pubkey} for p in peers]

    def start(self, wait=True):
        write_conf(self.conf_path, self.conf)
        Proc.start(self)
        if wait:
            metrics_on = self.conf.get("metrics", {}).get("enabled", True)
            eventually(lambda: (port_open(self.port) and (not metrics_on or port_open(self.metrics_port)))
                       or not self.alive(), 10, msg="mqseal did not start")
            check(self.alive(), "mqseal exited: " + self.output()[-3000:])
        return self

    def metrics(self):
        """GET /metrics parsed into {'name{labels}': value}."""
        with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, self.metrics_port), timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def metric(self, name, default=0.0):
        return self.metrics().get(name, default)


def keyed_nodes(workdir, ids=("a", "b"), conf=None, timeout=20):
    """A broker and nodes (ids) on it that all trust each other, started and keyed: (broker, *nodes).
    conf: extra configuration for every node."""
    broker = Broker(workdir).start()
    nodes = [Node(workdir, i, broker.port, conf=conf) for i in ids]
    for n in nodes:
        n.trust(*[m for m in nodes if m is not n])
    for n in nodes:
        n.start()
    for n in nodes:
        eventually(lambda: n.metric("mqseal_peers_keyed") == len(nodes) - 1, timeout,
                   msg="%s keyed" % n.node_id)
    return (broker, *nodes)


def pubkey(path):
    out = subprocess.run([MQSEAL, "pubkey", path], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "pubkey failed: " + out.stderr)
    return out.stdout.strip()


# ---------------------------------------------------------------- MQTT clients

class Msg:
    def __init__(self, m):
        self.topic = m.topic
        self.payload = bytes(m.payload)
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.props = getattr(m, "properties", None)

    def __repr__(self):
        return "Msg(%s, %r, qos=%d, retain=%s)" % (self.topic, self.payload[:40], self.qos, self.retain)


class Client:
    """A paho client on its own network thread; received messages go to a queue."""

    def __init__(self, client_id, version=4, clean=True):
        self.version = version
        proto = mqtt.MQTTv5 if version == 5 else (mqtt.MQTTv31 if version == 3 else mqtt.MQTTv311)
        if version == 5:
            self.c = mqtt.Client(client_id=client_id, protocol=proto)
        else:
            self.c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=proto)
        self.clean = clean
        self.msgs = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = queue.Queue()
        self.disconnected = threading.Event()
        self.c.on_message = lambda c, u, m: self.msgs.put(Msg(m))
        if version == 5:
            self.c.on_connect = lambda c, u, f, rc, props=None: self.connack.put((rc, f))
            self.c.on_subscribe = lambda c, u, mid, rcs, props=None: self.subacks.put((mid, rcs))
            self.c.on_disconnect = lambda c, u, rc, props=None: self.disconnected.set()
        else:
            self.c.on_connect = lambda c, u, f, rc: self.connack.put((rc, f))
            self.c.on_subscribe = lambda c, u, mid, rcs: self.subacks.put((mid, rcs))
            self.c.on_disconnect = lambda c, u, rc: self.disconnected.set()

    def connect(self, port, keepalive=60, timeout=10, expect_rc=0, **kw):
        self.disconnected.clear()
        if self.version == 5:
            props = kw.pop("properties", None)
            self.c.connect(HOST, port, keepalive, clean_start=self.clean, properties=props, **kw)
        else:
            self.c.connect(HOST, port, keepalive, **kw)
        self.c.loop_start()
        try:
            rc, flags = self.connack.get(timeout=timeout)
        except queue.Empty:
            raise TestFailure("no CONNACK within %ss" % timeout)
        check(rc == expect_rc, "CONNACK rc %r, expected %r" % (rc, expect_rc))
        return flags

    def subscribe(self, topic, qos=0, timeout=10, **kw):
        rc, mid = self.c.subscribe(topic, qos, **kw)
        check(rc == 0, "subscribe failed to send: %d" % rc)
        try:
            got_mid, rcs = self.subacks.get(timeout=timeout)
        except queue.Empty:
            raise TestFailure("no SUBACK within %ss" % timeout)
        check(got_mid == mid, "SUBACK for another packet id")
        return rcs

    def publish(self, topic, payload, qos=0, retain=False, wait=True, timeout=10, **kw):
        info = self.c.publish(topic, payload, qos, retain, **kw)
        if wait and qos > 0:
            info.wait_for_publish(timeout)
            check(info.is_published(), "publish of %s not acknowledged within %ss" % (topic, timeout))
        return info

    def expect(self, n, timeout=10):
        """Returns exactly the next n messages (fails if fewer arrive in time)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("expected %d messages, got %d: %r" % (n, len(out), out[:5]))
            try:
                out.append(self.msgs.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def quiet(self, seconds=1.0):
        """Returns whatever arrives within seconds (used to check that nothing does)."""
        out = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.msgs.get(timeout=left))
            except queue.Empty:
                return out

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT (an abrupt device failure)."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()


# ---------------------------------------------------------------- raw MQTT bytes

def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def connect_packet(client_id="raw", level=4, keepalive=60, clean=True):
    name = b"MQIsdp" if level == 3 else b"MQTT"
    body = mqtt_str(name) + bytes([level, 0x02 if clean else 0]) + struct.pack(">H", keepalive)
    if level == 5:
        body += b"\x00"
    body += mqtt_str(client_id)
    return b"\x10" + varint(len(body)) + body


def publish_packet(topic, payload, qos=0, pid=1, level=4, retain=False):
    body = mqtt_str(topic) + (struct.pack(">H", pid) if qos else b"")
    if level == 5:
        body += b"\x00"
    body += payload
    return bytes([0x30 | (qos << 1) | (1 if retain else 0)]) + varint(len(body)) + body


def raw_connect(port, timeout=5.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_closed(sock, timeout=5.0):
    """Reads until EOF; returns the bytes read, or None if the peer kept the connection open."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return data
    return None


# ---------------------------------------------------------------- runner

def run(tests, argv=None):
    """Runs the given test functions (each gets a fresh work directory), stops every process after
    each test, prints a line per test, and exits 1 if any failed. argv may name tests to run."""
    names = (argv or sys.argv)[1:]
    selected = [t for t in tests if not names or t.__name__ in names]
    failed = []
    keep = os.environ.get("MQSEAL_KEEP_TMP")
    for t in selected:
        workdir = tempfile.mkdtemp(prefix="mqseal-%s-" % t.__name__)
        start = time.monotonic()
        try:
            t(workdir)
            print("PASS %s (%.1fs)" % (t.__name__, time.monotonic() - start), flush=True)
        except Exception:  # noqa: BLE001 - report every failure
            failed.append(t.__name__)
            print("FAIL %s (%.1fs)" % (t.__name__, time.monotonic() - start), flush=True)
            traceback.print_exc()
            for name in sorted(os.listdir(workdir)):
                if name.endswith(".log"):
                    with open(os.path.join(workdir, name), "rb") as f:
                        tail = f.read()[-3000:].decode("utf-8", "replace")
                    print("---- %s (tail)\n%s" % (name, tail))
        finally:
            stop_all()
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
    print("%d passed, %d failed%s" % (len(selected) - len(failed), len(failed),
                                       (": " + ", ".join(failed)) if failed else ""))
    sys.exit(1 if failed else 0)


class RawClient:
    """A minimal MQTT 3.1.1 / 5 client on a raw socket, for what paho cannot do: not acknowledging
    (to test redelivery), reading exact flags, sending hand-made packets."""

    def __init__(self, port, client_id, clean=True, level=4, keepalive=60):
        self.level = level
        self.s = raw_connect(port, timeout=10)
        self.buf = b""
        self.s.sendall(connect_packet(client_id, level, keepalive, clean))
        t, _, body = self.read_packet()
        check(t == 2, "CONNACK expected, got type %d" % t)
        self.session_present = bool(body[0] & 1)
        check(body[1] == 0, "CONNACK refused: %d" % body[1])

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            self.s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.s.recv(65536)
            if not chunk:
                raise TestFailure("connection closed")
            self.buf += chunk

    def read_packet(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        n, mult, i = 0, 1, 1
        while True:
            self._fill(i + 1, deadline)
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        self._fill(i + n, deadline)
        first, body = self.buf[0], self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        return first >> 4, first & 0x0F, body

    def subscribe(self, topic, qos, pid=1):
        body = struct.pack(">H", pid) + (b"\x00" if self.level == 5 else b"") + mqtt_str(topic) + bytes([qos])
        self.s.sendall(b"\x82" + varint(len(body)) + body)
        t, _, body = self.read_packet()
        check(t == 9, "SUBACK expected")
        return body[-1]

    def read_publish(self, timeout=10.0):
        """Next PUBLISH as (topic, payload, qos, pid, dup, retain); other packets are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            t, flags, body = self.read_packet(max(0.01, deadline - time.monotonic()))
            if t != 3:
                continue
            qos = (flags >> 1) & 3
            tlen = struct.unpack(">H", body[:2])[0]
            topic = body[2:2 + tlen].decode()
            pos = 2 + tlen
            pid = 0
            if qos:
                pid = struct.unpack(">H", body[pos:pos + 2])[0]
                pos += 2
            if self.level == 5:
                plen, used, mult = 0, 0, 1
                while True:
                    b = body[pos + used]
                    plen += (b & 0x7F) * mult
                    mult *= 128
                    used += 1
                    if not b & 0x80:
                        break
                pos += used + plen
            return topic, body[pos:], qos, pid, bool(flags & 8), bool(flags & 1)

    def ack(self, ptype, pid):
        self.s.sendall(bytes([ptype << 4 | (2 if ptype == 6 else 0), 2]) + struct.pack(">H", pid))

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# ---------------------------------------------------------------- process resources (reliability tests)

def proc_status(pid, field):
    """One field of /proc/<pid>/status as text (e.g. 'VmRSS' -> '1234 kB'), None if the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def rss_kb(pid):
    """Resident set size of pid in KiB (VmRSS), 0 if the process is gone."""
    v = proc_status(pid, "VmRSS")
    return int(v.split()[0]) if v else 0


def fd_count(pid):
    """Open file descriptors of pid (entries of /proc/<pid>/fd)."""
    return len(os.listdir("/proc/%d/fd" % pid))


def sanitized(binary=None):
    """True if the mqseal binary under test carries AddressSanitizer (CI's test build)."""
    with open(binary or MQSEAL, "rb") as f:
        return b"__asan_init" in f.read()


def raise_nofile(n):
    """Raises this process's soft descriptor limit to n (at most the hard limit); children inherit it.
    Returns the new soft limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def small_asan_quarantine(mb=16):
    """For tests that measure RSS: ASan keeps freed memory in a quarantine of 256 MiB by default, which
    looks like growth; a small one keeps use-after-free detection and lets RSS settle. Applies to the
    processes started after the call (they inherit os.environ)."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in opts:
        os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=%d" % mb


class RssSampler:
    """Samples VmRSS (KiB) of some processes every interval seconds on a thread, until stop()."""

    def __init__(self, pids, interval=0.1):
        self.pids = list(pids)
        self.interval = interval
        self.samples = {p: [] for p in self.pids}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            for p in self.pids:
                v = rss_kb(p)
                if v:
                    self.samples[p].append(v)
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self

    def peak(self, pid):
        return max(self.samples[pid] or [0])


def stop_clean(node, timeout=30):
    """Stops an mqseal node with SIGTERM and checks that it exited 0 without a sanitizer report (under
    ASan, LeakSanitizer runs at exit: a leak makes the exit status non-zero)."""
    rc = node.stop(timeout)
    out = node.output()
    check("Sanitizer" not in out and "runtime error:" not in out,
          "%s: sanitizer report: %s" % (node.name, out[out.find("Sanitizer") - 200:][:3000]))
    check(rc == 0, "%s exited %r" % (node.name, rc))
    return rc
