"""Shadow reads (issue #5): in the shadow stage every sampled read is answered by v1 and then
compared with Dolt's answer (Dolt's tables rendered as v1 answers). Real parts: the shadowgate
binary, the v1 reference service, MariaDB (the ctest fixture; a private server for the outage).
The oracle is the admin API: /admin/shadow (counts by endpoint and result) and
/admin/discrepancies (the records), plus the JSONL file.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest

import db_harness
from db_harness import dolt_config, fresh_database
from test_mirror import TOKEN, Stack, init_users, put
from v1ref_harness import request

READS = ["user_exists", "list_blocks", "diff_counts", "get_block", "block_history",
         "get_version", "list_diffs"]


def admin(s: Stack, path: str):
    status, _, payload = request("GET", s.sg.admin_url + path,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    return status, json.loads(payload) if payload else None


def shadow_status(s: Stack) -> dict:
    status, body = admin(s, "/admin/shadow")
    assert status == 200, body
    return body


def wait_shadow_idle(s: Stack, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = shadow_status(s)
        if st["idle"]:
            return st
        time.sleep(0.1)
    pytest.fail(f"shadow comparer never idle: {shadow_status(s)}")


def totals(st: dict) -> dict:
    out: dict = {}
    for ep in st["endpoints"].values():
        for result, n in ep["results"].items():
            out[result] = out.get(result, 0) + n
    return out


def discrepancy_total(st: dict) -> int:
    t = totals(st)
    return sum(t[k] for k in ("mismatch", "missing_in_v2", "extra_in_v2", "status_mismatch"))


def read(s: Stack, path: str):
    status, _, payload = request("GET", s.sg.url + path)
    return status, payload


def read_all(s: Stack, user: str, label: str = "student", sha: str | None = None):
    paths = [f"/users/{user}/exists", f"/users/{user}/blocks",
             f"/users/{user}/blocks/diffs/counts", f"/users/{user}/blocks/{label}",
             f"/users/{user}/blocks/{label}/history?limit=100",
             f"/users/{user}/blocks/{label}/diffs"]
    if sha:
        paths.append(f"/users/{user}/blocks/{label}/versions/{sha}")
    for p in paths:
        status, _ = read(s, p)
        assert status in (200, 404), (p, status)


def propose(s: Stack, user: str, label: str = "student", value: str = "x"):
    return s.agent("POST", f"/_test/users/{user}/diffs",
                   {"block_label": label, "operation": "append", "proposed_value": value,
                    "reasoning": "r", "confidence": "low", "agent_id": "planner"})


SHADOW = {"sample_rate": 1.0, "workers": 2, "settle_timeout_ms": 5000}


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path, shadow=SHADOW)
    yield s
    s.close()


def test_mixed_traffic_with_agents_and_races_has_no_discrepancies(stack):
    users = [f"sr-{i}" for i in range(4)]
    init_users(stack, users)
    shas = {u: put(stack, u, "student", f"first {u}\n") for u in users}
    stack.converge()
    rng = random.Random(5)
    stop = threading.Event()
    errors: list = []

    def writer():
        i = 0
        while not stop.is_set():
            u = rng.choice(users)
            try:
                what = i % 5
                if what == 0:
                    stack.agent("POST", f"/_test/users/{u}/blocks/student/agent-write",
                                {"content": f"agent {i}\n", "author": "agent:tutor"})
                elif what == 1:
                    propose(stack, u, value=f"p{i}")
                else:
                    put(stack, u, rng.choice(["student", "journey"]), f"write {i}\n")
            except AssertionError as e:  # a failed write is a test failure, reported below
                errors.append(e)
            i += 1
            time.sleep(0.02)

    def reader():
        while not stop.is_set():
            u = rng.choice(users)
            # reads racing writes of the same block
            read_all(stack, u, rng.choice(["student", "journey"]), shas[u])

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader)
                                                   for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(12)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    stack.converge()
    for u in users:  # and once more at rest
        read_all(stack, u, "student", shas[u])
    st = wait_shadow_idle(stack)
    t = totals(st)
    assert discrepancy_total(st) == 0, (st, admin(stack, "/admin/discrepancies?limit=5"))
    assert t["match"] > 100, t
    assert t["v2_error"] == 0 and t["v2_timeout"] == 0, t
    # every compared endpoint was exercised
    for ep in READS:
        res = st["endpoints"][ep]["results"]
        assert res["match"] + res["lagging"] > 0, (ep, res)
    status, records = admin(stack, "/admin/discrepancies")
    assert status == 200 and records == []
    m = stack.sg.metrics()
    assert m['shadowgate_compare_total{endpoint="get_block",result="match"}'] > 0


def plant(s: Stack, sql: str):
    s.sql(sql)


def records_for(s: Stack, endpoint: str, limit=100):
    status, body = admin(s, f"/admin/discrepancies?endpoint={endpoint}&limit={limit}")
    assert status == 200, body
    return body


def test_planted_discrepancies_are_reported_with_class_and_path_every_time(tmp_path):
    log = tmp_path / "discrepancies.jsonl"
    s = Stack(tmp_path, shadow={**SHADOW, "records": {"file": str(log)}})
    try:
        init_users(s, ["pl"])
        first = put(s, "pl", "student", "one\n")
        put(s, "pl", "student", "two\n")
        diff = propose(s, "pl", value="proposal")
        propose(s, "pl", value="another")
        s.converge()
        read_all(s, "pl", "student", first)
        st = wait_shadow_idle(s)
        assert discrepancy_total(st) == 0, st

        # Four kinds of drift planted in Dolt behind the mirror's back (watermark untouched).
        plant(s, "UPDATE blocks SET source = CONCAT(source, 'planted\\n') "
                 "WHERE user_id = 'pl' AND label = 'student'")
        plant(s, f"DELETE FROM block_versions WHERE user_id = 'pl' AND id = '{first}'")
        # (the row keeps the file's exact text too, which Dolt's answers are rendered from)
        plant(s, "UPDATE pending_diffs SET status = 'rejected', raw_json = "
                 "REPLACE(raw_json, '\"status\": \"pending\"', '\"status\": \"rejected\"') "
                 f"WHERE user_id = 'pl' AND id = '{diff['id']}'")
        assert "rejected" in s.sql(f"SELECT raw_json FROM pending_diffs WHERE id = '{diff['id']}'")
        plant(s, "INSERT INTO blocks (user_id, label, content, metadata, updated_at, source, "
                 "v1_commit) SELECT user_id, 'planted', content, metadata, updated_at, source, "
                 "v1_commit FROM blocks WHERE user_id = 'pl' AND label = 'student'")

        for round_ in range(2):  # every read shows it again
            read_all(s, "pl", "student", first)
            read(s, "/users/pl/blocks/planted")
            wait_shadow_idle(s)
            # get_block twice a round: the changed block and the extra one
            for ep, per_round in (("get_block", 2), ("get_version", 1), ("list_blocks", 1),
                                  ("list_diffs", 1), ("block_history", 1), ("diff_counts", 1)):
                assert len(records_for(s, ep)) == per_round * (round_ + 1), (ep, round_)

        body = records_for(s, "get_block")
        by_target = {r["target"]: r for r in body}
        changed = by_target["/users/pl/blocks/student"]
        assert changed["result"] == "mismatch"
        assert "/content" in [d["path"] for d in changed["differences"]]
        extra = by_target["/users/pl/blocks/planted"]
        assert extra["result"] == "extra_in_v2" and extra["v1"]["status"] == 404

        version = records_for(s, "get_version")[0]
        assert version["result"] == "missing_in_v2"
        assert version["v1"]["status"] == 200 and version["v2"]["status"] == 404

        blocks = records_for(s, "list_blocks")[0]
        assert blocks["result"] == "mismatch"  # an extra block and a changed pending count
        paths = {d["path"]: d for d in blocks["differences"]}
        assert paths["/planted"]["change"] == "extra_in_v2"
        assert paths["/student/pending_diffs"]["v1"] == 2
        assert paths["/student/pending_diffs"]["v2"] == 1

        diffs = records_for(s, "list_diffs")[0]
        assert diffs["result"] == "missing_in_v2"
        assert [d["change"] for d in diffs["differences"]] == ["missing_in_v2"]

        st = shadow_status(s)
        assert st["endpoints"]["get_version"]["results"]["missing_in_v2"] == 2
        m = s.sg.metrics()
        assert m['shadowgate_compare_differing_paths_total{endpoint="list_blocks",'
                 'path="/*/pending_diffs"}'] == 2
        # The JSONL file holds every record, one JSON object per line.
        lines = log.read_text().splitlines()
        assert len(lines) == sum(len(records_for(s, ep, 1000)) for ep in READS)
        assert all(json.loads(line)["request_id"] for line in lines)
    finally:
        s.close()


def test_dolt_stopped_gives_v2_error_and_v1_keeps_serving(tmp_path):
    server = db_harness.private_server(tmp_path / "db")
    db = server.start()
    name = fresh_database(db, "shadow_outage")
    dolt = {**dolt_config(db, name), "connect_timeout_ms": 1000, "read_timeout_ms": 2000,
            "write_timeout_ms": 2000}
    s = Stack(tmp_path, dolt=dolt, db=db, shadow=SHADOW)
    try:
        init_users(s, ["do"])
        put(s, "do", "student", "hello\n")
        s.converge()
        server.halt()
        timings = []
        for _ in range(30):
            t0 = time.perf_counter()
            status, _ = read(s, "/users/do/blocks/student")
            timings.append(time.perf_counter() - t0)
            assert status == 200
        assert max(timings) < 0.5, timings  # never waits for the dead Dolt (connect: 1 s)
        st = wait_shadow_idle(s)
        t = totals(st)
        assert t["v2_error"] + t["v2_timeout"] >= 25, t
        assert discrepancy_total(st) == 0, t
        server.start()
    finally:
        s.close()
        server.stop()


def test_records_rotate_and_the_listing_filters(tmp_path):
    log = tmp_path / "d.jsonl"
    s = Stack(tmp_path, shadow={**SHADOW, "records": {
        "file": str(log), "max_file_bytes": 4096, "keep_files": 2, "ring": 50,
        "redact_fields": ["content", "body"]}})
    try:
        init_users(s, ["ro"])
        put(s, "ro", "student", "secret words\n")
        s.converge()
        plant(s, "UPDATE blocks SET source = CONCAT(source, 'drift\\n') WHERE user_id = 'ro'")
        for _ in range(12):
            read(s, "/users/ro/blocks/student")
            read(s, "/users/ro/blocks")
        wait_shadow_idle(s)
        rotated = [log.with_name("d.jsonl.1"), log.with_name("d.jsonl.2")]
        assert rotated[0].exists(), list(tmp_path.iterdir())
        assert not log.with_name("d.jsonl.3").exists()
        for f in [log] + [r for r in rotated if r.exists()]:
            assert f.stat().st_size <= 4096
            for line in f.read_text().splitlines():
                rec = json.loads(line)
                assert "secret" not in line
                assert rec["endpoint"] == "get_block"
        listed = records_for(s, "get_block", 3)
        assert len(listed) == 3
        assert all(r["endpoint"] == "get_block" for r in listed)
        assert listed[0]["time_ms"] >= listed[-1]["time_ms"]  # newest first
        assert records_for(s, "list_blocks") == []  # no drift there
        status, _ = admin(s, "/admin/discrepancies?limit=0")
        assert status == 400
        status, _ = admin(s, "/admin/discrepancies?limit=abc")
        assert status == 400
        status, _, _ = request("GET", s.sg.admin_url + "/admin/discrepancies")
        assert status == 401  # the token is required
    finally:
        s.close()
