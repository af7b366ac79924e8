"""The shadowgate demo, in shadow mode: the v1 reference service with a few users already in
it, a local MariaDB standing in for Dolt, a backfill (`shadowgate migrate --verify`), then
shadowgate in the `shadow` stage in front of v1 while a mix of real traffic goes through it (and an
agent writes storage directly), and at the end: what passed, whether the mirror brought Dolt to
exactly v1's state (`shadowgate verify`), every read answered by Dolt's side compared with v1's
answer, shadowgate's own shadow comparisons of every read that went through it, and the
mirror's, comparer's and proxy's metrics. Then a discrepancy is planted in Dolt on purpose: the
comparer must report it (and nothing else), a reconcile run by the service must find it, and the
cutover gate and the HTML report show it. Run by deploy/demo.sh (which builds the binary).

Everything runs on loopback in temporary directories and is stopped at the end (the HTML report
is kept: --report, default ./shadowgate-demo-report.html). Exit code 0 only when every comparison
matched before the planted discrepancy and exactly the planted one was found after it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from sg_harness import base_config, start_shadowgate, varied_body  # noqa: E402
from v1ref_harness import request, start_v1ref  # noqa: E402

LABELS = ["student", "journey", "progress", "operating_manual"]
TOKEN = "demo-admin-token"
BINARY = os.environ.get("SHADOWGATE_BIN", str(REPO / "build" / "proxy" / "shadowgate"))


def run(*args, env):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, env=env, timeout=600)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--report", default="shadowgate-demo-report.html",
                    help="where to write the HTML report (kept after the demo)")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    data = Path(tempfile.mkdtemp(prefix="shadowgate-demo-v1-"))
    db_dir = Path(tempfile.mkdtemp(prefix="shadowgate-demo-mariadb-"))
    server = REPO / "tests" / "mariadb" / "server.sh"
    print(f"demo: v1 reference service, storage in {data}")
    v1 = start_v1ref(data)
    gate = None
    try:
        users = [f"demo-user-{i:02d}" for i in range(args.users)]
        # Half the users exist before shadowgate: their history is what the backfill copies.
        for i, u in enumerate(users[: len(users) // 2]):
            v1.request("POST", "/users/init", {"user_id": u, "name": u.title()})
            for n in range(3):
                v1.request("PUT", f"/users/{u}/blocks/{LABELS[n]}",
                           {"content": f"## {LABELS[n]}\n\nwritten before shadowgate ({n})"})

        subprocess.run(["bash", str(server), "start", str(db_dir)], check=True,
                       capture_output=True)
        conn = dict(line.split("=", 1) for line in (db_dir / "conn.env").read_text().splitlines()
                    if "=" in line)
        dolt = {"host": conn["SG_MARIADB_HOST"], "port": int(conn["SG_MARIADB_PORT"]),
                "user": conn["SG_MARIADB_USER"], "database": conn["SG_MARIADB_DATABASE"]}
        cfg_path = db_dir / "shadowgate.json"
        cfg_path.write_text(json.dumps({"v1_data_dir": str(data), "dolt": dolt}))
        env = {**os.environ, "SHADOWGATE_DOLT_PASSWORD": conn["SG_MARIADB_PASSWORD"],
               "SHADOWGATE_ADMIN_TOKEN": TOKEN}
        time.sleep(2.1)  # let the newest pending_diffs/ files leave the fingerprint's racy window
        print(f"\n1. backfill into a local MariaDB ({dolt['host']}:{dolt['port']}) standing in "
              f"for Dolt: shadowgate migrate --verify")
        res = run("migrate", "-c", str(cfg_path), "--verify", env=env)
        print("  " + res.stdout.strip().replace("\n", "\n  "))
        backfill_ok = res.returncode == 0

        gate = start_shadowgate(
            base_config(v1.port, stage="shadow", v1_data_dir=str(data), dolt=dolt,
                        mirror={"scan_interval_ms": 2000},
                        # v1, MariaDB, the load and shadowgate share this machine: compare every
                        # read rather than only on spare CPU (the production default).
                        shadow={"min_idle_cpu": 0, "max_proxy_wait_us": 0},
                        gate={"state_file": str(db_dir / "gate.json")}),
            env={"SHADOWGATE_ADMIN_TOKEN": TOKEN,
                 "SHADOWGATE_DOLT_PASSWORD": conn["SG_MARIADB_PASSWORD"]})
        print(f"\n2. shadowgate in the shadow stage on {gate.url} (admin {gate.admin_url}) in "
              f"front of v1 on {v1.url}; {args.requests} requests through it")
        tally, mismatches, latencies = traffic(args, rng, v1, gate, users)
        print(f"  final state read through shadowgate vs straight from v1: "
              f"{tally['compared'] - len(mismatches)}/{tally.pop('compared')} identical")

        mirror_ok = wait_for_mirror(gate, cfg_path, env)
        render_ok = compare_reads(gate, cfg_path, env, users)
        shadow_ok = shadow_summary(gate)
        report(gate, tally, latencies)
        planted_ok = planted_discrepancy(gate, conn, users, env)
        print_gate(gate, env)
        html_ok = write_report(gate, env, Path(args.report))
        stage_ok = stage_changes(gate, env, users)
        ok = (backfill_ok and not mismatches and mirror_ok and render_ok and shadow_ok and
              planted_ok and html_ok and stage_ok)
        return 0 if ok else 1
    finally:
        if gate:
            gate.stop()
        v1.stop()
        subprocess.run(["bash", str(server), "stop", str(db_dir)], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def traffic(args, rng, v1, gate, users):
    tally = collections.Counter()
    mismatches = []
    latencies = collections.defaultdict(list)

    def via_proxy(method, path, body=None):
        t0 = time.perf_counter()
        status, _headers, raw = request(method, gate.url + path, body)
        latencies[method].append(time.perf_counter() - t0)
        tally[(method, path_kind(path), status)] += 1
        return status, raw

    def check_same(path):
        """A read through the proxy equals the same read straight from v1."""
        proxied = request("GET", gate.url + path)
        direct = request("GET", v1.url + path)
        tally["compared"] += 1
        if (proxied[0], proxied[2]) != (direct[0], direct[2]):
            mismatches.append(path)

    for u in users:
        via_proxy("POST", "/users/init", {"user_id": u, "name": u.title()})
    shas = collections.defaultdict(list)
    for n in range(args.requests):
        u, label = rng.choice(users), rng.choice(LABELS)
        r = rng.random()
        if r < 0.35:
            status, raw = via_proxy("PUT", f"/users/{u}/blocks/{label}",
                                    {"content": varied_body(rng, n, label),
                                     "message": f"edit {n}"})
            if status == 200:
                shas[(u, label)].append(json.loads(raw)["commit_sha"])
        elif r < 0.55:
            via_proxy("GET", f"/users/{u}/blocks/{label}")
        elif r < 0.65:
            via_proxy("GET", f"/users/{u}/blocks/{label}/history?limit=5")
        elif r < 0.75 and shas[(u, label)]:
            via_proxy("GET", f"/users/{u}/blocks/{label}/versions/{rng.choice(shas[(u, label)])}")
        elif r < 0.80 and len(shas[(u, label)]) > 1:
            via_proxy("POST", f"/users/{u}/blocks/{label}/restore",
                      {"commit_sha": shas[(u, label)][0]})
        elif r < 0.85:
            # An agent inside v1 proposes a change straight into storage (bypasses the API).
            v1.request("POST", f"/_test/users/{u}/diffs",
                       {"block_label": label, "operation": "append",
                        "proposed_value": f"agent note {n}", "agent_id": "tutor"})
            tally[("agent", "propose diff (direct to storage)", 200)] += 1
        elif r < 0.88:
            # ... or rewrites a block itself.
            v1.request("POST", f"/_test/users/{u}/blocks/{label}/agent-write",
                       {"content": varied_body(rng, n, label)})
            tally[("agent", "block write (direct to storage)", 200)] += 1
        elif r < 0.92:
            status, raw = via_proxy("GET", f"/users/{u}/blocks/{label}/diffs")
            diffs = json.loads(raw) if status == 200 else []
            if diffs:
                action = rng.choice(["approve", "reject"])
                via_proxy("POST", f"/users/{u}/blocks/{label}/diffs/{diffs[0]['id']}/{action}")
        elif r < 0.96:
            via_proxy("GET", f"/users/{u}/blocks")
            via_proxy("GET", f"/users/{u}/blocks/diffs/counts")
        else:
            via_proxy("GET", f"/users/nobody-{n}/blocks")  # a 404 passes through too
    for u in users:
        check_same(f"/users/{u}/blocks")
        for label in LABELS:
            check_same(f"/users/{u}/blocks/{label}")
            check_same(f"/users/{u}/blocks/{label}/history?limit=100")
            check_same(f"/users/{u}/blocks/{label}/diffs")
    return tally, mismatches, latencies


def mirror_status(gate):
    status, _, body = request("GET", gate.admin_url + "/admin/mirror",
                              headers={"Authorization": f"Bearer {TOKEN}"})
    return json.loads(body) if status == 200 else {}


def wait_for_mirror(gate, cfg_path, env) -> bool:
    """Waits until the mirror is idle (agent writes arrive with the next capture scan), then
    compares Dolt with v1 storage, field by field."""
    t0 = time.monotonic()
    res = None
    while time.monotonic() - t0 < 60:
        if mirror_status(gate).get("idle"):
            res = run("verify", "-c", str(cfg_path), env=env)
            if res.returncode == 0:
                break
        time.sleep(0.5)
    st = mirror_status(gate)
    lag = st.get("recent_lag_seconds", {})
    print(f"\n3. the mirror: idle after {time.monotonic() - t0:.1f} s; lag (change noticed -> "
          f"in Dolt) p50 {lag.get('p50', 0) * 1e3:.1f} ms, p99 {lag.get('p99', 0) * 1e3:.1f} ms "
          f"over {lag.get('samples', 0)} passes; parked users {st.get('parked_users')}")
    print("  shadowgate verify (Dolt vs v1 storage): " +
          (res.stdout.strip().replace("\n", "\n  ") if res else "mirror never idle"))
    return res is not None and res.returncode == 0


def compare_reads(gate, cfg_path, env, users) -> bool:
    """Asks Dolt's side (`shadowgate render`) every read and compares it with v1's answer."""
    paths = []
    for u in users:
        paths += [f"/users/{u}/blocks", f"/users/{u}/blocks/diffs/counts", f"/users/{u}/exists"]
        for label in LABELS:
            paths += [f"/users/{u}/blocks/{label}", f"/users/{u}/blocks/{label}/diffs",
                      f"/users/{u}/blocks/{label}/history?limit=100"]
    rendered = run("render", "-c", str(cfg_path), *paths, env=env)
    answers = [json.loads(line) for line in rendered.stdout.splitlines()]
    same = 0
    for path, answer in zip(paths, answers):
        status, _, body = request("GET", gate.url + path)
        if path.endswith("/blocks") and status == 200:
            key = lambda b: b["label"]  # noqa: E731
            equal = sorted(json.loads(answer["body"]), key=key) == \
                sorted(json.loads(body), key=key)
        else:
            equal = answer["body"].encode() == body
        same += answer["status"] == status and equal
    print(f"\n4. every read answered from Dolt (rendered in v1's shape) vs v1's answer through "
          f"shadowgate: {same}/{len(paths)} identical")
    return same == len(paths) and len(answers) == len(paths)


def shadow_summary(gate) -> bool:
    """shadowgate's own shadow comparisons of the reads that went through it."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    st = {}
    for _ in range(300):
        status, _, body = request("GET", gate.admin_url + "/admin/shadow", headers=headers)
        st = json.loads(body) if status == 200 else {}
        if st.get("idle"):
            break
        time.sleep(0.1)
    classes = ["match", "lagging", "mismatch", "missing_in_v2", "extra_in_v2", "status_mismatch",
               "v2_error", "v2_timeout", "v1_error", "revision_form", "skipped"]
    print("\n5. shadowgate's shadow comparisons (each read's answer from v1 vs Dolt's, after the "
          "client had v1's):")
    print("  " + f"{'endpoint':14}" + "".join(f"{c:>16}" for c in classes))
    discrepancies = 0
    for ep, info in st.get("endpoints", {}).items():
        res = info["results"]
        discrepancies += sum(res[c] for c in ("mismatch", "missing_in_v2", "extra_in_v2",
                                              "status_mismatch"))
        print("  " + f"{ep:14}" + "".join(f"{res[c]:>16}" for c in classes))
    status, _, body = request("GET", gate.admin_url + "/admin/discrepancies?limit=3",
                              headers=headers)
    records = json.loads(body) if status == 200 else []
    print(f"  discrepancies: {discrepancies} (lagging: equal once the mirror had settled)")
    skipped = {k: v for k, v in st.get("skipped", {}).items() if v}
    if skipped:
        print(f"  skipped by reason: {skipped} (busy: this machine had no spare CPU, see "
              f"shadow.min_idle_cpu and shadow.max_proxy_wait_us)")
    for r in records:
        print(f"    {r['endpoint']} {r['target']}: {r['result']} "
              f"{[d['path'] for d in r['differences']][:5]}")
    return bool(st) and discrepancies == 0


def admin(gate, method, path):
    status, _, body = request(method, gate.admin_url + path,
                              headers={"Authorization": f"Bearer {TOKEN}"})
    return status, json.loads(body) if body else None


def planted_discrepancy(gate, conn, users, env) -> bool:
    """Changes one block in Dolt behind shadowgate's back: the comparer must report it on every
    read (and nothing else), and a reconcile run by the service must find exactly that user."""
    victim, label = None, None
    for u in users:
        status, _, raw = request("GET", gate.url + f"/users/{u}/blocks")
        blocks = json.loads(raw) if status == 200 else []
        if blocks:
            victim, label = u, blocks[0]["label"]
            break
    if victim is None:
        print("\n7. planted discrepancy: no user with a block to plant it in")
        return False
    sql = (f"USE {conn['SG_MARIADB_DATABASE']}; UPDATE blocks SET content = CONCAT(content, "
           f"'\\nplanted by the demo') WHERE user_id = '{victim}' AND label = '{label}';")
    subprocess.run(["mariadb", "--no-defaults", "--protocol=socket",
                    f"--socket={conn['SG_MARIADB_SOCKET']}", "-u", conn["SG_MARIADB_ROOT_USER"],
                    "-e", sql], check=True, capture_output=True,
                   env={**os.environ, "MYSQL_PWD": conn["SG_MARIADB_ROOT_PASSWORD"]})
    for _ in range(3):
        request("GET", gate.url + f"/users/{victim}/blocks/{label}")
    for _ in range(300):
        st = admin(gate, "GET", "/admin/shadow")[1]
        if st and st.get("idle"):
            break
        time.sleep(0.1)
    _, records = admin(gate, "GET", "/admin/discrepancies?limit=100")
    print(f"\n7. a discrepancy planted in Dolt on purpose ({victim}/{label}: text appended to "
          f"the block's row), then its block read 3 times through shadowgate:")
    for r in records[:3]:
        print(f"    {r['endpoint']} {r['target']}: {r['result']} "
              f"{[d['path'] for d in r['differences']]}")
    found_ok = len(records) == 3 and all(r["user"] == victim and r["endpoint"] == "get_block"
                                         for r in records)
    print(f"  recorded: {len(records)} (expected 3, all of them this block): "
          f"{'ok' if found_ok else 'WRONG'}")

    status, body = admin(gate, "POST", "/admin/reconcile")
    for _ in range(600):
        status, body = admin(gate, "GET", "/admin/reconcile")
        if body and not body["running"] and body["last"]:
            break
        time.sleep(0.1)
    last = body["last"]
    drifted = sorted({d["user"] for d in last["drift"]})
    print(f"\n8. a reconcile run by the service (POST /admin/reconcile): {last['users_checked']} "
          f"users checked in {last['seconds']:.2f} s, drift {last['by_kind']} in {drifted}")
    reconcile_ok = drifted == [victim]
    print(f"  found exactly the planted drift: {'ok' if reconcile_ok else 'WRONG'}")
    return found_ok and reconcile_ok


def write_report(gate, env, path: Path) -> bool:
    cfg = json.loads(Path(gate.config_path).read_text())
    cfg["admin"]["listen"]["port"] = gate.admin_port
    cli = Path(gate.config_path).with_name("report-cli.json")
    cli.write_text(json.dumps(cfg))
    res = run("report", "-c", str(cli), "--format", "html", "-o", str(path.resolve()), env=env)
    print(f"\n10. the HTML report (shadowgate report --format html): {path.resolve()} "
          f"({'written' if res.returncode == 0 else 'FAILED: ' + res.stderr.strip()})")
    return res.returncode == 0


def stage_changes(gate, env, users) -> bool:
    """The control plane at run time: a pilot cohort moved back to dualwrite, a freeze window
    for it (its writes answer 503 + Retry-After and never reach v1, everyone else writes), then
    the recorded history."""
    cfg = json.loads(Path(gate.config_path).read_text())
    cfg["admin"]["listen"]["port"] = gate.admin_port
    cli = Path(gate.config_path).with_name("stage-cli.json")
    cli.write_text(json.dumps(cfg))
    pilot, other = users[0], users[1]
    steps = [
        ("set", "dualwrite", "--cohort", "pilot", "--users", pilot, "--reason", "demo: a cohort"),
        ("freeze", "--minutes", "1", "--cohort", "pilot", "--reason", "demo: a freeze window"),
    ]
    print("\n11. stages at run time (shadowgate stage): a pilot cohort, a freeze, the history")
    ok = True
    for step in steps:
        res = run("stage", *step, "-c", str(cli), env=env)
        print(f"  $ shadowgate stage {' '.join(step)}\n    " +
              (res.stdout or res.stderr).rstrip().replace("\n", "\n    "))
        ok = ok and res.returncode == 0
    frozen, headers, _ = request("PUT", gate.url + f"/users/{pilot}/blocks/persona",
                                 {"content": "during the freeze"})
    served, _, _ = request("PUT", gate.url + f"/users/{other}/blocks/persona",
                           {"content": "not frozen"})
    print(f"  a write of {pilot} during the freeze: {frozen} (Retry-After "
          f"{headers.get('retry-after', headers.get('Retry-After'))} s); of {other}: {served}")
    ok = ok and frozen == 503 and served == 200
    for step in (("unfreeze", "--reason", "demo: done"), ("history", "--limit", "5")):
        res = run("stage", *step, "-c", str(cli), env=env)
        print(f"  $ shadowgate stage {' '.join(step)}\n    " +
              (res.stdout or res.stderr).rstrip().replace("\n", "\n    "))
        ok = ok and res.returncode == 0
    return ok


def print_gate(gate, env):
    """`shadowgate gate`: the cutover verdict with every criterion (NO-GO here: a demo is not a
    seven-day soak, and no reconcile has run)."""
    cfg = json.loads(Path(gate.config_path).read_text())
    cfg["admin"]["listen"]["port"] = gate.admin_port
    path = Path(gate.config_path).with_name("gate-cli.json")
    path.write_text(json.dumps(cfg))
    res = run("gate", "-c", str(path), env=env)
    print(f"\n9. the cutover gate (shadowgate gate, exit {res.returncode}: 0 only for GO; NO-GO "
          f"here: no 7-day soak, too few reads, the planted drift):")
    print("  " + (res.stdout or res.stderr).rstrip().replace("\n", "\n  "))


def report(gate, tally, latencies):
    print("\n6. what passed through shadowgate:")
    print(f"  {'method':7} {'endpoint':44} {'status':>6} {'count':>6}")
    for (method, kind, status), count in sorted(tally.items(), key=str):
        print(f"  {method:7} {kind:44} {status:>6} {count:>6}")
    for method, values in sorted(latencies.items()):
        values.sort()
        print(f"  {method} latency through the proxy: p50 {values[len(values) // 2] * 1000:.2f} ms,"
              f" max {values[-1] * 1000:.2f} ms over {len(values)} requests")
    metrics = gate.metrics()
    print("\nshadowgate metrics (mirror, and non-zero request counters):")
    for name, value in sorted(metrics.items()):
        if (name.startswith("shadowgate_requests_total") and value) or \
                name.startswith("shadowgate_mirror_") and not name.startswith(
                    "shadowgate_mirror_dolt_errors"):
            print(f"  {name} {value:g}")
    for name, value in sorted(metrics.items()):
        if name.startswith("shadowgate_compare_total") and value:
            print(f"  {name} {value:g}")
    ready = request("GET", gate.admin_url + "/readyz")
    print(f"\nadmin /readyz: {ready[0]} {ready[2].decode().strip()}")


def path_kind(path: str) -> str:
    """The route shape, so the summary groups by endpoint rather than by user."""
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "users" and parts[1] != "init":
        parts[1] = "{u}"
    if len(parts) >= 4 and parts[2] == "blocks" and parts[3] != "diffs":
        parts[3] = "{label}"
    if len(parts) >= 6 and parts[4] == "versions":
        parts[5] = "{sha}"
    if len(parts) >= 6 and parts[4] == "diffs":
        parts[5] = "{id}"
    return "/" + "/".join(parts)


if __name__ == "__main__":
    sys.exit(main())
