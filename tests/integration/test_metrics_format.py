"""/metrics as other parsers read it (issue 16 item 5, docs/OPERATIONS.md section 8): `promtool check
metrics` accepts the 0.0.4 text with no lint warning; asked for OpenMetrics (Accept header, as
Prometheus and the OpenTelemetry collector ask), the node serves OpenMetrics 1.0 that
prometheus_client's OpenMetrics parser reads, with no two families of one name (the gauge
mqseal_device_connections and the counter mqseal_device_connections_total were one); the 0.0.4
text parses with prometheus_client's text parser; mqseal_build_info names this binary and its
libraries; process_* come from this process; the last rotation is a Unix timestamp; HEAD /metrics
has headers only. promtool (Debian prometheus) and prometheus_client (python3-prometheus-client)
are installed by scripts/deps.sh: missing, the test fails."""
# ctest-labels: ops
# ctest-timeout: 300
import http.client
import os
import re
import shutil
import subprocess
import time

from harness import HOST, MQSEAL, Client, check, keyed_nodes, run

OM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
             "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")  # what Prometheus 2.42 sends


def fetch(port, method="GET", accept=None):
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        c.request(method, "/metrics", headers={"Accept": accept} if accept else {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read().decode()
    finally:
        c.close()


def keyed_pair(workdir):
    """Two nodes keyed to each other, one message sealed and opened, so every counter is in use."""
    _, a, b = keyed_nodes(workdir)
    sub = Client("sub")
    sub.connect(b.port)
    sub.subscribe("t/#")
    pub = Client("pub")
    pub.connect(a.port)
    pub.publish("t/1", b"hello", qos=1)
    check(sub.expect(1, 10)[0].payload == b"hello", "the message went through")
    pub.disconnect()
    sub.disconnect()
    return a


def families(text):
    """{family name: type} of a 0.0.4 text, from its # TYPE lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M))


def test_promtool_accepts_the_text(workdir):
    promtool = shutil.which("promtool")
    check(promtool, "promtool is installed (scripts/deps.sh: prometheus)")
    a = keyed_pair(workdir)
    status, headers, text = fetch(a.metrics_port)
    check(status == 200 and headers["content-type"] == "text/plain; version=0.0.4", "0.0.4 text by default")
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0 and out.stdout.strip() == "" and out.stderr.strip() == "",
          "promtool check metrics: exit %d\n%s%s" % (out.returncode, out.stdout, out.stderr))
    # Every family has HELP and TYPE before its samples.
    types = families(text)
    helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
    check(helps == set(types), "HELP and TYPE for every family: %r" % sorted(helps ^ set(types)))
    for line in text.splitlines():
        if not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            check(name in types, "%s has a # TYPE" % name)
    # The 0.0.4 parser of prometheus_client reads it too.
    from prometheus_client.parser import text_string_to_metric_families
    names = [f.name for f in text_string_to_metric_families(text)]
    check(len(names) == len(set(names)), "no family twice in the 0.0.4 text")


def test_no_gauge_counter_collision(workdir):
    """OpenMetrics and OpenTelemetry name a counter x_total's family x: no gauge may be named x."""
    a = keyed_pair(workdir)
    types = families(fetch(a.metrics_port)[2])
    counters = {n[:-len("_total")] for n, t in types.items() if t == "counter" and n.endswith("_total")}
    clash = sorted(n for n, t in types.items() if t != "counter" and n in counters)
    check(not clash, "gauges colliding with a counter family: %r" % clash)
    check("mqseal_device_connections_open" in types and "mqseal_device_connections" not in types,
          "the device connections gauge is mqseal_device_connections_open")


def test_openmetrics_when_asked(workdir):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    a = keyed_pair(workdir)
    _, _, plain = fetch(a.metrics_port)
    status, headers, text = fetch(a.metrics_port, accept=OM_ACCEPT)
    check(status == 200 and headers["content-type"].startswith("application/openmetrics-text; version=1.0.0"),
          "OpenMetrics served when asked: %d %r" % (status, headers.get("content-type")))
    check(text.endswith("# EOF\n") and text.count("# EOF") == 1, "OpenMetrics ends with # EOF")
    fams = {}
    for f in text_string_to_metric_families(text):  # raises on any error (clashing names, bad lines)
        check(f.name not in fams, "family %s once" % f.name)
        fams[f.name] = f
    check(fams["mqseal_sealed"].type == "counter" and fams["mqseal_sealed"].samples[0].value >= 1,
          "mqseal_sealed_total is the counter family mqseal_sealed")
    check(fams["mqseal_device_connections_open"].type == "gauge", "the gauge is its own family")
    check(fams["mqseal_device_connections"].type == "counter", "the counter keeps its name")
    # The same families as the 0.0.4 text, counters without _total.
    want = {n[:-6] if t == "counter" and n.endswith("_total") else n for n, t in families(plain).items()}
    check(set(fams) == want, "same families in both formats: %r" % sorted(set(fams) ^ want))
    # HEAD: the headers of the same response, no body.
    status, headers, body = fetch(a.metrics_port, "HEAD", accept=OM_ACCEPT)
    check(status == 200 and body == "" and int(headers["content-length"]) > 1000 and
          headers["content-type"].startswith("application/openmetrics-text"), "HEAD /metrics: headers only")
    status, headers, body = fetch(a.metrics_port, "HEAD")
    check(status == 200 and body == "" and int(headers["content-length"]) > 1000, "HEAD /metrics (0.0.4)")


def test_build_info_process_and_timestamps(workdir):
    t0 = time.time()
    a = keyed_pair(workdir)
    m = a.metrics()
    version = subprocess.run([MQSEAL, "--version"], capture_output=True, text=True).stdout.split()[1]
    info = [k for k in m if k.startswith("mqseal_build_info{")]
    check(len(info) == 1 and m[info[0]] == 1, "one mqseal_build_info sample, value 1: %r" % info)
    labels = dict(re.findall(r'(\w+)="([^"]*)"', info[0]))
    check(labels.get("version") == version, "build_info version %r == --version %r" % (labels, version))
    check(re.match(r"^3\.\d+\.\d+", labels.get("openssl", "")), "build_info openssl: %r" % labels)
    check(re.match(r"^2\.1\.\d+", labels.get("libevent", "")), "build_info libevent: %r" % labels)
    # process_*: this node's own figures, from /proc/<pid>.
    fds = len(os.listdir("/proc/%d/fd" % a.pid))
    check(abs(m["process_open_fds"] - fds) <= 3, "process_open_fds %r ~ %d" % (m["process_open_fds"], fds))
    check(m["process_max_fds"] >= m["process_open_fds"] > 3, "process_max_fds >= open fds")
    with open("/proc/%d/status" % a.pid) as f:
        rss = int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024
    check(0.5 * rss < m["process_resident_memory_bytes"] < 2 * rss, "RSS %r ~ %d" % (
        m["process_resident_memory_bytes"], rss))
    check(t0 - 5 <= m["process_start_time_seconds"] <= time.time() + 1, "start time %r after %r" % (
        m["process_start_time_seconds"], t0))
    check(0 <= m["process_cpu_seconds_total"] < 600, "process_cpu_seconds_total %r" % m["process_cpu_seconds_total"])
    # The last rotation as a Unix timestamp, not an age.
    ts = m["mqseal_last_rotation_timestamp_seconds"]
    check(t0 - 2 <= ts <= time.time() + 1, "last rotation timestamp %r in [%r, now]" % (ts, t0))


if __name__ == "__main__":
    run([test_promtool_accepts_the_text, test_no_gauge_counter_collision, test_openmetrics_when_asked,
         test_build_info_process_and_timestamps])
