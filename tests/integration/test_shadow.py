"""Shadow reads: in the shadow stage every sampled read is answered by v1 and then
compared with Dolt's answer (Dolt's tables rendered as v1 answers). Real parts: the shadowgate
binary, the v1 reference service, MariaDB (the ctest fixture; a private server for the outage).
The oracle is the admin API: /admin/shadow (counts by endpoint and result) and
/admin/discrepancies (the records), plus the JSONL file.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import db_harness
from db_harness import dolt_config, fresh_database
from sg_harness import BODY_KINDS, varied_body, wait_for
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
    """Idle on two looks 200 ms apart: the proxy offers a comparison just after the client got
    its answer, so one idle look right after a read can come before the read's offer."""
    deadline = time.monotonic() + timeout
    seen_idle = False
    while time.monotonic() < deadline:
        st = shadow_status(s)
        if st["idle"] and seen_idle:
            return st
        seen_idle = st["idle"]
        time.sleep(0.2)
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


# Every read compared: no CPU gate (this 2-core box is often busy during the suite).
SHADOW = {"sample_rate": 1.0, "workers": 2, "settle_timeout_ms": 5000, "min_idle_cpu": 0,
          "max_proxy_wait_us": 0}


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path, shadow=SHADOW)
    yield s
    s.close()


def test_mixed_traffic_with_agents_and_races_has_no_discrepancies(stack):
    WRITES = 250
    users = [f"sr-{i}" for i in range(4)]
    init_users(stack, users)
    shas = {u: put(stack, u, "student", f"first {u}\n") for u in users}
    # Every kind of body at least once (the loop below mixes them at random).
    for k, kind in enumerate(BODY_KINDS):
        put(stack, users[k % len(users)], "journey", varied_body(random.Random(k), k, "journey", kind))
    stack.converge()
    rng = random.Random(5)
    stop = threading.Event()
    errors: list = []

    def writer():  # a fixed amount of work, not a fixed time: then the readers stop too
        try:
            for i in range(WRITES):
                u = rng.choice(users)
                what = i % 5
                if what == 0:
                    stack.agent("POST", f"/_test/users/{u}/blocks/student/agent-write",
                                {"content": varied_body(rng, i, "student"),
                                 "author": "agent:tutor"})
                elif what == 1:
                    propose(stack, u, value=f"p{i}")
                else:
                    label = rng.choice(["student", "journey"])
                    put(stack, u, label, varied_body(rng, i, label))
        except Exception as e:  # a failed write is a test failure, reported below
            errors.append(e)
        finally:
            stop.set()

    def reader():
        while not stop.is_set():
            u = rng.choice(users)
            # reads racing writes of the same block
            read_all(stack, u, rng.choice(["student", "journey"]), shas[u])

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader)
                                                   for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    stack.converge()
    # Everything written through v1's API is representable in the plan's columns.
    res = stack.verify()
    assert res.returncode == 0 and "unrepresentable: 0" in res.stdout, res.stdout
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
    assert m['shadowgate_compare_total{endpoint="get_block",target="dolt",result="match"}'] > 0


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

        # Four kinds of drift planted in Dolt's plan columns behind the mirror's back (watermark
        # untouched); the audit copies (source, raw_json) keep v1's bytes and answer nothing.
        plant(s, "UPDATE blocks SET content = CONCAT(content, 'planted\\n') "
                 "WHERE user_id = 'pl' AND label = 'student'")
        plant(s, f"DELETE FROM block_versions WHERE user_id = 'pl' AND id = '{first}'")
        plant(s, "UPDATE pending_diffs SET status = 'rejected' "
                 f"WHERE user_id = 'pl' AND id = '{diff['id']}'")
        plant(s, "INSERT INTO blocks (user_id, label, content, metadata, metadata_keys, "
                 "frontmatter, blank_lines, updated_at, source, v1_commit) SELECT user_id, "
                 "'planted', content, metadata, metadata_keys, frontmatter, blank_lines, "
                 "updated_at, source, v1_commit FROM blocks WHERE user_id = 'pl' AND "
                 "label = 'student'")

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
        assert m['shadowgate_compare_differing_paths_total{endpoint="list_blocks",target="dolt",'
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
        for _ in range(30):
            status, _ = read(s, "/users/do/blocks/student")
            assert status == 200
        st = wait_shadow_idle(s)
        t = totals(st)
        # Every read has exactly one outcome (a comparison skipped under load is one too), and
        # every comparison is a v2 failure: no match, no discrepancy. (That the client never
        # waits for a hung Dolt is test_mirror's hung-database test.)
        assert sum(t.values()) + sum(st["skipped"].values()) == 30, (t, st["skipped"])
        assert t["v2_error"] + t["v2_timeout"] == sum(t.values()) > 0, t
        assert discrepancy_total(st) == 0, t
        server.start()
    finally:
        s.close()
        server.stop()


def test_a_v1_failure_is_its_own_result_never_a_discrepancy(stack):
    # Regression: a label of 253 bytes makes v1 fail (its file name is too long: 500) while
    # Dolt has no such block (404). v1 failing is no evidence about v2: v1_error, counted and
    # shown, never a discrepancy, never recorded.
    init_users(stack, ["ve"])
    put(stack, "ve", "student", "hello\n")
    stack.converge()
    long_label = "y" * 253
    for _ in range(5):
        status, _ = read(stack, f"/users/ve/blocks/{long_label}")
        assert status == 500
        status, _ = read(stack, f"/users/ve/blocks/{long_label}/history")
        assert status == 500
    st = wait_shadow_idle(stack)
    t = totals(st)
    assert t.get("v1_error") == 10, t
    assert discrepancy_total(st) == 0, t
    status, records = admin(stack, "/admin/discrepancies")
    assert status == 200 and records == []
    m = stack.sg.metrics()
    assert m['shadowgate_compare_total{endpoint="get_block",target="dolt",result="v1_error"}'] == 5


def test_revisions_v2_has_no_columns_for_are_their_own_result(stack):
    # Regression: v1 hands the version segment to git, which resolves branch names, reflog
    # entries and searches; v2 keeps commits, not refs. Those reads are revision_form (counted,
    # never a discrepancy); the forms the plan's columns can answer are compared as before.
    init_users(stack, ["rv"])
    first = put(stack, "rv", "student", "one\n")
    second = put(stack, "rv", "student", "two\n")
    stack.converge()
    refs = ["master", "master~1", "HEAD@%7B0%7D", "@%7B1%7D", ":student"]
    for ref in refs:
        status, _ = read(stack, f"/users/rv/blocks/student/versions/{ref}")
        assert status in (200, 404), (ref, status)
        if ref.startswith("master"):
            assert status == 200, ref  # git resolves it for v1
    comparable = [second, first[:7], "HEAD", "HEAD~1", "HEAD%5E", f"{second}%5E%7Bcommit%7D"]
    for ref in comparable:
        status, body = read(stack, f"/users/rv/blocks/student/versions/{ref}")
        assert status == 200, (ref, status, body)
    st = wait_shadow_idle(stack)
    t = totals(st)
    assert discrepancy_total(st) == 0, t
    m = stack.sg.metrics()
    key = 'shadowgate_compare_total{endpoint="get_version",target="dolt",result="%s"}'
    assert m[key % "revision_form"] == len(refs), t
    assert m[key % "match"] == len(comparable), t
    status, records = admin(stack, "/admin/discrepancies")
    assert status == 200 and records == []


def test_records_rotate_and_the_listing_filters(tmp_path):
    log = tmp_path / "d.jsonl"
    s = Stack(tmp_path, shadow={**SHADOW, "records": {
        "file": str(log), "max_file_bytes": 4096, "keep_files": 2, "ring": 50,
        "redact_fields": ["content", "body"]}})
    try:
        init_users(s, ["ro"])
        put(s, "ro", "student", "secret words\n")
        s.converge()
        plant(s, "UPDATE blocks SET content = CONCAT(content, 'drift\\n') WHERE user_id = 'ro'")
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


# ---- the v2_http target: a v2 service of another shape, mapped into v1's -------------------------

FAKE_V2 = Path(__file__).resolve().parent / "fake_v2.py"
V2_MAPS = {
    "get_block": {"map": [
        {"move": "/block/name", "to": "/label"},
        {"move": "/block/text", "to": "/content"},
        {"move": "/block/body", "to": "/body"},
        {"move": "/block/meta", "to": "/metadata"},
        {"move": "/pending", "to": "/pending_diffs"},
        {"drop": "/block"}]},
    "list_blocks": {"map": [
        {"move": "/items/*/name", "to": "/items/*/label"},
        {"move": "/items/*/pending", "to": "/items/*/pending_diffs"},
        {"move": "/items", "to": ""}]},
}


class FakeV2:
    """fake_v2.py (a stand-in: no real v2 service exists) in front of the stack's v1ref."""

    def __init__(self, v1_url: str):
        # The OS picks the port and the fake reports it: nobody else can take it meanwhile.
        self.proc = subprocess.Popen([sys.executable, str(FAKE_V2), "--port", "0",
                                      "--v1", v1_url], stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "port":
            raise RuntimeError(f"fake_v2 did not report its port: {first}")
        self.port = int(first[1])
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                status, _, _ = request("GET", self.url + "/_fake/stats")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("fake_v2 did not start")

    def fault(self, **kw):
        status, _, _ = request("POST", self.url + "/_fake/fault", body_json=kw)
        assert status == 200

    def reads(self) -> int:
        return json.loads(request("GET", self.url + "/_fake/stats")[2])["reads"]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def by_target(st: dict, target: str) -> dict:
    out: dict = {}
    for ep in st["endpoints"].values():
        for result, n in ep["targets"][target].items():
            out[result] = out.get(result, 0) + n
    return out


def test_a_v2_service_of_another_shape_is_compared_through_its_mapping(tmp_path):
    s = Stack(tmp_path, shadow=SHADOW)  # to learn v1's port; replaced below
    v1_url = s.v1.url
    fake = FakeV2(v1_url)
    s.sg.stop()
    s.cfg["shadow"] = {**SHADOW, "targets": ["dolt", "v2_http"],
                       "v2_http": {"address": {"host": "127.0.0.1", "port": fake.port},
                                   "path_prefix": "/api/v2", "endpoints": V2_MAPS}}
    s.start()
    try:
        init_users(s, ["va", "vb"])
        put(s, "va", "student", "---\ntitle: t\n---\nhello\n")
        put(s, "va", "goals", "learn\n")
        propose(s, "va", "student")
        put(s, "vb", "student", "only\n")
        s.converge()
        for _ in range(3):
            for user in ("va", "vb"):
                read_all(s, user)
        st = wait_shadow_idle(s)
        dolt, v2 = by_target(st, "dolt"), by_target(st, "v2_http")
        assert discrepancy_total({"endpoints": {"x": {"results": dolt}}}) == 0, dolt
        assert discrepancy_total({"endpoints": {"x": {"results": v2}}}) == 0, v2
        for ep in ("get_block", "list_blocks", "list_diffs"):
            res = st["endpoints"][ep]["targets"]["v2_http"]
            assert res["match"] + res["lagging"] > 0, (ep, res)
        assert fake.reads() > 0

        # A fault planted in v2 only: v2's get_block differs at /content, every time it is read;
        # Dolt still agrees with v1.
        fake.fault(content_suffix="drift")
        for _ in range(3):
            read(s, "/users/va/blocks/student")
        st = wait_shadow_idle(s)
        assert st["endpoints"]["get_block"]["targets"]["v2_http"]["mismatch"] == 3
        assert st["endpoints"]["get_block"]["targets"]["dolt"]["mismatch"] == 0
        recs = records_for(s, "get_block")
        assert len(recs) == 3 and all(r["v2_source"] == "v2_http" for r in recs)
        assert [d["path"] for d in recs[0]["differences"]] == ["/content"]
        m = s.sg.metrics()
        assert m['shadowgate_compare_total{endpoint="get_block",target="v2_http",'
                 'result="mismatch"}'] == 3
        assert m['shadowgate_compare_total{endpoint="get_block",target="dolt",'
                 'result="mismatch"}'] == 0

        # v2 gone: its comparisons are v2_error, Dolt's go on.
        fake.stop()
        before = by_target(st, "dolt")["match"]
        for _ in range(4):
            read(s, "/users/vb/blocks/student")
        st = wait_shadow_idle(s)
        assert st["endpoints"]["get_block"]["targets"]["v2_http"]["v2_error"] == 4, \
            json.dumps(st["endpoints"]["get_block"])
        assert by_target(st, "dolt")["match"] == before + 4
    finally:
        fake.stop()
        s.close()


def test_without_its_mapping_a_v2_of_another_shape_mismatches(tmp_path):
    s = Stack(tmp_path, shadow=SHADOW)
    fake = FakeV2(s.v1.url)
    s.sg.stop()
    s.cfg["shadow"] = {**SHADOW, "targets": ["v2_http"],
                       "v2_http": {"address": {"host": "127.0.0.1", "port": fake.port},
                                   "path_prefix": "/api/v2"}}
    s.start()
    try:
        init_users(s, ["vn"])
        put(s, "vn", "student", "hello\n")
        s.converge()
        read(s, "/users/vn/blocks/student")
        read(s, "/users/vn/blocks/student/history")
        st = wait_shadow_idle(s)
        assert st["targets"] == ["v2_http"]
        assert "dolt" not in st["endpoints"]["get_block"]["targets"]
        assert st["endpoints"]["get_block"]["targets"]["v2_http"]["mismatch"] == 1
        # history is not reshaped by the fake: it agrees as it is
        assert st["endpoints"]["block_history"]["targets"]["v2_http"]["match"] == 1
        paths = {d["path"] for d in records_for(s, "get_block")[0]["differences"]}
        assert {"/block", "/label", "/content"} <= paths, paths
    finally:
        fake.stop()
        s.close()


# ---- bounded work: the budget and the CPU gate ---------------------------------------------------

def test_the_budget_and_the_cpu_gate_skip_and_count(tmp_path):
    s = Stack(tmp_path, shadow={**SHADOW, "max_per_second": 2})
    try:
        init_users(s, ["bu"])
        put(s, "bu", "student", "hello\n")
        s.converge()
        t0 = time.monotonic()
        for _ in range(20):
            read(s, "/users/bu/blocks/student")
        spent = time.monotonic() - t0
        st = wait_shadow_idle(s)
        res = st["endpoints"]["get_block"]["results"]
        compared = res["match"] + res["lagging"]
        # The token bucket's own arithmetic, whatever the machine's speed: the burst of 2, plus at
        # most what 2/s refilled while the reads ran (one more for the edges).
        assert 2 <= compared <= min(20, 2 + 2 * spent + 1), (res, spent)
        assert st["skipped"]["budget"] == res["skipped"] == 20 - compared, st
        assert s.sg.metrics()['shadowgate_compare_skipped_total{reason="budget"}'] == \
            st["skipped"]["budget"]

        # The CPU gate: with every core kept busy by burners, min_idle_cpu 0.5 skips every
        # comparison (busy); once they stop, comparisons resume.
        s.sg.stop()
        s.cfg["shadow"] = {**SHADOW, "min_idle_cpu": 0.5, "max_proxy_wait_us": 0}
        s.start()
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                   for _ in range((os.cpu_count() or 2) + 1)]
        try:
            deadline = time.monotonic() + 10
            while not shadow_status(s)["busy"] and time.monotonic() < deadline:
                time.sleep(0.1)
            for _ in range(10):
                read(s, "/users/bu/blocks/student")
            st = wait_shadow_idle(s)
        finally:
            for b in burners:
                b.kill()
                b.wait()
        assert st["busy"] is True, st["cpu_idle_share"]
        assert st["skipped"]["busy"] == 10, json.dumps(st)
        assert st["endpoints"]["get_block"]["results"]["match"] == 0
        deadline = time.monotonic() + 30  # the burners' CPU drains, the 300 ms hold passes
        while shadow_status(s)["busy"] and time.monotonic() < deadline:
            time.sleep(0.1)
        read(s, "/users/bu/blocks/student")
        st = wait_shadow_idle(s)
        assert st["endpoints"]["get_block"]["results"]["match"] == 1, json.dumps(st)
    finally:
        s.close()


def test_the_proxy_wait_gate_pauses_comparisons_while_the_proxy_waits_for_cpu(tmp_path):
    # Only the run-queue gate, at its default: CPU burners on every core plus a steady read load
    # make the proxy's threads wait for a CPU each time they run; comparisons then pause (busy),
    # counted by cause, and the wait is published.
    s = Stack(tmp_path, shadow={k: v for k, v in SHADOW.items() if k != "max_proxy_wait_us"})
    burners = []
    try:
        init_users(s, ["pw"])
        put(s, "pw", "student", "hello\n")
        s.converge()
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                   for _ in range((os.cpu_count() or 2) + 1)]
        stop = threading.Event()

        def load():
            while not stop.is_set():
                read(s, "/users/pw/blocks/student")
        readers = [threading.Thread(target=load) for _ in range(4)]
        for t in readers:
            t.start()
        seen_wait, seen_busy = 0.0, False
        deadline = time.monotonic() + 30  # only bounds a hang: the loop ends at the first busy
        while time.monotonic() < deadline and not seen_busy:
            st = shadow_status(s)
            seen_wait = max(seen_wait, st["proxy_wait_per_run_us"])
            seen_busy = seen_busy or st["busy"]
            time.sleep(0.1)
        stop.set()
        for t in readers:
            t.join()
        st = wait_shadow_idle(s)
        assert seen_busy, seen_wait
        # The wait is published; that a sample passed the default shadow.max_proxy_wait_us
        # (100 us) is what the proxy_wait busy count below says (a 0.1 s poll of the published
        # value can miss the sample that did).
        assert seen_wait > 0
        assert st["skipped"]["busy"] > 0, json.dumps(st)
        assert st["busy_samples"]["proxy_wait"] > 0, json.dumps(st)
        assert st["busy_samples"]["low_idle_cpu"] == 0, json.dumps(st)
        m = s.sg.metrics()
        assert "shadowgate_compare_proxy_wait_per_run_seconds" in m
        assert m['shadowgate_compare_busy_samples_total{cause="proxy_wait"}'] > 0
    finally:
        for b in burners:
            b.kill()
            b.wait()
        s.close()


def test_a_user_that_never_settles_holds_no_worker(tmp_path):
    """One worker, a user whose mirror is parked (Dolt stays behind v1's storage): its comparisons
    wait for the mirror without the worker, so another user's reads are still compared at once
    (a held worker would leave them queued past the 1.5 s deadline), and the stuck ones end as
    `unsettled` after settle_timeout."""
    s = Stack(tmp_path, shadow={**SHADOW, "workers": 1, "deadline_ms": 1500,
                                "settle_timeout_ms": 4000})
    try:
        init_users(s, ["stuck", "free"])
        put(s, "free", "student", "free\n")
        s.converge()
        # An author longer than the schema's VARCHAR(255): every pass of `stuck` fails, parked.
        s.agent("POST", "/_test/users/stuck/raw-commit",
                {"files": {"memory-blocks/student.md": "x\n"}, "message": "Long author",
                 "author": "a" * 300})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and s.mirror_status()["parked_users"] == 0:
            time.sleep(0.2)
        assert s.mirror_status()["parked_users"] == 1
        before = wait_shadow_idle(s)

        for _ in range(6):
            assert read(s, "/users/stuck/blocks/student")[0] == 200
        for _ in range(10):
            assert read(s, "/users/free/blocks")[0] == 200
        # While the stuck comparisons settle, the free ones are done.
        deadline = time.monotonic() + 3
        st = shadow_status(s)
        while time.monotonic() < deadline:
            st = shadow_status(s)
            done = st["endpoints"]["list_blocks"]["results"]
            if done["match"] - before["endpoints"]["list_blocks"]["results"]["match"] == 10:
                break
            time.sleep(0.05)
        assert st["endpoints"]["list_blocks"]["results"]["match"] - \
            before["endpoints"]["list_blocks"]["results"]["match"] == 10, st
        assert st["settling"] == 6 and st["running"] == 0 and st["queued"] == 0, st
        assert st["skipped"]["deadline"] == before["skipped"]["deadline"], st

        st = wait_shadow_idle(s)
        assert st["skipped"]["unsettled"] - before["skipped"]["unsettled"] == 6, st
        assert st["endpoints"]["get_block"]["results"]["skipped"] - \
            before["endpoints"]["get_block"]["results"]["skipped"] == 6, st
        assert discrepancy_total(st) == 0, st
    finally:
        s.close()


class SlowRereads:
    """A TCP relay in front of v1 that holds back shadowgate's v1 re-reads: a connection whose
    first request says `Connection: close` (http_fetch's; the proxy's own upstream connections
    are kept alive) waits `delay` seconds before it is relayed. Counts the re-reads held back at
    once (each is held far longer than it takes to answer)."""

    def __init__(self, upstream_port: int, delay: float):
        self.upstream_port = upstream_port
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.rereads = 0
        self.open_rereads = 0
        self.max_open_rereads = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        up = socket.create_connection(("127.0.0.1", self.upstream_port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                conn.close()
                up.close()
                return
            head += chunk
        is_reread = b"\r\nconnection: close\r\n" in head.split(b"\r\n\r\n")[0].lower() + b"\r\n"
        if is_reread:
            with self.lock:
                self.rereads += 1
                self.open_rereads += 1
                self.max_open_rereads = max(self.max_open_rereads, self.open_rereads)
            time.sleep(self.delay)
            # Counted as open while it is held back, not until its sockets close: shadowgate
            # may start the next re-read as soon as it has this one's whole answer, which can be
            # before this thread has seen both sides close.
            with self.lock:
                self.open_rereads -= 1
        up.sendall(head)

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            for sk in (src, dst):
                try:
                    sk.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        back = threading.Thread(target=pump, args=(up, conn), daemon=True)
        back.start()
        pump(conn, up)
        back.join()
        conn.close()
        up.close()


def test_v1_rereads_are_bounded_and_each_comparison_still_ends(tmp_path):
    """A planted difference makes every read of the block settle and read v1 again. 12 reads at
    once against re-reads held back 0.3 s each: never more than shadow.max_rereads (2) re-reads
    open at once, and every comparison still ends (a recorded mismatch)."""
    s = Stack(tmp_path, shadow={**SHADOW, "max_rereads": 2, "settle_timeout_ms": 20000})
    relay = None
    try:
        init_users(s, ["rr"])
        put(s, "rr", "student", "one\n")
        s.converge()
        s.sg.stop()
        relay = SlowRereads(s.v1.port, 0.3)
        s.cfg["v1"]["address"]["port"] = relay.port
        s.start()
        plant(s, "UPDATE blocks SET content = 'planted\\n' WHERE user_id = 'rr'")
        threads = [threading.Thread(target=read, args=(s, "/users/rr/blocks/student"))
                   for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        st = wait_shadow_idle(s)
        assert st["endpoints"]["get_block"]["results"]["mismatch"] == 12, st
        assert len(records_for(s, "get_block")) == 12
        assert relay.rereads >= 12, relay.rereads
        assert 1 <= relay.max_open_rereads <= 2, relay.max_open_rereads
        assert st["rereads"] == relay.rereads, (st["rereads"], relay.rereads)
    finally:
        if relay:
            relay.close()
        s.close()


@contextlib.contextmanager
def read_while_the_mirror_lags(s: Stack, user: str):
    """A block written once and mirrored, then written again while Dolt's writes wait behind a
    held lock (the mirror provably lags), and read through the proxy: v1 answers the new text.
    The lock is held for the body of the `with` and released after it."""
    init_users(s, [user])
    put(s, user, "student", "one\n")
    s.converge()
    lock = db_harness.read_lock(s.db)
    try:
        put(s, user, "student", "two\n")
        status, body = read(s, f"/users/{user}/blocks/student")
        assert status == 200 and json.loads(body)["body"] == "two\n"
        yield
    finally:
        lock.release()


def test_a_read_of_a_lagging_user_settles_then_compares(tmp_path):
    """The read's comparison waits (settling) instead of reporting the lag as a discrepancy;
    when the lock goes and the mirror catches up, it reads both sides again and the result is
    `lagging`, not a mismatch."""
    s = Stack(tmp_path, shadow={**SHADOW, "settle_timeout_ms": 60000})
    try:
        with read_while_the_mirror_lags(s, "se"):
            wait_for("the comparison settling", lambda: shadow_status(s)["settling"] == 1)
        st = wait_shadow_idle(s)
        results = st["endpoints"]["get_block"]["results"]
        assert results["lagging"] == 1 and results["mismatch"] == 0, results
        assert discrepancy_total(st) == 0 and st["skipped"]["unsettled"] == 0, st
        assert st["rereads"] >= 1, st
    finally:
        s.close()


def test_a_user_that_never_settles_is_skipped_as_unsettled(tmp_path):
    """The same lag with settle_timeout_ms 300: the lock outlasts it, the comparison gives up and
    is counted `unsettled`, never a discrepancy."""
    s = Stack(tmp_path, shadow={**SHADOW, "settle_timeout_ms": 300})
    try:
        with read_while_the_mirror_lags(s, "un"):
            wait_for("the skip", lambda: shadow_status(s)["skipped"]["unsettled"] == 1)
            st = shadow_status(s)
            assert discrepancy_total(st) == 0, st
            assert s.sg.metrics()['shadowgate_compare_skipped_total{reason="unsettled"}'] == 1
    finally:
        s.close()
