"""The MariaDB server of the ctest fixture (tests/mariadb), for Python suites.

Standard library only; talks to the server with the `mariadb` command-line client.

API
---
mariadb_env() -> dict                  the fixture's conn.env (SG_MARIADB_ENV names it)
admin_sql(db, sql) -> str              runs sql as the administrator, returns tab-separated rows
fresh_database(db, name) -> str        (re)creates database `name`, usable by the test user
drop_database(db, name)
dolt_config(db, name) -> dict          the "dolt" config section for that database
user_env(db) -> dict                   os.environ plus SHADOWGATE_DOLT_PASSWORD for the test user
private_server(dir) -> PrivateServer   a server of the test's own (start/halt/stop), for tests
                                       that stop the database (the fixture's is shared)
read_lock(db) -> ReadLock              FLUSH TABLES WITH READ LOCK held by a session of its own
                                       until .release(): writes wait, reads go on
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SERVER_SH = Path(__file__).resolve().parents[1] / "mariadb" / "server.sh"


def read_env_file(path: Path) -> dict:
    env = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def mariadb_env() -> dict:
    path = os.environ.get("SG_MARIADB_ENV")
    if not path:
        pytest.fail("SG_MARIADB_ENV is not set: run through ctest (the mariadb fixture)")
    return read_env_file(Path(path))


def _admin_client(db: dict, *args: str) -> tuple[list, dict]:
    """The `mariadb` client as the administrator, batch output without column names: argv and
    environment (the password in MYSQL_PWD, never on the command line)."""
    return (["mariadb", "--no-defaults", "-h", db["SG_MARIADB_HOST"], "-P", db["SG_MARIADB_PORT"],
             "--protocol=TCP", "-u", db["SG_MARIADB_ROOT_USER"], "-N", "-B", *args],
            {**os.environ, "MYSQL_PWD": db["SG_MARIADB_ROOT_PASSWORD"]})


def admin_sql(db: dict, sql: str) -> str:
    argv, env = _admin_client(db, "--max-allowed-packet=1G", "-e", sql)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout


def fresh_database(db: dict, name: str) -> str:
    admin_sql(db, f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}; "
                  f"GRANT ALL ON {name}.* TO '{db['SG_MARIADB_USER']}'@'%'; "
                  f"GRANT ALL ON {name}.* TO '{db['SG_MARIADB_USER']}'@'localhost'")
    return name


def drop_database(db: dict, name: str) -> None:
    admin_sql(db, f"DROP DATABASE IF EXISTS {name}")


def dolt_config(db: dict, name: str) -> dict:
    return {"host": db["SG_MARIADB_HOST"], "port": int(db["SG_MARIADB_PORT"]),
            "user": db["SG_MARIADB_USER"], "database": name}


def user_env(db: dict) -> dict:
    return {**os.environ, "SHADOWGATE_DOLT_PASSWORD": db["SG_MARIADB_PASSWORD"]}


class PrivateServer:
    """A MariaDB server in `dir` (tests/mariadb/server.sh): halt() keeps its data and port, so a
    later start() brings the same database back."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def _run(self, cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run(["bash", str(SERVER_SH), cmd, str(self.dir)], capture_output=True,
                             text=True, timeout=180)
        if check:
            assert res.returncode == 0, (cmd, res.stdout, res.stderr)
        return res

    def start(self) -> dict:
        """Starts (or restarts) the server; a restarted one is the same server or this fails."""
        conn = self.dir / "conn.env"
        before = read_env_file(conn) if conn.exists() else None
        self._run("start")
        env = read_env_file(conn)
        if before is not None:
            assert env["SG_MARIADB_PORT"] == before["SG_MARIADB_PORT"], (before, env)
            assert env["SG_MARIADB_PASSWORD"] == before["SG_MARIADB_PASSWORD"]
        return env

    def try_start(self) -> subprocess.CompletedProcess:
        return self._run("start", check=False)

    def halt(self) -> None:
        self._run("halt")

    def stop(self) -> None:
        self._run("stop")


def private_server(directory: Path) -> PrivateServer:
    return PrivateServer(directory)


class ReadLock:
    """FLUSH TABLES WITH READ LOCK in a `mariadb` client session kept open: every write to the
    server waits (or times out) until release(); reads go on. Proof that work was unapplied."""

    def __init__(self, db: dict):
        argv, env = _admin_client(db, "-n")  # unbuffered: each answer as it comes
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self._say("FLUSH TABLES WITH READ LOCK; SELECT 'locked';", "locked")

    def _say(self, sql: str, answer: str):
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        assert line == answer, (line, self.proc.stderr.read() if line == "" else "")

    def release(self):
        if self.proc.poll() is None:
            self._say("UNLOCK TABLES; SELECT 'unlocked';", "unlocked")
            self.proc.stdin.close()
            self.proc.wait(30)


def read_lock(db: dict) -> ReadLock:
    return ReadLock(db)
