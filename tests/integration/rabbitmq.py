"""rabbitmq.py - a private RabbitMQ 3.10 cluster (two nodes by default) with the MQTT plugin, on loopback
only, for the integration tests that check mqseal on a clustered broker (test_cluster.py).

Everything lives in the test's work directory: a private EPMD on its own port (ERL_EPMD_PORT, bound to
127.0.0.1, started by us in the foreground so that it is our child), a shared Erlang cookie under HOME,
and per node its rabbitmq.conf, enabled_plugins, data (mnesia), logs and expanded plugins. Each node is
Debian's rabbitmq-server in the foreground as a child process (PID recorded); node 2..n are joined to
node 1 with `rabbitmqctl stop_app / join_cluster / start_app`. Every process is a harness.Proc, so the
test runner stops them by PID when the test ends, also when it fails (newest first: the nodes, then
EPMD). Every wait has a deadline.

What we learned about RabbitMQ 3.10.8 on Debian 12 (measured here, 2 CPUs):
  - a node boots in ~10-15 s with a warm file cache, ~35 s on the very first start after boot;
    two nodes boot in parallel, and the join adds ~10 s (three rabbitmqctl calls of ~2-4 s each);
  - /usr/sbin/rabbitmq-server switches to the rabbitmq user (su), which loses our environment, so we
    run /usr/lib/rabbitmq/bin/rabbitmq-server as the current user; it is a shell wrapper that starts
    erl as its child and forwards SIGTERM; its process group is ours alone (start_new_session), so a
    SIGKILL fallback kills the group and leaves no orphaned beam.smp;
  - the Erlang distribution port listens on 0.0.0.0 unless told otherwise: we pass
    -kernel inet_dist_use_interface {127,0,0,1} to the server and to the CLI tools;
  - the CLI tools take a distribution port of their own on every call (35672..35682 by default): we
    give them a free range below the kernel's ephemeral ports, so that neither another test run nor an
    outgoing connection of this one takes it between calls (that made rabbitmqctl fail to start);
  - management off: only rabbitmq_mqtt is enabled, so the listeners are AMQP, MQTT, the Erlang
    distribution port and EPMD, all on 127.0.0.1 (EPMD also on ::1);
  - anonymous MQTT: mqtt.allow_anonymous = true connects as mqtt.default_user (guest), which is
    refused from anywhere but loopback unless loopback_users = none; we connect over loopback only,
    but set loopback_users = none anyway (the guest restriction looks at the peer address of the
    MQTT connection, which is 127.0.0.1 here, so it is belt and braces).
"""
import atexit
import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import time

import harness
from harness import HOST, Proc, TestFailure, check, eventually, port_open

RABBIT_BIN = os.environ.get("MQSEAL_RABBITMQ_BIN") or "/usr/lib/rabbitmq/bin"
EPMD = "/usr/bin/epmd"
LOOPBACK_DIST = "-kernel inet_dist_use_interface {127,0,0,1}"
CTL_PORTS = 8  # distribution ports for the CLI tools (one per concurrent call)


def available():
    """True when rabbitmq-server and epmd are installed (scripts/deps.sh installs them)."""
    return os.access(os.path.join(RABBIT_BIN, "rabbitmq-server"), os.X_OK) and os.access(EPMD, os.X_OK)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_range(n=1):
    """n consecutive free loopback ports below the kernel's ephemeral range. The Erlang distribution
    ports are bound later (the CLI tools bind theirs anew on every call), and a port from the ephemeral
    range may meanwhile be taken by any outgoing connection of the test."""
    high = _ephemeral_low() - n
    for _ in range(200):
        base = random.randrange(20000, max(20001, high))
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((HOST, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise TestFailure("no %d free consecutive ports below %d" % (n, high))


def _die_with_parent(sig):
    """A preexec_fn: the child gets sig when the test process dies, even by SIGKILL (a ctest timeout),
    so that no broker outlives its test (prctl PR_SET_PDEATHSIG; Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def arm():
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    return arm


class ClusterProc(Proc):
    """A harness.Proc that dies with the test process, and that is registered with the harness (so
    that the runner stops it after the test) unless it belongs to a cluster shared between tests."""

    def __init__(self, name, argv, workdir, env=None, register=True, death_signal=signal.SIGTERM):
        Proc.__init__(self, name, argv, workdir, env)
        self.register = register
        self.death_signal = death_signal

    def start(self):
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
                                  start_new_session=True, preexec_fn=_die_with_parent(self.death_signal))
        if self.register:
            harness._procs.append(self)
        return self


class Epmd(ClusterProc):
    """A private Erlang port mapper in the foreground (no -daemon), bound to loopback."""

    def __init__(self, workdir, register=True):
        self.port = free_port_range()
        ClusterProc.__init__(self, "epmd", [EPMD, "-port", str(self.port), "-address", HOST], workdir,
                             register=register, death_signal=signal.SIGKILL)

    def start(self):
        ClusterProc.start(self)
        eventually(lambda: port_open(self.port) or not self.alive(), 5, msg="epmd did not start")
        check(self.alive(), "epmd exited: " + self.output()[-1000:])
        return self


class RabbitNode(ClusterProc):
    """One RabbitMQ node: rabbit<index>@localhost with its own ports and directories."""

    def __init__(self, cluster, index, mqtt_conf=""):
        self.cluster = cluster
        self.index = index
        self.nodename = "rabbit%d@localhost" % index
        self.dir = os.path.join(cluster.workdir, "rabbit%d" % index)
        os.makedirs(self.dir, exist_ok=True)
        self.amqp_port = free_port_range()
        self.dist_port = free_port_range()
        self.port = free_port_range()  # the MQTT listener: what Node(..., broker_port) and Client connect to
        self.log_file = os.path.join(self.dir, "log", self.nodename + ".log")
        self._write_files(mqtt_conf)
        ClusterProc.__init__(self, "rabbit%d" % index, [os.path.join(RABBIT_BIN, "rabbitmq-server")],
                             cluster.workdir, env=self.environ(), register=not cluster.shared)

    def _write_files(self, extra):
        conf = ["listeners.tcp.default = %s:%d" % (HOST, self.amqp_port),
                "mqtt.listeners.tcp.default = %s:%d" % (HOST, self.port),
                "mqtt.tcp_listen_options.nodelay = true",
                "mqtt.allow_anonymous = true",
                "mqtt.default_user = guest",
                "mqtt.default_pass = guest",
                "mqtt.vhost = /",
                "mqtt.exchange = amq.topic",
                "loopback_users = none",
                "log.console = false",
                "log.file.level = info"]
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write("\n".join(conf) + "\n" + extra + "\n")
        # Only the MQTT plugin: no management UI, no Prometheus endpoint, no other listener.
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        # An empty rabbitmq-env.conf, so that /etc/rabbitmq/rabbitmq-env.conf cannot change anything.
        open(os.path.join(self.dir, "rabbitmq-env.conf"), "w").close()

    def environ(self):
        env = dict(os.environ)
        d = self.dir
        env.update({
            "HOME": self.cluster.home,  # the shared .erlang.cookie
            "ERL_EPMD_PORT": str(self.cluster.epmd.port),
            "ERL_EPMD_ADDRESS": HOST,
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d, "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": os.path.join(d, "plugins-expand"),
            "RABBITMQ_PID_FILE": os.path.join(d, "rabbit.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "%s -start_epmd false" % LOOPBACK_DIST,
            "RABBITMQ_CTL_ERL_ARGS": "%s -start_epmd false" % LOOPBACK_DIST,
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self.cluster.ctl_port),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self.cluster.ctl_port + CTL_PORTS - 1),
        })
        return env

    def ctl(self, *args, timeout=60, tool="rabbitmqctl"):
        """Runs a CLI tool against this node; returns its standard output, fails the test on error."""
        argv = [os.path.join(RABBIT_BIN, tool), "-n", self.nodename] + list(args)
        try:
            out = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("%s %s: no answer within %ss" % (tool, " ".join(args), timeout))
        check(out.returncode == 0, "%s %s failed (%d): %s%s" % (tool, " ".join(args), out.returncode,
                                                                 out.stdout[-1500:], out.stderr[-1500:]))
        return out.stdout

    def broker_log(self):
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_ready(self, timeout=90):
        """Waits for the MQTT listener (it opens last, after every boot step)."""
        eventually(lambda: port_open(self.port) or not self.alive(), timeout, interval=0.25,
                   msg="%s: MQTT listener not up" % self.nodename)
        check(self.alive(), "%s exited: %s\n%s" % (self.nodename, self.output()[-2000:], self.broker_log()[-3000:]))
        return self

    def wait_mqtt_down(self, timeout=30):
        eventually(lambda: not port_open(self.port), timeout, interval=0.2,
                   msg="%s: MQTT listener still up" % self.nodename)

    def stop(self, timeout=30.0):
        """SIGTERM to the wrapper (it runs `rabbitmqctl stop`-like shutdown of erl); SIGKILL to the
        whole process group if that takes longer than timeout."""
        return Proc.stop(self, timeout)

    def kill(self):
        if self.p is not None and self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)  # our group: the wrapper, erl, beam.smp
            except ProcessLookupError:
                pass
        if self.p is not None:
            self.p.wait(5)


class RabbitCluster:
    """size RabbitMQ nodes joined into one cluster; nodes[i].port is node i's MQTT port.

    shared=False: the processes are registered with the harness, which stops them when the test ends.
    shared=True: one cluster serves several tests (booting one costs 30-90 s); it stops itself at exit
    of the test process (atexit, and the harness's SIGTERM/SIGINT handler exits through atexit), and
    every process also gets SIGTERM/SIGKILL from the kernel if the test process dies."""

    def __init__(self, workdir, size=2, mqtt_conf="", shared=False):
        self.workdir = workdir
        self.shared = shared
        self.home = os.path.join(workdir, "erlang-home")
        os.makedirs(self.home, exist_ok=True)
        cookie = os.path.join(self.home, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write("MQSEALTEST" + os.urandom(12).hex().upper())
        os.chmod(cookie, 0o400)
        self.epmd = Epmd(workdir, register=not shared)
        self.ctl_port = free_port_range(CTL_PORTS)
        self.nodes = [RabbitNode(self, i + 1, mqtt_conf) for i in range(size)]
        self.timings = {}
        if shared:
            atexit.register(self.stop)

    def start(self, timeout=180):
        """Boots every node in parallel, joins nodes 2.. to node 1, checks that all run as one cluster.
        Records the seconds spent in self.timings (boot, join, total)."""
        t0 = time.monotonic()
        try:
            self.epmd.start()
            for n in self.nodes:
                n.start()
            for n in self.nodes:
                n.wait_ready(timeout)
            t1 = time.monotonic()
            first = self.nodes[0]
            for n in self.nodes[1:]:
                n.ctl("stop_app")
                n.wait_mqtt_down()
                n.ctl("join_cluster", first.nodename)
                n.ctl("start_app")
                n.wait_ready(timeout)
            self.check_running()
        except BaseException:
            if self.shared:
                self.stop()
            raise
        t2 = time.monotonic()
        self.timings = {"boot": round(t1 - t0, 1), "join": round(t2 - t1, 1), "total": round(t2 - t0, 1)}
        return self

    def status(self, node=None):
        out = (node or self.nodes[0]).ctl("cluster_status", "--formatter", "json")
        return json.loads(out[out.index("{"):])

    def check_running(self):
        st = self.status()
        want = sorted(n.nodename for n in self.nodes)
        check(sorted(st.get("running_nodes", [])) == want, "cluster running nodes %r, want %r" % (
            st.get("running_nodes"), want))
        check(not st.get("partitions"), "network partitions: %r" % st.get("partitions"))

    def mqtt_clients(self, node):
        """The client ids of the MQTT connections at node (rabbitmqctl list_mqtt_connections)."""
        out = node.ctl("list_mqtt_connections", "client_id", "--formatter", "json")
        return sorted(c["client_id"] for c in json.loads(out[out.index("["):]))

    def logs(self):
        return {n.nodename: n.broker_log() for n in self.nodes}

    def stop(self):
        """Stops every node (SIGTERM, SIGKILL to its group after 30 s), then EPMD. Idempotent."""
        for p in list(reversed(self.nodes)) + [self.epmd]:
            try:
                if p.p is not None and p.alive():
                    p.stop()
                elif p.p is not None and p in harness._procs:
                    harness._procs.remove(p)
            except Exception:  # noqa: BLE001 - go on stopping the others
                p.kill()
