"""The mirror: v1 writes reach Dolt (here MariaDB) exactly, through the proxy or around
it, and nothing is lost when Dolt or shadowgate goes down.

Real parts: the shadowgate binary in the shadow (or dualwrite) stage, the v1 reference service
with its /_test/ agent endpoints, and MariaDB (the ctest fixture; the outage test starts a
private server it can stop). The judge is independent of
shadowgate (judge.py: v1's answers and git against SQL on the plan's columns); `shadowgate verify`
runs as well. One fake: HungServer, a TCP listener that accepts and never answers, because no real
database can be made to hang on demand.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import db_harness
import judge
from db_harness import admin_sql, dolt_config, fresh_database, drop_database, mariadb_env
from sg_harness import base_config, shadowgate_bin, start_shadowgate, wait_for
from v1ref_harness import request, start_v1ref

TOKEN = "mirror-test-token"
FAST_MIRROR = {"scan_interval_ms": 1000, "retry_initial_ms": 50, "retry_max_ms": 1000,
               "breaker_threshold": 2, "breaker_cooldown_ms": 200}
_counter = [0]


def unique_name(prefix: str) -> str:
    _counter[0] += 1
    return f"{prefix}_{os.getpid()}_{_counter[0]}"


class Stack:
    """v1ref on a fresh data dir, a fresh database, shadowgate in front."""

    def __init__(self, tmp_path: Path, *, stage="shadow", dolt=None, db=None, mirror=None,
                 database=None, shadow=None, data=None, v1_args=(), control=None):
        self.tmp = tmp_path
        self.data = data if data is not None else tmp_path / "v1data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.v1 = start_v1ref(self.data, extra_args=v1_args)
        self.db = db if db is not None else mariadb_env()
        self.database = database
        if dolt is None:
            self.database = fresh_database(self.db, database or unique_name("sgt_mirror"))
            dolt = dolt_config(self.db, self.database)
        self.schema = dolt.get("database")  # what the judge and sql() read
        self.cfg = base_config(self.v1.port, stage=stage, v1_data_dir=str(self.data), dolt=dolt,
                               mirror={**FAST_MIRROR, **(mirror or {})},
                               **({"shadow": shadow} if shadow is not None else {}),
                               **({"control": control} if control is not None else {}))
        self.env = {"SHADOWGATE_DOLT_PASSWORD": self.db.get("SG_MARIADB_PASSWORD", "x"),
                    "SHADOWGATE_ADMIN_TOKEN": TOKEN}
        self.cfg_path = tmp_path / "verify.json"
        self.cfg_path.write_text(json.dumps(self.cfg))
        self.sg = None
        self.start()

    def start(self):
        self.sg = start_shadowgate(self.cfg, env=self.env)
        return self.sg

    def close(self):
        if self.sg:
            self.sg.stop()
        self.v1.stop()
        if self.database:
            drop_database(self.db, self.database)

    # ---- through the proxy, and around it
    def call(self, method, path, body=None):
        status, _, payload = request(method, self.sg.url + path, body)
        return status, (json.loads(payload) if payload else None)

    def agent(self, method, path, body=None):
        status, _, payload = request(method, self.v1.url + path, body)
        assert status == 200, (path, status, payload)
        return json.loads(payload)

    # ---- observing the mirror
    def mirror_status(self):
        status, _, payload = request("GET", self.sg.admin_url + "/admin/mirror",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, (status, payload)
        return json.loads(payload)

    def verify(self):
        return subprocess.run([str(shadowgate_bin()), "verify", "-c", str(self.cfg_path)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, **self.env})

    def judge(self, users=None):
        """The independent judge (judge.py): v1's answers and git against SQL on the plan's
        columns; [] when they agree."""
        return judge.differences(self.v1.url, self.db, self.schema, self.data, users)

    def converge(self, timeout=60.0, users=None):
        """Waits until the mirror is idle and the independent judge finds the plan's columns
        equal to v1's reading (of `users`, default all); then `verify` must agree. Returns
        verify's output."""
        deadline = time.monotonic() + timeout
        found = None
        while time.monotonic() < deadline:
            if self.mirror_status()["idle"]:
                found = self.judge(users)
                if not found:
                    res = self.verify()
                    assert res.returncode == 0, res.stdout + res.stderr
                    return res.stdout
            time.sleep(0.3)
        pytest.fail(f"no convergence: {self.mirror_status()}\n" + "\n".join((found or [])[:40]) +
                    f"\n{self.sg.log()[-3000:]}")

    def sql(self, query):
        return admin_sql(self.db, f"USE {self.schema}; {query}")


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    yield s
    s.close()


def init_users(s: Stack, users):
    for u in users:
        status, body = s.call("POST", "/users/init", {"user_id": u, "name": u.title()})
        assert status == 200, body


def put(s: Stack, user, label, content, message=None):
    body = {"content": content}
    if message:
        body["message"] = message
    status, out = s.call("PUT", f"/users/{user}/blocks/{label}", body)
    assert status == 200, out
    return out["commit_sha"]


def test_writes_through_the_proxy_reach_dolt_exactly(stack):
    users = [f"mu-{i}" for i in range(8)]
    init_users(stack, users)
    stack.converge()
    base_log = int(stack.sql("SELECT COUNT(*) FROM mirror_commit_log").strip())

    rng = random.Random(4)
    shas = []
    lock = threading.Lock()
    errors = []

    def writer(seed):
        r = random.Random(seed)
        try:
            for n in range(12):
                u = r.choice(users)
                label = r.choice(["student", "journey", "notes", "goals"])
                text = (f"---\nblock: {label}\ntitle: T{n}\n---\n\n## {u} {n}\n\n"
                        f"{'é ✓ ' * r.randint(0, 30)}\r\nline {r.random()}\n")
                sha = put(stack, u, label, text, message=f"edit {n} by writer {seed}")
                with lock:
                    shas.append(sha)
                if r.random() < 0.3:
                    # A proposal by an agent (straight to storage), then approved or rejected
                    # through the proxy.
                    d = stack.agent("POST", f"/_test/users/{u}/diffs",
                                    {"block_label": label, "operation": "append",
                                     "proposed_value": f"\nappended {n}", "reasoning": "why not",
                                     "confidence": "high", "agent_id": "tutor"})
                    verb = "approve" if r.random() < 0.5 else "reject"
                    status, out = stack.call(
                        "POST", f"/users/{u}/blocks/{label}/diffs/{d['id']}/{verb}")
                    assert status in (200, 400), out
                    if verb == "approve" and status == 200:
                        with lock:
                            shas.append(out["commit_sha"])
                if r.random() < 0.15:
                    status, hist = stack.call("GET", f"/users/{u}/blocks/{label}/history?limit=5")
                    if status == 200 and len(hist) > 1:
                        status, out = stack.call("POST", f"/users/{u}/blocks/{label}/restore",
                                                 {"commit_sha": hist[-1]["sha"]})
                        assert status == 200, out
                        with lock:
                            shas.append(out["commit_sha"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(rng.random(),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    out = stack.converge()
    assert f"{len(users)} users compared, 0 differences" in out, out

    m = stack.sg.metrics()
    assert m["shadowgate_mirror_triggers_total"] >= len(shas)
    assert m["shadowgate_mirror_applied_commits_total"] >= len(shas)
    assert m['shadowgate_mirror_passes_total{result="parked"}'] == 0
    # per_v1_commit: every v1 commit made after the users were mirrored has its own record
    # (MariaDB cannot make Dolt commits: mirror_commit_log stands in), with v1's author.
    logged = stack.sql(f"SELECT v1_commit, author FROM mirror_commit_log WHERE id > {base_log}"
                       f" AND v1_commit IS NOT NULL")  # NULL: pending-diffs changes
    rows = [line.split("\t") for line in logged.strip().splitlines()]
    recorded = {r[0] for r in rows}
    assert set(shas) <= recorded, set(shas) - recorded
    assert len(rows) == len(recorded)  # one record per v1 commit, none twice
    assert {r[1] for r in rows} <= {"user <user@youlab.local>", "system <system@youlab.local>",
                                    "agent:tutor <agent-tutor@youlab.local>"}  # approvals


def test_agent_writes_reach_dolt_without_the_proxy(stack):
    init_users(stack, ["ag-1", "ag-2"])
    put(stack, "ag-1", "student", "hello")
    stack.converge()
    triggers = stack.sg.metrics()["shadowgate_mirror_triggers_total"]

    w = stack.agent("POST", "/_test/users/ag-1/blocks/student/agent-write",
                    {"content": "agent text\n", "author": "agent:planner"})
    stack.agent("POST", "/_test/users/ag-2/diffs",
                {"block_label": "student", "operation": "replace", "proposed_value": "x",
                 "reasoning": "r", "confidence": "low", "agent_id": "planner"})
    raw = stack.agent("POST", "/_test/users/ag-2/raw-commit",
                      {"files": {"memory-blocks/extra.md": "---\nblock: extra\n---\n\nraw\n"},
                       "message": "Raw agent commit", "author": "agent:raw"})
    out = stack.converge()
    assert "2 users compared, 0 differences" in out, out
    m = stack.sg.metrics()
    assert m["shadowgate_mirror_triggers_total"] == triggers  # nothing went through the proxy
    assert m["shadowgate_mirror_scan_found_total"] >= 2
    assert stack.sql(f"SELECT author FROM mirror_commit_log WHERE v1_commit = '{w['commit_sha']}'"
                     ).strip() == "agent:planner <agent-planner@youlab.local>"
    assert stack.sql(f"SELECT COUNT(*) FROM block_versions WHERE id = '{raw['commit_sha']}'"
                     ).strip() == "1"


def test_history_rewrite_is_detected_and_reimported(stack):
    init_users(stack, ["rw"])
    put(stack, "rw", "student", "one")
    second = put(stack, "rw", "student", "two")
    stack.converge()
    repo = stack.data / "rw"
    subprocess.run(["git", "-C", str(repo), "reset", "-q", "--hard", "HEAD~1"], check=True)
    (repo / "memory-blocks" / "student.md").write_text("rewritten\n")
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=x", "-c", "user.email=x@x",
                    "commit", "-qam", "Rewritten\n\nAuthor: user"], check=True)
    out = stack.converge()
    assert "0 differences" in out
    assert stack.sg.metrics()["shadowgate_mirror_history_rewrites_total"] == 1
    assert stack.sql(f"SELECT COUNT(*) FROM block_versions WHERE id = '{second}'").strip() == "0"
    assert "event=mirror_history_rewrite user=rw" in stack.sg.log()


@pytest.mark.parametrize("cache_mib", [64, 0])
def test_passes_read_on_from_the_state_applied_last(tmp_path, cache_mib):
    """With mirror.state_cache_mib a pass reads only the commits since the state it applied
    last and compares with that state instead of reading the user's rows; Dolt must end up
    exactly as with full reads (cache 0), through writes, agent commits and a rewrite."""
    s = Stack(tmp_path, mirror={"state_cache_mib": cache_mib})
    try:
        init_users(s, ["inc"])
        for i in range(6):
            put(s, "inc", "student" if i % 2 else "journey", f"text {i}\n")
            s.converge()
        s.agent("POST", "/_test/users/inc/raw-commit",
                {"files": {"memory-blocks/extra.md": "---\nblock: extra\n---\n\nraw\n",
                           "memory-blocks/student.md": "both at once\n"},
                 "message": "Two blocks\n\nAuthor: agent:raw", "author": "agent:raw"})
        assert "0 differences" in s.converge()
        s.agent("POST", "/_test/users/inc/raw-commit",
                {"files": {"memory-blocks/journey.md": None},
                 "message": "Drop journey\n\nAuthor: agent:raw", "author": "agent:raw"})
        s.agent("POST", "/_test/users/inc/diffs",
                {"block_label": "student", "operation": "replace", "proposed_value": "x",
                 "reasoning": "r", "confidence": "low", "agent_id": "planner"})
        assert "0 differences" in s.converge()
        assert s.sql("SELECT COUNT(*) FROM blocks WHERE user_id = 'inc' AND label = 'journey'"
                     ).strip() == "0"
        repo = s.data / "inc"
        subprocess.run(["git", "-C", str(repo), "reset", "-q", "--hard", "HEAD~2"], check=True)
        assert "0 differences" in s.converge()
        for i in range(3):
            put(s, "inc", "student", f"after the rewrite {i}\n")
        assert "0 differences" in s.converge()
        m = s.sg.metrics()
        passes = m["shadowgate_mirror_reads_incremental_total"] + \
            m["shadowgate_mirror_reads_full_total"]
        assert passes >= 10
        if cache_mib:
            # the first pass, the re-import after the rewrite and at most a few more read whole
            assert m["shadowgate_mirror_reads_full_total"] <= 4, m
            assert m["shadowgate_mirror_reads_incremental_total"] >= 6, m
            assert m["shadowgate_mirror_applies_known_total"] >= 6, m
            assert m["shadowgate_mirror_state_cache_users"] == 1
            assert m["shadowgate_mirror_state_cache_bytes"] > 0
        else:
            assert m["shadowgate_mirror_reads_incremental_total"] == 0
            assert m["shadowgate_mirror_applies_known_total"] == 0
            assert m["shadowgate_mirror_state_cache_bytes"] == 0
        assert m["shadowgate_mirror_pass_seconds_total"] > 0
    finally:
        s.close()


def park_by_a_long_author(s: Stack, user: str):
    """An author footer longer than the schema's VARCHAR(255): every apply of `user` fails with a
    data error and the mirror parks it. Returns the mirror's status once it has."""
    s.agent("POST", f"/_test/users/{user}/raw-commit",
            {"files": {"memory-blocks/student.md": "x\n"}, "message": "Long author",
             "author": "a" * 300})
    wait_for(f"{user} parked", lambda: s.mirror_status()["parked_users"] > 0)
    return s.mirror_status()


def test_a_permanently_failing_user_is_parked_and_others_keep_mirroring(stack):
    init_users(stack, ["bad", "good"])
    stack.converge()
    st = park_by_a_long_author(stack, "bad")
    assert [p["user_id"] for p in st["parked"]] == ["bad"], st
    assert "Data too long" in st["parked"][0]["error"], st
    put(stack, "good", "student", "still mirrored")
    wait_for("good mirrored", lambda: stack.judge(["good"]) == [])
    assert stack.judge(["bad"]), "the parked user's last commit is not in Dolt"
    m = stack.sg.metrics()
    assert m["shadowgate_mirror_parked_users"] == 1
    parks = m["shadowgate_mirror_parks_total"]
    # The scan leaves it parked while its storage stays the same (two whole scans later)...
    scans = m["shadowgate_mirror_scans_total"]
    wait_for("two more scans", lambda: stack.sg.metrics()["shadowgate_mirror_scans_total"] >=
             scans + 2)
    assert stack.sg.metrics()["shadowgate_mirror_parks_total"] == parks
    # ...an operator retry runs it again (and it parks again)...
    status, _, body = request("POST", stack.sg.admin_url + "/admin/mirror/retry?user=bad",
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and json.loads(body)["retried"] == 1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and \
            stack.sg.metrics()["shadowgate_mirror_parks_total"] == parks:
        time.sleep(0.2)
    assert stack.sg.metrics()["shadowgate_mirror_parks_total"] == parks + 1
    # ...and a repair of the storage (the bad commit dropped) brings it back by itself.
    subprocess.run(["git", "-C", str(stack.data / "bad"), "reset", "-q", "--hard", "HEAD~1"],
                   check=True)
    out = stack.converge()
    assert "2 users compared, 0 differences" in out
    deadline = time.monotonic() + 10  # the next capture scan sees it in step again
    while time.monotonic() < deadline and stack.mirror_status()["parked_users"] != 0:
        time.sleep(0.2)
    assert stack.mirror_status()["parked_users"] == 0


def test_a_parked_user_removed_from_v1_storage_is_released(stack):
    # Regression: the entry outlived its user and held the gate's parked_users criterion shut.
    init_users(stack, ["gone", "stays"])
    stack.converge()
    assert [p["user_id"] for p in park_by_a_long_author(stack, "gone")["parked"]] == ["gone"]
    assert stack.sg.metrics().get("shadowgate_mirror_parked_gone_total", 0) == 0
    shutil.rmtree(stack.data / "gone")
    # The next capture scan (every second here) releases it.
    wait_for("the release", lambda: stack.mirror_status()["parked_users"] == 0)
    st = stack.mirror_status()
    assert st["parked_users"] == 0 and st["parked"] == [], st
    assert stack.sg.metrics()["shadowgate_mirror_parked_gone_total"] == 1
    assert "event=mirror_parked_released reason=gone user=gone" in stack.sg.log()
    # The user that is still there keeps being mirrored.
    put(stack, "stays", "student", "after the release\n")
    # A user removed from v1 storage keeps its rows: the mirror never deletes a user on its own
    # (an unmounted data dir would look the same); reconcile reports it as an extra user.
    stack.converge(users=["stays"])
    assert stack.judge(["gone"]) == ["'gone' exists: v1 False != sql True"]
    assert stack.sql("SELECT content FROM blocks WHERE user_id = 'stays'").strip() == \
        "after the release\\n"


HOSTILE_INIT_BODIES = [
    json.dumps({"user_id": "../escaped"}).encode(),
    json.dumps({"user_id": "a\u0001b"}).encode(),
    json.dumps({"user_id": "a\nb"}).encode(),
    b'{"user_id": "\\ud800"}',                     # a lone surrogate: Python reads it
    b'{"user_id": "\xff"}',                        # not UTF-8
    b'{"user_id": "ok", "user_id": "../dup"}',     # Python keeps the last
    json.dumps({"user_id": "../utf16"}).encode("utf-16"),  # Python's json reads UTF-16
    b'{"user_id": "../nan", "x": NaN}',
]


def test_ids_in_json_bodies_are_checked_before_v1_sees_them(tmp_path):
    # Regression: against a v1 that checks nothing (as the real one), in a scratch directory.
    scratch = tmp_path / "scratch"
    s = Stack(tmp_path, data=scratch / "v1data", v1_args=["--unchecked-names"])
    try:
        # The control: this upstream really does make what it is told to, outside its data dir.
        status, _, _ = request("POST", s.v1.url + "/users/init",
                               body=b'{"user_id": "ok", "user_id": "../direct"}',
                               headers={"Content-Type": "application/json"})
        assert status == 200 and (scratch / "direct" / ".git").is_dir()
        shutil.rmtree(scratch / "direct")
        init_users(s, ["fine"])
        for body in HOSTILE_INIT_BODIES:
            status, _, payload = request("POST", s.sg.url + "/users/init", body=body,
                                         headers={"Content-Type": "application/json"})
            assert status == 400, (body, status, payload)
            assert json.loads(payload)["error"] == "hostile_path", payload
        # restore's commit_sha and path ids that are not UTF-8 are refused the same way.
        put(s, "fine", "student", "one\n")
        status, _, payload = request("POST", s.sg.url + "/users/fine/blocks/student/restore",
                                     {"commit_sha": "../../x"})
        assert status == 400 and b"commit_sha in the body" in payload, payload
        for path in ["/users/%FF/exists", "/users/fine/blocks/%ED%A0%80"]:
            status, _, payload = request("PUT" if "blocks" in path else "GET", s.sg.url + path,
                                         {"content": "x"})
            assert status == 400 and b"not valid UTF-8" in payload, (path, payload)
        assert s.sg.metrics()['shadowgate_rejected_requests_total{reason="hostile_path"}'] == \
            len(HOSTILE_INIT_BODIES) + 3
        # Nothing was made outside the data dir, and inside it only the user that is fine.
        assert sorted(p.name for p in scratch.iterdir()) == ["v1data"]
        assert sorted(p.name for p in s.data.iterdir()) == ["fine"]
        out = s.converge()
        assert "1 users compared, 0 differences" in out and "unreadable" not in out, out
        assert s.mirror_status()["parked_users"] == 0
    finally:
        s.close()


def raw_request(port: int, line: str, body: bytes = b"", host: str = "x") -> tuple[int, bytes]:
    """One request with a request-line as given (any target form); (status, body)."""
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.settimeout(10)
        c.sendall(f"{line}\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        out = b""
        while chunk := c.recv(65536):
            out += chunk
    head, _, payload = out.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


def test_absolute_form_and_unrouted_targets_are_routed_as_v1_would(stack):
    # Regression: an absolute-form target bypassed the route table, the hostile-path filter
    # and the mirror trigger. Now it is made origin-form (RFC 9112 §3.2.2) and routed as such.
    init_users(stack, ["af"])
    status, body = raw_request(stack.sg.port, "PUT http://evil/users/af/blocks/abs HTTP/1.1",
                               json.dumps({"content": "via absolute-form\n"}).encode())
    assert status == 200, body
    sha = json.loads(body)["commit_sha"]
    # v1 got an origin-form request (its own log of the commit is the judge)...
    log = subprocess.run(["git", "-C", str(stack.data / "af"), "log", "-1", "--format=%H"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert log == sha
    # ...and the mirror's trigger saw it as a block write (not only the capture scan).
    stack.converge()
    assert stack.sql("SELECT content FROM blocks WHERE user_id = 'af' AND label = 'abs'"
                     ).strip() == "via absolute-form\\n"
    m = stack.sg.metrics()
    assert m['shadowgate_mirror_triggers_total'] == 2, m  # init and the absolute-form PUT
    # The hostile-path filter sees the path too, and forms a server does not take get 400.
    for line, code, error in [
            ("GET http://evil/users/../blocks HTTP/1.1", 400, b"hostile_path"),
            ("PUT http://evil/users/af/blocks/%2e%2e HTTP/1.1", 400, b"hostile_path"),
            ("GET /users/af/blocks/%2e%2e/ HTTP/1.1", 400, b"hostile_path"),
            ("PUT /users/../blocks/x/ HTTP/1.1", 400, b"hostile_path"),
            ("GET ftp://evil/users/af/blocks HTTP/1.1", 400, b"bad_request"),
            ("GET http://user@evil/users/af/blocks HTTP/1.1", 400, b"bad_request"),
            ("CONNECT evil:443 HTTP/1.1", 400, b"bad_request")]:
        status, body = raw_request(stack.sg.port, line, b'{"content": "x"}')
        assert (status, error in body) == (code, True), (line, status, body)
    # Empty segments and a trailing slash name no v1 route: v1 answers 404 or redirects to the
    # path without the slash, and writes nothing; shadowgate passes them through as v1 routes
    # them (a passthrough, neither mirrored nor compared).
    status, _ = raw_request(stack.sg.port, "PUT /users/af/blocks/slash/ HTTP/1.1",
                            b'{"content": "x"}')
    assert status == 307
    assert raw_request(stack.sg.port, "GET /users//blocks HTTP/1.1")[0] == 404
    assert not (stack.data / "af" / "memory-blocks" / "slash.md").exists()
    stack.converge()


def test_a_packet_too_small_is_said_at_start_and_parks_with_the_remedy(tmp_path):
    # Regression: an 8,388,522-byte PUT (v1 200) parked its user for good: its version row did
    # not fit MariaDB's default max_allowed_packet (16 MiB).
    server = db_harness.private_server(tmp_path / "db")
    db = server.start()
    try:
        admin_sql(db, "SET GLOBAL max_allowed_packet = 4194304")  # before shadowgate connects
        s = Stack(tmp_path, db=db)
        try:
            needed = 2 * 8 * 1024 * 1024 + 1024 * 1024 + 1024  # for proxy.limits' 8 MiB blocks
            wait_for("the first scan", lambda: s.sg.metrics().get(
                "shadowgate_dolt_max_allowed_packet_bytes") == 4194304)
            m = s.sg.metrics()
            assert m["shadowgate_dolt_packet_needed_bytes"] == needed
            assert m["shadowgate_dolt_packet_too_small"] == 1
            status, _, body = request("GET", s.sg.admin_url + "/readyz")
            ready = json.loads(body)
            assert status == 200 and ready["dolt_packet"]["fits"] is False, ready
            assert f"SET GLOBAL max_allowed_packet = {needed}" in ready["dolt_packet"]["remedy"]
            assert f"event=dolt_packet_too_small max_allowed_packet=4194304 needed={needed}" in \
                s.sg.log()
            # A row that does not fit parks its user with the remedy in the error.
            init_users(s, ["big"])
            put(s, "big", "student", "x" * (3 * 1024 * 1024))
            wait_for("the park", lambda: s.mirror_status()["parked_users"] == 1)
            error = s.mirror_status()["parked"][0]["error"]
            assert "does not fit the server's max_allowed_packet of 4194304 bytes" in error, error
            assert "SET GLOBAL max_allowed_packet = " in error and "/admin/mirror/retry" in error
            # The operator's fix shows at the next scan; a retry then mirrors the user.
            admin_sql(db, f"SET GLOBAL max_allowed_packet = {needed}")
            wait_for("the fix", lambda: s.sg.metrics()["shadowgate_dolt_packet_too_small"] == 0)
            status, _, _ = request("POST", s.sg.admin_url + "/admin/mirror/retry?user=big",
                                   headers={"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            s.converge()
            # The largest block proxy.limits lets through (the write) is mirrored too.
            near_limit = "y" * 8388522
            put(s, "big", "student", near_limit)
            s.converge(timeout=120)
            assert s.sql("SELECT LENGTH(content) FROM blocks WHERE user_id = 'big'").strip() == \
                "8388522"
            assert s.mirror_status()["parked_users"] == 0
        finally:
            s.close()
    finally:
        server.stop()


def test_keys_that_differ_in_trailing_blanks_are_mirrored_apart(stack):
    # Regression: v1 keeps "student" and "student " as two files and "tb" and "tb " as two
    # users; under a PAD SPACE collation they were one key and the mirror parked the user.
    init_users(stack, ["tb", "tb "])
    put(stack, "tb", "student", "no blank\n")
    put(stack, "tb", "student%20", "one blank\n")
    put(stack, "tb%20", "student", "the other user\n")
    stack.converge()
    st = stack.mirror_status()
    assert st["parked_users"] == 0, st
    # Judged by SQL on the plan's columns, against what the test wrote.
    rows = stack.sql("SELECT HEX(user_id), HEX(label), content FROM blocks"
                     " WHERE user_id LIKE 'tb%' ORDER BY 1, 2").splitlines()
    assert rows == [f"{'tb'.encode().hex().upper()}\t{'student'.encode().hex().upper()}\tno blank\\n",
                    f"{'tb'.encode().hex().upper()}\t{'student '.encode().hex().upper()}\tone blank\\n",
                    f"{'tb '.encode().hex().upper()}\t{'student'.encode().hex().upper()}\tthe other user\\n"], rows
    # ...and by v1's own answers through the proxy.
    status, body = stack.call("GET", "/users/tb/blocks/student%20")
    assert status == 200 and "one blank" in body["content"], body
    # Later writes of the user keep being mirrored.
    put(stack, "tb", "student%20", "changed\n")
    stack.converge()
    assert stack.sql("SELECT content FROM blocks WHERE user_id = 'tb' AND label = 'student '"
                     ).strip() == "changed\\n"


def test_sigkill_during_a_write_burst_loses_nothing(stack):
    users = [f"k-{i}" for i in range(5)]
    init_users(stack, users)
    stack.converge()
    # Writes to the database wait behind a held lock, so the kill provably cuts off work: v1
    # has commits that Dolt's watermarks do not, and a pass is stuck inside its transaction.
    lock = db_harness.read_lock(stack.db)
    try:
        for n in range(20):
            put(stack, users[n % len(users)], "student", f"burst {n}")
        wait_for("a pass blocked on the lock", lambda: not stack.mirror_status()["idle"])
        stack.sg.stop(sig=signal.SIGKILL)
        heads = {u: subprocess.run(["git", "-C", str(stack.data / u), "rev-parse", "HEAD"],
                                   capture_output=True, text=True).stdout.strip() for u in users}
        marks = dict(line.split("\t") for line in stack.sql(
            "SELECT user_id, v1_commit FROM mirror_watermarks").splitlines())
        unapplied = [u for u in users if marks.get(u) != heads[u]]
        assert unapplied == users, (marks, heads)  # every user has a write Dolt lacks
    finally:
        lock.release()
    # Writes go on straight to v1 while shadowgate is dead (agents do that anyway).
    for n in range(5):
        stack.agent("POST", f"/_test/users/{users[n]}/blocks/notes/agent-write",
                    {"content": f"while down {n}"})
    stack.start()
    for n in range(10):  # and through the restarted proxy
        put(stack, users[n % len(users)], "student", f"after {n}")
    out = stack.converge()
    assert f"{len(users)} users compared, 0 differences" in out, out
    # Nothing twice: Dolt's rows are exactly v1's (verify), and its keys are unique by schema;
    # the commit count per user equals git's.
    for u in users:
        git_count = subprocess.run(["git", "-C", str(stack.data / u), "rev-list", "--count",
                                    "HEAD"], capture_output=True, text=True).stdout.strip()
        assert stack.sql(f"SELECT COUNT(*) FROM commits WHERE user_id = '{u}'").strip() == \
            git_count


def test_mariadb_outage_during_writes(tmp_path):
    """MariaDB stopped during a write burst and restarted: every write is answered by v1 while
    the breaker opens, every write arrives, none twice. Latency during an outage is the mirror
    benchmark's number (tests/bench/mirror_bench.sh); that the client never waits for Dolt is
    the hung-database test's."""
    server = db_harness.private_server(tmp_path / "db")
    db = server.start()
    name = fresh_database(db, "outage")
    dolt = {**dolt_config(db, name), "connect_timeout_ms": 1000, "read_timeout_ms": 2000,
            "write_timeout_ms": 2000}
    s = Stack(tmp_path, dolt=dolt, db=db)
    try:
        users = [f"o-{i}" for i in range(4)]
        init_users(s, users)
        s.converge()

        def puts(n, tag):
            for i in range(n):
                put(s, users[i % len(users)], "student", f"{tag} {i}")

        puts(40, "before")
        server.halt()
        # Writes go on until the breaker has opened, then 40 more; every one answered by v1.
        i = 0
        while s.mirror_status()["circuit"]["opens"] == 0:
            assert i < 500, "the breaker never opened"
            puts(4, f"during {i}")
            if i % 5 == 0:
                s.agent("POST", f"/_test/users/{users[i % 4]}/blocks/agent/agent-write",
                        {"content": f"agent during {i}"})
            i += 1
        puts(40, "open")
        st = s.mirror_status()
        assert st["dirty_users"] >= 1 and st["circuit"]["opens"] >= 1, st
        # Hundreds of writes queued, one entry per user: memory bounded by the number of users.
        assert st["dirty_users"] <= len(users), st
        server.start()
        out = s.converge(timeout=90)
        assert f"{len(users)} users compared, 0 differences" in out, out
        m = s.sg.metrics()
        assert m["shadowgate_mirror_circuit_opens_total"] >= 1
        assert m["shadowgate_mirror_dirty_users"] == 0
    finally:
        s.close()
        server.stop()


def test_a_halted_server_that_cannot_come_back_fails_loudly(tmp_path):
    # tests/mariadb/server.sh: a halted server whose port was taken meanwhile must not come back
    # empty on another port (the tests would read a database without their data).
    server = db_harness.private_server(tmp_path / "db")
    db = server.start()
    try:
        admin_sql(db, "CREATE DATABASE kept")
        server.halt()
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(db["SG_MARIADB_PORT"])))
        squatter.listen(1)
        with squatter:
            res = server.try_start()
            assert res.returncode != 0, res.stdout + res.stderr
            assert "its data is kept" in res.stderr, res.stderr
        assert (tmp_path / "db" / "data" / "kept").is_dir()
        db = server.start()  # the port is free again: the same server, with its data
        assert "kept" in admin_sql(db, "SHOW DATABASES")
    finally:
        server.stop()


class HungServer:
    """A fake database: accepts TCP connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                return

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


def test_a_hung_dolt_does_not_stall_the_proxy(tmp_path):
    # The database hangs for a minute per attempt; each write has 10 s (a deadline that only
    # bounds a hang): a proxy that waited for Dolt on the client's path could not answer one.
    hung = HungServer()
    minute = 60000
    dolt = {"host": "127.0.0.1", "port": hung.port, "user": "u", "database": "d",
            "connect_timeout_ms": minute, "read_timeout_ms": minute, "write_timeout_ms": minute}
    s = Stack(tmp_path, dolt=dolt, db={})
    try:
        init_users(s, ["h-1"])
        for i in range(30):
            status, _, body = request("PUT", s.sg.url + "/users/h-1/blocks/student",
                                      {"content": f"text {i}"}, timeout=10.0)
            assert status == 200, body
        st = s.mirror_status()
        assert st["dirty_users"] == 1 and st["lagging"][0]["user_id"] == "h-1", st
        # Shutdown is not held hostage either: stop() kills after 15 s, and a killed process
        # does not exit 0.
        assert s.sg.stop(timeout=15.0) == 0
        assert "event=mirror_stop_abandoned" in s.sg.log()  # the worker was inside the hang

        # With short timeouts the attempts fail, and the breaker opens on a hung database too.
        s.cfg["dolt"] = {**dolt, "connect_timeout_ms": 1000, "read_timeout_ms": 1000,
                         "write_timeout_ms": 1000}
        s.start()
        put(s, "h-1", "student", "after the restart")
        wait_for("the breaker to open", lambda: s.mirror_status()["circuit"]["opens"] >= 1)
        assert s.sg.metrics()["shadowgate_mirror_dolt_connect_failures_total"] >= 2
        assert s.mirror_status()["dirty_users"] == 1
    finally:
        s.close()
        hung.stop()


@pytest.mark.parametrize("stage,control", [("off", True), ("off", False), ("dualwrite", True)])
def test_stages(tmp_path, stage, control):
    db = mariadb_env()
    name = fresh_database(db, unique_name("sgt_stage"))
    s = Stack(tmp_path, stage=stage, dolt=dolt_config(db, name), db=db,
              **({} if control else {"control": {"enabled": False}}))
    s.database = name
    try:
        init_users(s, ["st-1"])
        put(s, "st-1", "student", "x")
        if stage == "off":
            # No mirror runs in `off` (409, nothing triggered), so no v1 data reaches Dolt. The
            # control plane keeps the plan in its tables (so `off` can be left at run time); with
            # control disabled the database is not touched at all.
            time.sleep(1.2)
            tables = admin_sql(db, f"SHOW TABLES FROM {name}").split()
            if control:
                assert "shadowgate_plan" in tables
                for t in ("users", "commits", "blocks", "block_versions", "pending_diffs",
                          "mirror_watermarks"):
                    assert s.sql(f"SELECT COUNT(*) FROM {t}").strip() == "0", t
            else:
                assert tables == []  # untouched
            status, _, _ = request("GET", s.sg.admin_url + "/admin/mirror",
                                   headers={"Authorization": f"Bearer {TOKEN}"})
            assert status == 409
            assert s.sg.metrics().get("shadowgate_mirror_triggers_total", 0) == 0
        else:
            assert "1 users compared, 0 differences" in s.converge()
    finally:
        s.close()


@pytest.mark.parametrize("policy", ["interval", "off"])
def test_dolt_commit_policies(tmp_path, policy):
    """interval: one summary commit per interval with changes; off: none at all (per_v1_commit
    is covered above). On MariaDB the commits are records in mirror_commit_log."""
    s = Stack(tmp_path, mirror={"dolt_commit": policy, "dolt_commit_interval_ms": 700})
    try:
        init_users(s, ["pc-1", "pc-2"])
        for i in range(6):
            put(s, f"pc-{1 + i % 2}", "student", f"v{i}")
        assert "2 users compared, 0 differences" in s.converge()

        def two_scans_later():  # the scan runs every 1 s: two of them span the 0.7 s interval
            scans = s.sg.metrics()["shadowgate_mirror_scans_total"]
            wait_for("two scans", lambda: s.sg.metrics()["shadowgate_mirror_scans_total"] >=
                     scans + 2)

        two_scans_later()  # the worker commits a pending interval once it has passed
        rows = s.sql("SELECT author, message, v1_commit FROM mirror_commit_log").strip()
        rows = [r.split("\t") for r in rows.splitlines()] if rows else []
        if policy == "off":
            assert rows == []
            return
        assert rows, "no interval commit"
        for author, message, v1_commit in rows:
            assert author == "shadowgate <shadowgate@youlab.local>"
            assert message.startswith("shadowgate mirror: ") and " from " in message, message
            assert v1_commit == "NULL"
        # Nothing new: no further commit.
        n = len(rows)
        two_scans_later()
        assert int(s.sql("SELECT COUNT(*) FROM mirror_commit_log").strip()) == n
    finally:
        s.close()
