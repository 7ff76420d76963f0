"""The Kubernetes example (docker/k8s/mqseal-sidecar.yaml, issue 16 item 7), without a cluster:
parsed with PyYAML and checked against the image (docker/Dockerfile: user, ports, environment) and
docker/entrypoint.sh (every variable it sets is one the entrypoint reads and docker/README.md
documents; secrets come from files of a Secret volume, peers from the ConfigMap; probes on /livez and
/readyz at the metrics port, reachable from the kubelet; the device talks to the sidecar's listener on
the shared loopback). Then the entrypoint is started with the Pod's own environment, the Secret and
ConfigMap volumes laid out as the kubelet would (mount paths mapped to a temporary directory,
addresses to loopback): the configuration it writes passes `mqseal check` and holds the pinned peers,
the Secret's identity and the credentials."""
# ctest-labels: demo
# ctest-timeout: 120
import os
import re
import stat
import subprocess
import urllib.error
import urllib.request

import yaml

from harness import HOST, MQSEAL, SRC, Proc, check, eventually, free_port, pubkey, run

EXAMPLE = os.path.join(SRC, "docker", "k8s", "mqseal-sidecar.yaml")
ENTRYPOINT = os.path.join(SRC, "docker", "entrypoint.sh")
KEY_LINE = re.compile(r"^ed25519:[A-Za-z0-9+/]{43}=$")


def load():
    with open(EXAMPLE) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    check(set(kinds) == {"ConfigMap", "Pod"} and all(len(v) == 1 for v in kinds.values()),
          "documents: %r" % {k: len(v) for k, v in kinds.items()})
    return kinds["Pod"][0], kinds["ConfigMap"][0]


def entrypoint_variables():
    """Every MQSEAL_* name docker/entrypoint.sh mentions, and NAME_FILE for each secret it reads."""
    with open(ENTRYPOINT) as f:
        text = f.read()
    names = set(re.findall(r"MQSEAL_[A-Z0-9_]*[A-Z0-9]", text))
    secrets = set(re.findall(r"^\s*secret (MQSEAL_[A-Z0-9_]+)$", text, re.M))
    check(secrets >= {"MQSEAL_KEYEX_PASSWORD", "MQSEAL_IDENTITY_KEY", "MQSEAL_BROKER_TLS_KEY"},
          "secrets read by the entrypoint: %r" % secrets)
    return names | {s + "_FILE" for s in secrets}, secrets


def image():
    """The runtime stage's USER's uid, ENV and EXPOSE of docker/Dockerfile."""
    with open(os.path.join(SRC, "docker", "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    runtime = text.split("FROM debian:12-slim", 1)[1]
    env = dict(re.findall(r"(MQSEAL_[A-Z_]+)=(\S+)", " ".join(re.findall(r"^ENV (.*)$", runtime, re.M))))
    uid = re.search(r"useradd [^\n]*--uid (\d+)", runtime).group(1)
    expose = re.search(r"^EXPOSE (.*)$", runtime, re.M).group(1).split()
    return int(uid), env, {int(p) for p in expose}


def pod_parts(pod):
    spec = pod["spec"]
    sidecars = [c for c in spec.get("initContainers", []) if c["image"].startswith("mqseal:")]
    check(len(sidecars) == 1, "one mqseal native sidecar in initContainers: %r" % spec.get("initContainers"))
    side = sidecars[0]
    check(side.get("restartPolicy") == "Always", "a native sidecar needs restartPolicy: Always")
    devices = spec["containers"]
    check(len(devices) == 1 and not devices[0]["image"].startswith("mqseal"), "one device container")
    check(not spec.get("hostNetwork"), "the Pod's own network namespace, not the host's")
    return spec, side, devices[0]


def resolve_env(side, configmap):
    env = {}
    for e in side["env"]:
        if "value" in e:
            check(isinstance(e["value"], str), "%s: env values are strings in Kubernetes" % e["name"])
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["configMapKeyRef"]
            check(ref["name"] == configmap["metadata"]["name"] and ref["key"] in configmap["data"],
                  "%s: configMapKeyRef %r" % (e["name"], ref))
            env[e["name"]] = configmap["data"][ref["key"]]
    return env


def mount_of(spec, side, path):
    """The (volumeMount, volume) whose mountPath holds path."""
    vols = {v["name"]: v for v in spec["volumes"]}
    for m in side["volumeMounts"]:
        if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/"):
            check(m["name"] in vols, "volumeMount %s has no volume" % m["name"])
            return m, vols[m["name"]]
    raise AssertionError("%s is on no volume of the sidecar" % path)


def test_example_consistent(workdir):
    pod, configmap = load()
    spec, side, device = pod_parts(pod)
    uid, image_env, expose = image()
    known, secrets = entrypoint_variables()
    env = resolve_env(side, configmap)
    full = dict(image_env, **env)
    with open(os.path.join(SRC, "docker", "README.md")) as f:
        readme = f.read()
    for name in env:
        check(name in known, "%s is not a variable of docker/entrypoint.sh" % name)
        check(name in readme, "%s is not documented in docker/README.md" % name)
    # the image's user, read-only root, no privilege escalation
    psc = spec["securityContext"]
    check(psc.get("runAsUser") == uid and psc.get("runAsNonRoot") is True, "runAsUser %r, image uid %d" % (psc, uid))
    check(side["securityContext"].get("readOnlyRootFilesystem") is True and
          side["securityContext"].get("allowPrivilegeEscalation") is False, "sidecar hardening")
    # secrets only from files of a Secret volume, never in the manifest
    for s in secrets:
        check(s not in env, "%s given as a value: use %s_FILE and a Secret" % (s, s))
    for name, value in env.items():
        if name.endswith("_FILE") and name[:-5] in secrets:
            m, vol = mount_of(spec, side, value)
            check("secret" in vol and m.get("readOnly") is True, "%s: not a read-only Secret mount" % name)
            item = os.path.relpath(value, m["mountPath"])
            items = {i["path"]: i["key"] for i in vol["secret"].get("items", [])}
            check(not items or item in items, "%s: %s is not an item of Secret %s" % (name, item,
                                                                                vol["secret"]["secretName"]))
            # the documented `kubectl create secret` makes the keys the volume expects
            created = re.search(r"kubectl create secret generic %s (.*)" % vol["secret"]["secretName"],
                                open(EXAMPLE).read())
            check(created, "no kubectl line creating Secret %s" % vol["secret"]["secretName"])
            keys = {k.split("=")[0] for k in re.findall(r"--from-file=(\S+)", created.group(1))}
            check(items.get(item, item) in keys, "%s: key %s not created by %r" % (name, item, created.group(0)))
            # fsGroup lets the image's user read it; the entrypoint copies keys to 0600
            check(vol["secret"].get("defaultMode", 0o644) & 0o007 == 0 and psc.get("fsGroup") == uid,
                  "secret files readable by others or not by the image's group")
    check("MQSEAL_IDENTITY_KEY_FILE" in env, "the identity comes from the Secret")
    # peers pinned from the ConfigMap, mounted read-only, nothing written there
    peers = [p for p in re.split(r"[\s,]+", env["MQSEAL_PEERS"]) if p]
    check(peers, "no peers")
    m, vol = mount_of(spec, side, env["MQSEAL_PEERS_DIR"])
    check(vol.get("configMap", {}).get("name") == configmap["metadata"]["name"] and m.get("readOnly") is True,
          "MQSEAL_PEERS_DIR is not the ConfigMap, read-only: %r" % vol)
    check(env.get("MQSEAL_PEERS_SHARE") == "false", "a read-only peers directory needs MQSEAL_PEERS_SHARE=false")
    items = {i["path"]: i["key"] for i in vol["configMap"].get("items", [])} or {k: k for k in configmap["data"]}
    for p in peers:
        check(items.get(p + ".pub") in configmap["data"], "peer %s has no %s.pub in the volume" % (p, p))
        check(KEY_LINE.match(configmap["data"][items[p + ".pub"]]), "peer %s: key line" % p)
    # state on a writable volume (the image's MQSEAL_STATE_DIR), and /tmp (read-only root)
    for path in (full["MQSEAL_STATE_DIR"], "/tmp"):
        m, vol = mount_of(spec, side, path)
        check("emptyDir" in vol or "persistentVolumeClaim" in vol, "%s is not writable storage" % path)
        check(not m.get("readOnly"), "%s mounted read-only" % path)
    # probes: /livez and /readyz on the metrics port, which listens where the kubelet reaches it
    port = int(full["MQSEAL_METRICS_PORT"])
    check(port in expose, "the image does not EXPOSE %d" % port)
    ports = {p.get("name"): p["containerPort"] for p in side["ports"]}
    check(port in ports.values(), "containerPort %r, metrics %d" % (ports, port))
    paths = {}
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = side.get(kind)
        check(probe and "httpGet" in probe, "%s missing or not httpGet" % kind)
        p = probe["httpGet"]["port"]
        check((ports.get(p) if isinstance(p, str) else p) == port, "%s port %r is not %d" % (kind, p, port))
        paths[kind] = probe["httpGet"]["path"]
    check(paths == {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"},
          "probe paths %r" % paths)
    check(full.get("MQSEAL_METRICS_HOST") == "0.0.0.0" and full.get("MQSEAL_METRICS_ALLOW_REMOTE") == "true",
          "probes come to the Pod IP: MQSEAL_METRICS_HOST=0.0.0.0 and MQSEAL_METRICS_ALLOW_REMOTE=true")
    # the device talks plain MQTT to the sidecar on the shared loopback, which is where it listens
    listen = full.get("MQSEAL_LISTEN_PORT", "1883")
    check(full.get("MQSEAL_LISTEN_HOST", "127.0.0.1") == "127.0.0.1", "devices must stay on the Pod's loopback")
    cmd = " ".join(device.get("command", []) + device.get("args", []))
    check("-h 127.0.0.1 -p %s " % listen in cmd, "the device does not talk to its sidecar: %s" % cmd)


def materialize(workdir, spec, side, configmap):
    """Lays out the sidecar's volumes under workdir as the kubelet would; returns mountPath -> dir
    and the Secret's identity key."""
    vols = {v["name"]: v for v in spec["volumes"]}
    where, identity = {}, None
    for m in side["volumeMounts"]:
        d = os.path.join(workdir, "mnt", m["mountPath"].strip("/").replace("/", "_"))
        os.makedirs(d)
        where[m["mountPath"]] = d
        vol = vols[m["name"]]
        if "configMap" in vol:
            for i in vol["configMap"]["items"]:
                with open(os.path.join(d, i["path"]), "w") as f:
                    f.write(configmap["data"][i["key"]])
        elif "secret" in vol:
            for i in vol["secret"]["items"]:
                p = os.path.join(d, i["path"])
                if i["key"] == "identity.key":
                    subprocess.run([MQSEAL, "keygen", p], check=True, capture_output=True, timeout=30)
                    identity = p
                else:
                    with open(p, "w") as f:
                        f.write("secret-for-%s\n" % i["key"])
                os.chmod(p, vol["secret"]["defaultMode"])
        else:
            os.chmod(d, 0o700)
    return where, identity


def http_status(port, path):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (HOST, port, path), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def test_entrypoint_runs_the_pod_env(workdir):
    pod, configmap = load()
    spec, side, _device = pod_parts(pod)
    _uid, image_env, _expose = image()
    env = dict(image_env, **resolve_env(side, configmap))
    where, identity = materialize(workdir, spec, side, configmap)
    for name, value in env.items():
        for mount, d in where.items():
            if value == mount or value.startswith(mount + "/"):
                env[name] = d + value[len(mount):]
    # this host: loopback only, free ports, a broker address where nothing answers
    mport = free_port()
    env.update(MQSEAL_BROKER_HOST=HOST, MQSEAL_BROKER_PORT=str(free_port()), MQSEAL_LISTEN_PORT=str(free_port()),
               MQSEAL_METRICS_HOST=HOST, MQSEAL_METRICS_PORT=str(mport), MQSEAL_BIN=MQSEAL)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MQSEAL_")}
    peers_dir = env["MQSEAL_PEERS_DIR"]
    os.chmod(peers_dir, 0o555)  # read-only, as the ConfigMap's mount
    before = sorted(os.listdir(peers_dir))
    node = Proc("gw1", ["bash", ENTRYPOINT], workdir, env=dict(base, **env)).start()
    eventually(lambda: http_status(mport, "/metrics") == 200 or not node.alive(), 20, interval=0.2,
               msg="the sidecar serves metrics")
    check(node.alive(), "the entrypoint failed with the Pod's environment:\n" + node.output()[-3000:])
    check(os.path.samefile(os.readlink("/proc/%d/exe" % node.pid), MQSEAL), "mqseal not exec'd")
    check(sorted(os.listdir(peers_dir)) == before, "the entrypoint wrote into the ConfigMap's directory")
    state = env["MQSEAL_STATE_DIR"]
    key = os.path.join(state, "identity.key")
    check(pubkey(key) == pubkey(identity) and stat.S_IMODE(os.stat(key).st_mode) == 0o600,
          "the identity is the Secret's, mode 0600")
    conf = os.path.join(state, "mqseal.conf")
    r = subprocess.run([MQSEAL, "check", "-c", conf], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "mqseal check: " + r.stderr)
    for p in re.split(r"[\s,]+", configmap["data"]["peers"]):
        want = '{ id = "%s"; public_key = "%s"; }' % (p, configmap["data"][p + ".pub"])
        with open(conf) as f:
            check(want in f.read(), "peer %s not pinned in the configuration" % p)
    with open(conf) as f:
        text = f.read()
    check('password = "secret-for-keyex-password"' in text and 'username = "gw1"' in text, "credentials")
    check("enabled = true" in text and '"debug/#"' in text, "TLS and topics from the Pod's variables")
    node.stop()


if __name__ == "__main__":
    run([test_example_consistent, test_entrypoint_runs_the_pod_env])
