"""The container deployment (issue 7) without a Docker engine: docker/docker-compose.yml validated by
`docker-compose config` and checked for the shape the demo needs, docker/Dockerfile checked
statically, and docker/entrypoint.sh run natively, as the containers run it: two nodes against a
real mosquitto create their keys, exchange them through a shared directory, write configurations
that `mqseal check` accepts, key each other and seal a message end to end. Issue 16: broker TLS
(client certificate), credentials and topic lists from variables, secrets from *_FILE (a TLS broker
that wants a client certificate and a password is reached with both read from files), both VAR and
VAR_FILE refused, the HEALTHCHECK in exec form without a shell."""
# ctest-labels: demo
# ctest-timeout: 180
import os
import re
import json
import shutil
import stat
import subprocess
import time
import urllib.error
import urllib.request

import yaml

from harness import (HOST, MOSQUITTO, MQSEAL, SRC, Broker, Client, Node, Proc, check, eventually, free_port,
                     port_open, pubkey, run, write_conf)

DOCKER = os.path.join(SRC, "docker")
ENTRYPOINT = os.path.join(DOCKER, "entrypoint.sh")
COMPOSE = os.path.join(DOCKER, "docker-compose.yml")


# ---------------------------------------------------------------- compose file and Dockerfile

def compose_config(path):
    exe = shutil.which("docker-compose")
    check(exe, "docker-compose not installed (Debian package docker-compose, scripts/deps.sh all)")
    return subprocess.run([exe, "-f", path, "config"], capture_output=True, text=True, timeout=60)


def test_compose_config(workdir):
    r = compose_config(COMPOSE)
    check(r.returncode == 0, "docker-compose config failed: " + r.stderr)
    doc = yaml.safe_load(r.stdout)
    svc = doc["services"]
    check(set(svc) == {"broker", "sensor-sidecar", "backend-sidecar", "sensor-device", "backend-app",
                       "eavesdropper"}, "services: %r" % sorted(svc))
    nodes = {"sensor-sidecar": ("sensor", "backend"), "backend-sidecar": ("backend", "sensor")}
    state_volumes = set()
    for name, (node_id, peer) in nodes.items():
        s = svc[name]
        env = s["environment"]
        check(env["MQSEAL_NODE_ID"] == node_id and env["MQSEAL_PEERS"] == peer, "%s: ids %r" % (name, env))
        check(env["MQSEAL_BROKER_HOST"] == "broker", "%s: broker host %r" % (name, env))
        check(s["build"]["dockerfile"] == "docker/Dockerfile", "%s: build %r" % (name, s["build"]))
        check(os.path.samefile(s["build"]["context"], SRC), "%s: build context %r" % (name, s["build"]))
        mounts = {v.split(":")[1]: v.split(":")[0] for v in s["volumes"]}
        check(mounts.get(env["MQSEAL_PEERS_DIR"]) == "peer-keys", "%s: shared key volume %r" % (name, mounts))
        state_volumes.add(mounts.get("/var/lib/mqseal"))
        check(s.get("read_only") is True and "ALL" in s.get("cap_drop", []), "%s: hardening" % name)
    check(len(state_volumes) == 2 and None not in state_volumes, "state volumes %r" % state_volumes)
    check(set(doc["volumes"]) >= state_volumes | {"peer-keys"}, "named volumes %r" % doc["volumes"])
    for device, sidecar in (("sensor-device", "sensor-sidecar"), ("backend-app", "backend-sidecar")):
        d = svc[device]
        check(d["network_mode"] == "service:" + sidecar, "%s: network_mode %r" % (device, d.get("network_mode")))
        check(d["depends_on"][sidecar]["condition"] == "service_healthy", "%s: depends_on" % device)
        cmd = " ".join(d["entrypoint"] + d["command"])
        port = svc[sidecar]["environment"]["MQSEAL_LISTEN_PORT"]
        check("-h 127.0.0.1 -p %s " % port in cmd, "%s does not talk to its sidecar: %s" % (device, cmd))
    check("-h broker" in svc["eavesdropper"]["command"][0] and "-t '#'" in svc["eavesdropper"]["command"][0],
          "eavesdropper: %r" % svc["eavesdropper"]["command"])
    # the sample the device reads is the committed one
    mounts = svc["sensor-device"]["volumes"]
    check(any(os.path.samefile(v.split(":")[0], os.path.join(SRC, "scripts", "telemetry.csv"))
              for v in mounts), "telemetry mount %r" % mounts)
    # and the validation is real: a device bound to an undefined sidecar is refused
    broken = os.path.join(workdir, "broken.yml")
    with open(COMPOSE) as f:
        text = f.read().replace('"service:sensor-sidecar"', '"service:no-such-sidecar"')
    with open(broken, "w") as f:
        f.write(text)
    shutil.copy(os.path.join(DOCKER, "mosquitto.conf"), workdir)
    r = compose_config(broken)
    check(r.returncode != 0 and "no-such-sidecar" in r.stderr, "broken compose file accepted: %s" % r.stderr)


def dockerfile_stages():
    stages = []
    with open(os.path.join(DOCKER, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "FROM":
            stages.append({"FROM": rest, "lines": []})
        stages[-1]["lines"].append((word, rest))
    return stages


def test_dockerfile(workdir):
    stages = dockerfile_stages()
    check(len(stages) == 2, "stages: %r" % [s["FROM"] for s in stages])
    build, runtime = stages
    check(build["FROM"].startswith("debian:12 "), "build stage: %s" % build["FROM"])
    check(runtime["FROM"].startswith("debian:12-slim"), "runtime stage: %s" % runtime["FROM"])
    runs_b = " ".join(r for w, r in build["lines"] if w == "RUN")
    runs_r = " ".join(r for w, r in runtime["lines"] if w == "RUN")
    check("scripts/deps.sh build" in runs_b and "scripts/build.sh release" in runs_b, "build stage: " + runs_b)
    check("deps.sh runtime" in runs_r and "scripts/build.sh" not in runs_r, "runtime stage: " + runs_r)
    instr = dict((w, r) for w, r in runtime["lines"])
    check(instr.get("USER") not in (None, "root", "0"), "runtime user %r" % instr.get("USER"))
    # the HEALTHCHECK runs mqseal itself in exec form (a JSON array): no shell, no bash, no curl
    hc = instr.get("HEALTHCHECK", "")
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", hc)
    check(m, "HEALTHCHECK is not in exec form: %r" % hc)
    argv = json.loads(m.group(1))
    check(argv[:2] == ["mqseal", "health"] and re.match(r"^http://127\.0\.0\.1:(\d+)/readyz$", argv[2]),
          "HEALTHCHECK %r" % argv)
    env_line = instr.get("ENV", "")
    check("MQSEAL_METRICS_PORT=%s" % argv[2].split(":")[2].split("/")[0] in env_line,
          "HEALTHCHECK port is not the image's MQSEAL_METRICS_PORT: %r / %r" % (argv, env_line))
    # no build tools in the runtime stage
    for tool in ("build-essential", "gcc", "cmake", "clang", "curl", "-dev "):
        check(tool not in runs_r + " ", "runtime stage installs %s: %s" % (tool, runs_r))
    check("mqseal-entrypoint" in instr.get("ENTRYPOINT", ""), "ENTRYPOINT %r" % instr.get("ENTRYPOINT"))
    # every file copied from the build context exists (paths relative to the repository root)
    for stage in stages:
        for w, r in stage["lines"]:
            if w == "COPY" and not r.startswith("--from"):
                for src in r.split()[:-1]:
                    check(os.path.exists(os.path.join(SRC, src)), "COPY source missing: %s" % src)
    mode = os.stat(ENTRYPOINT).st_mode
    check(mode & stat.S_IXUSR and mode & stat.S_IXOTH, "entrypoint.sh is not executable by all")
    # what the build stage copies is enough to configure the build as scripts/build.sh does
    tree = os.path.join(workdir, "src")
    for w, r in build["lines"]:
        if w == "COPY":  # WORKDIR /src: "COPY a b" puts a at /src/b, "COPY a ./" at /src/a
            *srcs, dest = r.split()
            for src in srcs:
                dst = os.path.join(tree, src if dest in ("./", ".") else dest)
                if os.path.isdir(os.path.join(SRC, src)):
                    shutil.copytree(os.path.join(SRC, src), dst, dirs_exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copy(os.path.join(SRC, src), dst)
    r = subprocess.run(["cmake", "-S", tree, "-B", os.path.join(workdir, "b"), "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "the build stage's sources do not configure:\n" + r.stderr[-3000:])


# Packages of the debian:12-slim base image itself (apt needs them), and sanitizer runtimes, which
# only ASan/UBSan test builds link.
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
SANITIZER_PACKAGE = re.compile(r"^lib(asan|ubsan|lsan|tsan)\d+$")


def apt_closure(pkgs):
    """The packages that installing pkgs brings in (Depends and Pre-Depends, recursively)."""
    out = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                          "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + pkgs,
                         capture_output=True, text=True, timeout=120).stdout
    return set(re.findall(r"^([a-z0-9][^\s<>:]*)$", out, re.M))


def test_runtime_libraries(workdir):
    """The runtime stage installs `scripts/deps.sh runtime` only: every shared library the mqseal
    binary loads must come from those packages (or what they depend on, or the base image)."""
    with open(os.path.join(SRC, "scripts", "deps.sh")) as f:
        m = re.search(r"^runtime=\(([^)]*)\)", f.read(), re.M)
    check(m, "no runtime=(...) list in scripts/deps.sh")
    runtime = m.group(1).split()
    closure = apt_closure(runtime)
    check(set(runtime) <= closure, "apt-cache does not know %r" % sorted(set(runtime) - closure))
    ldd = subprocess.run(["ldd", MQSEAL], capture_output=True, text=True, timeout=30).stdout
    missing = []
    for path in re.findall(r"=> (/\S+)", ldd):
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True,
                               timeout=30).stdout.split(":")[0]
        if not owner:  # usrmerge: dpkg knows the /lib path
            owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True,
                                   timeout=30).stdout.split(":")[0]
        if owner in BASE_PACKAGES or SANITIZER_PACKAGE.match(owner) or owner in closure:
            continue
        missing.append("%s (%s)" % (os.path.basename(path), owner or "no package"))
    check(not missing, "the image's runtime stage would lack: %s; add the packages to runtime=(...) in "
          "scripts/deps.sh" % ", ".join(missing))


# ---------------------------------------------------------------- entrypoint.sh, natively

class EntryNode(Proc):
    """One node started by docker/entrypoint.sh, as a container would start it."""

    def __init__(self, workdir, node_id, broker_port, peers=(), keydir=None, extra=None):
        self.node_id = node_id
        self.dir = os.path.join(workdir, node_id)
        self.port = free_port()
        self.metrics_port = free_port()
        env = dict(os.environ, MQSEAL_BIN=MQSEAL, MQSEAL_NODE_ID=node_id, MQSEAL_STATE_DIR=self.dir,
                   MQSEAL_BROKER_HOST=HOST, MQSEAL_BROKER_PORT=str(broker_port),
                   MQSEAL_LISTEN_PORT=str(self.port), MQSEAL_METRICS_PORT=str(self.metrics_port),
                   MQSEAL_KEYEX_INTERVAL="30", MQSEAL_KEYEX_ACTIVATION="2", MQSEAL_PEER_WAIT_SECONDS="20")
        if peers:
            env["MQSEAL_PEERS"] = ",".join(peers)
        if keydir:
            env["MQSEAL_PEERS_DIR"] = keydir
        env.update(extra or {})
        self.env_vars = env
        Proc.__init__(self, node_id, ["bash", ENTRYPOINT], workdir, env=env)

    def healthy(self):
        return http_status(self.metrics_port, "/healthz") == 200


def http_status(port, path):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (HOST, port, path), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def is_mqseal(pid):
    try:
        return os.path.samefile(os.readlink("/proc/%d/exe" % pid), MQSEAL)
    except OSError:
        return False


def mqseal_check(conf):
    return subprocess.run([MQSEAL, "check", "-c", conf], capture_output=True, text=True, timeout=30)


def test_entrypoint_two_nodes(workdir):
    broker = Broker(workdir).start()
    keydir = os.path.join(workdir, "peer-keys")
    a = EntryNode(workdir, "sensor", broker.port, peers=["backend"], keydir=keydir).start()
    time.sleep(0.5)  # the first waits for the second's key
    check(a.alive() and not os.path.exists(os.path.join(a.dir, "mqseal.conf")), "sensor did not wait")
    b = EntryNode(workdir, "backend", broker.port, peers=["sensor"], keydir=keydir).start()
    for n in (a, b):
        eventually(n.healthy, 20, interval=0.3, msg="%s healthy" % n.node_id)
        check(is_mqseal(n.pid), "%s: the entrypoint did not exec mqseal" % n.node_id)
        key = os.path.join(n.dir, "identity.key")
        check(stat.S_IMODE(os.stat(key).st_mode) == 0o600, "identity key mode")
        with open(os.path.join(keydir, n.node_id + ".pub")) as f:
            pub = f.read().strip()
        out = subprocess.run([MQSEAL, "pubkey", key], capture_output=True, text=True, timeout=30)
        check(out.stdout.strip() == pub, "%s: shared key is not its identity's" % n.node_id)
        check("public key of %s: %s" % (n.node_id, pub) in n.output(), "public key not logged")
        conf = os.path.join(n.dir, "mqseal.conf")
        r = mqseal_check(conf)
        check(r.returncode == 0, "mqseal check: " + r.stderr)
        other = b if n is a else a
        check('id = "%s"' % other.node_id in r.stdout, "peer missing from the effective config:\n" + r.stdout)
    # a message sealed end to end: plaintext at the edges, ciphertext at the broker
    eve, sub, dev = Client("eve"), Client("app"), Client("dev")
    eve.connect(broker.port)
    eve.subscribe("plant/#", 1)
    sub.connect(b.port)
    sub.subscribe("plant/#", 1)
    dev.connect(a.port)
    payload = b"#1 21.50C 40.0% from entrypoint test"
    dev.publish("plant/lab", payload, qos=1)
    got = sub.expect(1)[0]
    check(got.topic == "plant/lab" and got.payload == payload, "received %r" % got)
    seen = eve.expect(1)[0]
    check(seen.topic == "plant/lab" and payload not in seen.payload and b"21.50C" not in seen.payload,
          "broker saw plaintext: %r" % seen)
    check(len(seen.payload) > len(payload), "sealed payload not larger")
    for c in (eve, sub, dev):
        c.disconnect()
    # a restart keeps the identity and rewrites the same configuration
    with open(os.path.join(a.dir, "mqseal.conf")) as f:
        before = f.read()
    pub_before = open(os.path.join(keydir, "sensor.pub")).read()
    a.stop()
    a2 = EntryNode(workdir, "sensor", broker.port, peers=["backend"], keydir=keydir)
    a2.port, a2.metrics_port = a.port, a.metrics_port
    a2.env_vars.update(MQSEAL_LISTEN_PORT=str(a.port), MQSEAL_METRICS_PORT=str(a.metrics_port))
    a2.name, a2.log_path = "sensor2", os.path.join(workdir, "sensor2.log")
    a2.start()
    eventually(a2.healthy, 20, interval=0.3, msg="restarted sensor healthy")
    check("creating identity key" not in a2.output(), "identity re-created on restart")
    check(open(os.path.join(keydir, "sensor.pub")).read() == pub_before, "public key changed on restart")
    check(open(os.path.join(a.dir, "mqseal.conf")).read() == before, "configuration differs after restart")


def test_entrypoint_mounted_config(workdir):
    """Production: a configuration with pinned peers is used as it is; the key is still created."""
    broker = Broker(workdir).start()
    peer = Node(workdir, "cloud", broker.port)
    state = os.path.join(workdir, "gw1")
    os.makedirs(state, mode=0o700)
    key = os.path.join(state, "identity.key")
    r = subprocess.run(["bash", ENTRYPOINT, "keygen", key], env=dict(os.environ, MQSEAL_BIN=MQSEAL),
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and r.stdout.startswith("ed25519:"), "keygen through the entrypoint: " + r.stderr)
    gw_pub = r.stdout.strip()
    port, mport = free_port(), free_port()
    conf = os.path.join(workdir, "gw1.conf")
    write_conf(conf, {"node_id": "gw1", "state_dir": state, "identity_file": key,
                      "listen": {"host": HOST, "port": port}, "broker": {"host": HOST, "port": broker.port},
                      "metrics": {"host": HOST, "port": mport},
                      "peers": [{"id": "cloud", "public_key": peer.pubkey}]})
    os.chmod(conf, 0o444)
    peer.conf["peers"] = [{"id": "gw1", "public_key": gw_pub}]
    peer.start()
    gw = Proc("gw1", ["bash", ENTRYPOINT], workdir,
              env=dict(os.environ, MQSEAL_BIN=MQSEAL, MQSEAL_CONFIG=conf, MQSEAL_STATE_DIR=state,
                       MQSEAL_METRICS_PORT=str(mport), MQSEAL_NODE_ID="ignored", MQSEAL_PEERS="x")).start()
    eventually(lambda: http_status(mport, "/healthz") == 200, 20, interval=0.3, msg="gw1 healthy")
    check(is_mqseal(gw.pid), "not exec'd")
    check(not os.path.exists(os.path.join(state, "mqseal.conf")), "wrote a configuration despite MQSEAL_CONFIG")
    check("public key of this node: " + gw_pub in gw.output(), "public key not logged")
    eventually(lambda: peer.metric("mqseal_peers_keyed") == 1, 10, msg="peer keyed")


def entry_fails(workdir, env, expect_rc=2, args=()):
    e = dict(os.environ, MQSEAL_BIN=MQSEAL, MQSEAL_STATE_DIR=os.path.join(workdir, "st"),
             MQSEAL_NODE_ID="n1", MQSEAL_BROKER_PORT="1", MQSEAL_LISTEN_PORT=str(free_port()),
             MQSEAL_METRICS_PORT=str(free_port()))
    e.update(env)
    r = subprocess.run(["bash", ENTRYPOINT] + list(args), env=e, capture_output=True, text=True, timeout=30)
    check(r.returncode == expect_rc, "%r: exit %d, expected %d: %s" % (env, r.returncode, expect_rc, r.stderr))
    return r.stderr


def test_entrypoint_refuses(workdir):
    conf = os.path.join(workdir, "st", "mqseal.conf")
    bad = [{"MQSEAL_NODE_ID": ""}, {"MQSEAL_NODE_ID": 'x"; user = "root'},
           {"MQSEAL_BROKER_HOST": "a b"}, {"MQSEAL_LISTEN_PORT": "18x3"},
           {"MQSEAL_PEERS": "n1"}, {"MQSEAL_PEERS": "ok,bad id"}, {"MQSEAL_LOG_LEVEL": "loud"},
           {"MQSEAL_LISTEN_ALLOW_REMOTE": "yes"}, {"MQSEAL_STATE_DIR": os.path.join(workdir, 'q"uote')},
           {"MQSEAL_PEERS": "p1"}]  # the last: peers but no directory to find their keys in
    for env in bad:
        err = entry_fails(workdir, env)
        check("entrypoint:" in err, "no explanation for %r: %s" % (env, err))
        check(not os.path.exists(conf), "a configuration was written for %r" % env)
    # values the entrypoint passes on but mqseal check refuses (range): exit 2, with mqseal's message
    err = entry_fails(workdir, {"MQSEAL_LISTEN_PORT": "70000"})
    check("listen.port" in err and "rejected by mqseal check" in err, err)
    # a peer whose key never appears: bounded wait, then exit 2; a malformed key is not taken
    keydir = os.path.join(workdir, "keys")
    os.makedirs(keydir)
    with open(os.path.join(keydir, "p1.pub"), "w") as f:
        f.write("ed25519:not-a-key\n")
    t = time.monotonic()
    err = entry_fails(workdir, {"MQSEAL_PEERS": "p1", "MQSEAL_PEERS_DIR": keydir, "MQSEAL_PEER_WAIT_SECONDS": "2"})
    check("no public key from peer p1" in err and 1.9 < time.monotonic() - t < 25, err)
    check(os.path.exists(os.path.join(keydir, "n1.pub")), "own key not shared while waiting")


def test_entrypoint_health_execs_mqseal(workdir):
    """`entrypoint.sh health` is `mqseal health URL` on this node's /readyz (exec'd, so its exit
    status is mqseal's), with a wildcard metrics address reached on loopback."""
    fake = os.path.join(workdir, "fake-mqseal")
    log = os.path.join(workdir, "argv")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\nprintf '%%s\\n' \"$$\" \"$@\" > %s\nexit 7\n" % log)
    os.chmod(fake, 0o755)
    cases = [({}, "http://127.0.0.1:9883/readyz"),
             ({"MQSEAL_METRICS_HOST": "0.0.0.0", "MQSEAL_METRICS_PORT": "9101"}, "http://127.0.0.1:9101/readyz"),
             ({"MQSEAL_METRICS_HOST": "::", "MQSEAL_METRICS_PORT": "9102"}, "http://[::1]:9102/readyz"),
             ({"MQSEAL_METRICS_HOST": "10.0.0.7"}, "http://10.0.0.7:9883/readyz")]
    for env, url in cases:
        e = {k: v for k, v in os.environ.items() if not k.startswith("MQSEAL_")}
        e.update(env, MQSEAL_BIN=fake)
        p = subprocess.Popen(["bash", ENTRYPOINT, "health"], env=e)
        rc = p.wait(timeout=30)
        with open(log) as f:
            pid, *argv = f.read().split()
        check(rc == 7, "health's exit status is not mqseal's: %d" % rc)
        check(int(pid) == p.pid, "mqseal health was not exec'd")
        check(argv == ["health", url], "%r: mqseal %r" % (env, argv))


def test_entrypoint_secret_conflicts(workdir):
    """Each secret comes from VAR or from the file VAR_FILE names, never both; a _FILE that cannot be
    read, an empty one and a value that would break the configuration are refused with exit 2, and
    no configuration is written."""
    conf = os.path.join(workdir, "st", "mqseal.conf")
    secret = os.path.join(workdir, "secret")
    with open(secret, "w") as f:
        f.write("s3cret\n")
    empty = os.path.join(workdir, "empty")
    open(empty, "w").close()
    key = os.path.join(workdir, "k.pem")
    subprocess.run([MQSEAL, "keygen", key], check=True, capture_output=True, timeout=30)
    for name, value in (("MQSEAL_KEYEX_PASSWORD", "s3cret"), ("MQSEAL_BROKER_TLS_KEY", open(key).read()),
                        ("MQSEAL_IDENTITY_KEY", open(key).read())):
        err = entry_fails(workdir, {name: value, name + "_FILE": secret if "PASSWORD" in name else key,
                                    "MQSEAL_KEYEX_USERNAME": "u"})
        check("%s and %s_FILE are both set" % (name, name) in err, "%s: %s" % (name, err))
        check(not os.path.exists(conf), "a configuration was written with both %s and %s_FILE" % (name, name))
        err = entry_fails(workdir, {name + "_FILE": os.path.join(workdir, "missing"), "MQSEAL_KEYEX_USERNAME": "u"})
        check("%s_FILE=" % name in err and "not a readable file" in err, "%s_FILE missing: %s" % (name, err))
        err = entry_fails(workdir, {name + "_FILE": empty, "MQSEAL_KEYEX_USERNAME": "u"})
        check("%s_FILE=" % name in err and "is empty" in err, "%s_FILE empty: %s" % (name, err))
        check(not os.path.exists(conf), "a configuration was written for a bad %s_FILE" % name)
    for env in ({"MQSEAL_KEYEX_USERNAME": "u", "MQSEAL_KEYEX_PASSWORD": 'a\n"; user = "root'},
                {"MQSEAL_TOPICS_DENY": "ok/#,bad\x01"}, {"MQSEAL_BROKER_TLS": "yes"},
                {"MQSEAL_BROKER_TLS_VERIFY_HOSTNAME": "0"}, {"MQSEAL_PEERS_SHARE": "no"}):
        err = entry_fails(workdir, env)
        check("entrypoint:" in err, "no explanation for %r: %s" % (env, err))
        check(not os.path.exists(conf), "a configuration was written for %r" % env)
    # a _FILE holding something that is not an identity key
    err = entry_fails(workdir, {"MQSEAL_IDENTITY_KEY_FILE": secret})
    check("not an identity key" in err, err)


def make_pki(workdir):
    """A test CA, a server certificate for 127.0.0.1 / localhost and a client certificate."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    f = {n: os.path.join(workdir, n) for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt", "cli.key",
                                                "cli.csr", "cli.crt", "ext.cnf")}
    with open(f["ext.cnf"], "w") as out:
        out.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", f["ca.key"], "-out", f["ca.crt"], "-days", "2", "-subj", "/CN=test CA")
    for who, cn in (("srv", "localhost"), ("cli", "gw1")):
        ossl("req", *ec, "-keyout", f[who + ".key"], "-out", f[who + ".csr"], "-subj", "/CN=" + cn)
        ossl("x509", "-req", "-in", f[who + ".csr"], "-CA", f["ca.crt"], "-CAkey", f["ca.key"], "-CAcreateserial",
             "-out", f[who + ".crt"], "-days", "2", "-extfile", f["ext.cnf"])
    return f


class StrictBroker(Proc):
    """mosquitto with two listeners: `port` wants TLS, a client certificate and a password (where
    the node connects); `open_port` is plain and anonymous (where the test watches)."""

    def __init__(self, workdir, pki, users):
        self.port, self.open_port = free_port(), free_port()
        pw = os.path.join(workdir, "passwd")
        for k, (u, p) in enumerate(users.items()):
            subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if k == 0 else []) + [pw, u, p], check=True,
                           capture_output=True, timeout=30)
        lines = ["per_listener_settings true", "persistence false", "log_type all", "connection_messages true",
                 "listener %d %s" % (self.open_port, HOST), "allow_anonymous true",
                 "listener %d %s" % (self.port, HOST), "allow_anonymous false", "password_file " + pw,
                 "cafile " + pki["ca.crt"], "certfile " + pki["srv.crt"], "keyfile " + pki["srv.key"],
                 "require_certificate true"]
        if os.geteuid() == 0:
            lines.insert(0, "user root")
        conf = os.path.join(workdir, "strict.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        Proc.__init__(self, "strict-broker", [MOSQUITTO, "-c", conf], workdir)

    def start(self):
        Proc.start(self)
        eventually(lambda: (port_open(self.port) and port_open(self.open_port)) or not self.alive(), 10,
                   msg="mosquitto did not start")
        check(self.alive(), "mosquitto exited: " + self.output()[-2000:])
        return self


def test_entrypoint_tls_credentials_topics(workdir):
    """A broker that wants TLS, a client certificate and a password: the node started by the
    entrypoint reaches it with the CA, certificate and server name from variables, the client key,
    the password and its identity key from *_FILE secrets (mounted group-readable, as Kubernetes
    does), and applies the topic lists from variables."""
    pki = make_pki(workdir)
    password = 'pa"ss\\word with spaces'
    broker = StrictBroker(workdir, pki, {"gw1": password, "dev": "devpw"}).start()
    secrets = os.path.join(workdir, "run-secrets")
    os.makedirs(secrets)
    files = {"password": os.path.join(secrets, "keyex-password"), "tls_key": os.path.join(secrets, "client.key"),
             "identity": os.path.join(secrets, "identity.key")}
    with open(files["password"], "w") as f:
        f.write(password + "\n")  # as `echo ... | docker secret create` leaves it
    shutil.copy(pki["cli.key"], files["tls_key"])
    subprocess.run([MQSEAL, "keygen", files["identity"]], check=True, capture_output=True, timeout=30)
    for path in files.values():
        os.chmod(path, 0o440)
    node = EntryNode(workdir, "gw1", broker.port, extra={
        "MQSEAL_BROKER_HOST": "127.0.0.1", "MQSEAL_BROKER_TLS": "true", "MQSEAL_BROKER_TLS_CA_FILE": pki["ca.crt"],
        "MQSEAL_BROKER_TLS_CERT_FILE": pki["cli.crt"], "MQSEAL_BROKER_TLS_KEY_FILE": files["tls_key"],
        "MQSEAL_BROKER_TLS_SERVER_NAME": "localhost", "MQSEAL_KEYEX_USERNAME": "gw1",
        "MQSEAL_KEYEX_PASSWORD_FILE": files["password"], "MQSEAL_IDENTITY_KEY_FILE": files["identity"],
        "MQSEAL_TOPICS_PLAINTEXT": "status/#, ota/+/state", "MQSEAL_TOPICS_DENY": "debug/#\nshell/#"}).start()
    eventually(lambda: http_status(node.metrics_port, "/metrics") == 200 or not node.alive(), 20, interval=0.2,
               msg="gw1 serves metrics")
    check(node.alive(), "gw1 exited:\n" + node.output()[-3000:])
    # the key-exchange connection is up: TLS verified against the CA and server name, client
    # certificate accepted, the password with quotes and a backslash intact
    mnode = Node.__new__(Node)
    mnode.metrics_port = node.metrics_port
    eventually(lambda: mnode.metric("mqseal_broker_connected") == 1, 20, interval=0.3,
               msg="key-exchange connection up:\n" + broker.output()[-2000:])
    # keys in the state directory, 0600, the identity the secret holds
    ident = os.path.join(node.dir, "identity.key")
    check(stat.S_IMODE(os.stat(ident).st_mode) == 0o600, "identity key mode")
    check(pubkey(ident) == pubkey(files["identity"]), "identity is not the secret's")
    check("creating identity key" not in node.output(), "a key was created despite MQSEAL_IDENTITY_KEY_FILE")
    tls_key = os.path.join(node.dir, "broker-client.key")
    check(stat.S_IMODE(os.stat(tls_key).st_mode) == 0o600 and open(tls_key).read() == open(pki["cli.key"]).read(),
          "client key copy")
    conf = os.path.join(node.dir, "mqseal.conf")
    check(stat.S_IMODE(os.stat(conf).st_mode) == 0o600, "the configuration holds a password: mode 0600")
    eff = mqseal_check(conf).stdout
    for want in ('ca_file = "%s"' % pki["ca.crt"], 'cert_file = "%s"' % pki["cli.crt"],
                 'key_file = "%s"' % tls_key, 'server_name = "localhost"', "port = %d" % broker.port,
                 'username = "gw1"', '"status/#"', '"ota/+/state"', '"debug/#"', '"shell/#"'):
        check(want in eff, "%s not in the effective configuration:\n%s" % (want, eff))
    # the topic lists at work: plaintext relayed as it is, sealed otherwise, denied never
    eve = Client("eve")
    eve.connect(broker.open_port)
    eve.subscribe("#", 1)
    dev = Client("dev")
    dev.c.username_pw_set("dev", "devpw")
    dev.connect(node.port)
    dev.publish("debug/x", b"denied", qos=0)
    dev.publish("status/gw1", b"online", qos=1)
    dev.publish("plant/t", b"21.5C", qos=1)
    got = {m.topic: m.payload for m in eve.expect(2) + eve.quiet(1.0)
           if not m.topic.startswith("mqseal/")}
    check(got.get("status/gw1") == b"online", "plaintext topic not relayed as it is: %r" % got)
    check("plant/t" in got and b"21.5C" not in got["plant/t"], "sealed topic: %r" % got)
    check("debug/x" not in got, "a denied topic reached the broker: %r" % got)
    for c in (eve, dev):
        c.disconnect()


def test_entrypoint_tls_system_ca(workdir):
    """MQSEAL_BROKER_TLS=true without a CA variable uses the system's trust store (the image's
    ca-certificates; here SSL_CERT_FILE points OpenSSL's default at the test CA) for the
    key-exchange connection too, not only for the devices' sessions."""
    pki = make_pki(workdir)
    broker = Broker(workdir, tls={"ca": pki["ca.crt"], "cert": pki["srv.crt"], "key": pki["srv.key"]}).start()
    node = EntryNode(workdir, "gw1", broker.port, extra={
        "MQSEAL_BROKER_TLS": "true", "SSL_CERT_FILE": pki["ca.crt"], "SSL_CERT_DIR": "/nonexistent"}).start()
    mnode = Node.__new__(Node)
    mnode.metrics_port = node.metrics_port
    eventually(lambda: not node.alive() or http_status(node.metrics_port, "/metrics") == 200, 20, interval=0.2,
               msg="gw1 serves metrics")
    check(node.alive(), "gw1 exited:\n" + node.output()[-2000:])
    eventually(lambda: mnode.metric("mqseal_broker_connected") == 1, 20, interval=0.3,
               msg="key-exchange connection over TLS with the default store")
    with open(os.path.join(node.dir, "mqseal.conf")) as f:
        text = f.read()
    check("ca_file" not in text and "ca_path" not in text, "a CA was configured:\n" + text)


if __name__ == "__main__":
    run([test_compose_config, test_dockerfile, test_runtime_libraries, test_entrypoint_refuses,
         test_entrypoint_health_execs_mqseal, test_entrypoint_secret_conflicts, test_entrypoint_mounted_config,
         test_entrypoint_tls_credentials_topics, test_entrypoint_tls_system_ca, test_entrypoint_two_nodes])
