"""The Grafana dashboard (docs/grafana/mqseal.json, issue 16 item 8): a well-formed dashboard (unique
panel ids, every query on the dashboard's Prometheus data source variable, balanced PromQL), that
covers what the issue asks for (devices, messages sealed/opened, drops by reason, peers keyed,
rotations), and whose every metric name and every label it groups or filters by exists in the
/metrics output of a running node (started here against a test broker, keyed to a peer)."""
# ctest-labels: metrics
# ctest-timeout: 60
import json
import os
import re
import urllib.request

from harness import HOST, SRC, check, keyed_nodes, run

DASHBOARD = os.path.join(SRC, "docs", "grafana", "mqseal.json")

# PromQL words that are not metric names: functions, aggregations, keywords, and Grafana's variables.
PROMQL = {"sum", "max", "min", "avg", "count", "rate", "irate", "increase", "by", "without", "on", "ignoring",
          "group_left", "group_right", "and", "or", "unless", "offset", "bool", "topk", "bottomk",
          "histogram_quantile", "delta", "deriv", "time", "timestamp", "abs", "clamp_min", "clamp_max",
          "label_values", "changes", "resets", "max_over_time", "min_over_time", "avg_over_time", "vector",
          "scalar", "absent"}
# What the issue asks the dashboard to show, as (metric, label it must be broken down by or None).
REQUIRED = [("mqseal_device_connections_open", None), ("mqseal_sealed_total", None), ("mqseal_opened_total", None),
            ("mqseal_dropped_total", "reason"), ("mqseal_peers_keyed", None), ("mqseal_rotations_total", None)]


def load():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dash):
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def queries(dash):
    """(panel title, expr) of every query, the template variables' included."""
    out = []
    for p in all_panels(dash):
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append(("variable " + v["name"], q))
    return out


def strip(expr):
    """The expression without strings, range/offset brackets and Grafana variables."""
    # Grafana's label_values(metric, label): the label is one of the metric's
    expr = re.sub(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*(\w+)\s*\)", r'\1{\2=""}', expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    return re.sub(r"\$\{?\w+\}?", "", expr)


def metric_uses(expr):
    """{metric: set(labels)} that expr selects, filters on or aggregates by."""
    uses = {}
    text = strip(expr)
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b\s*(\{[^}]*\})?", text):
        name = m.group(1)
        if name in PROMQL or re.match(r"^\d", name):
            continue
        # a label inside by (...) / without (...) / {...} is not a metric
        before = text[:m.start()]
        if re.search(r"\b(by|without)\s*\([^)]*$", before) or re.search(r"\{[^}]*$", before):
            continue
        labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(2) or ""))
        uses.setdefault(name, set()).update(labels)
    # grouping labels apply to every metric of the expression
    grouped = set()
    for g in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", text):
        grouped.update(x.strip() for x in g.split(",") if x.strip())
    for name in uses:
        uses[name] |= grouped
    return uses


def test_dashboard_well_formed(workdir):
    dash = load()
    check(dash.get("uid") and dash.get("title") and isinstance(dash.get("schemaVersion"), int), "uid/title/schema")
    ids = [p["id"] for p in all_panels(dash)]
    check(len(ids) == len(set(ids)), "panel ids not unique: %r" % ids)
    ds_vars = [v["name"] for v in dash["templating"]["list"] if v["type"] == "datasource"]
    check(ds_vars and all(v["query"] == "prometheus" for v in dash["templating"]["list"] if v["type"] == "datasource"),
          "no Prometheus data source variable")
    for p in all_panels(dash):
        if p["type"] == "row":
            continue
        g = p["gridPos"]
        check(0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, "%s: gridPos %r" % (p["title"], g))
        check(p["datasource"]["uid"] == "${%s}" % ds_vars[0], "%s: data source %r" % (p["title"], p["datasource"]))
        refs = [t["refId"] for t in p["targets"]]
        check(p["targets"] and len(refs) == len(set(refs)), "%s: targets %r" % (p["title"], refs))
    for title, expr in queries(dash):
        depth = 0
        for c in strip(expr):
            depth += {"(": 1, ")": -1}.get(c, 0)
            check(depth >= 0, "%s: unbalanced %r" % (title, expr))
        check(depth == 0 and expr.count("{") == expr.count("}"), "%s: unbalanced %r" % (title, expr))
        if not title.startswith("variable"):
            check('instance=~"$instance"' in expr, "%s: not filtered by the node variable: %r" % (title, expr))
    # what the issue asks for is on it
    uses = {}
    for _title, expr in queries(dash):
        for name, labels in metric_uses(expr).items():
            uses.setdefault(name, set()).update(labels)
    for name, label in REQUIRED:
        check(name in uses, "the dashboard does not show %s" % name)
        check(label is None or label in uses[name], "%s is not broken down by %s" % (name, label))


def scrape(port):
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, port), timeout=5) as r:
        return r.read().decode()


def exposed(text):
    """{metric name: set(label names)} of the samples in a /metrics text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s", line)
        check(m, "unparsable sample line %r" % line)
        out.setdefault(m.group(1), set()).update(re.findall(r'(\w+)="', m.group(2) or ""))
    return out


def test_dashboard_metrics_exist(workdir):
    broker, a, b = keyed_nodes(workdir)
    have = exposed(scrape(a.metrics_port))
    # labels Prometheus adds to every scraped series
    target_labels = {"instance", "job"}
    used = {}
    for title, expr in queries(load()):
        for name, labels in metric_uses(expr).items():
            used.setdefault(name, set()).update(labels)
            check(name in have, "%s (panel %s) is not in /metrics: %s" % (name, title, sorted(have)))
            missing = labels - have[name] - target_labels
            check(not missing, "%s (panel %s): labels %r not on the metric (has %r)" % (name, title, missing,
                                                                                        have[name]))
    print("  dashboard metrics: %s" % ", ".join(sorted(used)))


if __name__ == "__main__":
    run([test_dashboard_well_formed, test_dashboard_metrics_exist])
