"""The cutover gate: GET /admin/gate and `shadowgate gate` judge GO / NO-GO from the
evidence, and the evidence survives a restart. Real parts: the shadowgate binary, the v1
reference service, MariaDB (the ctest fixture)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from sg_harness import shadowgate_bin
from test_mirror import TOKEN, Stack, init_users, put
from test_shadow import SHADOW, plant, read, wait_shadow_idle
from v1ref_harness import refusing_port, request

# A gate that a short test can satisfy: two endpoints, no soak, no reconcile required, and a
# bound that 20 clean reads meet (the Wilson upper bound of 0/20 at 95% is ~12%).
GATE = {"endpoints": ["get_block", "list_blocks"], "min_compared": 20,
        "max_discrepancy_rate": 0.2, "min_shadow_hours": 0, "reconcile_max_age_hours": 0,
        "flush_interval_ms": 200}


def gate_stack(tmp_path: Path, **gate) -> Stack:
    """A stack whose shadowgate runs with GATE plus `gate` (v1ref and the database are kept)."""
    s = Stack(tmp_path, shadow=SHADOW)
    s.sg.stop()
    s.cfg["gate"] = {**GATE, **gate}
    s.start()
    return s


def gate_cli(s: Stack, tmp_path: Path, *args):
    """`shadowgate gate` against the running service (its admin port written into a config)."""
    cfg = json.loads(json.dumps(s.cfg))
    cfg["admin"]["listen"]["port"] = int(s.sg.admin_url.rsplit(":", 1)[1])
    path = tmp_path / "gate-cli.json"
    path.write_text(json.dumps(cfg))
    return subprocess.run([str(shadowgate_bin()), "gate", "-c", str(path), *args],
                          capture_output=True, text=True, timeout=30, env=s_env(s))


def s_env(s: Stack):
    return {**os.environ, **s.env}


def verdict(s: Stack) -> dict:
    status, _, body = request("GET", s.sg.admin_url + "/admin/gate",
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    return json.loads(body)


def criterion(v: dict, name: str, endpoint: str = "") -> dict:
    return next(c for c in v["criteria"] if c["criterion"] == name and c["endpoint"] == endpoint)


def test_gate_go_no_go_and_its_evidence_survives_a_restart(tmp_path):
    state = tmp_path / "gate.json"
    s = gate_stack(tmp_path, state_file=str(state))
    try:
        init_users(s, ["ga"])
        put(s, "ga", "student", "hello\n")
        s.converge()

        # Nothing compared yet: NO-GO, both endpoints uncovered (not clean).
        v = verdict(s)
        assert v["verdict"] == "NO-GO" and v["go"] is False
        assert criterion(v, "coverage", "get_block")["status"] == "uncovered"
        assert criterion(v, "discrepancy_rate", "list_blocks")["status"] == "uncovered"
        assert criterion(v, "shadow_held")["pass"] is True
        assert criterion(v, "reconcile")["status"] == "not_required"
        cli = gate_cli(s, tmp_path)
        assert cli.returncode == 1, cli.stdout + cli.stderr
        assert "NO-GO" in cli.stdout and "(uncovered)" in cli.stdout
        assert s.sg.metrics()["shadowgate_gate_go"] == 0

        for _ in range(20):
            read(s, "/users/ga/blocks/student")
            read(s, "/users/ga/blocks")
        wait_shadow_idle(s)
        v = verdict(s)
        assert v["verdict"] == "GO", json.dumps(v["criteria"], indent=1)
        cli = gate_cli(s, tmp_path)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert cli.stdout.startswith("gate: GO")
        assert json.loads(gate_cli(s, tmp_path, "--json").stdout)["go"] is True
        m = s.sg.metrics()
        assert m["shadowgate_gate_go"] == 1
        assert m['shadowgate_gate_criterion_pass{criterion="coverage",endpoint="get_block"}'] == 1
        since = v["evidence"]["shadow_since_ms"]
        compared = v["evidence"]["counts"]["get_block"]["match"] + \
            v["evidence"]["counts"]["get_block"]["lagging"]
        assert compared == 20

        # A restart keeps the evidence: still GO, same soak start, same counts.
        s.sg.stop()
        assert json.loads(state.read_text())["counts"]["get_block"]["match"] + \
            json.loads(state.read_text())["counts"]["get_block"]["lagging"] == 20
        s.start()
        v = verdict(s)
        assert v["verdict"] == "GO", json.dumps(v["criteria"], indent=1)
        assert v["evidence"]["shadow_since_ms"] == since
        assert gate_cli(s, tmp_path).returncode == 0

        # Real discrepancies in get_block: its rate's bound fails, NO-GO.
        plant(s, "UPDATE blocks SET content = CONCAT(content, 'drift\\n') WHERE user_id = 'ga'")
        for _ in range(10):
            read(s, "/users/ga/blocks/student")
        wait_shadow_idle(s)
        v = verdict(s)
        assert v["verdict"] == "NO-GO"
        rate = criterion(v, "discrepancy_rate", "get_block")
        assert rate["pass"] is False and rate["measured"].startswith("10/30"), rate
        assert criterion(v, "discrepancy_rate", "list_blocks")["pass"] is True
        assert gate_cli(s, tmp_path).returncode == 1
    finally:
        s.close()


def test_a_state_file_that_cannot_be_read_stops_the_start_and_is_kept(tmp_path):
    state = tmp_path / "gate.json"
    state.write_text("{not the gate's")
    s = Stack(tmp_path, shadow=SHADOW)
    s.sg.stop()
    s.cfg["gate"] = {**GATE, "state_file": str(state)}
    try:
        with pytest.raises(RuntimeError) as failed:
            s.start()
        assert "gate.json is not a shadowgate gate state file" in str(failed.value)
        assert state.read_text() == "{not the gate's"  # nothing overwritten
        # `shadowgate gate` with nobody listening: exit 3, not a verdict.
        s.cfg["gate"] = {**GATE}
        held, port = refusing_port()  # bound, never listening: nobody answers there
        cfg = json.loads(json.dumps(s.cfg))
        cfg["admin"]["listen"]["port"] = port
        path = tmp_path / "dead.json"
        path.write_text(json.dumps(cfg))
        with held:
            res = subprocess.run([str(shadowgate_bin()), "gate", "-c", str(path)],
                                 capture_output=True, text=True, timeout=30, env=s_env(s))
        assert res.returncode == 3, res.stdout + res.stderr
        assert "cannot ask" in res.stderr
    finally:
        s.close()


def admin_call(s: Stack, method: str, path: str):
    status, _, body = request(method, s.sg.admin_url + path,
                              headers={"Authorization": f"Bearer {TOKEN}"})
    return status, json.loads(body) if body else None


def reconcile_in_service(s: Stack, query: str = "") -> dict:
    status, body = admin_call(s, "POST", "/admin/reconcile" + query)
    assert status == 202 and body["started"] is True, (status, body)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = admin_call(s, "GET", "/admin/reconcile")
        assert status == 200
        if not body["running"] and body["last"] is not None:
            return body
        time.sleep(0.1)
    pytest.fail("reconcile did not finish")


def test_a_reconcile_in_the_service_feeds_the_gate(tmp_path):
    s = gate_stack(tmp_path, state_file=str(tmp_path / "gate.json"), reconcile_max_age_hours=24)
    try:
        init_users(s, ["rc1", "rc2"])
        put(s, "rc1", "student", "hello\n")
        put(s, "rc2", "goals", "learn\n")
        s.converge()
        v = verdict(s)
        assert criterion(v, "reconcile")["measured"] == "no reconcile recorded"
        assert criterion(v, "reconcile")["pass"] is False
        status, _, _ = request("POST", s.sg.admin_url + "/admin/reconcile")
        assert status == 401  # the token is required

        done = reconcile_in_service(s)
        assert done["last"]["clean"] is True and done["last"]["users_checked"] == 2, done
        assert done["done"] == done["total"] == 2
        rec = criterion(verdict(s), "reconcile")
        assert rec["pass"] is True and rec["measured"].startswith("clean, 0 drifted of 2 users")

        # Drift behind the mirror's back: found (the gate's criterion fails), repaired, and the
        # next run is clean again.
        plant(s, "UPDATE blocks SET content = CONCAT(content, 'x') WHERE user_id = 'rc2'")
        done = reconcile_in_service(s, "?repair=1")
        assert done["repair"] is True
        assert done["last"]["users_drifted"] == 1 and done["last"]["users_repaired"] == 1, done
        assert criterion(verdict(s), "reconcile")["pass"] is False
        done = reconcile_in_service(s)
        assert done["last"]["clean"] is True, done
        assert criterion(verdict(s), "reconcile")["pass"] is True

        # A run over some users does not count for the gate; the record survives a restart.
        reconcile_in_service(s, "?user=rc1")
        s.sg.stop()
        s.start()
        rec = criterion(verdict(s), "reconcile")
        assert rec["pass"] is True and "of 2 users" in rec["measured"], rec
    finally:
        s.close()


def test_leaving_the_shadow_stage_starts_the_soak_again(tmp_path):
    state = tmp_path / "gate.json"
    s = gate_stack(tmp_path, state_file=str(state), min_shadow_hours=1)
    try:
        since = verdict(s)["evidence"]["shadow_since_ms"]
        assert isinstance(since, int) and since > 0
        assert criterion(verdict(s), "shadow_held")["pass"] is False  # an hour is not over
        s.sg.stop()
        s.start()  # a restart in the same stage keeps it
        assert verdict(s)["evidence"]["shadow_since_ms"] == since
        s.sg.stop()
        s.cfg["stage"] = "dualwrite"
        s.start()
        assert verdict(s)["evidence"]["shadow_since_ms"] is None
        s.sg.stop()
        assert json.loads(state.read_text())["shadow_since_ms"] is None  # and on disk
        s.cfg["stage"] = "shadow"
        s.start()
        again = verdict(s)["evidence"]["shadow_since_ms"]
        assert isinstance(again, int) and again > since
    finally:
        s.close()


ADMIN_CALLS = [("GET", "/admin/config"), ("GET", "/admin/mirror"),
               ("POST", "/admin/mirror/retry?user=x"), ("GET", "/admin/shadow"),
               ("GET", "/admin/gate"), ("GET", "/admin/discrepancies"),
               ("GET", "/admin/report"), ("GET", "/admin/reconcile"),
               ("POST", "/admin/reconcile")]


def test_every_admin_endpoint_needs_the_token(tmp_path):
    s = gate_stack(tmp_path)
    try:
        for method, path in ADMIN_CALLS:
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": f"Basic {TOKEN}"}):
                status, _, body = request(method, s.sg.admin_url + path, headers=headers)
                assert status == 401, (method, path, headers, status, body[:200])
                assert json.loads(body)["error"] == "unauthorized"
        for method, path in ADMIN_CALLS:  # and with it, each one answers
            status, _, body = request(method, s.sg.admin_url + path,
                                      headers={"Authorization": f"Bearer {TOKEN}"})
            assert status in (200, 202), (method, path, status, body[:200])
    finally:
        s.close()
