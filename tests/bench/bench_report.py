#!/usr/bin/python3
"""Report helper for proxy_bench.sh: parses wrk outputs + CPU tick deltas, prints the
table / ratios / verdicts, and optionally writes the same report as Markdown.

usage: bench_report.py RESULTS.tsv [OUT.md]
RESULTS.tsv lines: target <TAB> connections <TAB> cpu_ticks <TAB> clk_tck <TAB> wrk_output_file
Run parameters and environment facts come from BENCH_* environment variables.
"""
import datetime
import os
import platform
import re
import sys

TARGETS = ["direct", "nginx", "shadowgate"]
UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * UNIT_US[m.group(2)]


def parse_wrk(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    r = {"raw": text, "non2xx": 0, "sock": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)", text, re.M)
    if not m:
        raise ValueError(f"{path}: no 'requests in' line in wrk output:\n{text}")
    r["requests"] = int(m.group(1))
    r["elapsed_s"] = to_us(m.group(2) + m.group(3)) / 1e6
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    r["rps"] = float(m.group(1)) if m else r["requests"] / r["elapsed_s"]
    dist = {}
    in_dist = False
    for line in text.splitlines():
        if "Latency Distribution" in line:
            in_dist = True
            continue
        if in_dist:
            m = re.match(r"\s*(\d+)%\s+(\S+)", line)
            if not m:
                break
            dist[int(m.group(1))] = to_us(m.group(2))
    r["p50"] = dist.get(50)
    r["p99"] = dist.get(99)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["sock"] = dict(zip(["connect", "read", "write", "timeout"], map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    r["errors"] = r["non2xx"] + sum(r["sock"].values())
    return r


def load(results_path):
    runs = {}
    for line in open(results_path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            continue
        target, conns, ticks, clk, raw, up_est, up_tw = line.split("\t")
        r = parse_wrk(raw)
        r["up_established"] = int(up_est)
        r["up_time_wait"] = int(up_tw)
        r["conns"] = int(conns)
        r["cpu_s"] = int(ticks) / int(clk)
        r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / r["requests"] if r["requests"] else None
        runs[(target, int(conns))] = r
    return runs


def fmt_us(v):
    if v is None:
        return "n/a"
    if v >= 10000:
        return f"{v / 1000:.1f} ms"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    return f"{v:.0f} µs"


def fmt_num(v, spec):
    return "n/a" if v is None else format(v, spec)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def error_text(r):
    parts = []
    if r["non2xx"]:
        parts.append(f"{r['non2xx']} non-2xx/3xx")
    s = r["sock"]
    if any(s.values()):
        parts.append("socket errors " + ", ".join(f"{k} {v}" for k, v in s.items() if v))
    return "; ".join(parts) if parts else "0"


def build(runs, env):
    n = int(env["BENCH_CONNS"])
    rows = []
    for c in (n, 1):
        for t in TARGETS:
            r = runs.get((t, c))
            if r is None:
                continue
            rows.append([t, str(c), f"{r['rps']:,.0f}", fmt_us(r["p50"]), fmt_us(r["p99"]),
                         fmt_num(r["cpu_us_per_req"], ".1f"), error_text(r)])
    header = ["target", "conns", "req/s", "p50", "p99", "CPU µs/req", "errors"]

    g = lambda t, c: runs.get((t, c))  # noqa: E731
    sg_n, nx_n = g("shadowgate", n), g("nginx", n)
    sg_1, nx_1, d_1 = g("shadowgate", 1), g("nginx", 1), g("direct", 1)

    thr = ratio(sg_n["rps"], nx_n["rps"])
    cpu_n = ratio(sg_n["cpu_us_per_req"], nx_n["cpu_us_per_req"])
    cpu_1 = ratio(sg_1["cpu_us_per_req"], nx_1["cpu_us_per_req"])
    add_nx = nx_1["p50"] - d_1["p50"]
    add_sg = sg_1["p50"] - d_1["p50"]
    add_ratio = ratio(add_sg, add_nx) if add_nx > 0 else None
    p99_n = ratio(sg_n["p99"], nx_n["p99"])
    p99_1 = ratio(sg_1["p99"], nx_1["p99"])

    ratios = [
        f"shadowgate/nginx throughput at {n} conns: {fmt_num(thr, '.2f')}x "
        f"({sg_n['rps']:,.0f} vs {nx_n['rps']:,.0f} req/s)",
        f"shadowgate/nginx CPU per request at {n} conns: {fmt_num(cpu_n, '.2f')}x "
        f"({fmt_num(sg_n['cpu_us_per_req'], '.1f')} vs {fmt_num(nx_n['cpu_us_per_req'], '.1f')} µs/req)",
        f"shadowgate/nginx CPU per request at 1 conn: {fmt_num(cpu_1, '.2f')}x "
        f"({fmt_num(sg_1['cpu_us_per_req'], '.1f')} vs {fmt_num(nx_1['cpu_us_per_req'], '.1f')} µs/req)",
        f"added p50 at 1 conn over direct ({fmt_us(d_1['p50'])}): nginx +{add_nx:.0f} µs, "
        f"shadowgate +{add_sg:.0f} µs, shadowgate/nginx {fmt_num(add_ratio, '.2f')}x",
        f"shadowgate/nginx p99 at {n} conns: {fmt_num(p99_n, '.2f')}x "
        f"({fmt_us(sg_n['p99'])} vs {fmt_us(nx_n['p99'])})",
        f"shadowgate/nginx p99 at 1 conn: {fmt_num(p99_1, '.2f')}x "
        f"({fmt_us(sg_1['p99'])} vs {fmt_us(nx_1['p99'])})",
    ]

    def verdict(ok, *err_runs):
        bad = [f"{t} c={r['conns']}: {error_text(r)}" for t, r in err_runs if r["errors"]]
        if bad:
            return "NOT MET (run had errors: " + "; ".join(bad) + ")"
        return "MET" if ok else "NOT MET"

    verdicts = [
        f"throughput goal (>= 1.0x nginx at {n} conns): "
        + verdict(thr is not None and thr >= 1.0, ("shadowgate", sg_n)),
        "latency goal (added p50 at 1 conn <= nginx's): "
        + verdict(add_sg <= add_nx, ("shadowgate", sg_1)),
        f"throughput kept (>= 1.12x nginx at {n} conns, the figure before the restructuring): "
        + verdict(thr is not None and thr >= 1.12, ("shadowgate", sg_n)),
        f"tail goal (p99 <= nginx's at {n} conns and at 1 conn): "
        + verdict(p99_n is not None and p99_1 is not None and p99_n <= 1.0 and p99_1 <= 1.0,
                  ("shadowgate", sg_n), ("shadowgate", sg_1)),
    ]
    notes = []
    for c in (n, 1):
        for t in ("nginx", "shadowgate"):
            r = g(t, c)
            if r is None:
                continue
            notes.append(f"{t} at {c} conn{'s' if c != 1 else ''}: {r['up_established']} "
                         f"upstream connections held by it after the run; "
                         f"{r['up_time_wait']} connections to the backend closed during the run "
                         f"(new TIME-WAIT sockets; 0 = keep-alive reuse)")
    for (t, c), r in sorted(runs.items()):
        if r["errors"]:
            notes.append(f"WARNING: {t} at {c} conns had errors ({error_text(r)}); "
                         f"its req/s counts those responses too")
    return header, rows, ratios, verdicts, notes


def text_table(header, rows):
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    out = []
    for i, row in enumerate([header] + rows):
        cells = [c.ljust(w) if j in (0, 6) else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---", "---:", "---:", "---:", "---:", "---:", "---"]) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    results = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    env = os.environ
    runs = load(results)
    header, rows, ratios, verdicts, notes = build(runs, env)
    dur, warm = env["BENCH_DURATION"], env["BENCH_WARMUP"]
    n = env["BENCH_CONNS"]
    cpu_note = ("CPU µs/req = (utime+stime delta of the process under test over the measured "
                "run) / requests completed; nginx = master+workers, shadowgate = its pid, "
                "direct = the backend nginx itself (for scale).")

    print()
    print(f"shadowgate proxy benchmark — {dur} s per run (after a {warm} s warm-up), "
          f"wrk -t2 -c{n} and -t1 -c1, path {env['BENCH_PATH']}")
    print()
    print(text_table(header, rows))
    print()
    for line in ratios:
        print(line)
    print()
    for line in verdicts:
        print(line)
    print()
    for line in notes:
        print(line)
    print()
    print(cpu_note)
    print(f"Machine CPU busy over 1 s with no load from the benchmark: {env.get('BENCH_BUSY_BEFORE', '?')}% "
          f"before, {env.get('BENCH_BUSY_AFTER', '?')}% after.")

    if out:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        u = os.uname()
        md = [
            "# shadowgate proxy benchmark",
            "",
            f"Generated by `tests/bench/proxy_bench.sh` on {now}.",
            "",
            "## Setup",
            "",
            f"- machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}",
            f"- kernel: {u.sysname} {u.release}",
            f"- load average (1/5/15 min) before: {env.get('BENCH_LOADAVG_BEFORE', '?')}, "
            f"after: {env.get('BENCH_LOADAVG_AFTER', '?')}; CPU busy over 1 s with no load from the benchmark: "
            f"{env.get('BENCH_BUSY_BEFORE', '?')}% before, "
            f"{env.get('BENCH_BUSY_AFTER', '?')}% after (other work on the machine skews results)",
            f"- nginx: {env.get('BENCH_NGINX_VERSION', '?')} (tiny backend: worker_processes 1; "
            "reference proxy: worker_processes auto, upstream keepalive 64, HTTP/1.1 upstream)",
            f"- wrk: {env.get('BENCH_WRK_VERSION', '?')}",
            f"- shadowgate: commit {env.get('BENCH_SG_COMMIT', '?')}, binary "
            f"`{env.get('BENCH_SG_BIN', '?')}` (built {env.get('BENCH_SG_MTIME', '?')}), threads 2",
            f"- runs: {dur} s each after an unreported {warm} s warm-up; `wrk -t2 -c{n} --latency` "
            f"and `wrk -t1 -c1 --latency`; GET `{env['BENCH_PATH']}`, all on 127.0.0.1; "
            "wrk, the proxy and the backend share the same CPUs",
            "",
            "## Results",
            "",
            md_table(header, rows),
            "",
            cpu_note,
            "",
            "## Ratios",
            "",
        ]
        md += [f"- {line}" for line in ratios]
        md += ["", "## Verdicts", ""]
        md += [f"- {line}" for line in verdicts]
        if notes:
            md += ["", "## Notes", ""] + [f"- {line}" for line in notes]
        md += ["", "## Raw wrk output", ""]
        for (t, c), r in sorted(runs.items(), key=lambda kv: (-kv[0][1], TARGETS.index(kv[0][0]))):
            md += [f"<details><summary>{t}, {c} conns</summary>", "", "```", r["raw"].rstrip(),
                   "```", "", "</details>", ""]
        with open(out, "w", encoding="utf-8") as f:
            f.write("\n".join(md))


if __name__ == "__main__":
    main()
