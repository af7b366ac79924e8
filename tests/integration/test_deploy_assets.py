"""Deploy assets: the Prometheus alert rules and the Grafana dashboard in deploy/.

- promtool (Debian's `prometheus` package, deploy/setup.sh) checks the rule file and runs its unit
  tests (deploy/prometheus/shadowgate-alerts.test.yml);
- every rule is a complete alert (for, severity, summary, description); the dashboard is
  well-formed for Grafana (unique panel ids, gridPos on the 24-column grid without overlaps,
  targets with expr, the ${DS_PROMETHEUS} datasource variable) and every expr is valid PromQL;
- the real binary in the shadow stage (v1 reference service, MariaDB of the ctest fixture),
  after writes, reads and a discrepancy planted in Dolt, exposes every metric name, every label
  name and every literal label value the rules and the dashboard use;
- a real Prometheus scraping that binary loads the rules without error, answers every dashboard
  query with data, puts ShadowgateDiscrepancyRateHigh pending for the drifted endpoint and
  nothing else, and ShadowgateDown pending once shadowgate is stopped.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from sg_harness import wait_for
from test_mirror import Stack, init_users, put
from test_shadow import SHADOW, discrepancy_total, plant, read_all, wait_shadow_idle
from v1ref_harness import REPO_ROOT, free_port, request

RULES = REPO_ROOT / "deploy" / "prometheus" / "shadowgate-alerts.yml"
RULE_TESTS = REPO_ROOT / "deploy" / "prometheus" / "shadowgate-alerts.test.yml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "shadowgate-dashboard.json"
DS_UID = "${DS_PROMETHEUS}"
DISCREPANCIES = ("mismatch", "missing_in_v2", "extra_in_v2", "status_mismatch")

# Grafana's variables, as a dashboard with "All" selected would send them (the rate window and
# range cover the whole test run).
GRAFANA_VARS = {"__rate_interval": "1m", "__interval": "1m", "__range": "5m",
                "job": "shadowgate", "instance": ".*", "endpoint": ".*"}
# Labels Prometheus adds at scrape time; not in /metrics.
TARGET_LABELS = {"job", "instance"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                "group_right", "bool", "offset", "inf", "nan", "atan2"}


# ---- helpers ---------------------------------------------------------------------------------

def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found: run `bash deploy/setup.sh` (Debian package prometheus)")
    return path


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120)


def alert_rules() -> list:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_targets() -> list:
    """(panel title, refId, expr) of every query of every panel."""
    out = []
    for p in dashboard()["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t.get("refId"), t.get("expr")))
    return out


def substitute(expr: str) -> str:
    def one(m):
        name = m.group(1) or m.group(2)
        assert name in GRAFANA_VARS, f"unknown dashboard variable ${name} in {expr}"
        return GRAFANA_VARS[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)


def metric_names(expr: str) -> set:
    """Metric names in a PromQL expression: identifiers outside strings, label matchers, range
    brackets and grouping clauses that are no function call and no keyword."""
    s = _strip_strings(expr)
    s = re.sub(r"\{[^}]*\}", "{}", s)
    s = re.sub(r"\[[^\]]*\]", "[]", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", s):
        if m.group(1).lower() not in PROMQL_WORDS:
            names.add(m.group(1))
    # The simple rule as well: shadowgate_ identifiers followed by {, [, ) or whitespace.
    names |= set(re.findall(r"\b(shadowgate_\w+)(?=[{\[)\s]|$)", _strip_strings(expr)))
    return names


def label_matchers(expr: str) -> list:
    """(metric, label, op, value) for every matcher in a `metric{...}` selector."""
    out = []
    for m in re.finditer(r"\b([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", expr):
        for lm in re.finditer(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(2)):
            out.append((m.group(1), lm.group(1), lm.group(2), lm.group(3)))
    return out


def grouping_labels(expr: str) -> set:
    labels = set()
    for m in re.finditer(r"\b(by|without|on|ignoring)\s*\(([^)]*)\)", _strip_strings(expr)):
        labels |= {x.strip() for x in m.group(2).split(",") if x.strip()}
    return labels


def parse_series(metrics: dict) -> dict:
    """name -> list of label dicts, from Shadowgate.metrics() keys ("name{a=\"b\"}")."""
    out: dict = {}
    for key in metrics:
        name, _, rest = key.partition("{")
        labels = {m.group(1): m.group(2)
                  for m in re.finditer(r'(\w+)="((?:[^"\\]|\\.)*)"', rest)}
        out.setdefault(name, []).append(labels)
    return out


def series_of(exposed: dict, name: str) -> list:
    """The series of `name`; a histogram's base name stands for its _bucket/_sum/_count."""
    if name in exposed:
        return exposed[name]
    for suffix in ("_bucket", "_sum", "_count"):
        if name + suffix in exposed:
            return exposed[name + suffix]
    return []


def all_exprs() -> list:
    """(where, expr) of every alert and every dashboard query."""
    return ([(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
            + [(f"panel {title!r} {ref}", expr) for title, ref, expr in dashboard_targets()])


# ---- promtool --------------------------------------------------------------------------------

def test_promtool_check_rules():
    res = promtool("check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_rule_unit_tests():
    res = promtool("test", "rules", str(RULE_TESTS))
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_rule_is_a_complete_alert():
    doc = yaml.safe_load(RULES.read_text())
    assert [g["name"] for g in doc["groups"]] == ["shadowgate"]
    rules = alert_rules()
    names = [r.get("alert") for r in rules]
    assert len(set(names)) == len(names), names
    assert set(names) >= {"ShadowgateDiscrepancyRateHigh", "ShadowgateShadowV2Failing",
                          "ShadowgateMirrorLagHigh", "ShadowgateMirrorParkedUsers",
                          "ShadowgateMirrorCircuitOpen", "ShadowgateDown"}, names
    for r in rules:
        assert r.get("alert") and r.get("expr"), r
        assert re.fullmatch(r"\d+[smh]", str(r.get("for", ""))), r
        assert r.get("labels", {}).get("severity") in ("warning", "critical"), r
        ann = r.get("annotations", {})
        assert ann.get("summary") and ann.get("description"), r
    # Every alert has a firing case in the unit tests.
    tested = {t["alertname"] for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for t in case["alert_rule_test"] if t.get("exp_alerts")}
    assert tested == set(names), set(names) - tested


# ---- the dashboard ---------------------------------------------------------------------------

def test_dashboard_is_well_formed_for_grafana():
    d = dashboard()
    assert d["title"] and d["uid"]
    assert isinstance(d["schemaVersion"], int) and 36 <= d["schemaVersion"] <= 39
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables.get("DS_PROMETHEUS")
    assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", ds
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"]["uid"] == DS_UID, v
    panels = d["panels"]
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids), ids
    assert panels[0]["type"] == "row"
    cells: dict = {}
    for p in panels:
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in ("x", "y", "w", "h")), p["title"]
        assert g["x"] >= 0 and g["y"] >= 0 and g["w"] >= 1 and g["h"] >= 1, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]
        if p["type"] == "row":
            assert g["w"] == 24 and g["h"] == 1 and p["panels"] == [] and not p["collapsed"]
            continue
        assert p["type"] in ("timeseries", "stat", "table", "gauge", "bargauge"), p["type"]
        assert p["title"], p
        assert p["datasource"]["uid"] == DS_UID, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(set(refs)) == len(refs), p["title"]
        for t in p["targets"]:
            assert t.get("expr", "").strip(), (p["title"], t)
            assert t["datasource"]["uid"] == DS_UID, (p["title"], t)
    titles = " ".join(p["title"] for p in panels if p["type"] == "row")
    for section in ("Proxy", "Mirror", "Shadow"):
        assert section in titles, titles


def test_every_expression_is_valid_promql(tmp_path):
    """Each dashboard query (variables substituted) as a recording rule for promtool to parse."""
    rules = [{"record": f"dashboard:query_{n}", "expr": substitute(expr)}
             for n, (_, _, expr) in enumerate(dashboard_targets())]
    f = tmp_path / "dashboard-queries.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    res = promtool("check", "rules", str(f))
    assert res.returncode == 0, res.stdout + res.stderr


def test_names_are_found_in_expressions():
    """The extraction the checks below rely on."""
    e = ('histogram_quantile(0.99, sum by (endpoint, le) (rate(shadowgate_x_bucket{job=~"$job",'
         'result=~"a|b"}[$__rate_interval]))) / on (endpoint) group_left max(shadowgate_y) '
         'or up{job="shadowgate"} == 0 and shadowgate_z > 30 unless shadowgate_w')
    assert metric_names(e) == {"shadowgate_x_bucket", "shadowgate_y", "up", "shadowgate_z",
                               "shadowgate_w"}
    assert ("shadowgate_x_bucket", "result", "=~", "a|b") in label_matchers(e)
    assert grouping_labels(e) == {"endpoint", "le"}


# ---- the real binary, and a real Prometheus scraping it --------------------------------------

class Prometheus:
    """A Prometheus server (Debian's binary) of the test's own: scrapes shadowgate's admin
    listener every second as job "shadowgate" and evaluates the alert rules every second."""

    def __init__(self, workdir: Path, admin_port: int):
        workdir.mkdir(parents=True, exist_ok=True)
        self.target = f"127.0.0.1:{admin_port}"
        cfg = workdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "shadowgate",
                                "static_configs": [{"targets": [self.target]}]}]}))
        self.log_path = workdir / "prometheus.log"
        # Prometheus cannot be given port 0 and report it: a port probed free may be taken before
        # it binds, and then it exits at once ("address already in use"); try another port then.
        # /-/ready answered while our process runs is our process (the port is its, or it died).
        for _attempt in range(5):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.proc = subprocess.Popen(
                [tool("prometheus"), f"--config.file={cfg}",
                 f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if request("GET", self.url + "/-/ready", timeout=2)[0] == 200 and \
                            self.proc.poll() is None:
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            if self.proc.poll() is None or "address already in use" not in self.log():
                break
        self.stop()
        raise RuntimeError(f"prometheus did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def api(self, path: str, **params):
        query = urllib.parse.urlencode(params)
        status, _, body = request("GET", f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""))
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "success", (path, params, status, doc)
        return doc["data"]

    def query(self, expr: str) -> list:
        return self.api("query", query=expr)["result"]

    def active_alerts(self) -> list:
        return self.api("alerts")["alerts"]

    def wait_for(self, what: str, predicate, timeout=30.0):
        return wait_for(f"prometheus: {what}", predicate, timeout=timeout, interval=0.25,
                        detail=lambda: f"alerts {self.active_alerts()}\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """shadowgate in the shadow stage with Prometheus scraping it, after writes, reads and one
    discrepancy planted in Dolt (get_block of user da-1). Yields (stack, prometheus, metrics)."""
    tmp = tmp_path_factory.mktemp("deploy")
    s = Stack(tmp, shadow=SHADOW)
    prom = None
    try:
        prom = Prometheus(tmp / "prometheus", s.sg.admin_port)
        # Its first scrape comes a few seconds after start (target discovery settles first);
        # the traffic below must come after it, so every counter has a sample before it moved.
        prom.wait_for("first scrape", lambda: prom.query('up{job="shadowgate"} == 1'))
        users = ["da-1", "da-2"]
        init_users(s, users)
        shas = {u: put(s, u, "student", f"first {u}\n") for u in users}
        put(s, "da-1", "journey", "a journey\n")
        s.converge()
        for u in users:
            read_all(s, u, "student", shas[u])
        st = wait_shadow_idle(s)
        assert discrepancy_total(st) == 0, st
        # Drift behind the mirror's back: every get_block read of da-1/student now differs.
        plant(s, "UPDATE blocks SET content = CONCAT(content, 'planted\\n') "
                 "WHERE user_id = 'da-1' AND label = 'student'")
        for _ in range(3):
            read_all(s, "da-1", "student", shas["da-1"])
        st = wait_shadow_idle(s)
        assert st["endpoints"]["get_block"]["results"]["mismatch"] >= 3, st
        yield s, prom, s.sg.metrics()
    finally:
        if prom:
            prom.stop()
        s.close()


def test_the_binary_exposes_every_metric_and_label_the_assets_use(live):
    _, _, metrics = live
    exposed = parse_series(metrics)
    problems = []
    for where, expr in all_exprs():
        names = metric_names(expr)
        for name in sorted(names):
            if name == "up":
                continue
            if not name.startswith("shadowgate_"):
                problems.append(f"{where}: {name} is not a shadowgate metric")
            elif not series_of(exposed, name):
                problems.append(f"{where}: {name} is not in /metrics")
        known = {k for n in names for series in series_of(exposed, n) for k in series}
        known |= TARGET_LABELS
        for label in grouping_labels(expr):
            if label not in known:
                problems.append(f"{where}: no metric of the expression has label {label!r}")
        for name, label, op, value in label_matchers(expr):
            if name == "up" or label in TARGET_LABELS:
                continue
            series = series_of(exposed, name)
            if series and label not in {k for s in series for k in s}:
                problems.append(f"{where}: {name} has no label {label!r}")
                continue
            if op not in ("=", "=~") or "$" in value:
                continue
            values = [value] if op == "=" else value.split("|")
            if op == "=~" and not re.fullmatch(r"[\w|]+", value):
                continue  # a real regex: not checked value by value
            have = {s.get(label) for s in series}
            for v in values:
                if v not in have:
                    problems.append(f"{where}: no series {name}{{{label}={v!r}}} in /metrics")
    assert not problems, "\n".join(problems)
    # The series the discrepancy panels and alert are about, with the planted drift.
    assert metrics['shadowgate_compare_total{endpoint="get_block",target="dolt",'
                   'result="mismatch"}'] >= 3
    assert any(k.startswith("shadowgate_compare_differing_paths_total{") for k in metrics)


def test_real_prometheus_loads_the_rules_answers_every_panel_and_alerts(live):
    s, prom, metrics = live
    # Prometheus has scraped the state after the drift.
    seen = sum(v for k, v in metrics.items() if k.startswith("shadowgate_compare_total{")
               and any(f'result="{r}"' in k for r in DISCREPANCIES))
    expr = f'sum(shadowgate_compare_total{{result=~"{"|".join(DISCREPANCIES)}"}})'
    prom.wait_for("scrape of the drift",
                  lambda: (r := prom.query(expr)) and float(r[0]["value"][1]) >= seen)
    # The differing-path series appear with the first discrepancy: increase() needs two samples.
    prom.wait_for("two samples of the differing paths", lambda: prom.query(
        "min(count_over_time(shadowgate_compare_differing_paths_total[1m])) >= 2"))

    groups = prom.api("rules")["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(loaded) == {r["alert"] for r in alert_rules()}, loaded.keys()
    for name, r in loaded.items():
        assert r["health"] == "ok", (name, r.get("lastError"))

    # Every dashboard query runs and shows data on this stack.
    empty = []
    for title, ref, q in dashboard_targets():
        if not prom.query(substitute(q)):
            empty.append(f"{title} {ref}: {q}")
    assert not empty, "queries without data:\n" + "\n".join(empty)

    # The drifted endpoint's discrepancy alert goes pending (it fires after its 10 minutes);
    # a healthy stack has no other alert.
    def pending_discrepancy():
        return [a for a in prom.active_alerts()
                if a["labels"]["alertname"] == "ShadowgateDiscrepancyRateHigh"
                and a["labels"].get("endpoint") == "get_block"
                and a["labels"].get("target") == "dolt"]
    alert = prom.wait_for("pending ShadowgateDiscrepancyRateHigh", pending_discrepancy)[0]
    assert alert["state"] == "pending" and alert["labels"]["severity"] == "warning", alert
    assert "get_block" in alert["annotations"]["summary"], alert
    others = [a["labels"] for a in prom.active_alerts()
              if a["labels"]["alertname"] != "ShadowgateDiscrepancyRateHigh"]
    assert others == [], others

    # shadowgate stops: its scrape fails and ShadowgateDown goes pending for its instance.
    assert s.sg.stop() == 0

    def pending_down():
        return [a for a in prom.active_alerts() if a["labels"]["alertname"] == "ShadowgateDown"]
    down = prom.wait_for("pending ShadowgateDown", pending_down)
    assert [(a["labels"]["job"], a["labels"]["instance"], a["labels"]["severity"]) for a in down] \
        == [("shadowgate", prom.target, "critical")], down
