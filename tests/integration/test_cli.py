"""The command line, as docs/mqseal.1 and docs/OPERATIONS.md describe it (issue 6): --help lists
every subcommand and option main.c accepts; --version; exit codes (0 ok, 1 runtime failure, 2
usage or configuration error, with every "FILE:LINE: option: problem" at once); keygen (mode
0600, never overwrites), pubkey (the same line); check (the effective configuration, password
masked, itself a valid configuration); a world-readable identity key refused at start; -v/-q and
the text/JSON log formats; `cmake --install` into a DESTDIR puts the files where the docs say."""
# ctest-labels: ops
# ctest-timeout: 900
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

from harness import HOST, MQSEAL, SRC, Broker, Node, check, eventually, keygen, port_open, run, write_conf

PUBKEY_RE = re.compile(r"^ed25519:[A-Za-z0-9+/]{43}=$")


def mq(*args, timeout=30, **kw):
    return subprocess.run([MQSEAL] + list(args), capture_output=True, text=True, timeout=timeout, **kw)


def read(path):
    with open(os.path.join(SRC, path)) as f:
        return f.read()


def main_c_interface():
    """What proxy/main.c accepts: {long option: short letter}, the getopt string, the subcommands."""
    src = read("proxy/main.c")
    longopts = dict(re.findall(r'\{"([a-z-]+)",\s*\w+,\s*NULL,\s*\'(\w)\'\}', src))
    shorts = re.search(r'getopt_long\([^"]*"([^"]+)"', src).group(1)
    subcommands = set(re.findall(r'strcmp\(argv\[1\], "(\w+)"\)', src))
    check(longopts and subcommands, "could not read the interface of proxy/main.c")
    return longopts, shorts, subcommands


def minimal_conf(workdir, name="n", broker_port=2, **extra):
    """A valid configuration (with its identity key) in workdir; returns its path."""
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    key = os.path.join(d, "identity.key")
    if not os.path.exists(key):
        keygen(key)
    conf = {"node_id": name, "state_dir": d, "identity_file": key,
            "listen": {"host": HOST, "port": 1}, "broker": {"host": HOST, "port": broker_port},
            "metrics": {"enabled": False}}
    conf.update(extra)
    path = os.path.join(d, "mqseal.conf")
    write_conf(path, conf)
    return path


# ---------------------------------------------------------------- help, version, usage errors

def test_help_lists_every_subcommand_and_option(workdir):
    longopts, shorts, subcommands = main_c_interface()
    out = mq("--help")
    check(out.returncode == 0 and out.stderr == "", "--help: exit %d, stderr %r" % (out.returncode, out.stderr))
    check(mq("-h").stdout == out.stdout, "-h prints the same help")
    help_text = out.stdout
    for sub in subcommands:
        check(re.search(r"^\s+mqseal %s\b" % sub, help_text, re.M), "--help shows the %s form" % sub)
    listed = dict((lng, sht) for sht, lng in re.findall(r"^\s+-(\w), --([a-z-]+)", help_text, re.M))
    check(listed == longopts, "--help options %r == main.c's %r" % (listed, longopts))
    for letter in longopts.values():
        check(letter in shorts, "-%s is in the getopt string %r" % (letter, shorts))
    check(set(shorts.replace(":", "").replace("+", "")) == set(longopts.values()), "every short option has a long one")
    check(re.search(r"exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error", help_text),
          "--help states the exit codes")
    # The manual page and OPERATIONS.md document the same interface.
    man = read("docs/mqseal.1").replace("\\-", "-")
    ops = read("docs/OPERATIONS.md")
    for lng, sht in longopts.items():
        for doc, name in ((man, "mqseal.1"), (ops, "OPERATIONS.md")):
            check("--" + lng in doc and "-" + sht in doc, "%s documents -%s/--%s" % (name, sht, lng))
    for sub in subcommands:
        check(re.search(r"^\.B %s$" % sub, man, re.M), "mqseal.1 SYNOPSIS has %s" % sub)
        check("mqseal %s" % sub in ops, "OPERATIONS.md documents %s" % sub)


def test_version(workdir):
    want = re.search(r"project\(mqseal VERSION ([0-9.]+)", read("CMakeLists.txt")).group(1)
    for flag in ("--version", "-V"):
        out = mq(flag)
        check(out.returncode == 0, "%s exits 0" % flag)
        check(out.stdout == "mqseal %s\n" % want, "%s prints %r" % (flag, out.stdout))
    check('"mqseal %s"' % want in read("docs/mqseal.1"), "mqseal.1 .TH names version %s" % want)


def test_usage_errors_exit_2(workdir):
    conf = minimal_conf(workdir)
    # Each error says which argument and what is wrong (issue 16 item 6), not getopt's words.
    cases = [
        ([], "missing -c FILE"),
        (["--bogus"], "unknown option --bogus\n"),
        (["--confg", conf], "unknown option --confg; did you mean --config?"),
        (["--verbsoe"], "unknown option --verbsoe; did you mean --verbose?"),
        (["-x"], "unknown option -x"),
        (["-c"], "option -c needs an argument (-c FILE)"),
        (["--config"], "option --config needs an argument (--config FILE)"),
        (["-c", conf, "extra"], "unexpected argument 'extra'"),
        (["chek", "-c", conf], "unknown command 'chek'; did you mean check?"),
        (["frobnicate"], "unknown command 'frobnicate'\n"),
        (["check"], "check needs -c FILE"),
        (["check", "-v"], "check needs -c FILE"),
        (["check", "-c"], "option -c needs an argument"),
        (["check", "-c", conf, "x"], "unexpected argument 'x' (check takes -c FILE)"),
        (["keygen"], "keygen needs a FILE (or - for standard output)"),
        (["keygen", "a", "b"], "unexpected argument 'b' (keygen takes one FILE)"),
        (["keygen", "a", "--help"], "unexpected argument '--help' (keygen takes one FILE)"),
        (["keygen", "--bogus"], "unknown option --bogus"),
        (["keygen", "-c", conf, "k"], "keygen takes no -c, -v or -q"),
        (["pubkey", "a", "b"], "unexpected argument 'b' (pubkey takes one FILE)"),
    ]
    for args, msg in cases:
        out = mq(*args, cwd=workdir)
        check(out.returncode == 2, "%r: exit %d, expected 2" % (args, out.returncode))
        check("mqseal: " + msg in out.stderr, "%r: stderr names the problem: %r" % (args, out.stderr[:200]))
        check("usage: mqseal" in out.stderr and out.stdout == "", "%r: usage on stderr only" % (args,))


# ---------------------------------------------------------------- documentation of the options

def test_operations_md_documents_every_option(workdir):
    """Section 5 of OPERATIONS.md has one row per option of conf/conf_table.c, with its default."""
    table = read("conf/conf_table.c")
    options = re.findall(r'^\s*\{"([a-z_.]+)", CONF_(\w+)(.*)$', table, re.M)
    check(len(options) > 30, "read the key table of conf/conf_table.c")
    ops = read("docs/OPERATIONS.md")
    section = ops.split("## 5. Configuration", 1)[1].split("\n## ", 1)[0]
    rows = dict((name, cells) for name, cells in re.findall(r"^\| `([a-z_.]+)` \| (.*)$", section, re.M))
    check(set(rows) == set(o[0] for o in options), "documented %r, in the table %r" % (
        sorted(set(rows) ^ set(o[0] for o in options)), "(symmetric difference)"))
    for name, ctype, rest in options:
        default = rows[name].split(" | ")[0]
        if ".required = true" in rest:
            check(default == "required", "%s is documented as required" % name)
        m = re.search(r"\.idef = (\d+)", rest)
        if m and ctype == "INT":
            check(re.match(r"^%s\b" % m.group(1), default),
                  "%s default %s, documented %r" % (name, m.group(1), default))
        if m and ctype == "BOOL":
            check(default == ("true" if m.group(1) == "1" else "false"), "%s default %r" % (name, default))
        m = re.search(r'CONF_(?:STRING|ENUM), "([^"]+)"', "CONF_%s%s" % (ctype, rest))
        if m:
            check(default == "`%s`" % m.group(1), "%s default %r, documented %r" % (name, m.group(1), default))
        check(rows[name].rstrip(" |").split(" | ")[-1].split(" ")[0] in ("reload", "restart"),
              "%s: SIGHUP column" % name)


# ---------------------------------------------------------------- configuration errors

def test_config_errors_all_at_once_exit_2(workdir):
    d = os.path.join(workdir, "bad")
    os.makedirs(d)
    key = os.path.join(d, "identity.key")
    keygen(key)
    path = os.path.join(d, "bad.conf")
    with open(path, "w") as f:
        f.write('node_id = "a b";\n'                          # 1
                'state_dir = "%s";\n'                         # 2
                'identity_file = "%s";\n'                     # 3
                'listen = { port = 0; bogus = 1; };\n'        # 4
                'log = { level = "loud"; };\n'                # 5
                'keyex = { interval_seconds = 30; };\n'       # 6: a warning, not an error
                'broker = { host = "127.0.0.1"; port = 2; };\n'
                % (d, key))
    want = [(1, "node_id"), (4, "listen.port"), (4, "listen.bogus"), (5, "log.level")]
    for form in (["check", "-c", path], ["-c", path]):
        out = mq(*form)
        check(out.returncode == 2, "%r: exit %d, expected 2" % (form, out.returncode))
        errors = [ln for ln in out.stderr.splitlines() if not ln.startswith("warning: ")]
        for line, option in want:
            prefix = "%s:%d: %s: " % (path, line, option)
            check(any(e.startswith(prefix) for e in errors), "%r: a line %r in %r" % (form, prefix, errors))
        check(len(errors) == len(want), "%r: exactly the %d problems, got %r" % (form, len(want), errors))
        if form[0] == "-c":  # (check prints warnings only for a file without errors, below)
            check(any(w.startswith("warning: %s:6: keyex.interval_seconds: " % path)
                      for w in out.stderr.splitlines()), "%r: the warning is printed too" % (form,))
        check(out.stdout == "", "%r: nothing on stdout" % (form,))
    # Warnings alone do not fail.
    with open(path, "w") as f:
        f.write('node_id = "a";\nstate_dir = "%s";\nbroker = { host = "127.0.0.1"; port = 2; };\n'
                'keyex = { interval_seconds = 30; grace_seconds = 60; };\n' % d)
    for form in (["check", "-c", path],):
        out = mq(*form)
        warnings = [w for w in out.stderr.splitlines() if w.startswith("warning: %s:4: keyex." % path)]
        check(out.returncode == 0 and len(warnings) == 2, "%r: exit %d, warnings %r" % (form, out.returncode,
                                                                                       out.stderr))
    # Problems without a line (options left at their defaults) and files that cannot be read.
    path2 = os.path.join(d, "req.conf")
    with open(path2, "w") as f:
        f.write('state_dir = "%s";\nbroker = { port = 1; };\n' % d)
    out = mq("check", "-c", path2)
    check(out.returncode == 2 and "%s: node_id: required option is missing" % path2 in out.stderr,
          "missing node_id: %r" % out.stderr)
    out = mq("check", "-c", os.path.join(d, "missing.conf"))
    check(out.returncode == 2 and "missing.conf" in out.stderr, "an unreadable file is exit 2: %r" % out.stderr)
    with open(path2, "w") as f:
        f.write('node_id = "a";\nlisten = { port = 5\n')
    out = mq("-c", path2)
    check(out.returncode == 2 and re.search(r"^%s:\d+: " % re.escape(path2), out.stderr, re.M),
          "a syntax error is FILE:LINE: and exit 2: %r" % out.stderr)


# ---------------------------------------------------------------- keygen, pubkey

def test_keygen_and_pubkey(workdir):
    key = os.path.join(workdir, "id.key")
    # Whatever the umask, the key is 0600.
    out = mq("keygen", key, preexec_fn=lambda: os.umask(0))
    check(out.returncode == 0, "keygen exit %d: %s" % (out.returncode, out.stderr))
    line = out.stdout.strip()
    check(PUBKEY_RE.match(line) and out.stdout == line + "\n", "keygen prints one public key line: %r" % out.stdout)
    st = os.stat(key)
    check(stat.S_IMODE(st.st_mode) == 0o600, "key mode %o, expected 600" % stat.S_IMODE(st.st_mode))
    with open(key, "rb") as f:
        pem = f.read()
    check(pem.startswith(b"-----BEGIN PRIVATE KEY-----\n"), "PKCS#8 PEM")
    # pubkey prints the same line, also for a key whose mode was loosened.
    for mode in (0o600, 0o644):
        os.chmod(key, mode)
        out = mq("pubkey", key)
        check(out.returncode == 0 and out.stdout == line + "\n", "pubkey (mode %o) prints %r: %r" % (
            mode, line, out.stdout))
    os.chmod(key, 0o600)
    # Never overwritten: exit 1, the file keeps its bytes.
    out = mq("keygen", key)
    check(out.returncode == 1, "keygen onto an existing file: exit %d, expected 1" % out.returncode)
    check("already exists" in out.stderr and out.stdout == "", "says why: %r" % out.stderr)
    with open(key, "rb") as f:
        check(f.read() == pem, "the existing key is unchanged")
    # Nor through a symbolic link (dangling or not).
    target = os.path.join(workdir, "target")
    link = os.path.join(workdir, "link.key")
    os.symlink(target, link)
    out = mq("keygen", link)
    check(out.returncode == 1 and not os.path.exists(target), "keygen does not follow a symlink")
    # Each key is new.
    other = os.path.join(workdir, "other.key")
    check(keygen(other) != line, "two keygens, two keys")
    # Runtime failures are exit 1.
    notkey = os.path.join(workdir, "notkey")
    with open(notkey, "w") as f:
        f.write("hello\n")
    for args in (["pubkey", notkey], ["pubkey", os.path.join(workdir, "absent")],
                 ["keygen", os.path.join(workdir, "no", "such", "dir", "k")]):
        out = mq(*args)
        check(out.returncode == 1 and out.stdout == "" and out.stderr.startswith("mqseal: "),
              "%r: exit %d (expected 1), %r" % (args, out.returncode, out.stderr))


def test_keygen_options_first_and_stdout(workdir):
    """Options come before FILE (issue 16 item 6): `keygen --help` prints help and writes no file named
    --help; `keygen -` writes the private key to stdout (the public line to stderr); `pubkey` with -
    or no FILE reads a key on stdin; `mqseal keygen - | mqseal pubkey` prints the public line."""
    before = set(os.listdir(workdir))
    for args in (["keygen", "--help"], ["keygen", "-h"], ["pubkey", "--help"]):
        out = mq(*args, cwd=workdir)
        check(out.returncode == 0 and out.stdout.startswith("usage: mqseal") and out.stderr == "",
              "%r prints the help: exit %d %r" % (args, out.returncode, out.stderr))
    out = mq("keygen", "k", "--help", cwd=workdir)
    check(out.returncode == 2, "keygen FILE --help: --help is an extra argument (exit %d)" % out.returncode)
    check(set(os.listdir(workdir)) == before, "no file written: %r" % sorted(set(os.listdir(workdir)) - before))
    # keygen -: the key on stdout, nothing on disk.
    out = subprocess.run([MQSEAL, "keygen", "-"], capture_output=True, timeout=30, cwd=workdir)
    check(out.returncode == 0, "keygen - exit %d: %r" % (out.returncode, out.stderr))
    check(out.stdout.startswith(b"-----BEGIN PRIVATE KEY-----\n") and out.stdout.endswith(b"-----END PRIVATE KEY-----\n"),
          "keygen - writes the PEM key to stdout: %r" % out.stdout[:40])
    line = out.stderr.decode().strip()
    check(PUBKEY_RE.match(line), "keygen - prints the public line on stderr: %r" % out.stderr)
    check(set(os.listdir(workdir)) == before, "no file named - (or any other)")
    # pubkey reads it back from stdin, with - or without a FILE.
    for args in (["pubkey"], ["pubkey", "-"]):
        got = subprocess.run([MQSEAL] + args, input=out.stdout, capture_output=True, timeout=30)
        check(got.returncode == 0 and got.stdout.decode() == line + "\n", "%r on stdin: %r %r" % (
            args, got.stdout, got.stderr))
    got = subprocess.run([MQSEAL, "pubkey"], input=b"not a key\n", capture_output=True, timeout=30)
    check(got.returncode == 1 and b"standard input: not an Ed25519 identity key" in got.stderr, "garbage: %r" % (
        got.stderr,))
    # The pipe form, through a shell.
    sh = subprocess.run("'%s' keygen - 2>/dev/null | '%s' pubkey" % (MQSEAL, MQSEAL), shell=True,
                        capture_output=True, text=True, timeout=30, cwd=workdir)
    check(sh.returncode == 0 and PUBKEY_RE.match(sh.stdout.strip()), "keygen - | pubkey: %r %r" % (
        sh.stdout, sh.stderr))
    # Never to a terminal (the key would stay in the scrollback).
    master, slave = os.openpty()
    try:
        tty = subprocess.run([MQSEAL, "keygen", "-"], stdout=slave, stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    try:
        leaked = os.read(master, 4096)
    except OSError:
        leaked = b""
    os.close(master)
    check(tty.returncode == 1 and b"standard output is a terminal" in tty.stderr and b"PRIVATE" not in leaked,
          "keygen - to a terminal refused: %d %r" % (tty.returncode, tty.stderr))
    # A file whose name starts with '-' after "--".
    out = mq("keygen", "--", "-odd.key", cwd=workdir)
    check(out.returncode == 0 and os.path.exists(os.path.join(workdir, "-odd.key")), "keygen -- -odd.key")


def bad_conf(workdir, text, name="bad.conf"):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_config_errors_say_what_and_where(workdir):
    """libconfig's "syntax error" and "duplicate setting name" rewritten as FILE:LINE: what, near what;
    unknown options with the nearest known one."""
    cases = [
        ('node_id = "a";\nnode_id = "b";\n', 2, "syntax error: node_id is set twice (first at line 1), "
         "near 'node_id = \"b\";'"),
        ('node_id = "a";\npeers = (\n  { id = "b"; public_key = "x"; }\n  { id = "c"; public_key = "y"; }\n);\n', 4,
         "syntax error: a ',' is missing between two elements of the list opened at line 2, near "
         "'{ id = \"c\"; public_key = \"y\"; }'"),
        ('node_id = "a";\nlisten = { port = 5\n', 3,
         "syntax error: the file ends inside the '{' opened at line 2 (is a '}' missing?), at the end of the file"),
        ('node_id = "a;\nstate_dir = "/x";\n', 1,
         "syntax error: a string runs on past the end of this line (is a closing \" missing?), near 'node_id = \"a;'"),
        ('node_id = "a";\nlisten = { prot = 5; };\n', 2, "listen.prot: unknown option; did you mean listen.port?"),
        ('node_id = "a";\nbrocker = { host = "h"; };\n', 2, "brocker: unknown option; did you mean broker?"),
    ]
    for text, line, msg in cases:
        path = bad_conf(workdir, text)
        out = mq("check", "-c", path)
        want = "%s:%d: %s" % (path, line, msg)
        check(out.returncode == 2 and want in out.stderr.splitlines(), "wanted %r in %r" % (want, out.stderr))
        check("syntax error: syntax error" not in out.stderr, "not libconfig's own words")


def test_check_verifies_what_start_needs(workdir):
    """`mqseal check` refuses what start would refuse or get wrong: a missing identity (with the keygen
    command), this node's own key listed as a peer's, a state_dir the configured user cannot reach;
    and warns about an empty peer list."""
    d = os.path.join(workdir, "n")
    os.makedirs(d)
    key = os.path.join(d, "identity.key")
    base = {"node_id": "n", "state_dir": d, "identity_file": key,
            "listen": {"host": HOST, "port": 1}, "broker": {"host": HOST, "port": 2}, "metrics": {"enabled": False}}
    path = os.path.join(d, "mqseal.conf")
    write_conf(path, base)
    out = mq("check", "-c", path)
    check(out.returncode == 2 and "No such file or directory; create it with: mqseal keygen %s" % key in out.stderr,
          "missing identity: the keygen command: %r" % out.stderr)
    own = keygen(key)
    # No peers: a warning, still OK.
    out = mq("check", "-c", path)
    check(out.returncode == 0 and re.search(r"^warning: %s: peers: none listed" % re.escape(path), out.stderr, re.M),
          "empty peer list warned: %r" % out.stderr)
    # Our own key as a peer's.
    other = keygen(os.path.join(d, "other.key"))
    write_conf(path, dict(base, peers=[{"id": "b", "public_key": other}, {"id": "c", "public_key": own}]))
    out = mq("check", "-c", path)
    check(out.returncode == 2 and re.search(r"^%s:\d+: peers.public_key: peer c is listed with this node's own "
                                            r"public key" % re.escape(path), out.stderr, re.M),
          "own key as a peer's refused: %r" % out.stderr)
    check("peer b" not in out.stderr and "warning: %s: peers" % path not in out.stderr, "only c is named")
    if os.geteuid() != 0:
        print("  not root: the `user` case needs root")
        return
    # state_dir below a directory the configured user cannot enter: start would bind, hand state_dir
    # to the user and then fail to write its epoch record.
    locked = os.path.join(workdir, "locked")
    os.makedirs(os.path.join(locked, "state"))
    os.chmod(locked, 0o700)
    os.chmod(workdir, 0o711)
    write_conf(path, dict(base, state_dir=os.path.join(locked, "state"), user="nobody",
                          peers=[{"id": "b", "public_key": other}]))
    out = mq("check", "-c", path)
    check(out.returncode == 2 and "state_dir: user nobody (uid %d) cannot reach %s/state: %s is not searchable" % (
        pwd.getpwnam("nobody").pw_uid, locked, locked) in out.stderr, "state_dir unreachable: %r" % out.stderr)
    os.chmod(locked, 0o711)
    out = mq("check", "-c", path)
    check(out.returncode == 0, "reachable: OK: %r" % out.stderr)
    write_conf(path, dict(base, user="no-such-user-x", peers=[{"id": "b", "public_key": other}]))
    out = mq("check", "-c", path)
    check(out.returncode == 2 and "user: no-such-user-x: no such user" in out.stderr, "unknown user: %r" % out.stderr)


# ---------------------------------------------------------------- check

def test_check_prints_effective_configuration(workdir):
    peer = keygen(os.path.join(workdir, "peer.key"))
    secret = "s3cret-Pa55word"
    path = minimal_conf(workdir, "gw", keyex={"username": "gw", "password": secret},
                       peers=[{"id": "other", "public_key": peer}], topics={"plaintext": ["plain/#"]})
    out = mq("check", "-c", path)
    check(out.returncode == 0, "check exit %d: %s" % (out.returncode, out.stderr))
    check(out.stderr.strip().endswith("%s: configuration OK" % path), "OK on stderr: %r" % out.stderr)
    dump = out.stdout
    check(secret not in dump and secret not in out.stderr, "the password is never printed")
    check(re.search(r'^\s*password = "\*+";$', dump, re.M), "the password is masked")
    check(re.search(r'^\s*username = "gw";$', dump, re.M), "the user name is shown")
    for line in ("max_connections = 1024;", "interval_seconds = 3600;", "padding = 16;",
                 "shutdown_grace_seconds = 5;", 'format = "text";', '"plain/#"', peer):
        check(line in dump, "effective configuration has %r (defaults filled in)" % line)
    # The dump is itself a valid configuration with the same effective values.
    again = os.path.join(workdir, "gw", "dumped.conf")
    with open(again, "w") as f:
        f.write(dump)
    out2 = mq("check", "-c", again)
    check(out2.returncode == 0 and out2.stdout == dump, "check of the dump gives the same dump")
    # check is read-only: no state file, nothing bound.
    check(not os.path.exists(os.path.join(workdir, "gw", "state")), "check writes no state")


def test_world_readable_identity_key_refused(workdir):
    broker = Broker(workdir).start()
    node = Node(workdir, "a", broker.port)
    for mode in (0o644, 0o640, 0o604):
        os.chmod(node.identity, mode)
        node.start(wait=False)
        rc = node.p.wait(20)
        log = node.output()
        check(rc == 2, "mode %o: exit %d, expected 2" % (mode, rc))
        # (conf/ shortens long paths in messages, so the test looks for the rest of the line.)
        want = re.compile(r"^%s:3: identity_file: .* is mode %04o; run chmod 600 " % (re.escape(node.conf_path), mode),
                          re.M)
        check(want.search(log), "mode %o: clear message %r in %r" % (mode, want.pattern, log[-500:]))
        check(not port_open(node.port), "nothing listens")
        out = mq("check", "-c", node.conf_path)
        check(out.returncode == 2 and want.search(out.stderr), "check refuses it too")
        node.stop()
        os.truncate(node.log_path, 0)
    os.chmod(node.identity, 0o400)
    node.start()
    check(node.alive(), "mode 0400 is accepted")


# ---------------------------------------------------------------- resource limits, privileges

def with_nofile(node, soft, hard):
    """Runs node's mqseal with RLIMIT_NOFILE soft/hard set in the child (as a shell's ulimit would)."""
    code = "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d)); " \
           "os.execv(sys.argv[1], sys.argv[1:])" % (soft, hard)
    node.argv = [sys.executable, "-c", code] + node.argv


def proc_limit_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        m = re.search(r"^Max open files\s+(\d+)\s+(\d+)", f.read(), re.M)
    return int(m.group(1)), int(m.group(2))


def test_fd_limit_checked_at_start(workdir):
    broker = Broker(workdir).start()
    conf = {"listen": {"max_connections": 1000}}  # needs 2 x 1000 + 64 (metrics) + 64 = 2128 descriptors
    low = Node(workdir, "low", broker.port, conf=conf)
    with_nofile(low, 256, 256)
    low.start(wait=False)
    rc = low.p.wait(20)
    check(rc == 1, "a limit below the need is exit 1, got %r" % rc)
    want = ("listen.max_connections = 1000 and metrics.max_connections = 64 need 2128 file descriptors, but "
            "the limit is 256 (hard 256): raise it (ulimit -n, systemd LimitNOFILE=) or lower "
            "listen.max_connections")
    check(want in low.output(), "clear message: %r" % low.output()[-600:])
    check(not port_open(low.port), "nothing listens")
    # A soft limit below the need, a hard one above: raised to what is needed.
    raised = Node(workdir, "raised", broker.port, conf=conf)
    with_nofile(raised, 256, 4096)
    raised.start()
    check(proc_limit_nofile(raised.pid) == (2128, 4096), "soft limit raised: %r" % (proc_limit_nofile(raised.pid),))


def test_user_option_drops_root(workdir):
    """Needs the `user` option: started as root, the node binds, then runs as that user."""
    if os.geteuid() != 0:
        print("  not root: nothing to drop (covered when the tests run as root)")
        return
    nobody = pwd.getpwnam("nobody")
    os.chmod(workdir, 0o711)  # the user must reach its state_dir
    broker = Broker(workdir).start()
    a = Node(workdir, "a", broker.port, conf={"user": "nobody"})
    a.start()
    eventually(lambda: metric(a, "mqseal_epoch"), 10, msg="first epoch after dropping root")
    with open("/proc/%d/status" % a.pid) as f:
        status = f.read()
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
    gids = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()
    groups = re.search(r"^Groups:(.*)$", status, re.M).group(1).split()
    check(uids == [str(nobody.pw_uid)] * 4, "real, effective, saved and fs uid are nobody's: %r" % uids)
    check(gids == [str(nobody.pw_gid)] * 4 and groups == [], "gids %r, groups %r" % (gids, groups))
    check("running as user nobody (uid %d)" % nobody.pw_uid in a.output(), "logged")
    check(os.stat(a.dir).st_uid == nobody.pw_uid, "state_dir handed to the user")
    state = os.path.join(a.dir, "state")
    check(os.path.exists(state) and os.stat(state).st_uid == nobody.pw_uid, "the user writes the state file")
    # Not dumpable (no core dumps, no ptrace): /proc/PID then belongs to root, not to the process's user.
    check(os.stat("/proc/%d/status" % a.pid).st_uid == 0, "the process is not dumpable")
    check(healthy_after_hup(a), "a reload still works as the user")
    rc = a.stop()
    check(rc == 0, "stops cleanly as the user: %r" % rc)
    # An unknown user: exit 1, nothing left listening.
    b = Node(workdir, "b", broker.port, conf={"user": "no-such-user-x"})
    b.start(wait=False)
    check(b.p.wait(20) == 1 and "user no-such-user-x: no such user" in b.output(), "unknown user: exit 1")
    check(not port_open(b.port), "nothing listens")


def healthy_after_hup(node):
    node.signal(signal.SIGHUP)
    node.wait_log("SIGHUP: reloaded")
    return node.alive() and node.metric("mqseal_broker_connected") == 1


# ---------------------------------------------------------------- logs, -v, -q

TEXT_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) [a-z]+ (\[[^\]]*\] )?\S")


def metric(node, name):
    """A metric, or None while the endpoint does not answer yet (it binds after the listener)."""
    try:
        return node.metric(name)
    except OSError:
        return None


def start_and_stop(workdir, name, broker, conf=None, argv_extra=()):
    node = Node(workdir, name, broker.port, conf=conf)
    node.argv = node.argv + list(argv_extra)
    node.start()
    eventually(lambda: metric(node, "mqseal_broker_connected") == 1 and metric(node, "mqseal_epoch"), 10,
               msg="%s connected and keyed its first epoch" % name)
    rc = node.stop()
    check(rc == 0, "%s stopped with exit %r" % (name, rc))
    return [ln for ln in node.output().splitlines() if ln]


def test_log_formats_and_verbosity(workdir):
    broker = Broker(workdir).start()
    lines = start_and_stop(workdir, "text", broker, conf={"log": {"level": "info"}})
    for ln in lines:
        check(TEXT_RE.match(ln), "text line format: %r" % ln)
    levels = {ln.split(" ")[1] for ln in lines}
    check(levels <= {"info", "warn", "error"}, "info: no debug lines (%r)" % levels)
    check(any(" info node mqseal " in ln and " listening on " in ln for ln in lines), "the start line")
    check(any(ln.endswith(" info node stopped") for ln in lines), "the stop line")

    lines = start_and_stop(workdir, "json", broker, conf={"log": {"level": "info", "format": "json"}})
    for ln in lines:
        obj = json.loads(ln)
        check(set(obj) >= {"ts", "level", "component", "msg"} and set(obj) <= {
            "ts", "level", "component", "msg", "device", "client_id", "peer_id", "epoch", "topic", "reason"},
            "JSON fields: %r" % obj)
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", obj["ts"]), "ts: %r" % obj["ts"])
    check(any(json.loads(ln)["msg"] == "stopped" for ln in lines), "JSON stop line")

    lines = start_and_stop(workdir, "quiet", broker, conf={"log": {"level": "info"}}, argv_extra=["-q"])
    check(not any(" info " in ln for ln in lines), "-q: info -> warn: %r" % lines[:3])
    lines = start_and_stop(workdir, "verbose", broker, conf={"log": {"level": "info"}}, argv_extra=["-v"])
    check(any(" debug " in ln for ln in lines), "-v: info -> debug")
    lines = start_and_stop(workdir, "clamped", broker, conf={"log": {"level": "debug"}},
                           argv_extra=["-v", "-v"])
    check(any(" debug " in ln for ln in lines), "-vv beyond debug stays debug")


# ---------------------------------------------------------------- cmake --install

def documented_install_paths():
    """The table of "## 2. Installing" in OPERATIONS.md: the absolute paths, for the prefix /usr."""
    ops = read("docs/OPERATIONS.md")
    section = ops.split("## 2. Installing", 1)[1].split("\n## ", 1)[0]
    paths = re.findall(r"^\| `(/[^`]+)` \|", section, re.M)
    check(paths, "OPERATIONS.md lists the installed files")
    return paths


def configure_and_build(build, prefix):
    args = ["cmake", "-S", SRC, "-B", build, "-DCMAKE_INSTALL_PREFIX=" + prefix, "-DMQSEAL_TESTS=OFF",
            "-DMQSEAL_BENCH=OFF", "-DCMAKE_BUILD_TYPE=Release"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    check(out.returncode == 0, "configure failed: " + out.stderr[-2000:])
    out = subprocess.run(["cmake", "--build", build, "--target", "mqseal", "-j", str(os.cpu_count() or 2)],
                         capture_output=True, text=True, timeout=800)
    check(out.returncode == 0, "build failed: " + out.stdout[-2000:] + out.stderr[-2000:])


def install(build, prefix, destdir=None):
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = destdir
    out = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True, text=True,
                         timeout=120, env=env)
    check(out.returncode == 0, "cmake --install failed: " + out.stderr[-2000:])
    with open(os.path.join(build, "install_manifest.txt")) as f:
        return sorted(f.read().split())


def unit_exec(path):
    with open(path) as f:
        unit = f.read()
    return re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)


def test_cmake_install_puts_files_where_the_docs_say(workdir):
    top = read("CMakeLists.txt")
    check(re.search(r"^include\(.*cmake/install\.cmake\)", top, re.M),
          "the top CMakeLists.txt includes cmake/install.cmake")
    build = os.path.join(workdir, "build")
    stage = os.path.join(workdir, "stage")
    t0 = time.monotonic()
    configure_and_build(build, "/usr")
    print("  configured and built in %.0fs" % (time.monotonic() - t0))
    # Debian layout: prefix /usr, staged in a DESTDIR.
    manifest = install(build, "/usr", destdir=stage)  # (the manifest leaves DESTDIR out)
    want = sorted(documented_install_paths())
    check(manifest == want, "installed %r, documented %r" % (manifest, want))
    for p in want:
        check(os.path.isfile(stage + p), "%s%s exists" % (stage, p))
    binary = stage + "/usr/bin/mqseal"
    check(os.access(binary, os.X_OK), "the binary is executable")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0 and out.stdout.startswith("mqseal "), "the installed binary runs")
    unit = stage + "/usr/lib/systemd/system/mqseal.service"
    check(unit_exec(unit) == "/usr/bin/mqseal -c /etc/mqseal/mqseal.conf", "ExecStart: " + unit_exec(unit))
    with open(unit) as f, open(os.path.join(SRC, "conf", "mqseal.service")) as g:
        check(f.read() == g.read(), "for /usr the installed unit is conf/mqseal.service as it is")
    with open(stage + "/etc/mqseal/mqseal.conf.example") as f, open(os.path.join(SRC, "conf",
                                                                                 "mqseal.conf.example")) as g:
        check(f.read() == g.read(), "the example is installed as it is")
    check(not os.path.exists(stage + "/etc/mqseal/mqseal.conf"), "no live configuration is installed")
    # Another prefix: everything under it, and the unit names the files where they went.
    other = os.path.join(workdir, "opt")
    configure_and_build(build, other)  # only the prefix changed: nothing recompiles
    manifest = install(build, other)
    check(all(p.startswith(other + "/") for p in manifest), "everything under %s: %r" % (other, manifest))
    check(unit_exec(other + "/lib/systemd/system/mqseal.service") ==
          "%s/bin/mqseal -c %s/etc/mqseal/mqseal.conf" % (other, other), "ExecStart follows the prefix")
    for rel in ("bin/mqseal", "etc/mqseal/mqseal.conf.example", "share/man/man1/mqseal.1"):
        check(os.path.isfile(os.path.join(other, rel)), "%s/%s exists" % (other, rel))
    # The man page renders without warnings.
    if shutil.which("groff"):
        out = subprocess.run(["groff", "-man", "-ww", "-z", stage + "/usr/share/man/man1/mqseal.1"],
                             capture_output=True, text=True, timeout=30)
        check(out.returncode == 0 and out.stderr == "", "groff warnings: %r" % out.stderr)


if __name__ == "__main__":
    run([test_help_lists_every_subcommand_and_option, test_keygen_options_first_and_stdout,
         test_config_errors_say_what_and_where, test_check_verifies_what_start_needs, test_version, test_usage_errors_exit_2,
         test_operations_md_documents_every_option, test_config_errors_all_at_once_exit_2, test_keygen_and_pubkey,
         test_check_prints_effective_configuration,
         test_world_readable_identity_key_refused, test_fd_limit_checked_at_start, test_user_option_drops_root,
         test_log_formats_and_verbosity,
         test_cmake_install_puts_files_where_the_docs_say])
