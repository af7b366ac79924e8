"""The shadowgate demo: the v1 reference service with a few users, shadowgate in front of it, a mix
of real traffic through the proxy (and an agent writing storage directly), a summary of what
passed, then a backfill of v1 storage into a local MariaDB (`shadowgate migrate --verify`) and a
comparison of every read answered by Dolt's side with v1's answer, and shadowgate's metrics.
Run by deploy/demo.sh (which builds the binary first).

Everything runs on loopback in temporary directories and is stopped at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from sg_harness import base_config, start_shadowgate  # noqa: E402
from v1ref_harness import request, start_v1ref  # noqa: E402

LABELS = ["student", "journey", "progress", "operating_manual"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    data = Path(tempfile.mkdtemp(prefix="shadowgate-demo-v1-"))
    print(f"demo: v1 reference service, storage in {data}")
    v1 = start_v1ref(data)
    token = "demo-admin-token"
    gate = start_shadowgate(base_config(v1.port, stage="off"),
                            env={"SHADOWGATE_ADMIN_TOKEN": token})
    print(f"demo: v1 on {v1.url}, shadowgate on {gate.url} (admin {gate.admin_url})")

    tally = collections.Counter()
    mismatches = []
    latencies = collections.defaultdict(list)

    def via_proxy(method, path, body=None):
        t0 = time.perf_counter()
        status, headers, raw = request(method, gate.url + path, body)
        latencies[method].append(time.perf_counter() - t0)
        tally[(method, path_kind(path), status)] += 1
        return status, raw

    def check_same(path):
        """A read through the proxy equals the same read straight from v1."""
        proxied = request("GET", gate.url + path)
        direct = request("GET", v1.url + path)
        if (proxied[0], proxied[2]) != (direct[0], direct[2]):
            mismatches.append(path)

    try:
        users = [f"demo-user-{i:02d}" for i in range(args.users)]
        for u in users:
            via_proxy("POST", "/users/init", {"user_id": u, "name": u.title()})
        shas = collections.defaultdict(list)
        for n in range(args.requests):
            u, label = rng.choice(users), rng.choice(LABELS)
            r = rng.random()
            if r < 0.35:
                status, raw = via_proxy("PUT", f"/users/{u}/blocks/{label}",
                                        {"content": f"## {label}\n\nrevision {n} by {u}",
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
            elif r < 0.90:
                status, raw = via_proxy("GET", f"/users/{u}/blocks/{label}/diffs")
                diffs = json.loads(raw) if status == 200 else []
                if diffs:
                    action = rng.choice(["approve", "reject"])
                    via_proxy("POST", f"/users/{u}/blocks/{label}/diffs/{diffs[0]['id']}/{action}")
            elif r < 0.95:
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

        print("\nwhat passed through shadowgate:")
        print(f"  {'method':7} {'endpoint':44} {'status':>6} {'count':>6}")
        for (method, kind, status), count in sorted(tally.items(), key=str):
            print(f"  {method:7} {kind:44} {status:>6} {count:>6}")
        for method, values in sorted(latencies.items()):
            values.sort()
            print(f"  {method} latency through the proxy: p50 {values[len(values) // 2] * 1000:.2f} ms,"
                  f" max {values[-1] * 1000:.2f} ms over {len(values)} requests")
        compared = args.users * (1 + 3 * len(LABELS))
        print(f"\nfinal state read through shadowgate vs straight from v1: "
              f"{compared - len(mismatches)}/{compared} identical")

        backfill_ok = backfill_and_compare(v1, data, users, gate)

        metrics = gate.metrics()
        print("\nshadowgate metrics (non-zero request counters):")
        for name, value in sorted(metrics.items()):
            if name.startswith("shadowgate_requests_total") and value:
                print(f"  {name} {value:g}")
        for name in ['shadowgate_upstream_connects_total{upstream="v1"}',
                     'shadowgate_upstream_reuses_total{upstream="v1"}',
                     "shadowgate_accepted_connections_total"]:
            print(f"  {name} {metrics.get(name, 0):g}")
        ready = request("GET", gate.admin_url + "/readyz")
        print(f"\nadmin /readyz: {ready[0]} {ready[2].decode().strip()}")
        return 0 if not mismatches and backfill_ok else 1
    finally:
        gate.stop()
        v1.stop()


def backfill_and_compare(v1, data: Path, users, gate) -> bool:
    """Backfills v1 storage into a local MariaDB with `shadowgate migrate --verify`, then asks
    Dolt's side (`shadowgate render`) every read v1 answers and compares the bytes."""
    import os
    import subprocess
    db_dir = Path(tempfile.mkdtemp(prefix="shadowgate-demo-mariadb-"))
    server = REPO / "tests" / "mariadb" / "server.sh"
    subprocess.run(["bash", str(server), "start", str(db_dir)], check=True, capture_output=True)
    try:
        conn = dict(line.split("=", 1) for line in (db_dir / "conn.env").read_text().splitlines()
                    if "=" in line)
        cfg = {"v1_data_dir": str(data),
               "dolt": {"host": conn["SG_MARIADB_HOST"], "port": int(conn["SG_MARIADB_PORT"]),
                        "user": conn["SG_MARIADB_USER"], "database": conn["SG_MARIADB_DATABASE"]}}
        cfg_path = db_dir / "shadowgate.json"
        cfg_path.write_text(json.dumps(cfg))
        env = {**os.environ, "SHADOWGATE_DOLT_PASSWORD": conn["SG_MARIADB_PASSWORD"]}
        binary = os.environ.get("SHADOWGATE_BIN", str(REPO / "build" / "proxy" / "shadowgate"))
        time.sleep(2.1)  # let the newest pending_diffs/ files leave the fingerprint's racy window
        print(f"\nbackfill into a local MariaDB ({conn['SG_MARIADB_HOST']}:"
              f"{conn['SG_MARIADB_PORT']}): shadowgate migrate --verify")
        res = subprocess.run([binary, "migrate", "-c", str(cfg_path), "--verify"],
                             capture_output=True, text=True, env=env)
        print("  " + res.stdout.strip().replace("\n", "\n  "))
        paths = []
        for u in users:
            paths += [f"/users/{u}/blocks", f"/users/{u}/blocks/diffs/counts", f"/users/{u}/exists"]
            for label in LABELS:
                paths += [f"/users/{u}/blocks/{label}", f"/users/{u}/blocks/{label}/diffs",
                          f"/users/{u}/blocks/{label}/history?limit=100"]
        rendered = subprocess.run([binary, "render", "-c", str(cfg_path), *paths],
                                  capture_output=True, text=True, env=env)
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
        print(f"  Dolt's answers (rendered in v1's shape) vs v1's answers through shadowgate: "
              f"{same}/{len(paths)} identical")
        return res.returncode == 0 and same == len(paths) and len(answers) == len(paths)
    finally:
        subprocess.run(["bash", str(server), "stop", str(db_dir)], capture_output=True)


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
