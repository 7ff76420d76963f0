"""The Debian package (issue 16 item 7): `cpack -G DEB` in a tree configured for /usr
(cmake/package.cmake) gives a .deb with the binary, the systemd unit, the man page and the example
configuration (a conffile), Depends computed from the binary, and maintainer scripts that create
the "mqseal" user. Checked without touching the host: dpkg-deb --info/--contents for files, modes and
metadata; `apt-get -s install` for dependencies that resolve on this Debian; a real `dpkg -i` into a
scratch root (dpkg --root, maintainer scripts run chrootless with DPKG_ROOT set) that creates the user
there, then the installed binary runs (--version, and as a node that keys a peer), the installed unit
passes `systemd-analyze verify` (man page found through MANPATH), and `dpkg -r` / `dpkg -P` remove
the files but keep the conffile until purge."""
# ctest-labels: package
# ctest-timeout: 900
import atexit
import functools
import glob
import os
import re
import shutil
import subprocess
import tempfile

from harness import HOST, MQSEAL, SRC, Broker, Node, check, eventually, run

UNIT = "/usr/lib/systemd/system/mqseal.service"
EXAMPLE = "/etc/mqseal/mqseal.conf.example"
FILES = {"/usr/bin/mqseal": 0o755, UNIT: 0o644, EXAMPLE: 0o644, "/usr/share/man/man1/mqseal.1": 0o644,
         "/usr/share/doc/mqseal/OPERATIONS.md": 0o644, "/usr/share/doc/mqseal/PROTOCOL.md": 0o644}


def tool(name, package):
    exe = shutil.which(name)
    check(exe, "%s not installed (Debian package %s, scripts/deps.sh)" % (name, package))
    return exe


def sh(argv, timeout=300, env=None, ok=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if ok:
        check(r.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(argv), r.returncode, r.stdout[-2000:],
                                                         r.stderr[-3000:]))
    return r


@functools.lru_cache(maxsize=None)
def deb():
    """Configures a fresh tree for /usr, builds it and runs cpack -G DEB once; returns the .deb."""
    tool("cpack", "cmake")
    tool("dpkg-shlibdeps", "dpkg-dev")
    top = tempfile.mkdtemp(prefix="mqseal-deb-")
    atexit.register(shutil.rmtree, top, True)
    build = os.path.join(top, "build")
    sh(["cmake", "-S", SRC, "-B", build, "-DCMAKE_INSTALL_PREFIX=/usr", "-DCMAKE_BUILD_TYPE=Release",
        "-DMQSEAL_TESTS=OFF", "-DMQSEAL_BENCH=OFF"])
    sh(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)], timeout=800)
    r = subprocess.run(["cpack", "-G", "DEB"], cwd=build, capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "cpack failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    debs = glob.glob(os.path.join(build, "mqseal_*.deb"))
    check(len(debs) == 1, "cpack made %r" % debs)
    return debs[0]


def field(info, name):
    m = re.search(r"^ ?%s: (.*)$" % name, info, re.M)
    return m.group(1) if m else None


def test_deb_metadata_and_contents(workdir):
    path = deb()
    info = sh(["dpkg-deb", "--info", path]).stdout
    version = sh([MQSEAL, "--version"]).stdout.split()[1]
    check(field(info, "Package") == "mqseal" and field(info, "Version") == version,
          "package/version (binary says %s):\n%s" % (version, info))
    check(os.path.basename(path) == "mqseal_%s_%s.deb" % (version, field(info, "Architecture")), path)
    depends = field(info, "Depends") or ""
    for lib in ("libssl3", "libevent-core-2.1-7", "libevent-openssl-2.1-7", "libconfig9", "libmosquitto1",
                "libc6", "passwd"):
        check(re.search(r"(^|, )%s( \(|,|$)" % re.escape(lib), depends), "Depends lacks %s: %s" % (lib, depends))
    # files and modes, all owned by root
    listing = sh(["dpkg-deb", "--contents", path]).stdout
    entries = {}
    for line in listing.splitlines():
        mode, owner, _size, _date, _time, name = line.split(None, 5)
        entries[name[1:].rstrip("/") or "/"] = (mode, owner)
    for name, mode in FILES.items():
        check(name in entries, "%s not in the package:\n%s" % (name, listing))
        want = "-" + "".join(c if mode & (0o400 >> i) else "-" for i, c in enumerate("rwxrwxrwx"))
        check(entries[name] == (want, "root/root"), "%s: %r, expected %s root/root" % (name, entries[name], want))
    check("/etc/mqseal/mqseal.conf" not in entries, "a live configuration is packaged")
    files = {n for n, (m, _) in entries.items() if not m.startswith("d")}
    check(files == set(FILES), "unexpected files: %r" % sorted(files - set(FILES)))
    # control members: the example is a conffile; the maintainer scripts are executable
    ctl = os.path.join(workdir, "control")
    sh(["dpkg-deb", "--control", path, ctl])
    with open(os.path.join(ctl, "conffiles")) as f:
        check(f.read().split() == [EXAMPLE], "conffiles")
    for script in ("postinst", "prerm", "postrm"):
        p = os.path.join(ctl, script)
        check(os.access(p, os.X_OK), "%s not executable" % script)
        sh(["sh", "-n", p])
    # it installs on this system as it is: every dependency resolves (simulation, nothing changes)
    r = sh(["apt-get", "-s", "install", path])
    check(re.search(r"^Inst mqseal ", r.stdout, re.M) and not re.search(r"^Inst (?!mqseal )", r.stdout, re.M),
          "apt-get -s install wants more than mqseal:\n" + r.stdout[-2000:])


def scratch_root(workdir):
    """An empty dpkg database and just enough /etc for useradd --prefix."""
    root = os.path.join(workdir, "root")
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
    for name in ("passwd", "group", "shadow", "gshadow"):
        with open(os.path.join(root, "etc", name), "w") as f:
            f.write({"passwd": "root:x:0:0:root:/root:/bin/sh\n", "group": "root:x:0:\n",
                     "shadow": "root:*:19000:0:99999:7:::\n", "gshadow": "root:*::\n"}[name])
    return root


def dpkg(root, *args):
    # chrootless: the maintainer scripts run with DPKG_ROOT=root; --force-depends: the scratch
    # root's database is empty (dependencies are checked against this system above).
    return sh(["dpkg", "--root=" + root, "--force-script-chrootless", "--force-depends",
               "--force-not-root"] + list(args))


def unit_commands(unit_text):
    """Absolute program paths of the unit's Exec*= lines."""
    progs = []
    for m in re.finditer(r"^Exec\w+=(.*)$", unit_text, re.M):
        argv0 = m.group(1).split()[0].lstrip("-@:+!|")
        if argv0.startswith("/"):
            progs.append(argv0)
    return progs


def verify_unit(root):
    """systemd-analyze verify on the installed unit, inside root: the targets it orders against
    and the host tools it calls (kill) are copied in; the binary and the man page are the package's."""
    exe = tool("systemd-analyze", "systemd")
    tool("man", "man-db")
    unitdir = os.path.join(root, "usr/lib/systemd/system")
    for target in glob.glob("/usr/lib/systemd/system/*.target"):
        shutil.copy(target, unitdir)
    if not os.path.exists(os.path.join(root, "bin")):
        os.symlink("usr/bin", os.path.join(root, "bin"))  # usrmerge, as on Debian 12
    with open(root + UNIT) as f:
        text = f.read()
    for prog in unit_commands(text):
        if not os.path.exists(root + prog):
            host = shutil.which(os.path.basename(prog)) or prog
            check(os.path.exists(host), "the unit runs %s, which this host lacks" % prog)
            os.makedirs(os.path.dirname(root + prog), exist_ok=True)
            shutil.copy(host, root + prog)
    env = dict(os.environ, MANPATH=os.path.join(root, "usr/share/man"), SYSTEMD_LOG_LEVEL="notice")
    r = sh([exe, "verify", "--root=" + root, UNIT], env=env, ok=False)
    check(r.returncode == 0 and r.stderr.strip() == "", "systemd-analyze verify:\n" + r.stdout + r.stderr)
    return text


def test_deb_installs_runs_and_removes(workdir):
    path = deb()
    root = scratch_root(workdir)
    dpkg(root, "-i", path)
    status = sh(["dpkg", "--root=" + root, "-s", "mqseal"]).stdout
    check("Status: install ok installed" in status, status)
    for name, mode in FILES.items():
        st = os.stat(root + name)
        check(st.st_mode & 0o7777 == mode, "%s mode %o" % (name, st.st_mode & 0o7777))
    # postinst made the system user the unit runs as, in the root's /etc only
    with open(os.path.join(root, "etc/passwd")) as f:
        users = {line.split(":")[0]: line.strip().split(":") for line in f}
    check("mqseal" in users, "postinst did not create the user: %r" % sorted(users))
    u = users["mqseal"]
    check(int(u[2]) < 1000 and u[5] == "/var/lib/mqseal" and u[6] == "/usr/sbin/nologin", "user %r" % u)
    with open(os.path.join(root, "etc/group")) as f:
        check(any(line.startswith("mqseal:") for line in f), "no group mqseal")
    text = verify_unit(root)
    check(re.search(r"^User=mqseal$", text, re.M), "the unit's user is the one postinst creates")
    check(re.search(r"^ExecStart=/usr/bin/mqseal -c /etc/mqseal/mqseal\.conf$", text, re.M), "ExecStart")
    # the installed binary runs: --version, and as a node that keys a peer
    binary = root + "/usr/bin/mqseal"
    out = sh([binary, "--version"]).stdout
    check(out.startswith("mqseal "), out)
    broker = Broker(workdir).start()
    peer = Node(workdir, "peer", broker.port)
    node = Node(workdir, "pkg", broker.port, peers=[peer])
    node.argv = [binary, "-c", node.conf_path]
    peer.trust(node)
    peer.start()
    node.start()
    eventually(lambda: node.metric("mqseal_peers_keyed") == 1, 20, msg="the packaged binary keyed its peer")
    check(os.path.samefile(os.readlink("/proc/%d/exe" % node.pid), binary), "not the packaged binary")
    node.stop()
    # a local edit of the conffile survives removal; purge takes it
    with open(root + EXAMPLE, "a") as f:
        f.write("# local edit\n")
    dpkg(root, "-r", "mqseal")
    check(not os.path.exists(root + "/usr/bin/mqseal") and not os.path.exists(root + UNIT), "files left by -r")
    check(os.path.exists(root + EXAMPLE), "dpkg -r removed the conffile")
    dpkg(root, "-P", "mqseal")
    check(not os.path.exists(root + EXAMPLE), "dpkg -P kept the conffile")
    with open(os.path.join(root, "etc/passwd")) as f:
        check("mqseal:" in f.read(), "the user is kept (files it owns may remain)")


if __name__ == "__main__":
    run([test_deb_metadata_and_contents, test_deb_installs_runs_and_removes])
