"""shadow_bench: what comparing reads costs the client.

A benchmark program (prints numbers, exits 0 whenever it could measure), not a test.

Read load (wrk, GET of one block) through shadowgate in the `shadow` stage with comparison at
0%, 10% and 100% sampling, all in the same run, against two backends:

- the v1 reference service (FastAPI + GitPython) with users backfilled into MariaDB, so that
  comparisons are real (and match);
- a tiny static backend (nginx answering a fixed JSON), where the proxy is the bottleneck and
  every comparison differs from Dolt's answer (the worst case: each one also re-reads both sides).

The rates run in rounds whose order alternates (0, 10, 100, then 100, 10, 0, ...), each with a
fresh shadowgate; reported per rate: client requests/s, p50, p99, and what the comparer did
(compared, skipped by reason). Goal: client-visible throughput at 100% within 5% of 0%.

Usage: tests/bench/shadow_bench.py [--seconds 10] [--rounds 2] [--connections 16] [--out FILE]
Env: SHADOWGATE_BIN (default build/proxy/shadowgate). Everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import db_harness  # noqa: E402
from sg_harness import base_config, shadowgate_bin, start_shadowgate  # noqa: E402
from v1ref_harness import request, start_v1ref  # noqa: E402

TOKEN = "shadow-bench"
RATES = [0.0, 0.1, 1.0]


def log(msg):
    print(f"shadow_bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tiny_nginx(workdir: Path):
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{{"label":"student","content":"static","body":"static","metadata":{{}},"pending_diffs":0}}';
        }}
    }}
}}
""")
    subprocess.run(["nginx", "-c", str(conf), "-p", str(workdir)], check=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("tiny nginx did not start")


def wrk(url, seconds, connections):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": lat(50), "p99": lat(99), "non2xx": int(errors.group(1)) if errors else 0}


TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """CPU seconds of each thread name of process `pid` (/proc/PID/task/*/stat)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / TICKS
    return out


def pids_of(pattern):
    res = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in res.stdout.split()]


def cpu_snapshot(sg_pid, others):
    """CPU seconds so far: shadowgate by thread role, and the other processes by name."""
    snap = {}
    for name, secs in thread_cpu(sg_pid).items():
        role = name if name in ("sg-proxy", "sg-compare") else "sg-other"
        snap[role] = snap.get(role, 0) + secs
    for label, pattern in others.items():
        snap[label] = sum(sum(thread_cpu(p).values()) for p in pids_of(pattern))
    return snap


def shadow_status(sg):
    status, _, body = request("GET", sg.admin_url + "/admin/shadow",
                              headers={"Authorization": f"Bearer {TOKEN}"})
    return json.loads(body) if status == 200 else {}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--out", default="")
    ap.add_argument("--only", choices=["v1ref", "static"], default=None,
                    help="measure one backend only (for investigation)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sg-shadow-bench."))
    log(f"work directory {work}")
    server = db_harness.private_server(work / "db")
    db = server.start()
    data = work / "v1data"
    data.mkdir()
    v1 = start_v1ref(data)
    nginx_port = None
    try:
        users = [f"sb-{i}" for i in range(args.users)]
        for u in users:
            v1.request("POST", "/users/init", {"user_id": u, "name": u})
            for n in range(5):
                v1.request("PUT", f"/users/{u}/blocks/student",
                           {"content": f"## student\n\nversion {n}\n" + "text " * 100})
        dolt = db_harness.dolt_config(db, db["SG_MARIADB_DATABASE"])
        env = {**os.environ, "SHADOWGATE_DOLT_PASSWORD": db["SG_MARIADB_PASSWORD"],
               "SHADOWGATE_ADMIN_TOKEN": TOKEN}
        cfg_path = work / "migrate.json"
        cfg_path.write_text(json.dumps({"v1_data_dir": str(data), "dolt": dolt}))
        time.sleep(2.1)  # pending_diffs/ fingerprints out of their racy window
        res = subprocess.run([str(shadowgate_bin()), "migrate", "-c", str(cfg_path)],
                             capture_output=True, text=True, env=env, timeout=600)
        if res.returncode != 0:
            raise RuntimeError(f"backfill failed: {res.stdout}{res.stderr}")
        nginx_port = start_tiny_nginx(work)

        backends = [("v1 reference service", v1.port, f"/users/{users[0]}/blocks/student"),
                    ("tiny static backend", nginx_port, f"/users/{users[0]}/blocks/student")]
        if args.only:
            backends = [b for b in backends if ("static" in b[0]) == (args.only == "static")]
        results = {name: {rate: [] for rate in RATES} for name, _, _ in backends}
        for name, port, path in backends:
            for rnd in range(args.rounds):
                order = RATES if rnd % 2 == 0 else list(reversed(RATES))
                for rate in order:
                    cfg = base_config(port, stage="shadow", v1_data_dir=str(data), dolt=dolt,
                                      mirror={"scan_interval_ms": 60000},
                                      shadow={"sample_rate": rate})
                    cfg["proxy"]["threads"] = 1
                    sg = start_shadowgate(cfg, env={
                        "SHADOWGATE_DOLT_PASSWORD": db["SG_MARIADB_PASSWORD"],
                        "SHADOWGATE_ADMIN_TOKEN": TOKEN})
                    try:
                        wrk(sg.url + path, 2, args.connections)  # warm-up, not reported
                        before = shadow_status(sg)
                        others = {"mariadb": f"mariadbd.*{work}",
                                  "backend": "nginx: worker process" if "static" in name
                                  else "v1ref"}
                        cpu0 = cpu_snapshot(sg.proc.pid, others)
                        r = wrk(sg.url + path, args.seconds, args.connections)
                        cpu1 = cpu_snapshot(sg.proc.pid, others)
                        after = shadow_status(sg)
                        r["compare"] = diff_counts(before, after)
                        r["cpu"] = {k: (cpu1.get(k, 0) - cpu0.get(k, 0)) / args.seconds
                                    for k in cpu1}
                        results[name][rate].append(r)
                        log(f"{name} rate {rate:.0%} round {rnd}: {r['rps']:.0f} req/s, "
                            f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, {r['compare']}, "
                            f"cpu {fmt_cpu(r['cpu'])}")
                    finally:
                        sg.stop()
        text = report(results, args)
        print(text)
        if args.out:
            Path(args.out).write_text(text)
    finally:
        if nginx_port:
            subprocess.run(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work), "-s",
                            "stop"], capture_output=True)
        v1.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def fmt_cpu(cpu):
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(cpu.items()))


def diff_counts(before, after):
    out = {}
    for ep, info in after.get("endpoints", {}).items():
        for result, n in info["results"].items():
            prev = before.get("endpoints", {}).get(ep, {}).get("results", {}).get(result, 0)
            if n - prev:
                out[result] = out.get(result, 0) + n - prev
    for reason, n in after.get("skipped", {}).items():
        prev = before.get("skipped", {}).get(reason, 0)
        if n - prev:
            out[f"skipped:{reason}"] = n - prev
    return out


def median_cpu(runs):
    keys = sorted({k for r in runs for k in r["cpu"]})
    return {k: statistics.median(r["cpu"].get(k, 0) for r in runs) for k in keys}


def report(results, args):
    lines = ["# shadowgate shadow-read benchmark", "",
             "Written by `tests/bench/shadow_bench.py`. wrk -t2 -c%d, %d s per measurement after a "
             "2 s warm-up, GET of one block through shadowgate (1 proxy thread, 2 comparer "
             "workers) in the shadow stage; Dolt is MariaDB 10.11; rates in alternating order, "
             "%d rounds each, a fresh shadowgate per measurement." % (
                 args.connections, args.seconds, args.rounds), "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- machine: {os.cpu_count()} CPUs", ""]
    for name, by_rate in results.items():
        lines += [f"## {name}", "",
                  "| sampling | req/s (median) | p50 ms | p99 ms | comparer (all rounds) "
                  "| CPU cores busy (median) |",
                  "|---|---|---|---|---|---|"]
        base = statistics.median(r["rps"] for r in by_rate[0.0])
        for rate, runs in by_rate.items():
            total: dict = {}
            for r in runs:
                for k, v in r["compare"].items():
                    total[k] = total.get(k, 0) + v
            each = ", ".join("%.0f" % r["rps"] for r in runs)
            lines.append(f"| {rate:.0%} | {statistics.median(r['rps'] for r in runs):.0f} "
                         f"({each}) | "
                         f"{statistics.median(r['p50'] for r in runs):.2f} | "
                         f"{statistics.median(r['p99'] for r in runs):.2f} | "
                         f"{', '.join(f'{k} {v}' for k, v in sorted(total.items())) or '-'} | "
                         f"{fmt_cpu(median_cpu(runs))} |")
        full = statistics.median(r["rps"] for r in by_rate[1.0])
        tenth = statistics.median(r["rps"] for r in by_rate[0.1])
        ratio = full / base if base else 0
        lines += ["", f"- throughput at 100% / 0%: {ratio:.3f}; at 10% / 0%: "
                      f"{tenth / base if base else 0:.3f}; goal (100% within 5% of 0%): "
                      f"{'MET' if ratio >= 0.95 else 'NOT MET'}", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
