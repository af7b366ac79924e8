#!/usr/bin/env bash
# tests/bench/migrate_bench.sh: how fast `shadowgate migrate` backfills v1 storage into MariaDB.
# A benchmark program (prints numbers, exits 0 whenever it could measure), not a test.
#
# For each size in --sizes it generates synthetic v1 storage (gen_v1_storage.py: N users x 4
# blocks x 10 versions, 3 pending diffs per user), runs `shadowgate migrate` into a fresh database
# of a private MariaDB (tests/mariadb/server.sh) under /usr/bin/time -v, then runs it again on the
# same storage (the resume check: it should write nothing), and prints per size: users, rows
# written, wall time, users/s, rows/s, max RSS, the re-run's wall time and rows, and where the CPU
# went (shadowgate, mariadbd, everything else on the machine). Verdicts:
#   goal 10,000 users x 4 blocks x 10 versions < 60 s
#   memory flat: max RSS at the largest size / at the smallest < 1.5
#
# Usage: tests/bench/migrate_bench.sh [--sizes 1000,10000] [--readers N] [--batch-size N]
#            [--loose] [--jobs J] [--keep] [--out FILE]
#   --readers, --batch-size  passed to `shadowgate migrate` (default: migrate's own defaults)
#   --loose                  generate loose git objects, as real v1 storage has (default: packed)
#   --jobs J                 generator worker processes (default 2)
#   --keep                   keep the work directory (storage, configs, logs, the halted server)
#   --storage-dir DIR        generate storage into DIR/v1-N-packed|loose and keep it there;
#                            reused as is by later runs (saves minutes when comparing options)
#   --out FILE               also write the report as Markdown
# Env: SHADOWGATE_BIN (default build/proxy/shadowgate; built with cmake when missing).
# Everything listens on 127.0.0.1 only; every process started here is stopped on exit or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PY=/usr/bin/python3

sizes=1000,10000
readers=""
batch=""
loose=0
jobs=2
keep=0
out=""
storage_dir=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) sizes=$2; shift 2 ;;
        --readers) readers=$2; shift 2 ;;
        --batch-size) batch=$2; shift 2 ;;
        --loose) loose=1; shift ;;
        --jobs) jobs=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --storage-dir) storage_dir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h | --help) usage 0 ;;
        *) echo "migrate_bench: unknown option $1" >&2; usage 2 ;;
    esac
done
[[ $sizes =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "migrate_bench: bad --sizes $sizes" >&2; exit 2; }
if [ -n "$storage_dir" ]; then
    mkdir -p "$storage_dir"
    storage_dir=$(cd "$storage_dir" && pwd)
fi
if [ -n "$out" ]; then
    mkdir -p "$(dirname "$out")"
    out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
fi

bin=${SHADOWGATE_BIN:-$root/build/proxy/shadowgate}
if [ ! -x "$bin" ]; then
    echo "migrate_bench: $bin missing: building it" >&2
    cmake -S "$root" -B "$root/build" -G Ninja >&2
    cmake --build "$root/build" --target shadowgate -j2 >&2
fi
[ -x "$bin" ] || { echo "migrate_bench: no shadowgate binary at $bin" >&2; exit 1; }

work=$(mktemp -d /tmp/sg-migrate-bench.XXXXXX)
db_dir="$work/mariadb"
child=""  # process group of the command running now (setsid: its own group)

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
    fi
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM -- "-$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    if [ "$keep" = 1 ]; then
        bash "$root/tests/mariadb/server.sh" halt "$db_dir" >/dev/null 2>&1 || true
        echo "migrate_bench: kept $work (server halted; restart: tests/mariadb/server.sh start $db_dir)" >&2
    else
        bash "$root/tests/mariadb/server.sh" stop "$db_dir" >/dev/null 2>&1 || true
        rm -rf "$work" "$db_dir.lock"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_bg OUT ERR CMD...: starts CMD in its own process group (so cleanup can stop it and its
# children), stdout to OUT and stderr to ERR; wait_bg waits for it (interruptibly) and returns its
# exit status; run OUT ERR CMD... does both.
start_bg() {
    local out=$1 err=$2
    shift 2
    if [ "$out" = "$err" ]; then
        setsid "$@" >"$out" 2>&1 &
    else
        setsid "$@" >"$out" 2>"$err" &
    fi
    child=$!
}
wait_bg() {
    local rc=0
    wait "$child" || rc=$?
    child=""
    return "$rc"
}
run() {
    start_bg "$@"
    wait_bg
}

# sample_threads PARENT FILE: while PARENT's child (shadowgate under /usr/bin/time) runs, keeps
# FILE holding one "tid cpu_seconds" line per thread, refreshed every 0.5 s, so the split between
# the main thread (the writer) and the reader threads is known at the end.
sample_threads() {
    local parent=$1 file=$2 pid="" tck
    tck=$(getconf CLK_TCK)
    while kill -0 "$parent" 2>/dev/null; do
        if [ -z "$pid" ]; then
            pid=$(cat "/proc/$parent/task/$parent/children" 2>/dev/null | awk '{ print $1 }') || true
        fi
        if [ -n "$pid" ]; then
            awk -v t="$tck" '{ sub(/^.*\) /, ""); split(FILENAME, p, "/");
                              print p[5], ($12 + $13) / t }' /proc/"$pid"/task/*/stat \
                >"$file.tmp" 2>/dev/null && [ -s "$file.tmp" ] && mv "$file.tmp" "$file"
            echo "$pid" >"$file.pid"
        fi
        sleep 0.5
    done
    rm -f "$file.tmp"
}
sampler=""

# The binary is copied: others may relink build/ while this runs.
cp "$bin" "$work/shadowgate"
sg="$work/shadowgate"

log() { echo "migrate_bench: $*" >&2; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "work directory $work; starting MariaDB"
bash "$root/tests/mariadb/server.sh" start "$db_dir" 2>"$work/server.log" \
    || { cat "$work/server.log" >&2; exit 1; }
conn() { sed -n "s/^$1=//p" "$db_dir/conn.env" | tail -n1; }
host=$(conn SG_MARIADB_HOST)
port=$(conn SG_MARIADB_PORT)
user=$(conn SG_MARIADB_USER)
password=$(conn SG_MARIADB_PASSWORD)
socket=$(conn SG_MARIADB_SOCKET)
root_user=$(conn SG_MARIADB_ROOT_USER)
root_password=$(conn SG_MARIADB_ROOT_PASSWORD)
mariadbd_pid=$(conn SG_MARIADB_PID)
[ "$host" = 127.0.0.1 ] || { log "MariaDB is not on loopback ($host)"; exit 1; }

root_sql() {
    MYSQL_PWD="$root_password" mariadb --no-defaults --protocol=socket --socket="$socket" \
        -u"$root_user" --batch --skip-column-names -e "$1"
}

# CPU seconds (utime+stime) of a pid; machine busy/total jiffies from /proc/stat.
proc_cpu() { awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
machine_cpu() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }

results="$work/results"
mkdir -p "$results"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
    echo "mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "mariadb=$(root_sql 'SELECT VERSION()')"
    echo "commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | wc -l)"
    echo "binary=$bin"
    echo "binary_mtime=$(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC')"
    echo "load_before=$load_before"
    echo "readers=$readers"
    echo "batch=$batch"
    echo "loose=$loose"
    echo "sizes=$sizes"
    echo "reused=$storage_dir"
} >"$results/meta.env"

extra=()
[ -n "$readers" ] && extra+=(--readers "$readers")
[ -n "$batch" ] && extra+=(--batch-size "$batch")

IFS=, read -r -a size_list <<<"$sizes"
for n in "${size_list[@]}"; do
    storage="$work/v1-$n"
    if [ -n "$storage_dir" ]; then
        storage="$storage_dir/v1-$n-$([ "$loose" = 1 ] && echo loose || echo packed)"
    fi
    gen_args=("$storage" --users "$n" --blocks 4 --versions 10 --diffs 3 --jobs "$jobs")
    [ "$loose" = 1 ] && gen_args+=(--loose)
    if [ -n "$storage_dir" ] && [ -f "$storage.gen" ]; then
        log "size $n: reusing $storage"
        cp "$storage.gen" "$results/$n.gen"
    else
        log "size $n: generating storage"
        rm -rf "$storage"
        mkdir -p "$(dirname "$storage")"
        if ! run "$results/$n.gen" "$results/$n.gen" "$PY" "$here/gen_v1_storage.py" "${gen_args[@]}"; then
            cat "$results/$n.gen" >&2
            exit 1
        fi
        [ -z "$storage_dir" ] || cp "$results/$n.gen" "$storage.gen"
    fi
    cat "$results/$n.gen" >&2
    gen_end=$(date +%s)
    du -sh "$storage" | cut -f1 >"$results/$n.du"

    db="bench_$n"
    root_sql "DROP DATABASE IF EXISTS $db;
        CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
        GRANT ALL PRIVILEGES ON $db.* TO '$user'@'%';
        GRANT ALL PRIVILEGES ON $db.* TO '$user'@'localhost';"
    cfg="$work/migrate-$n.json"
    printf '{"v1_data_dir": "%s", "dolt": {"host": "%s", "port": %s, "user": "%s", "database": "%s"}}\n' \
        "$storage" "$host" "$port" "$user" "$db" >"$cfg"

    for pass in first re-run; do
        log "size $n: migrate ($pass run)"
        sync  # the generator's dirty pages must not be flushed during the measured run
        # migrate treats pending_diffs/ written under 2 s ago as possibly changed (racy
        # fingerprint) and rewrites those users: real storage is not that fresh.
        while [ $(($(date +%s) - gen_end)) -lt 3 ]; do sleep 0.5; done
        m0=$(proc_cpu "$mariadbd_pid")
        read -r busy0 total0 <<<"$(machine_cpu)"
        rc=0
        SHADOWGATE_DOLT_PASSWORD="$password" start_bg "$results/$n.$pass.out" \
            "$results/$n.$pass.err" /usr/bin/time -v -o "$results/$n.$pass.time" \
            "$sg" migrate -c "$cfg" "${extra[@]}"
        sample_threads "$child" "$results/$n.$pass.threads" &
        sampler=$!
        wait_bg || rc=$?
        wait "$sampler" 2>/dev/null || true
        sampler=""
        m1=$(proc_cpu "$mariadbd_pid")
        read -r busy1 total1 <<<"$(machine_cpu)"
        {
            echo "rc=$rc"
            echo "mariadbd_cpu=$(awk -v a="$m0" -v b="$m1" 'BEGIN { print b - a }')"
            echo "machine_busy_cores=$(awk -v b0="$busy0" -v b1="$busy1" -v t0="$total0" \
                -v t1="$total1" -v n="$(nproc)" 'BEGIN { print (t1 > t0 ? (b1 - b0) / (t1 - t0) * n : 0) }')"
        } >"$results/$n.$pass.cpu"
        sed 's/^/    /' "$results/$n.$pass.out" >&2
        [ "$rc" = 0 ] || { log "migrate exited $rc; stderr tail:"; tail -n 5 "$results/$n.$pass.err" >&2; }
    done
    if [ "$keep" != 1 ]; then
        root_sql "DROP DATABASE $db"
        [ -n "$storage_dir" ] || rm -rf "$storage"
    fi
done

"$PY" - "$results" "$out" <<'EOF'
import os, re, sys

res, out = sys.argv[1], sys.argv[2]

def kv(path):
    d = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8", errors="replace"):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d

def num(s):
    return int(s.replace(",", ""))

def parse_out(path):
    r = {}
    text = open(path, encoding="utf-8", errors="replace").read() if os.path.exists(path) else ""
    if m := re.search(r"^migrate: ([\d,]+) users in ([\d.]+) s", text, re.M):
        r["users"], r["secs"] = num(m[1]), float(m[2])
    if m := re.search(r"users:\s+([\d,]+) written, ([\d,]+) unchanged, ([\d,]+) failed", text):
        r["written"], r["unchanged"], r["failed"] = num(m[1]), num(m[2]), num(m[3])
    if m := re.search(r"rows:\s+([\d,]+)(?: in ([\d,]+) statements)?", text):
        r["rows"], r["statements"] = num(m[1]), num(m[2] or "0")
    if m := re.search(r"in Dolt now: ([\d,]+) users, ([\d,]+) commits, ([\d,]+) blocks, "
                      r"([\d,]+) versions, ([\d,]+) diffs", text):
        r["db"] = tuple(num(m[i]) for i in range(1, 6))
    if m := re.search(r"FAILED to start: (.*)", text):
        r["fatal"] = m[1]
    r["failures"] = re.findall(r"^    (\S+): (.*)$", text, re.M)[:5]
    return r

def parse_time(path):
    r = {}
    if not os.path.exists(path):
        return r
    for line in open(path):
        k, _, v = line.strip().rpartition(": ")
        if k.startswith("Elapsed (wall clock)"):
            parts = [float(x) for x in v.split(":")]
            r["wall"] = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
        elif k == "Maximum resident set size (kbytes)":
            r["rss_mib"] = int(v) / 1024
        elif k == "User time (seconds)":
            r["user"] = float(v)
        elif k == "System time (seconds)":
            r["sys"] = float(v)
    return r

def parse_threads(path):
    """CPU s of shadowgate's main thread (the writer) from the last 0.5 s sample."""
    try:
        pid = open(path + ".pid").read().strip()
        for line in open(path):
            tid, secs = line.split()
            if tid == pid:
                return {"main_cpu": float(secs)}
    except (OSError, ValueError):
        pass
    return {}

meta = kv(os.path.join(res, "meta.env"))
sizes = [int(s) for s in meta["sizes"].split(",")]
rows = []
for n in sizes:
    row = {"n": n}
    gen = open(os.path.join(res, f"{n}.gen")).read() if os.path.exists(os.path.join(res, f"{n}.gen")) else ""
    m = re.search(r"([\d.]+) s$", gen.strip())
    row["gen_s"] = float(m[1]) if m else None
    m = re.search(r"(\d+) commits", gen)
    row["gen_commits"] = int(m[1]) if m else None
    du = os.path.join(res, f"{n}.du")
    row["du"] = open(du).read().strip() if os.path.exists(du) else "?"
    for p in ("first", "re-run"):
        row[p] = {**parse_threads(os.path.join(res, f"{n}.{p}.threads")),
                  **parse_out(os.path.join(res, f"{n}.{p}.out")),
                  **parse_time(os.path.join(res, f"{n}.{p}.time")),
                  **{k: float(v) for k, v in kv(os.path.join(res, f"{n}.{p}.cpu")).items()}}
    if "wall" in row["first"]:
        rows.append(row)

def f(x, fmt="{:.1f}"):
    return "-" if x is None else fmt.format(x)

opts = []
if meta.get("readers"): opts.append(f"--readers {meta['readers']}")
if meta.get("batch"): opts.append(f"--batch-size {meta['batch']}")
opts_s = " ".join(opts) or "defaults (--readers 2, --batch-size 100)"
storage_s = "loose objects" if meta.get("loose") == "1" else "packed objects (one pack per user)"

head = ["users", "rows", "wall s", "users/s", "rows/s", "max RSS MiB", "re-run wall s",
        "re-run rows", "failed"]
table = []
for r in rows:
    a, b = r["first"], r["re-run"]
    users = a.get("users", r["n"])
    table.append([
        f"{users:,}", f"{a.get('rows', 0):,}", f(a["wall"], "{:.1f}"),
        f(users / a["wall"] if a["wall"] else None, "{:.0f}"),
        f(a.get("rows", 0) / a["wall"] if a["wall"] else None, "{:,.0f}"),
        f(a.get("rss_mib"), "{:.0f}"), f(b.get("wall"), "{:.1f}"),
        f"{b.get('rows', 0):,}" if "rows" in b else "-",
        f"{a.get('failed', '?')}/{b.get('failed', '?')}",
    ])
cpu_head = ["users", "shadowgate CPU s (user+sys)", "writer thread / readers CPU s",
            "mariadbd CPU s", "machine busy cores",
            "others' CPU s", "re-run: shadowgate / mariadbd CPU s", "statements", "generation s",
            "storage"]
cpu = []
for r in rows:
    a, b = r["first"], r["re-run"]
    sgc = a.get("user", 0) + a.get("sys", 0)
    busy = a.get("machine_busy_cores", 0) * a["wall"]
    others = max(0.0, busy - sgc - a.get("mariadbd_cpu", 0))
    main = a.get("main_cpu")
    cpu.append([f"{a.get('users', r['n']):,}", f"{sgc:.1f} ({sgc / a['wall'] * 100:.0f}% of wall)",
                "-" if main is None else f"{main:.1f} / {max(0.0, sgc - main):.1f}",
                f"{a.get('mariadbd_cpu', 0):.1f} ({a.get('mariadbd_cpu', 0) / a['wall'] * 100:.0f}%)",
                f"{a.get('machine_busy_cores', 0):.2f} of {meta['nproc']}", f"{others:.1f}",
                f"{b.get('user', 0) + b.get('sys', 0):.1f} / {b.get('mariadbd_cpu', 0):.1f}",
                f"{a.get('statements', 0):,}", f(r["gen_s"]), r["du"]])

def goal():
    for r in rows:
        if r["n"] == 10000:
            a = r["first"]
            ok = (a["wall"] < 60 and a.get("rc", 1) == 0 and a.get("failed", 1) == 0
                  and a.get("users") == 10000)
            return ("MET" if ok else "NOT MET") + f" ({a['wall']:.1f} s)"
    return "not measured (no 10000 in --sizes)"

def flat():
    if len(rows) < 2:
        return "not measured (one size)"
    lo, hi = min(rows, key=lambda r: r["n"]), max(rows, key=lambda r: r["n"])
    a, b = lo["first"].get("rss_mib"), hi["first"].get("rss_mib")
    if not a or not b:
        return "not measured"
    return ("yes" if b / a < 1.5 else "no") + (f" ({b:.0f} MiB at {hi['n']:,} / {a:.0f} MiB at "
                                               f"{lo['n']:,} = {b / a:.2f})")

problems = []
for r in rows:
    for p in ("first", "re-run"):
        a = r[p]
        if a.get("fatal"):
            problems.append(f"{r['n']:,} {p}: migrate failed to start: {a['fatal']}")
        if a.get("rc", 0) != 0:
            problems.append(f"{r['n']:,} {p}: migrate exited {a['rc']:.0f}")
        if a.get("failed"):
            problems.append(f"{r['n']:,} {p}: {a['failed']} users failed, e.g. " +
                            "; ".join(f"{u}: {w}" for u, w in a["failures"]))
    a, b = r["first"], r["re-run"]
    if b.get("written") or b.get("rows"):
        problems.append(f"{r['n']:,} re-run wrote {b.get('written', 0)} users, "
                        f"{b.get('rows', 0)} rows (expected 0: resume check)")
    if "db" in a and a["db"][1] != r["gen_commits"]:
        problems.append(f"{r['n']:,}: database holds {a['db'][1]:,} commits, generated "
                        f"{r['gen_commits']:,}")

def text_table(h, t):
    w = [max(len(x) for x in col) for col in zip(h, *t)]
    line = lambda cells: "  ".join(c.rjust(wi) for c, wi in zip(cells, w))
    return "\n".join([line(h), line(["-" * x for x in w])] + [line(c) for c in t])

def md_table(h, t):
    return "\n".join(["| " + " | ".join(h) + " |", "|" + "---|" * len(h)] +
                     ["| " + " | ".join(c) + " |" for c in t])

verdicts = [f"goal 10,000 users x 4 blocks x 10 versions < 60 s: {goal()}",
            f"memory flat (max RSS at largest / smallest size < 1.5): {flat()}"]
print()
print(f"shadowgate migrate -> MariaDB {meta['mariadb']}; options: {opts_s}; storage: {storage_s}")
print(text_table(head, table))
print()
print(text_table(cpu_head, cpu))
print()
for v in verdicts:
    print(v)
for p in problems:
    print("problem:", p)

if out:
    dirty = int(meta.get("dirty", "0") or 0)
    with open(out, "w") as fo:
        fo.write(f"""# shadowgate migrate benchmark

Written by `tests/bench/migrate_bench.sh` (see README.md). Each size: synthetic v1 storage from
`gen_v1_storage.py` (N users; 4 blocks x 10 versions and 3 pending diffs per user with blocks,
about 3% of users without blocks), `shadowgate migrate` into a fresh MariaDB database, then a
second run on the same storage (resume check: should write nothing).

- date: {meta['date']}
- machine: {meta['nproc']} CPUs ({meta['cpu']}), {meta['mem']}; load average before: {meta['load_before']}
- MariaDB: {meta['mariadb']} (tests/mariadb/server.sh settings)
- shadowgate: commit {meta['commit']}{f" plus {dirty} uncommitted tracked changes in the tree" if dirty else ""}; binary built {meta['binary_mtime']}
- migrate options: {opts_s}
- storage: {storage_s}{f" (generated earlier, reused from {meta['reused']})" if meta.get("reused") else ""}

{md_table(head, table)}

"failed" is failed users in the first run / the re-run. Wall time and max RSS come from
`/usr/bin/time -v`; users/s and rows/s are over that wall time.

Where the CPU went during the first run (the machine is shared: "others" is every other process,
e.g. compilers; busy cores is the whole machine's average). The writer is shadowgate's main
thread (batching, SQL text, the MariaDB client), sampled every 0.5 s; readers are the rest
(libgit2 reading, parsing). A percentage near 100% of wall means that process was the bottleneck
on one core.

{md_table(cpu_head, cpu)}

## Verdicts

""")
        for v in verdicts:
            fo.write(f"- {v}\n")
        if problems:
            fo.write("\n## Problems\n\n" + "".join(f"- {p}\n" for p in problems))
    print(f"report written to {out}")
EOF
