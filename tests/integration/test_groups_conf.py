"""Read groups in the configuration (issue 17): the example fleet of docs/OPERATIONS.md (1 backend,
2 actuators, 2 sensors; telemetry read by the backend alone, commands read by the actuators and
written by the backend alone) is accepted on every node, and `mqseal check` prints, after the
effective configuration, the read and write rights per group and per node as that node sees them;
its output still loads as a configuration. A fleet whose groups overlap is refused with both
FILE:LINEs, and so is a group topic that is also plaintext. No broker is needed: check only."""
# ctest-labels: ops
import os
import re
import subprocess

from harness import HOST, MQSEAL, check, keygen, run

FLEET = ("backend", "actuator-1", "actuator-2", "sensor-1", "sensor-2")
GROUPS = '''groups = (
  { name = "telemetry"; topics = [ "sensors/#" ]; readers = [ "backend" ]; },
  { name = "commands";  topics = [ "cmd/#" ];
    readers = [ "actuator-1", "actuator-2" ]; writers = [ "backend" ]; }
);
'''


def mq(*args):
    return subprocess.run([MQSEAL] + list(args), capture_output=True, text=True, timeout=30)


def fleet(workdir, groups=GROUPS, extra=""):
    """Keys for the five nodes and a configuration per node: the backend trusts everyone, the
    others only the backend (a sensor does not know the actuators). Returns {node: path}."""
    pubs, paths = {}, {}
    for n in FLEET:
        d = os.path.join(workdir, n)
        os.makedirs(d)
        pubs[n] = keygen(os.path.join(d, "identity.key"))
    for n in FLEET:
        d = os.path.join(workdir, n)
        peers = [p for p in FLEET if p != n] if n == "backend" else ["backend"]
        text = ('node_id = "%s";\nstate_dir = "%s";\nidentity_file = "%s/identity.key";\n'
                'listen = { host = "%s"; port = 1; };\nbroker = { host = "%s"; port = 2; };\n'
                'metrics = { enabled = false; };\npeers = (\n%s\n);\n%s%s'
                % (n, d, d, HOST, HOST,
                   ",\n".join('  { id = "%s"; public_key = "%s"; }' % (p, pubs[p]) for p in peers),
                   groups, extra))
        paths[n] = os.path.join(d, "mqseal.conf")
        with open(paths[n], "w") as f:
            f.write(text)
    return paths


def rights(stdout):
    """The rights part of check's output: {"groups": {name: (topics, readers, writers)},
    "nodes": {node: (role, read, write)}}."""
    part = stdout.split("# Read groups:", 1)
    check(len(part) == 2, "check prints the read groups section: %r" % stdout[-800:])
    groups, nodes = {}, {}
    for line in part[1].splitlines():
        cells = re.split(r"\s{2,}", line[2:].strip()) if line.startswith("# ") else []
        if len(cells) == 4 and cells[0] != "group":
            groups[cells[0]] = tuple(cells[1:])
        m = re.match(r"^# (\S+)\s+(this node|peer|not a peer)\s+read: (.*); write: (.*)$", line)
        if m:
            nodes[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return {"groups": groups, "nodes": nodes}


def test_fleet_rights_printed_by_check(workdir):
    paths = fleet(workdir)
    want_groups = {
        "telemetry": ("sensors/#", "backend", "any node"),
        "commands": ("cmd/#", "actuator-1, actuator-2", "backend"),
        "(default)": ("every other sealed topic", "every peer", "any node"),
    }
    want_nodes = {
        "backend": {
            "backend": ("this node", "telemetry, (default)", "telemetry, commands, (default)"),
            "actuator-1": ("peer", "commands, (default)", "telemetry, (default)"),
            "actuator-2": ("peer", "commands, (default)", "telemetry, (default)"),
            "sensor-1": ("peer", "(default)", "telemetry, (default)"),
            "sensor-2": ("peer", "(default)", "telemetry, (default)"),
        },
        "actuator-1": {
            "actuator-1": ("this node", "commands, (default)", "telemetry, (default)"),
            "backend": ("peer", "telemetry, (default)", "telemetry, commands, (default)"),
            "actuator-2": ("not a peer", "commands", "telemetry"),
        },
        "sensor-1": {
            "sensor-1": ("this node", "(default)", "telemetry, (default)"),
            "backend": ("peer", "telemetry, (default)", "telemetry, commands, (default)"),
            "actuator-1": ("not a peer", "commands", "telemetry"),
            "actuator-2": ("not a peer", "commands", "telemetry"),
        },
    }
    for node, path in paths.items():
        out = mq("check", "-c", path)
        check(out.returncode == 0, "%s: check exit %d: %s" % (node, out.returncode, out.stderr))
        r = rights(out.stdout)
        check(r["groups"] == want_groups, "%s: groups %r" % (node, r["groups"]))
        if node in want_nodes:
            check(r["nodes"] == want_nodes[node], "%s: nodes %r, wanted %r" % (node, r["nodes"], want_nodes[node]))
        # The output, rights included, is itself a configuration that checks to the same output.
        again = os.path.join(workdir, node, "dumped.conf")
        with open(again, "w") as f:
            f.write(out.stdout)
        out2 = mq("check", "-c", again)
        check(out2.returncode == 0 and out2.stdout == out.stdout, "%s: check of the output gives it again" % node)
    # Without groups: one line, the default group, every node reads and writes it.
    plain = fleet(os.path.join(workdir, "plain"), groups="")
    out = mq("check", "-c", plain["backend"])
    r = rights(out.stdout)
    check(r["groups"] == {"(default)": ("every sealed topic", "every peer", "any node")}, "no groups: %r" % r)
    check(r["nodes"]["sensor-2"] == ("peer", "(default)", "(default)"), "no groups: %r" % r["nodes"])


def test_overlap_refused_with_both_lines(workdir):
    overlapping = GROUPS.replace('"cmd/#" ]', '"cmd/#", "+/s1/#" ]')  # "sensors/s1/x" is in both
    paths = fleet(workdir, groups=overlapping)
    for node in ("backend", "sensor-2"):
        path = paths[node]
        lines = open(path).read().splitlines()
        tele = next(i for i, ln in enumerate(lines) if '"telemetry"' in ln) + 1
        cmd = next(i for i, ln in enumerate(lines) if '"+/s1/#"' in ln) + 1
        for form in (["check", "-c", path], ["-c", path]):
            out = mq(*form)
            check(out.returncode == 2 and out.stdout == "", "%s %r: exit %d" % (node, form, out.returncode))
            errors = [ln for ln in out.stderr.splitlines() if not ln.startswith("warning: ")]
            want = ('%s:%d: groups[1].topics[1]: "+/s1/#" of group "commands" and "sensors/#" of group '
                    '"telemetry" (%s:%d) can match the same topic; a topic may belong to one group only'
                    % (path, cmd, path, tele))
            check(errors == [want], "%s %r: %r, wanted %r" % (node, form, errors, want))
    # A group topic that is also plaintext: refused, both places named.
    paths = fleet(os.path.join(workdir, "p"), extra='topics = { plaintext = [ "cmd/public/#" ]; };\n')
    path = paths["actuator-2"]
    lines = open(path).read().splitlines()
    cmd = next(i for i, ln in enumerate(lines) if '"cmd/#"' in ln) + 1
    plain = next(i for i, ln in enumerate(lines) if "plaintext" in ln) + 1
    out = mq("check", "-c", path)
    check(out.returncode == 2, "plaintext in a group: exit %d" % out.returncode)
    check(('%s:%d: topics.plaintext[0]: "cmd/public/#" can match topics of group "commands" ("cmd/#", %s:%d)'
           % (path, plain, path, cmd)) in out.stderr, "plaintext in a group: %r" % out.stderr)


if __name__ == "__main__":
    run([test_fleet_rights_printed_by_check, test_overlap_refused_with_both_lines])
