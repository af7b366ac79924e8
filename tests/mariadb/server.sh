#!/usr/bin/env bash
# tests/mariadb/server.sh: starts and stops a private MariaDB server for tests, benchmarks and the
# demo, in a directory of its own, on loopback with an OS-chosen free port and a unix socket. It
# never touches /var/lib/mysql, /etc/mysql or the system service (--no-defaults everywhere).
#
#   server.sh start DIR    initialize DIR (first time) and start the server; idempotent: a running
#                          server is left alone; a halted one restarts on the same port and data,
#                          or fails (exit 1, data kept) when it cannot: never empty on a new port
#   server.sh halt DIR     stop the server, keep its data (a later `start` brings it back)
#   server.sh stop DIR     stop the server and delete DIR
#   server.sh env DIR      print the connection details (the contents of DIR/conn.env)
#   server.sh status DIR   exit 0 when the server answers, 1 otherwise
#
# DIR/conn.env (mode 600) holds shell-style KEY=VALUE lines: SG_MARIADB_HOST, _PORT, _SOCKET,
# _USER, _PASSWORD, _DATABASE (a dedicated user with all rights on its database), _ROOT_USER and
# _ROOT_PASSWORD (an administrator, for creating one database per test case), _PID, _DIR.
# Passwords are random and alphanumeric, so the file can be sourced or split on '=' as it is.
set -euo pipefail

usage() {
    echo "usage: $0 start|halt|stop|env|status DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
export PATH="$PATH:/usr/sbin:/sbin"
if [ "$cmd" = start ]; then
    mkdir -p "$2"
elif [ ! -d "$2" ]; then
    case "$cmd" in
        halt | stop) exit 0 ;;
        *) echo "mariadb-server: no server in $2" >&2; exit 1 ;;
    esac
fi
dir=$(cd "$2" && pwd)
data="$dir/data"
conn="$dir/conn.env"
pidfile="$dir/mariadbd.pid"
errlog="$dir/mariadbd.err"

log() { echo "mariadb-server: $*" >&2; }

# The value of KEY in conn.env ("" when absent).
conn_get() {
    [ -f "$conn" ] || return 0
    sed -n "s/^$1=//p" "$conn" | tail -n1
}

server_pid() {
    local pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # A recycled pid must not be mistaken for our server.
    local exe
    exe=$(readlink -f "$(command -v mariadbd)")
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$exe" ] || return 1
    echo "$pid"
}

# Admin client over the unix socket; root's password may not be set yet during bootstrap.
admin_sql() {
    local socket pw
    socket=$(conn_get SG_MARIADB_SOCKET)
    pw=$(conn_get SG_MARIADB_ROOT_PASSWORD)
    MYSQL_PWD="$pw" mariadb --no-defaults --protocol=socket --socket="$socket" -uroot \
        --batch --skip-column-names -e "$1"
}

ping_server() {
    local socket
    socket=$(conn_get SG_MARIADB_SOCKET)
    [ -n "$socket" ] && [ -S "$socket" ] || return 1
    MYSQL_PWD="$(conn_get SG_MARIADB_ROOT_PASSWORD)" mariadb-admin --no-defaults \
        --protocol=socket --socket="$socket" -uroot --connect-timeout=2 ping >/dev/null 2>&1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

random_password() {
    # 24 alphanumerics; `|| true` because head closing the pipe makes tr fail under pipefail.
    (tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24) || true
}

# A socket path must fit sockaddr_un (108 bytes): deep build directories get one under /tmp.
pick_socket() {
    local s="$dir/mariadbd.sock"
    if [ ${#s} -gt 100 ]; then
        s="$(mktemp -d /tmp/sg-mariadb.XXXXXX)/mariadbd.sock"
    fi
    echo "$s"
}

write_conn() {  # port socket password root_password pid
    local tmp="$conn.tmp"
    umask 077
    cat >"$tmp" <<EOF
SG_MARIADB_HOST=127.0.0.1
SG_MARIADB_PORT=$1
SG_MARIADB_SOCKET=$2
SG_MARIADB_USER=shadowgate
SG_MARIADB_PASSWORD=$3
SG_MARIADB_DATABASE=shadowgate
SG_MARIADB_ROOT_USER=root
SG_MARIADB_ROOT_PASSWORD=$4
SG_MARIADB_PID=$5
SG_MARIADB_DIR=$dir
EOF
    mv "$tmp" "$conn"
}

launch() {  # port socket
    local root_flag=()
    [ "$(id -u)" -ne 0 ] || root_flag=(--user=root)
    mkdir -p "$dir/tmp"
    rm -f "$pidfile" "$2"
    # setsid and redirected descriptors: the server must not hold ctest's output pipe or our lock
    # (fd 9) open, nor die with the shell that started it. Settings favour speed over durability:
    # this is test data.
    setsid -w mariadbd --no-defaults "${root_flag[@]}" \
        --datadir="$data" --tmpdir="$dir/tmp" --pid-file="$pidfile" --log-error="$errlog" \
        --socket="$2" --port="$1" --bind-address=127.0.0.1 --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
        --innodb-buffer-pool-size=512M --innodb-log-file-size=256M \
        --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 --innodb-use-native-aio=0 \
        --max-connections=200 --skip-log-bin --max-allowed-packet=64M \
        </dev/null >>"$dir/mariadbd.out" 2>&1 9>&- &
    local launcher=$!
    local i
    for i in $(seq 1 300); do  # up to 30 s; a fresh server answers in well under a second
        if MYSQL_PWD="$(conn_get SG_MARIADB_ROOT_PASSWORD)" mariadb-admin --no-defaults \
            --protocol=socket --socket="$2" -uroot --connect-timeout=1 ping >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$launcher" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    log "server did not come up; last lines of $errlog:"
    tail -n 20 "$errlog" >&2 || true
    local pid
    pid=$(server_pid) && kill -KILL "$pid" 2>/dev/null
    kill "$launcher" 2>/dev/null || true
    return 1
}

start() {
    if server_pid >/dev/null; then
        if ping_server; then
            return 0
        fi
        halt  # running but not answering us (conn.env lost or stale): start over
    fi
    if [ -f "$data/.sg-initialized" ] && [ -f "$conn" ]; then
        # A halted server: same data, port and passwords, so clients can reconnect to it.
        local port socket
        port=$(conn_get SG_MARIADB_PORT)
        socket=$(conn_get SG_MARIADB_SOCKET)
        mkdir -p "$(dirname "$socket")"
        if launch "$port" "$socket"; then
            write_conn "$port" "$socket" "$(conn_get SG_MARIADB_PASSWORD)" \
                "$(conn_get SG_MARIADB_ROOT_PASSWORD)" "$(server_pid)"
            log "restarted on 127.0.0.1:$port"
            return 0
        fi
        # Its port now taken or its data damaged: say so and stop. Starting an empty server
        # (on another port) would hand the caller a database without the data it halted with.
        log "restart of the halted server in $dir on port $port failed (its data is kept):"
        tail -n 20 "$errlog" >&2 2>/dev/null || true
        log "free the port or run '$0 stop $dir' to start over with an empty server"
        return 1
    fi

    rm -rf "$data" "$conn"
    mkdir -p "$data"
    if ! mariadb-install-db --no-defaults --datadir="$data" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        $([ "$(id -u)" -ne 0 ] || echo --user=root) --innodb-log-file-size=256M \
        >"$dir/install.log" 2>&1; then
        log "mariadb-install-db failed:"
        tail -n 20 "$dir/install.log" >&2
        return 1
    fi

    local socket password root_password attempt port=""
    socket=$(pick_socket)
    password=$(random_password)
    root_password=$(random_password)
    write_conn 0 "$socket" "$password" "" ""
    # The free port is only free until someone else takes it: retry a few times on a lost race.
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if launch "$port" "$socket"; then
            break
        fi
        if ! grep -q "Bind on TCP/IP port\|Address already in use" "$errlog" 2>/dev/null \
            || [ "$attempt" -eq 5 ]; then
            return 1
        fi
        : >"$errlog"
    done

    # root@localhost (socket) and root@127.0.0.1 get a password: tests may not run as OS root.
    admin_sql "
        ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_password';
        ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$root_password';
        CREATE DATABASE IF NOT EXISTS shadowgate CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
        CREATE USER IF NOT EXISTS 'shadowgate'@'%' IDENTIFIED BY '$password';
        CREATE USER IF NOT EXISTS 'shadowgate'@'localhost' IDENTIFIED BY '$password';
        GRANT ALL PRIVILEGES ON shadowgate.* TO 'shadowgate'@'%';
        GRANT ALL PRIVILEGES ON shadowgate.* TO 'shadowgate'@'localhost';
        FLUSH PRIVILEGES;"
    write_conn "$port" "$socket" "$password" "$root_password" "$(server_pid)"
    touch "$data/.sg-initialized"
    log "started on 127.0.0.1:$port, socket $socket"
}

halt() {
    local pid i
    pid=$(server_pid) || return 0
    kill -TERM "$pid"
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "server $pid ignored SIGTERM for 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

stop() {
    local socket
    socket=$(conn_get SG_MARIADB_SOCKET)
    halt
    case "$socket" in
        /tmp/sg-mariadb.*/*) rm -rf "$(dirname "$socket")" ;;
    esac
    rm -rf "$dir"
}

# One command at a time per DIR (two test runs starting the same server at once).
exec 9>"$dir.lock"
flock 9

case "$cmd" in
    start) start ;;
    halt) halt ;;
    stop) stop; rm -f "$dir.lock" ;;
    env) [ -f "$conn" ] || { log "no server in $dir"; exit 1; }; cat "$conn" ;;
    status) server_pid >/dev/null && ping_server ;;
    *) usage ;;
esac
