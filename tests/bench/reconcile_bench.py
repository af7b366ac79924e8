#!/usr/bin/python3
"""reconcile_bench: how fast `shadowgate reconcile` checks v1 storage against Dolt.

A benchmark program (prints numbers, exits 0 whenever it could measure), not a test.

For each size: synthetic v1 storage (gen_v1_storage.py: N users x 4 blocks x 10 versions, 3
pending diffs per user), backfilled into a private MariaDB with `shadowgate migrate`, then
`shadowgate reconcile` on the clean data (timed: users/s, max RSS) and again after drift was
planted in a few users (it must find exactly those). Goal: 10,000 users in under 60 s.

Usage: tests/bench/reconcile_bench.py [--sizes 1000,10000] [--readers N] [--batch N]
                                      [--storage-dir DIR] [--out FILE]
Env: SHADOWGATE_BIN (default build/proxy/shadowgate). Everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import db_harness  # noqa: E402
from sg_harness import shadowgate_bin  # noqa: E402


def log(msg):
    print(f"reconcile_bench: {msg}", file=sys.stderr, flush=True)


def timed(cmd, env):
    """Runs cmd under /usr/bin/time -v: (returncode, stdout, wall seconds, max RSS KiB)."""
    t0 = time.monotonic()
    res = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env,
                         timeout=3600)
    wall = time.monotonic() - t0
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    return res.returncode, res.stdout, wall, int(rss.group(1)) if rss else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--storage-dir", default="")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sg-reconcile-bench."))
    server = db_harness.private_server(work / "db")
    db = server.start()
    rows = []
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            storage = Path(args.storage_dir) / f"v1-{n}" if args.storage_dir else work / f"v1-{n}"
            if not storage.exists():
                log(f"generating {n} users into {storage}")
                subprocess.run(["/usr/bin/python3", str(HERE / "gen_v1_storage.py"), str(storage),
                                "--users", str(n), "--jobs", "2"], check=True,
                               capture_output=True)
            name = f"reconcile_{n}"
            db_harness.fresh_database(db, name)
            cfg = work / f"{name}.json"
            cfg.write_text(json.dumps({"v1_data_dir": str(storage),
                                       "dolt": db_harness.dolt_config(db, name)}))
            env = db_harness.user_env(db)
            log(f"backfilling {n} users")
            subprocess.run([str(shadowgate_bin()), "migrate", "-c", str(cfg)], check=True,
                           capture_output=True, env=env, timeout=3600)
            cmd = [str(shadowgate_bin()), "reconcile", "-c", str(cfg), "--json",
                   "--readers", str(args.readers), "--batch", str(args.batch)]
            log(f"reconcile of {n} clean users")
            rc, out, wall, rss = timed(cmd, env)
            clean = json.loads(out)
            # Drift in three users: a changed version, a deleted block, a changed diff status.
            users = sorted(p.name for p in storage.iterdir() if (p / ".git").exists())
            picked = [users[0], users[len(users) // 2], users[-1]]
            sql = (f"USE {name}; "
                   f"UPDATE block_versions SET source = CONCAT(source, 'x') "
                   f"WHERE user_id = '{picked[0]}' ORDER BY ordinal LIMIT 1; "
                   f"DELETE FROM blocks WHERE user_id = '{picked[1]}' LIMIT 1; "
                   f"UPDATE pending_diffs SET status = 'rejected' WHERE user_id = '{picked[2]}';")
            db_harness.admin_sql(db, sql)
            rc2, out2, wall2, _ = timed(cmd, env)
            drifted = json.loads(out2)
            found = sorted({d["user"] for d in drifted["drift"]})
            rows.append({"users": n, "rc": rc, "clean": clean["clean"], "seconds": wall,
                         "rate": n / wall, "rss_mib": rss / 1024, "drift_rc": rc2,
                         "drift_seconds": wall2, "found": found == sorted(picked),
                         "kinds": drifted["by_kind"]})
            log(f"{n} users: {wall:.1f} s ({n / wall:.0f} users/s), RSS {rss / 1024:.0f} MiB, "
                f"clean={clean['clean']}; with drift: {wall2:.1f} s, found {found}")
            db_harness.drop_database(db, name)
        text = report(rows, args)
        print(text)
        if args.out:
            Path(args.out).write_text(text)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(rows, args):
    lines = ["# shadowgate reconcile benchmark", "",
             f"Written by `tests/bench/reconcile_bench.py` (readers {args.readers}, batch "
             f"{args.batch}); synthetic storage (4 blocks x 10 versions, 3 pending diffs per user, "
             f"packed objects), MariaDB 10.11 on the same machine.", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- machine: {os.cpu_count()} CPUs", "",
             "| users | clean run | users/s | max RSS | verdict | with 3 drifted users | found them |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['users']:,} | {r['seconds']:.1f} s | {r['rate']:.0f} | "
                     f"{r['rss_mib']:.0f} MiB | {'clean' if r['clean'] and r['rc'] == 0 else 'NOT CLEAN'}"
                     f" | {r['drift_seconds']:.1f} s (exit {r['drift_rc']}) | "
                     f"{'yes' if r['found'] else 'NO'} {r['kinds']} |")
    big = [r for r in rows if r["users"] >= 10000]
    if big:
        ok = big[0]["seconds"] < 60
        lines += ["", f"- goal (10,000 users in under 60 s): {'MET' if ok else 'NOT MET'} "
                      f"({big[0]['seconds']:.1f} s)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
