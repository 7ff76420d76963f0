"""The one-command demo (issue 7): scripts/demo.sh, run as a newcomer runs it but on the test build
(MQSEAL_DEMO_NO_BUILD=1, MQSEAL_BIN). A full run must end with exit 0, nothing lost, at least one
key rotation and no plaintext at the broker; a run interrupted with SIGINT must stop, print its
summary and leave no process behind. The sample telemetry must be what scripts/telemetry.py makes.
"""
# ctest-labels: demo
# ctest-timeout: 120
import os
import re
import signal
import subprocess
import time

from harness import MQSEAL, SRC, check, eventually, run

DEMO = os.path.join(SRC, "scripts", "demo.sh")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


def start_demo(workdir, *args):
    """Starts the demo in its own session (so that every process it starts can be found by session
    id afterwards), output to a file; returns (Popen, path of the output)."""
    env = dict(os.environ, MQSEAL_DEMO_NO_BUILD="1", MQSEAL_BIN=MQSEAL, NO_COLOR="1", TMPDIR=workdir)
    out_path = os.path.join(workdir, "demo.out")
    out = open(out_path, "wb")
    p = subprocess.Popen(["bash", DEMO] + list(args), stdout=out, stderr=subprocess.STDOUT, env=env,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    out.close()
    return p, out_path


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def session_members(sid):
    """PIDs of the processes whose session id is sid (field 6 of /proc/PID/stat)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(name))
    return pids


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def finish(p, timeout):
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)
        raise


def printed_pids(text):
    return [int(x) for x in re.findall(r"\bpid (\d+)\s*$", text, re.M)]


def summary(text):
    m = re.search(r"^summary: sent (\d+)\s+received (\d+)\s+lost (\d+)\s+rotations (\d+) .*dropped (\d+)",
                  text, re.M)
    check(m, "no summary line in:\n" + text[-3000:])
    return dict(zip(("sent", "received", "lost", "rotations", "dropped"), map(int, m.groups())))


def test_full_run(workdir):
    t = time.monotonic()
    p, out = start_demo(workdir, "--seconds", "15")
    rc = finish(p, 55)
    text = read(out)
    print("\n".join("  | " + line for line in text.splitlines()))
    check(rc == 0, "demo exited %d" % rc)
    s = summary(text)
    check(s["lost"] == 0 and s["sent"] == s["received"], "lost readings: %r" % s)
    check(s["sent"] >= 10, "too few readings in 15 s: %r" % s)
    check(s["rotations"] >= 1, "no key rotation in 15 s: %r" % s)
    check(s["dropped"] == 0, "dropped: %r" % s)
    check(re.search(r"^OK: every reading arrived", text, re.M), "no OK verdict")
    check(re.search(r"none of them contains any of the \d+ plaintext byte strings", text), "no leak check line")
    # one row per reading, in order, each received
    rows = re.findall(r"^\s*\d+\.\ds\s+plant/\S+\s+#(\d+) .*\s(ok|LOST|FAILED)\s*$", text, re.M)
    check([int(n) for n, _ in rows] == list(range(1, s["sent"] + 1)), "rows: %r" % rows)
    check(all(v == "ok" for _, v in rows), "rows not ok: %r" % rows)
    check(re.search(r"~~ (sensor|backend): new key, epoch \d+", text), "no rotation line")
    check(not session_members(p.pid), "processes left: %r" % session_members(p.pid))
    check(not [x for x in printed_pids(text) if alive(x)], "printed PIDs still alive")
    check(not [n for n in os.listdir(workdir) if n.startswith("mqseal-demo.")], "temporary directory left")
    print("  demo: %r in %.1fs" % (s, time.monotonic() - t))


def test_interrupted(workdir):
    p, out = start_demo(workdir, "--seconds", "40")
    # the first reading shows that everything has been started
    eventually(lambda: re.search(r"plant/\S+\s+#1 ", read(out)) or p.poll() is not None, 30,
               msg="demo printed no reading")
    check(p.poll() is None, "demo ended early:\n" + read(out))
    time.sleep(2)
    pids = printed_pids(read(out))
    check(len(pids) >= 7, "PIDs printed: %r" % pids)
    check(all(alive(x) for x in pids), "a process died before the interrupt")
    members = session_members(p.pid)
    t = time.monotonic()
    os.kill(p.pid, signal.SIGINT)
    rc = finish(p, 30)
    took = time.monotonic() - t
    text = read(out)
    print("\n".join("  | " + line for line in text.splitlines()[-6:]))
    s = summary(text)
    check(rc == 0 and s["lost"] == 0, "interrupted run: rc %d, %r" % (rc, s))
    check(not [x for x in pids if alive(x)], "printed PIDs alive after SIGINT: %r" % [x for x in pids if alive(x)])
    left = session_members(p.pid)
    check(not left, "processes of the demo's session left: %r" % left)
    check(not [x for x in members if alive(x)], "processes seen before the interrupt still alive")
    check(took < 15, "stopping took %.1fs" % took)
    check(not [n for n in os.listdir(workdir) if n.startswith("mqseal-demo.")], "temporary directory left")
    print("  stopped %d processes %.1fs after SIGINT" % (len(members), took))


def run_viewer(workdir, sent, got, eve):
    """Runs demo.py view over hand-made inputs (sent: (topic, payload, rc); got: subscriber lines;
    eve: (topic, payload bytes)), tells it to finish, returns (exit status, output)."""
    paths = {k: os.path.join(workdir, k + ".log") for k in ("sent", "got", "eve")}
    t = time.time() - 10
    with open(paths["sent"], "w") as f:
        for i, (topic, payload, rc) in enumerate(sent):
            f.write("%.6f\t%d\t%s\t%d\t%s\n" % (t + i, i + 1, topic, rc, payload))
    with open(paths["got"], "w") as f:
        f.write("Client backend-app received SUBACK\n" + "".join(line + "\n" for line in got))
    with open(paths["eve"], "w") as f:
        f.write("".join("%s %s\n" % (topic, data.hex()) for topic, data in eve))
    p = subprocess.Popen([PYTHON, os.path.join(SRC, "scripts", "demo.py"), "view", "--t0", str(t),
                          "--sent", paths["sent"], "--got", paths["got"], "--eve", paths["eve"]],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, NO_COLOR="1"))
    time.sleep(1.0)
    p.send_signal(signal.SIGUSR1)
    out = p.communicate(timeout=20)[0].decode()
    return p.returncode, out


def test_viewer_verdicts(workdir):
    """The demo's verdict: 0 only with nothing lost and no reading's bytes at the broker."""
    a, b = ("plant/gh", "#1 23.89C 67.3%"), ("plant/cs", "#2 3.52C 84.1%")
    kex = ("mqseal/kx/backend/sensor", os.urandom(200))
    sealed = [(a[0], os.urandom(66)), (b[0], os.urandom(66))]
    rc, out = run_viewer(workdir, [a + (0,), b + (0,)], [" ".join(a), " ".join(b)], [kex] + sealed)
    check(rc == 0 and "lost 0" in out and "OK:" in out, "clean run judged %d:\n%s" % (rc, out))
    # lost: the second reading never reaches the subscriber
    rc, out = run_viewer(workdir, [a + (0,), b + (0,)], [" ".join(a)], [kex] + sealed)
    check(rc == 1 and "lost 1" in out and re.search(r"#2 .*LOST", out), "loss judged %d:\n%s" % (rc, out))
    # plaintext at the broker: the whole reading, or only one of its values, inside a payload
    for leaked in (b"\x02\x00" + a[1].encode() + os.urandom(20), os.urandom(30) + b"67.3%" + os.urandom(9)):
        rc, out = run_viewer(workdir, [a + (0,), b + (0,)], [" ".join(a), " ".join(b)],
                             [kex, (a[0], leaked), sealed[1]])
        check(rc == 1 and "PLAINTEXT AT BROKER" in out and "FAILED: plaintext" in out,
              "leak judged %d:\n%s" % (rc, out))
    # a leak in a message that matches no row (another topic) still fails the run
    rc, out = run_viewer(workdir, [a + (0,)], [" ".join(a)], [("other/topic", b"x 23.89C y")] + sealed[:1])
    check(rc == 1 and "FAILED: plaintext" in out, "unrelated leak judged %d:\n%s" % (rc, out))
    # a publish the sidecar did not acknowledge counts as lost
    rc, out = run_viewer(workdir, [a + (0,), b + (5,)], [" ".join(a)], [kex] + sealed[:1])
    check(rc == 1 and "publish failed" in out and "lost 1" in out, "failed publish judged %d:\n%s" % (rc, out))
    # nothing sent is no success
    rc, out = run_viewer(workdir, [], [], [kex])
    check(rc == 1 and "nothing was sent" in out, "empty run judged %d:\n%s" % (rc, out))


def test_telemetry_is_generated(workdir):
    gen = os.path.join(SRC, "scripts", "telemetry.py")
    r = subprocess.run([PYTHON, gen, "--check"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "scripts/telemetry.csv is not what telemetry.py generates: " + r.stderr)
    mine = os.path.join(workdir, "t.csv")
    subprocess.run([PYTHON, gen, "-o", mine], check=True, timeout=30)
    lines = read(mine).splitlines()
    check(lines[0] == "second,sensor,temperature_c,humidity_pct", "header: %r" % lines[0])
    sensors = {line.split(",")[1] for line in lines[1:]}
    check(len(sensors) >= 3 and len(lines) > 60, "sensors %r, rows %d" % (sensors, len(lines)))
    with open(mine, "a") as f:
        f.write("999,extra,1.00,1.0\n")
    r = subprocess.run([PYTHON, gen, "--check", "-o", mine], capture_output=True, timeout=30)
    check(r.returncode == 1, "--check accepted a different file")


def test_bad_arguments(workdir):
    for args in (["--seconds", "0"], ["--seconds", "x"], ["--bogus"]):
        p, out = start_demo(workdir, *args)
        rc = finish(p, 20)
        check(rc == 2, "demo %r exited %d" % (args, rc))
        check(not session_members(p.pid), "processes left after %r" % args)


if __name__ == "__main__":
    run([test_telemetry_is_generated, test_viewer_verdicts, test_bad_arguments, test_interrupted, test_full_run])
