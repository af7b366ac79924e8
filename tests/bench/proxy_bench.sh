#!/usr/bin/env bash
# shadowgate proxy benchmark: direct backend vs nginx reverse proxy vs shadowgate.
#
# Everything runs on 127.0.0.1:
#   * a tiny nginx backend answering {"ok":true,"service":"tiny"} (worker_processes 1)
#   * nginx as the reference reverse proxy (worker_processes auto, upstream keepalive 64)
#   * shadowgate (threads 2) with the backend as its v1 upstream
# and each is loaded with wrk at N connections (-t2 -cN) and at 1 connection (-t1 -c1),
# after an unreported warm-up run. CPU per request of the process under test comes from
# /proc/PID/stat (utime+stime) deltas over each measured run.
# The whole sequence (for each connection count: direct, nginx, shadowgate) is repeated
# --rounds N times (default 3, 1 with --quick), interleaved so that drift on the machine hits
# all targets alike; the report gives medians over the rounds and per-round ratios.
#
# Usage: tests/bench/proxy_bench.sh [--duration S] [--connections N] [--rounds N]
#                                   [--shadowgate PATH] [--out FILE] [--quick] [--path /url/path]
# This is a program that prints numbers, not a test: it exits 0 whenever it could measure,
# whether or not the goals are met.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/../.." && pwd)"
PY=/usr/bin/python3          # Debian's python; the pyenv one on PATH is avoided on purpose

DURATION=10
WARMUP=2
CONNS=32
ROUNDS=3
ROUNDS_SET=0             # --rounds given explicitly (then --quick leaves it alone)
QUICK=0
SHADOWGATE="${SHADOWGATE_BIN:-$REPO_DIR/build/proxy/shadowgate}"
OUT=""
URL_PATH="/"

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration)    DURATION="$2"; shift 2 ;;
        --connections) CONNS="$2"; shift 2 ;;
        --rounds)      ROUNDS="$2"; ROUNDS_SET=1; shift 2 ;;
        --shadowgate)  SHADOWGATE="$2"; shift 2 ;;
        --out)         OUT="$2"; shift 2 ;;
        --quick)       DURATION=2; QUICK=1; shift ;;
        --path)        URL_PATH="$2"; shift 2 ;;
        -h|--help)     usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

[[ "$DURATION" =~ ^[0-9]+$ && "$DURATION" -gt 0 ]] || { echo "--duration must be a positive integer" >&2; exit 2; }
[[ "$CONNS" =~ ^[0-9]+$ && "$CONNS" -ge 2 ]] || { echo "--connections must be an integer >= 2" >&2; exit 2; }
if [[ $QUICK -eq 1 && $ROUNDS_SET -eq 0 ]]; then ROUNDS=1; fi
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }
[[ "$URL_PATH" == /* ]] || { echo "--path must start with /" >&2; exit 2; }
for tool in nginx wrk curl getconf; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
[[ -x "$PY" ]] || { echo "missing $PY" >&2; exit 1; }
[[ -x "$SHADOWGATE" ]] || { echo "shadowgate binary not found/executable: $SHADOWGATE" >&2; exit 1; }
if [[ -n "$OUT" ]]; then
    OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
fi
NGINX_BIN="$(command -v nginx)"

# facts about the binary under test, taken before anything runs (it may be rebuilt meanwhile)
SG_MTIME="$(date -u -r "$SHADOWGATE" '+%Y-%m-%d %H:%M:%S UTC')"
SG_COMMIT="$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    SG_COMMIT="$SG_COMMIT (working tree has uncommitted changes)"
fi

# How busy is the machine before we start? (other work skews every number below)
cpu_busy_pct() {  # busy % of all CPUs over 1 s, from /proc/stat
    local a b
    a="$(head -n1 /proc/stat)"; sleep 1; b="$(head -n1 /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); tot = 0
        for (i = 2; i <= n; i++) tot += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%.0f", (tot > 0 ? 100 * (tot - idle) / tot : 0) }'
}
BUSY_BEFORE="$(cpu_busy_pct)"
if [[ "$BUSY_BEFORE" -gt 10 ]]; then
    echo "[bench] WARNING: machine already ${BUSY_BEFORE}% busy before the benchmark; numbers will be noisy" >&2
fi

WORK="$(mktemp -d /tmp/shadowgate-bench.XXXXXX)"
STARTED_PIDS=()          # every process we started (nginx masters, shadowgate)
CLEANED=0

log() { printf '[bench] %s\n' "$*" >&2; }

# Children of a pid (nginx workers), matched by parent pid, never by name.
children_of() {
    pgrep -P "$1" || true
}

cleanup() {
    set +e
    [[ $CLEANED -eq 1 ]] && return
    CLEANED=1
    local p kids=() all=()
    for p in "${STARTED_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || continue
        all+=("$p")
        # remember nginx workers so they can be killed too if the master hangs
        while read -r c; do [[ -n "$c" ]] && kids+=("$c"); done < <(children_of "$p")
    done
    for p in "${all[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    local deadline=$((SECONDS + 5))
    for p in "${all[@]}" "${kids[@]}"; do
        while kill -0 "$p" 2>/dev/null && [[ $SECONDS -lt $deadline ]]; do sleep 0.1; done
        kill -0 "$p" 2>/dev/null && { log "pid $p did not stop on SIGTERM, sending SIGKILL"; kill -KILL "$p" 2>/dev/null || true; }
    done
    for p in "${all[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ "${KEEP_WORK:-0}" == 1 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {  # wait_http PORT PID NAME
    local port="$1" pid="$2" name="$3" i
    for i in $(seq 1 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during startup"; return 1
        fi
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port$URL_PATH"; then return 0; fi
        sleep 0.1
    done
    log "$name did not answer on port $port"; return 1
}

# CPU ticks (utime+stime) summed over the given pids.
cpu_ticks() {
    local total=0 p line rest
    for p in "$@"; do
        line="$(cat "/proc/$p/stat" 2>/dev/null)" || { log "pid $p vanished"; continue; }
        rest="${line##*) }"            # fields from 3 (state) on
        # utime = field 14, stime = field 15 -> positions 12 and 13 of rest
        total=$((total + $(awk '{print $12 + $13}' <<<"$rest")))
    done
    echo "$total"
}

nginx_common() {  # prefix
    cat <<EOF
error_log $1/error.log warn;
pid $1/nginx.pid;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {  # prefix
    cat <<EOF
    access_log off;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
EOF
}

# ---------------------------------------------------------------- backend
BACKEND_PORT="$(free_port)"
BK="$WORK/backend"; mkdir -p "$BK"
{
    echo "worker_processes 1;"
    nginx_common "$BK"
    echo "http {"
    nginx_http_common "$BK"
    cat <<EOF
    server {
        listen 127.0.0.1:$BACKEND_PORT;
        location / {
            default_type application/json;
            return 200 '{"ok":true,"service":"tiny"}';
        }
    }
}
EOF
} >"$BK/nginx.conf"
"$NGINX_BIN" -p "$BK" -c "$BK/nginx.conf" -g 'daemon off;' >"$BK/stdout.log" 2>&1 &
BACKEND_PID=$!
STARTED_PIDS+=("$BACKEND_PID")
wait_http "$BACKEND_PORT" "$BACKEND_PID" "backend nginx" || { cat "$BK"/*.log >&2; exit 1; }
log "backend nginx pid $BACKEND_PID on 127.0.0.1:$BACKEND_PORT"

# ---------------------------------------------------------------- nginx reverse proxy
NGINX_PORT="$(free_port)"
NX="$WORK/nginx-proxy"; mkdir -p "$NX"
{
    echo "worker_processes auto;"
    nginx_common "$NX"
    echo "http {"
    nginx_http_common "$NX"
    cat <<EOF
    upstream tiny_backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://tiny_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$NX/nginx.conf"
"$NGINX_BIN" -p "$NX" -c "$NX/nginx.conf" -g 'daemon off;' >"$NX/stdout.log" 2>&1 &
NGINX_PID=$!
STARTED_PIDS+=("$NGINX_PID")
wait_http "$NGINX_PORT" "$NGINX_PID" "nginx proxy" || { cat "$NX"/*.log >&2; exit 1; }
log "nginx proxy pid $NGINX_PID on 127.0.0.1:$NGINX_PORT"

# ---------------------------------------------------------------- shadowgate
SG="$WORK/shadowgate"; mkdir -p "$SG"
cat >"$SG/config.json" <<EOF
{"proxy": {"listen": {"host": "127.0.0.1", "port": 0}, "threads": 2},
 "v1": {"address": {"host": "127.0.0.1", "port": $BACKEND_PORT}},
 "admin": {"listen": {"host": "127.0.0.1", "port": 0}},
 "log": {"level": "warn"}}
EOF
SHADOWGATE_ADMIN_TOKEN="bench-$$" "$SHADOWGATE" serve --config "$SG/config.json" \
    --ready-file "$SG/ready.json" >"$SG/stdout.log" 2>"$SG/stderr.log" &
SG_PID=$!
STARTED_PIDS+=("$SG_PID")
for i in $(seq 1 100); do
    [[ -s "$SG/ready.json" ]] && break
    kill -0 "$SG_PID" 2>/dev/null || { log "shadowgate exited during startup"; cat "$SG"/*.log >&2; exit 1; }
    sleep 0.1
done
[[ -s "$SG/ready.json" ]] || { log "shadowgate wrote no ready file"; cat "$SG"/*.log >&2; exit 1; }
SG_PORT="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["proxy_port"])' "$SG/ready.json")"
wait_http "$SG_PORT" "$SG_PID" "shadowgate" || { cat "$SG"/*.log >&2; exit 1; }
log "shadowgate pid $SG_PID on 127.0.0.1:$SG_PORT"

# ---------------------------------------------------------------- sanity: same answer everywhere
EXPECTED='{"ok":true,"service":"tiny"}'
for spec in "direct:$BACKEND_PORT" "nginx:$NGINX_PORT" "shadowgate:$SG_PORT"; do
    name="${spec%%:*}"; port="${spec##*:}"
    resp="$(curl -s --max-time 5 -w '\n%{http_code}' "http://127.0.0.1:$port$URL_PATH")" || resp=$'\n000'
    code="${resp##*$'\n'}"; body="${resp%$'\n'*}"
    if [[ "$code" != 200 || "$body" != "$EXPECTED" ]]; then
        log "WARNING: $name answered $code '$body' (expected 200 '$EXPECTED'); its numbers are not meaningful"
    fi
done

# ---------------------------------------------------------------- measurements
CLK_TCK="$(getconf CLK_TCK)"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# wrk runs in the background and is waited for, so that Ctrl-C runs our INT trap at once
# (wrk catches SIGINT and exits 0, which would otherwise make bash swallow the signal).
run_wrk() {
    wrk "$@" &
    local pid=$!
    STARTED_PIDS+=("$pid")
    local rc=0
    wait "$pid" || rc=$?
    unset 'STARTED_PIDS[-1]'
    if [[ $rc -ne 0 ]]; then log "wrk $* failed (exit $rc)"; return "$rc"; fi
}

# Sockets towards the backend in a TCP state: "established" right after a proxied run = the
# proxy's idle upstream pool; "time-wait" sockets that appear during a proxied run = upstream
# connections closed (should stay 0 when the proxy reuses its keep-alive connections).
upstream_sockets() {  # upstream_sockets time-wait | upstream_sockets established PID...
    local state="$1"; shift
    if [[ "$state" == time-wait ]]; then   # the set of such sockets, one "local peer" a line
        ss -Htan state time-wait "( dport = :$BACKEND_PORT or sport = :$BACKEND_PORT )" 2>/dev/null \
            | awk '{print $(NF-1), $NF}' | sort
        return
    fi
    local pat
    pat="pid=($(IFS='|'; echo "$*")),"
    ss -Htanp state established "( dport = :$BACKEND_PORT )" 2>/dev/null | grep -cE "$pat" || true
}

# run_one TARGET ROUND PORT CONNS THREADS PID...   (PIDs = processes whose CPU is charged)
run_one() {
    local target="$1" round="$2" port="$3" conns="$4" threads="$5"; shift 5
    local url="http://127.0.0.1:$port$URL_PATH"
    local raw="$WORK/wrk-$target-c$conns-r$round.txt"
    local what="round $round/$ROUNDS: $target c=$conns"
    log "$what: warm-up ${WARMUP}s"
    run_wrk -t"$threads" -c"$conns" -d"${WARMUP}s" "$url" >/dev/null
    log "$what: measuring ${DURATION}s"
    local t0 t1 closed est
    upstream_sockets time-wait >"$WORK/tw0"
    t0="$(cpu_ticks "$@")"
    run_wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency "$url" >"$raw"
    t1="$(cpu_ticks "$@")"
    upstream_sockets time-wait >"$WORK/tw1"
    closed="$(comm -13 "$WORK/tw0" "$WORK/tw1" | wc -l)"   # TIME-WAIT sockets new in this run
    est="$(upstream_sockets established "$@")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$conns" "$((t1 - t0))" "$CLK_TCK" \
        "$raw" "$est" "$closed" "$round" >>"$RESULTS"
}

nginx_pids() { echo "$NGINX_PID"; children_of "$NGINX_PID"; }
NGINX_ALL=($(nginx_pids))
BACKEND_ALL=($(echo "$BACKEND_PID"; children_of "$BACKEND_PID"))
log "nginx proxy processes: ${NGINX_ALL[*]}; backend processes: ${BACKEND_ALL[*]}"

log "$ROUNDS round(s) of 6 runs of ${DURATION}s (+${WARMUP}s warm-up each):" \
    "about $((ROUNDS * 6 * (DURATION + WARMUP)))s"
LOADAVG_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
# Rounds are interleaved (round 1 all targets, round 2 all targets, ...) so that drift on
# the machine hits every target alike; the report compares targets within a round.
for round in $(seq 1 "$ROUNDS"); do
    for conns_threads in "$CONNS:2" "1:1"; do
        c="${conns_threads%%:*}"; t="${conns_threads##*:}"
        run_one direct     "$round" "$BACKEND_PORT" "$c" "$t" "${BACKEND_ALL[@]}"
        run_one nginx      "$round" "$NGINX_PORT"   "$c" "$t" "${NGINX_ALL[@]}"
        run_one shadowgate "$round" "$SG_PORT"      "$c" "$t" "$SG_PID"
    done
done
LOADAVG_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# processes must still be alive, else the numbers are suspect
for p in "$BACKEND_PID" "$NGINX_PID" "$SG_PID"; do
    kill -0 "$p" 2>/dev/null || log "WARNING: pid $p died during the benchmark"
done
if [[ -s "$SG/stderr.log" ]]; then
    log "shadowgate stderr (last lines):"; tail -n 5 "$SG/stderr.log" >&2
fi

# ---------------------------------------------------------------- report
BUSY_AFTER="$(cpu_busy_pct)"
export BENCH_DURATION="$DURATION" BENCH_WARMUP="$WARMUP" BENCH_CONNS="$CONNS" \
    BENCH_PATH="$URL_PATH" BENCH_SG_BIN="$SHADOWGATE" BENCH_SG_COMMIT="$SG_COMMIT" \
    BENCH_NGINX_VERSION="$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')" \
    BENCH_WRK_VERSION="$(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}')" \
    BENCH_LOADAVG_BEFORE="$LOADAVG_BEFORE" BENCH_LOADAVG_AFTER="$LOADAVG_AFTER" \
    BENCH_SG_MTIME="$SG_MTIME" BENCH_BUSY_BEFORE="$BUSY_BEFORE" BENCH_BUSY_AFTER="$BUSY_AFTER"
"$PY" "$SCRIPT_DIR/bench_report.py" "$RESULTS" "$OUT"
[[ -n "$OUT" ]] && log "report written to $OUT"
exit 0
