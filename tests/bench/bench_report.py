#!/usr/bin/python3
"""Report helper for proxy_bench.sh: parses wrk outputs + CPU tick deltas, prints the
table / ratios / verdicts, and optionally writes the same report as Markdown.

usage: bench_report.py RESULTS.tsv [OUT.md]
RESULTS.tsv lines: target, connections, cpu_ticks, clk_tck, wrk_output_file,
upstream_established, upstream_time_wait, round (tab-separated; a line without the round
counts as round 1). The table shows medians over the rounds; ratios are taken within each
round (shadowgate vs nginx in the same round) and reported as the median of those.
Run parameters and environment facts come from BENCH_* environment variables.
"""
import datetime
import os
import platform
import re
import statistics
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
    """{(target, conns, round): run}"""
    runs = {}
    for line in open(results_path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) == 7:
            fields.append("1")
        target, conns, ticks, clk, raw, up_est, up_tw, rnd = fields
        r = parse_wrk(raw)
        r["up_established"] = int(up_est)
        r["up_time_wait"] = int(up_tw)
        r["conns"] = int(conns)
        r["round"] = int(rnd)
        r["cpu_s"] = int(ticks) / int(clk)
        r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / r["requests"] if r["requests"] else None
        runs[(target, int(conns), int(rnd))] = r
    return runs


def rounds_of(runs):
    return sorted({k[2] for k in runs})


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


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


def fmt_rps(v):
    return fmt_num(v, ",.0f")


def fmt_x(v):
    return "n/a" if v is None else f"{v:.2f}x"


def fmt_spread(values, fmt):
    """'lo–hi' over the rounds ('—' for a single value); a shared unit is written once."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return "—"
    lo, hi = fmt(min(vals)), fmt(max(vals))
    lo_num, _, lo_unit = lo.partition(" ")
    _, _, hi_unit = hi.partition(" ")
    if lo_unit and lo_unit == hi_unit:
        lo = lo_num
    return f"{lo}–{hi}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def sub(a, b):
    return None if a is None or b is None else a - b


def error_text(r):
    parts = []
    if r["non2xx"]:
        parts.append(f"{r['non2xx']} non-2xx/3xx")
    s = r["sock"]
    if any(s.values()):
        parts.append("socket errors " + ", ".join(f"{k} {v}" for k, v in s.items() if v))
    return "; ".join(parts) if parts else "0"


def errors_over_rounds(rs, multi):
    """error_text of the runs of one target/conns summed over the rounds."""
    total = {"non2xx": sum(r["non2xx"] for r in rs),
             "sock": {k: sum(r["sock"][k] for r in rs) for k in rs[0]["sock"]}}
    text = error_text(total)
    bad = [str(r["round"]) for r in rs if r["errors"]]
    if multi and bad:
        text += f" (round{'s' if len(bad) > 1 else ''} {', '.join(bad)})"
    return text


# Results table columns: (title, alignment)
COLUMNS = [("target", "l"), ("conns", "r"), ("req/s", "r"), ("req/s min–max", "r"),
           ("p50", "r"), ("p99", "r"), ("p99 min–max", "r"), ("CPU µs/req", "r"),
           ("errors", "l")]


def build(runs, env):
    n = int(env["BENCH_CONNS"])
    rounds = rounds_of(runs)
    multi = len(rounds) > 1

    def series(t, c):
        return [runs[(t, c, r)] for r in rounds if (t, c, r) in runs]

    # medians over the rounds, per target and connection count
    med = {}
    rows = []
    for c in (n, 1):
        for t in TARGETS:
            rs = series(t, c)
            if not rs:
                continue
            m = {k: median(r[k] for r in rs) for k in ("rps", "p50", "p99", "cpu_us_per_req")}
            med[(t, c)] = m
            rows.append([t, str(c), fmt_rps(m["rps"]), fmt_spread([r["rps"] for r in rs], fmt_rps),
                         fmt_us(m["p50"]), fmt_us(m["p99"]),
                         fmt_spread([r["p99"] for r in rs], fmt_us),
                         fmt_num(m["cpu_us_per_req"], ".1f"), errors_over_rounds(rs, multi)])
    header = [title for title, _ in COLUMNS]

    def mg(t, c, k):
        return med.get((t, c), {}).get(k)

    def per_round(fn, *keys):
        """fn(run, ...) for each round that has all the runs named by keys ((target, conns))."""
        out = []
        for r in rounds:
            rs = [runs.get((t, c, r)) for t, c in keys]
            if all(rs):
                out.append(fn(*rs))
        return out

    SG_N, NX_N = ("shadowgate", n), ("nginx", n)
    SG_1, NX_1, D_1 = ("shadowgate", 1), ("nginx", 1), ("direct", 1)

    def ratio_of(key, a, b):
        return per_round(lambda x, y: ratio(x[key], y[key]), a, b)

    thr_r = ratio_of("rps", SG_N, NX_N)
    cpu_n_r = ratio_of("cpu_us_per_req", SG_N, NX_N)
    cpu_1_r = ratio_of("cpu_us_per_req", SG_1, NX_1)
    p99_n_r = ratio_of("p99", SG_N, NX_N)
    p99_1_r = ratio_of("p99", SG_1, NX_1)
    add_nx_r = per_round(lambda x, d: sub(x["p50"], d["p50"]), NX_1, D_1)
    add_sg_r = per_round(lambda s, d: sub(s["p50"], d["p50"]), SG_1, D_1)

    def added_ratio(s, x, d):
        a_sg, a_nx = sub(s["p50"], d["p50"]), sub(x["p50"], d["p50"])
        return ratio(a_sg, a_nx) if a_nx is not None and a_nx > 0 else None

    add_ratio_r = per_round(added_ratio, SG_1, NX_1, D_1)

    thr, cpu_n, cpu_1 = median(thr_r), median(cpu_n_r), median(cpu_1_r)
    p99_n, p99_1 = median(p99_n_r), median(p99_1_r)
    add_nx, add_sg, add_ratio = median(add_nx_r), median(add_sg_r), median(add_ratio_r)

    def each(vals):  # the per-round ratios, after the median
        return "; per round: " + ", ".join(fmt_x(v) for v in vals) if multi else ""

    def plus_us(v):
        return "n/a" if v is None else f"{v:+.0f} µs"

    def cpu(t, c):
        return fmt_num(mg(t, c, "cpu_us_per_req"), ".1f")

    ratios = [
        f"shadowgate/nginx throughput at {n} conns: {fmt_num(thr, '.2f')}x "
        f"({fmt_rps(mg(*SG_N, 'rps'))} vs {fmt_rps(mg(*NX_N, 'rps'))} req/s{each(thr_r)})",
        f"shadowgate/nginx CPU per request at {n} conns: {fmt_num(cpu_n, '.2f')}x "
        f"({cpu(*SG_N)} vs {cpu(*NX_N)} µs/req{each(cpu_n_r)})",
        f"shadowgate/nginx CPU per request at 1 conn: {fmt_num(cpu_1, '.2f')}x "
        f"({cpu(*SG_1)} vs {cpu(*NX_1)} µs/req{each(cpu_1_r)})",
        f"added p50 at 1 conn over direct ({fmt_us(mg(*D_1, 'p50'))}): nginx {plus_us(add_nx)}, "
        f"shadowgate {plus_us(add_sg)}, shadowgate/nginx {fmt_num(add_ratio, '.2f')}x"
        + (f" (per round: {', '.join(fmt_x(v) for v in add_ratio_r)})" if multi else ""),
        f"shadowgate/nginx p99 at {n} conns: {fmt_num(p99_n, '.2f')}x "
        f"({fmt_us(mg(*SG_N, 'p99'))} vs {fmt_us(mg(*NX_N, 'p99'))}{each(p99_n_r)})",
        f"shadowgate/nginx p99 at 1 conn: {fmt_num(p99_1, '.2f')}x "
        f"({fmt_us(mg(*SG_1, 'p99'))} vs {fmt_us(mg(*NX_1, 'p99'))}{each(p99_1_r)})",
    ]

    def label(t, c, r):
        return f"{t} c={c}" + (f" round {r}" if multi else "")

    def verdict(ok, *keys):
        bad = [f"{label(t, c, r)}: {error_text(runs[(t, c, r)])}"
               for r in rounds for t, c in keys
               if (t, c, r) in runs and runs[(t, c, r)]["errors"]]
        if bad:
            return "NOT MET (run had errors: " + "; ".join(bad) + ")"
        return "MET" if ok else "NOT MET"

    # Judged on the medians of the per-round ratios. The latency goal falls back to the
    # medians of the added p50s when nginx added nothing measurable in some round.
    if add_ratio_r and None not in add_ratio_r:
        latency_ok = add_ratio <= 1.0
    else:
        latency_ok = add_sg is not None and add_nx is not None and add_sg <= add_nx
    verdicts = [
        f"throughput goal (>= 1.0x nginx at {n} conns): "
        + verdict(thr is not None and thr >= 1.0, SG_N),
        "latency goal (added p50 at 1 conn <= nginx's): "
        + verdict(latency_ok, SG_1),
        f"throughput kept (>= 1.12x nginx at {n} conns, the figure before the restructuring): "
        + verdict(thr is not None and thr >= 1.12, SG_N),
        f"tail goal (p99 <= nginx's at {n} conns and at 1 conn): "
        + verdict(p99_n is not None and p99_1 is not None and p99_n <= 1.0 and p99_1 <= 1.0,
                  SG_N, SG_1),
    ]
    notes = []
    for c in (n, 1):
        for t in ("nginx", "shadowgate"):
            rs = series(t, c)
            if not rs:
                continue
            est = "/".join(str(r["up_established"]) for r in rs)
            tw = "/".join(str(r["up_time_wait"]) for r in rs)
            where = f"{t} at {c} conn{'s' if c != 1 else ''}"
            if multi:
                where += f", rounds {'/'.join(str(r['round']) for r in rs)}"
            notes.append(f"{where}: {est} upstream connections held by it after the run; "
                         f"{tw} connections to the backend closed during the run "
                         f"(new TIME-WAIT sockets; 0 = keep-alive reuse)")
    for (t, c, rnd), r in sorted(runs.items()):
        if r["errors"]:
            notes.append(f"WARNING: {t} at {c} conns{f' in round {rnd}' if multi else ''} "
                         f"had errors ({error_text(r)}); its req/s counts those responses too")
    return header, rows, ratios, verdicts, notes


def text_table(header, rows):
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    out = []
    for i, row in enumerate([header] + rows):
        cells = [c.ljust(w) if a == "l" else c.rjust(w)
                 for c, w, (_, a) in zip(row, widths, COLUMNS)]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if a == "l" else "---:" for _, a in COLUMNS) + "|"]
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
    nr = len(rounds_of(runs))
    rounds_word = f"{nr} round{'s' if nr != 1 else ''}"
    sequence = f"direct, nginx, shadowgate at {n} conns, then the same at 1 conn"
    if nr > 1:
        rounds_sentence = (f"{rounds_word}, interleaved (each round: {sequence}), so drift on "
                           "the machine hits all targets alike")
        table_note = (f"req/s, p50, p99 and CPU µs/req are medians of {nr} rounds; the min–max "
                      "columns give the spread over the rounds; errors are summed over them.")
        ratio_note = (f"Each ratio is the median of the {nr} per-round ratios (shadowgate vs "
                      "nginx measured in the same round, listed after it); the figures in "
                      "parentheses are the medians from the Results table.")
        verdict_note = "Verdicts are judged on the median ratios."
    else:
        rounds_sentence = f"1 round ({sequence})"
        table_note = "A single round: the figures are that round's own (no spread)."
        ratio_note = verdict_note = ""
    cpu_note = ("CPU µs/req = (utime+stime delta of the process under test over the measured "
                "run) / requests completed; nginx = master+workers, shadowgate = its pid, "
                "direct = the backend nginx itself (for scale).")
    busy_before = env.get("BENCH_BUSY_BEFORE", "?")
    busy_after = env.get("BENCH_BUSY_AFTER", "?")

    print()
    print(f"shadowgate proxy benchmark — {rounds_word} of {dur} s runs (each after a {warm} s "
          f"warm-up), wrk -t2 -c{n} and -t1 -c1, path {env['BENCH_PATH']}")
    print()
    print(text_table(header, rows))
    print(table_note)
    print()
    if ratio_note:
        print(ratio_note)
    for line in ratios:
        print(line)
    print()
    if verdict_note:
        print(verdict_note)
    for line in verdicts:
        print(line)
    print()
    for line in notes:
        print(line)
    print()
    print(cpu_note)
    print(f"Machine CPU busy over 1 s with no load from the benchmark: {busy_before}% "
          f"before, {busy_after}% after.")

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
            f"after: {env.get('BENCH_LOADAVG_AFTER', '?')}; CPU busy over 1 s with no load "
            f"from the benchmark: {busy_before}% before, {busy_after}% after "
            "(other work on the machine skews results)",
            f"- nginx: {env.get('BENCH_NGINX_VERSION', '?')} (tiny backend: worker_processes 1; "
            "reference proxy: worker_processes auto, upstream keepalive 64, HTTP/1.1 upstream)",
            f"- wrk: {env.get('BENCH_WRK_VERSION', '?')}",
            f"- shadowgate: commit {env.get('BENCH_SG_COMMIT', '?')}, binary "
            f"`{env.get('BENCH_SG_BIN', '?')}` (built {env.get('BENCH_SG_MTIME', '?')}), threads 2",
            f"- runs: {rounds_sentence}; {dur} s each after an unreported {warm} s warm-up; "
            f"`wrk -t2 -c{n} --latency` and `wrk -t1 -c1 --latency`; GET `{env['BENCH_PATH']}`, "
            "all on 127.0.0.1; wrk, the proxy and the backend share the same CPUs",
            "",
            "## Results",
            "",
            table_note,
            "",
            md_table(header, rows),
            "",
            cpu_note,
            "",
            "## Ratios",
            "",
        ]
        if ratio_note:
            md += [ratio_note, ""]
        md += [f"- {line}" for line in ratios]
        md += ["", "## Verdicts", ""]
        if verdict_note:
            md += [verdict_note, ""]
        md += [f"- {line}" for line in verdicts]
        if notes:
            md += ["", "## Notes", ""] + [f"- {line}" for line in notes]
        md += ["", "## Raw wrk output", ""]
        # in the order they ran: round, connection count, target
        order = sorted(runs.items(), key=lambda kv: (kv[0][2], -kv[0][1], TARGETS.index(kv[0][0])))
        for (t, c, rnd), r in order:
            md += [f"<details><summary>{t}, {c} conns, round {rnd}</summary>", "", "```",
                   r["raw"].rstrip(), "```", "", "</details>", ""]
        with open(out, "w", encoding="utf-8") as f:
            f.write("\n".join(md))


if __name__ == "__main__":
    main()
