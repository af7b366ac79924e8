#!/usr/bin/python3
"""mirror_bench: what mirroring v1 writes into Dolt costs and how fast it keeps up.

A benchmark program (prints numbers, exits 0 whenever it could measure), not a test.

Sustained write load (PUT block, N client threads) through shadowgate to the v1 reference
service, in rounds that alternate between a shadowgate in the `off` stage and one in the
`shadow` stage (each in front of its own identical v1 reference service, everything running
the whole time), so that "mirroring off" and "mirroring on" are measured in the same run, on
the same machine. Reports:

- v1-path PUT latency (p50, p99) and throughput through each: the goal is no measurable
  difference (shadow p50 within 10% of off, or within the noise between off rounds);
- mirror throughput: v1 commits applied per second while the load runs, and after it;
- mirror lag (change noticed -> in Dolt): p50, p99, max, from shadowgate's own samples;
- an outage phase (optional, --outage S): MariaDB halted for S seconds under load: write latency
  during it, and how long Dolt takes to catch up after;
- the capture scan at --scan-users users (default 10,000): generated storage (or --storage-dir)
  migrated into the database, then shadowgate's scan duration (shadowgate_mirror_scan_seconds).

Usage: tests/bench/mirror_bench.py [--rounds 4] [--round-seconds 10] [--clients 4] [--users 20]
           [--outage 0] [--scan-users 10000] [--storage-dir DIR] [--out FILE]
Env: SHADOWGATE_BIN (default build/proxy/shadowgate). Everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import db_harness  # noqa: E402
from sg_harness import base_config, start_shadowgate  # noqa: E402
from v1ref_harness import request, start_v1ref  # noqa: E402

TOKEN = "mirror-bench"


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def log(msg):
    print(f"mirror_bench: {msg}", file=sys.stderr, flush=True)


def mirror_status(sg):
    status, _, body = request("GET", sg.admin_url + "/admin/mirror",
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, (status, body)
    return json.loads(body)


def wait_idle(sg, timeout=300.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        st = mirror_status(sg)
        if st["idle"]:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise RuntimeError(f"mirror not idle after {timeout} s: {mirror_status(sg)}")


def load(url, users, clients, seconds, tag):
    """PUTs from `clients` threads for `seconds`; returns (latencies, errors)."""
    lat, errors = [], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(k):
        n = 0
        while time.monotonic() < stop_at:
            u = users[(k + n * clients) % len(users)]
            body = {"content": f"---\nblock: student\ntitle: {tag}\n---\n\n## {tag} {k} {n}\n\n"
                               + "Some markdown text. " * 40}
            t0 = time.perf_counter()
            try:
                status, _, _ = request("PUT", f"{url}/users/{u}/blocks/student", body, timeout=30)
            except OSError:
                status = 0
            dt = time.perf_counter() - t0
            with lock:
                if status == 200:
                    lat.append(dt)
                else:
                    errors[0] += 1
            n += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors[0]


def metric(sg, name):
    return sg.metrics().get(name, 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="off/shadow round pairs")
    ap.add_argument("--round-seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--outage", type=float, default=0, help="seconds of MariaDB outage (0: skip)")
    ap.add_argument("--scan-users", type=int, default=10000, help="0: skip the scan measurement")
    ap.add_argument("--storage-dir", default="", help="reuse/keep generated scan storage here")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sg-mirror-bench."))
    keep_work = [False]
    server = db_harness.private_server(work / "db")
    procs = []
    report = {"args": vars(args)}
    try:
        log(f"work directory {work}; starting MariaDB")
        db = server.start()
        db_harness.fresh_database(db, "bench_mirror")
        # Two identical v1 services, one behind each proxy, used in turn: the mirror must see
        # only the shadow rounds' writes (writes through the off proxy would be a backlog for
        # it, found by its capture scan and mirrored during the off rounds, which would then
        # measure the mirror's load too).
        data = work / "v1data"
        data.mkdir()
        data_off = work / "v1data-off"
        data_off.mkdir()
        v1 = start_v1ref(data)
        procs.append(v1)
        v1_off = start_v1ref(data_off)
        procs.append(v1_off)
        env = {"SHADOWGATE_DOLT_PASSWORD": db["SG_MARIADB_PASSWORD"],
               "SHADOWGATE_ADMIN_TOKEN": TOKEN}
        dolt = db_harness.dolt_config(db, "bench_mirror")
        common = {"log": {"level": "warn"}, "proxy": {"threads": 2}}
        off = start_shadowgate(base_config(v1_off.port, stage="off", **common), env=env)
        procs.append(off)
        on = start_shadowgate(base_config(v1.port, stage="shadow", v1_data_dir=str(data),
                                          dolt=dolt, **common), env=env)
        procs.append(on)

        users = [f"bench-{i:03d}" for i in range(args.users)]
        for u in users:
            for sg in (on, off):
                status, _, _ = request("POST", sg.url + "/users/init", {"user_id": u})
                assert status == 200
        wait_idle(on)

        # Warm-up (unreported): v1, both proxies, the mirror, the page cache.
        load(off.url, users, args.clients, 5, "warm")
        load(on.url, users, args.clients, 5, "warm")
        wait_idle(on)

        rounds = []
        for r in range(args.rounds):
            # off first in even rounds, shadow first in odd ones: v1 gets faster as it warms up,
            # which would otherwise favour whichever always runs second.
            order = (("off", off), ("shadow", on)) if r % 2 == 0 else (("shadow", on), ("off", off))
            for stage, sg in order:
                applied0 = metric(on, "shadowgate_mirror_applied_commits_total")
                t0 = time.monotonic()
                lat, errs = load(sg.url, users, args.clients, args.round_seconds, f"r{r}{stage}")
                elapsed = time.monotonic() - t0
                applied = metric(on, "shadowgate_mirror_applied_commits_total") - applied0
                rounds.append({"round": r, "stage": stage, "writes": len(lat), "errors": errs,
                               "seconds": elapsed, "p50_ms": pct(lat, 0.5) * 1e3,
                               "p99_ms": pct(lat, 0.99) * 1e3, "mean_ms": statistics.mean(lat) * 1e3
                               if lat else 0, "rps": len(lat) / elapsed,
                               "applied_during": applied, "lat": lat})
                log(f"round {r} {stage}: {len(lat)} writes, p50 {pct(lat, .5) * 1e3:.2f} ms, "
                    f"p99 {pct(lat, .99) * 1e3:.2f} ms, mirror applied {applied:.0f}")
                if stage == "shadow":
                    drain = wait_idle(on)
                    rounds[-1]["drain_s"] = drain
        st = mirror_status(on)
        report["lag"] = st["recent_lag_seconds"]
        report["rounds"] = rounds

        # Mirror throughput: a burst of writes while the mirror is held back, then released
        # (the circuit opens while MariaDB is halted), then the time to apply the backlog.
        if args.outage > 0:
            log(f"outage: halting MariaDB for {args.outage:.0f} s under load")
            base_lat, _ = load(on.url, users, args.clients, 5, "pre-outage")
            wait_idle(on)
            applied0 = metric(on, "shadowgate_mirror_applied_commits_total")
            server.halt()
            out_lat, out_err = load(on.url, users, args.clients, args.outage, "outage")
            t_restart = time.monotonic()
            server.start()
            drain = wait_idle(on, timeout=600)
            applied = metric(on, "shadowgate_mirror_applied_commits_total") - applied0
            report["outage"] = {
                "seconds": args.outage, "writes": len(out_lat), "errors": out_err,
                "p50_before_ms": pct(base_lat, 0.5) * 1e3, "p99_before_ms": pct(base_lat, .99) * 1e3,
                "p50_during_ms": pct(out_lat, 0.5) * 1e3, "p99_during_ms": pct(out_lat, .99) * 1e3,
                "catch_up_s": time.monotonic() - t_restart, "drain_s": drain,
                "applied_after": applied,
                "catch_up_commits_per_s": applied / max(drain, 1e-9)}
            log(f"outage: {report['outage']}")

        # Verify the end state (the benchmark is worthless if the mirror was wrong).
        cfg_path = work / "verify.json"
        cfg_path.write_text(json.dumps({"v1_data_dir": str(data), "dolt": dolt}))
        bin_path = os.environ.get("SHADOWGATE_BIN", str(ROOT / "build" / "proxy" / "shadowgate"))
        res = subprocess.run([bin_path, "verify", "-c", str(cfg_path)], capture_output=True,
                             text=True, env={**os.environ, **env}, timeout=600)
        report["verify"] = res.stdout.strip().splitlines()[0] if res.stdout else res.stderr
        log(report["verify"])
        report["verify_ok"] = res.returncode == 0
        if res.returncode != 0:
            # Keep the evidence: shadowgate's logs and configs (the work directory is kept too).
            os.environ["SG_KEEP_TEST_DIRS"] = "1"
            keep_work[0] = True
            log("verify found differences (first lines):\n" + "\n".join(
                res.stdout.strip().splitlines()[:8]))
            log(f"mirror status: {json.dumps(mirror_status(on))[:3000]}")
            log(f"kept: {work}, shadowgate logs {off.log_path} {on.log_path}")
        on_metrics = on.metrics()
        report["mirror_metrics"] = {k: v for k, v in on_metrics.items()
                                    if k.startswith("shadowgate_mirror_")}
        for p in (off, on, v1, v1_off):
            p.stop()
        procs.clear()

        if args.scan_users > 0:
            report["scan"] = scan_benchmark(args, work, db, env, bin_path)
    finally:
        for p in procs:
            try:
                p.stop()
            except Exception:  # noqa: BLE001
                pass
        if keep_work[0]:
            try:
                server.halt()
            except Exception:  # noqa: BLE001
                pass
        else:
            try:
                server.stop()
            except Exception:  # noqa: BLE001
                pass
            shutil.rmtree(work, ignore_errors=True)

    text = format_report(report)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        log(f"report written to {args.out}")


def scan_benchmark(args, work, db, env, bin_path):
    n = args.scan_users
    if args.storage_dir:
        storage = Path(args.storage_dir) / f"v1-{n}-packed"
    else:
        storage = work / f"v1-{n}"
    if not (storage.exists() and Path(str(storage) + ".gen").exists()):
        log(f"scan: generating {n} users")
        res = subprocess.run(["/usr/bin/python3", str(HERE / "gen_v1_storage.py"), str(storage),
                              "--users", str(n), "--blocks", "4", "--versions", "10",
                              "--diffs", "3", "--jobs", "2"], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        Path(str(storage) + ".gen").write_text(res.stderr + res.stdout)
        time.sleep(2.1)
    db_harness.fresh_database(db, "bench_scan")
    dolt = db_harness.dolt_config(db, "bench_scan")
    cfg = work / "scan.json"
    cfg.write_text(json.dumps({"v1_data_dir": str(storage), "dolt": dolt}))
    log(f"scan: migrating {n} users")
    t0 = time.monotonic()
    res = subprocess.run([bin_path, "migrate", "-c", str(cfg)], capture_output=True, text=True,
                         env={**os.environ, **env})
    assert res.returncode == 0, res.stdout + res.stderr
    migrate_s = time.monotonic() - t0
    sg = start_shadowgate(base_config(1, stage="shadow", v1_data_dir=str(storage), dolt=dolt,
                                      mirror={"scan_interval_ms": 3000},
                                      log={"level": "warn"}), env=env)
    try:
        scans = []
        deadline = time.monotonic() + 120
        while len(scans) < 3 and time.monotonic() < deadline:
            m = sg.metrics()
            if m.get("shadowgate_mirror_scans_total", 0) > len(scans):
                scans.append(m["shadowgate_mirror_scan_seconds"])
            time.sleep(0.2)
        m = sg.metrics()
        return {"users": n, "migrate_s": migrate_s, "scan_seconds": scans,
                "found": m.get("shadowgate_mirror_scan_found_total", 0),
                "scan_users": m.get("shadowgate_mirror_scan_users", 0)}
    finally:
        sg.stop()
        db_harness.drop_database(db, "bench_scan")


def format_report(r):
    a = r["args"]
    lines = ["# shadowgate mirror benchmark", "",
             "Written by `tests/bench/mirror_bench.py` (see README.md). Load: "
             f"{a['clients']} client threads doing PUT /users/{{u}}/blocks/student (~1 KiB "
             f"markdown) over {a['users']} users, rounds of {a['round_seconds']:.0f} s "
             "alternating between a shadowgate in the `off` stage and one in the `shadow` stage, "
             "each in front of its own v1 reference service (FastAPI + GitPython, the "
             "bottleneck; two identical instances so that the mirror sees only the shadow "
             "rounds' writes), all running throughout; within each round pair the order "
             "alternates (off first in even pairs, shadow first in odd ones). Dolt is MariaDB 10.11 (tests/mariadb/"
             "server.sh); Dolt commits per_v1_commit (recorded in mirror_commit_log).", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- machine: {os.cpu_count()} CPUs; load average before: "
             f"{' '.join(open('/proc/loadavg').read().split()[:3])}", "",
             "| round | stage | writes | writes/s | p50 ms | p99 ms | mirror applied during "
             "round | drain after s |", "|---|---|---|---|---|---|---|---|"]
    for x in r["rounds"]:
        lines.append(f"| {x['round']} | {x['stage']} | {x['writes']} | {x['rps']:.1f} | "
                     f"{x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['applied_during']:.0f} | "
                     f"{x.get('drain_s', 0):.2f} |")
    by = {s: [v for x in r["rounds"] if x["stage"] == s for v in x["lat"]]
          for s in ("off", "shadow")}
    off_p50, on_p50 = pct(by["off"], .5) * 1e3, pct(by["shadow"], .5) * 1e3
    off_p99, on_p99 = pct(by["off"], .99) * 1e3, pct(by["shadow"], .99) * 1e3
    off_rounds = [x["p50_ms"] for x in r["rounds"] if x["stage"] == "off"]
    noise = (max(off_rounds) - min(off_rounds)) if len(off_rounds) > 1 else 0
    shadow_rounds = [x for x in r["rounds"] if x["stage"] == "shadow"]
    applied = sum(x["applied_during"] for x in shadow_rounds)
    secs = sum(x["seconds"] for x in shadow_rounds)
    lag = r["lag"]
    ratio = on_p50 / off_p50 if off_p50 else 0
    lines += ["", "## Summary", "",
              f"- v1-path PUT latency, all rounds: off p50 {off_p50:.2f} ms / p99 {off_p99:.2f} ms;"
              f" shadow p50 {on_p50:.2f} ms / p99 {on_p99:.2f} ms (shadow/off p50 = "
              f"{ratio:.3f}; spread of p50 between off rounds: {noise:.2f} ms)",
              f"- mirror throughput while writes flowed through the shadow proxy: "
              f"{applied / secs if secs else 0:.1f} v1 commits applied/s (v1 made "
              f"{sum(x['writes'] for x in shadow_rounds) / secs if secs else 0:.1f} writes/s; "
              "drain after each round below)",
              f"- mirror lag (change noticed -> in Dolt), last {lag['samples']} passes: p50 "
              f"{lag['p50'] * 1e3:.1f} ms, p99 {lag['p99'] * 1e3:.1f} ms, max "
              f"{lag['max'] * 1e3:.1f} ms",
              f"- end state: {r['verify']}"]
    # Each shadow round against the off round of the same pair (adjacent in time; the order
    # alternates between pairs): the median of those ratios is the verdict.
    pairs = []
    for x in r["rounds"]:
        if x["stage"] == "shadow":
            prev = next(y for y in r["rounds"] if y["round"] == x["round"] and y["stage"] == "off")
            pairs.append(x["p50_ms"] / prev["p50_ms"] if prev["p50_ms"] else 0)
    median_pair = statistics.median(pairs) if pairs else 0
    lines.append(f"- shadow/off p50 per round pair: {', '.join(f'{p:.3f}' for p in pairs)} "
                 f"(median {median_pair:.3f})")
    goal = median_pair <= 1.10 and r.get("verify_ok", False)
    lines.append(f"- goal (no measurable difference: the median shadow/off p50 ratio of the "
                 f"round pairs within 10%, and Dolt equal to v1 at the end): "
                 f"{'MET' if goal else 'NOT MET'}")
    if "outage" in r:
        o = r["outage"]
        lines += ["", "## MariaDB outage under load", "",
                  f"- MariaDB halted {o['seconds']:.0f} s while {a['clients']} clients wrote "
                  f"through the shadow proxy: {o['writes']} writes, {o['errors']} errors",
                  f"- PUT latency before: p50 {o['p50_before_ms']:.2f} ms, p99 "
                  f"{o['p99_before_ms']:.2f} ms; during: p50 {o['p50_during_ms']:.2f} ms, p99 "
                  f"{o['p99_during_ms']:.2f} ms (during/before p50 = "
                  f"{o['p50_during_ms'] / o['p50_before_ms'] if o['p50_before_ms'] else 0:.3f})",
                  "- the outage also shows what mirroring costs the v1 path when the machine is "
                  "saturated (2 cores shared by two v1 services, the load generator, MariaDB "
                  "and shadowgate): before, the mirror was applying every write; during, it "
                  "only queued them",
                  f"- after the restart: Dolt caught up in {o['catch_up_s']:.1f} s "
                  f"({o['applied_after']:.0f} v1 commits applied, "
                  f"{o['catch_up_commits_per_s']:.1f}/s; includes the circuit's cool-down)"]
    if "scan" in r:
        s = r["scan"]
        scans = ", ".join(f"{x:.3f}" for x in s["scan_seconds"])
        lines += ["", "## Capture scan", "",
                  f"- {s['users']:,} users (generated: 4 blocks x 10 versions, 3 diffs each), "
                  f"migrated first ({s['migrate_s']:.1f} s), then shadowgate started in the "
                  f"shadow stage: scan durations {scans} s (the first right at start-up); "
                  f"users found changed: {s['found']:.0f}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
