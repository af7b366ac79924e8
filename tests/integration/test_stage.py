"""The control plane: stages changed at run time per cohort, through `shadowgate stage` and the
admin API, kept in the control tables (a restart keeps them, a second replica on the same database
follows them), refused when illegal, and the freeze window.

Real parts: the shadowgate binary, the v1 reference service, MariaDB (the ctest fixture), the
command line talking to the running service.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from sg_harness import shadowgate_bin, start_shadowgate, wait_for
from test_mirror import TOKEN, Stack, init_users, put
from v1ref_harness import request

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def off_stack(tmp_path):
    s = Stack(tmp_path, stage="off")
    yield s
    s.close()


def cli_config(s: Stack, sg=None) -> str:
    """A config naming the running service's admin port, for the command line."""
    sg = sg or s.sg
    cfg = json.loads(json.dumps(s.cfg))
    cfg["admin"]["listen"]["port"] = sg.admin_port
    path = s.tmp / f"cli-{sg.admin_port}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def stage_cli(s: Stack, *args, sg=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(shadowgate_bin()), "stage", *args, "-c", cli_config(s, sg)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **s.env})


def plan_of(sg) -> dict:
    status, _, body = request("GET", sg.admin_url + "/admin/stage", headers=AUTH)
    assert status == 200, body
    return json.loads(body)


def history_of(sg) -> list:
    status, _, body = request("GET", sg.admin_url + "/admin/stage/history", headers=AUTH)
    assert status == 200, body
    return json.loads(body)


def user_rows(s: Stack) -> int:
    return int(s.sql("SELECT COUNT(*) FROM users").strip())


def test_stages_change_at_run_time_per_cohort_and_survive_a_restart(off_stack):
    s = off_stack
    shown = stage_cli(s, "show")
    assert shown.returncode == 0, shown.stderr
    assert "default (everyone else): off" in shown.stdout
    assert plan_of(s.sg)["version"] == 1  # the config's stage, written into an empty database

    # off: nothing reaches Dolt.
    init_users(s, ["alice", "bob"])
    put(s, "alice", "persona", "in off\n")
    time.sleep(1.5)
    assert user_rows(s) == 0

    r = stage_cli(s, "set", "dualwrite", "--reason", "start mirroring", "--who", "tester")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "off -> dualwrite" in r.stdout
    # The mirror starts with the plan that needs it; its capture scan brings in what v1 has.
    put(s, "bob", "persona", "in dualwrite\n")
    s.converge()
    assert user_rows(s) == 2

    r = stage_cli(s, "set", "shadow", "--cohort", "pilot", "--users", "alice,carol",
                  "--reason", "pilot users first")
    assert r.returncode == 0, r.stdout + r.stderr
    m = s.sg.metrics()
    assert m['shadowgate_stage{cohort="pilot"}'] == 2
    assert m['shadowgate_stage{cohort="default"}'] == 1
    assert m['shadowgate_stage_changes_total{forced="false",from="off",to="dualwrite"}'] == 1
    assert m['shadowgate_stage_changes_total{forced="false",from="dualwrite",to="shadow"}'] == 1
    plan = plan_of(s.sg)
    assert plan["version"] == 3
    assert plan["plan"]["cohorts"] == [{"name": "pilot", "stage": "shadow",
                                        "users": ["alice", "carol"]}]

    hist = history_of(s.sg)
    assert [(h["cohort"], h["from"], h["to"]) for h in hist] == [
        ("pilot", "dualwrite", "shadow"), ("default", "off", "dualwrite")]
    assert hist[1]["who"] == "tester" and hist[1]["why"] == "start mirroring"
    assert hist[1]["gate"]["go"] is False  # the verdict at the time is recorded with the change
    assert hist[0]["tag"].startswith("shadowgate/shadow/pilot/")
    out = stage_cli(s, "history")
    assert out.returncode == 0 and "pilot: dualwrite -> shadow" in out.stdout, out.stdout
    # The report shows the plan and the changes (as of the last poll).
    def reported():
        status, _, body = request("GET", s.sg.admin_url + "/admin/report?format=json",
                                  headers=AUTH)
        assert status == 200, body
        return json.loads(body)
    wait_for("the report's changes", lambda: len(reported()["stage_changes"]) == 2, timeout=5)
    rep = reported()
    assert rep["plan"]["version"] == 3 and rep["plan"]["cohorts"][0]["name"] == "pilot"
    assert rep["stage_changes"][0]["to"] == "shadow"

    # A restart keeps the stored plan: the config's "off" is only the plan of an empty database.
    s.sg.stop()
    s.start()
    wait_for("the stored plan", lambda: plan_of(s.sg)["version"] == 3, timeout=10)
    assert plan_of(s.sg)["plan"]["default"] == "dualwrite"
    put(s, "bob", "persona", "after the restart\n")
    s.converge()

    # Back is always allowed, by any number of stages.
    r = stage_cli(s, "set", "off", "--cohort", "pilot")
    assert r.returncode == 0, r.stderr
    assert "shadow -> off" in r.stdout


def test_illegal_changes_are_refused_with_a_reason_and_change_nothing(off_stack):
    s = off_stack
    before = plan_of(s.sg)["version"]
    cases = [
        (["set", "shadow"], "off -> shadow skips dualwrite"),
        (["set", "live"], '"live" is not one of off, dualwrite, shadow'),
        (["set", "dualwrite", "--cohort", "c", "--percent", "101"],
         "a percentage must be between 0 and 100"),
        (["set", "dualwrite", "--cohort", "c", "--percent", "ten"], "is not a percentage"),
        (["set", "dualwrite", "--force"], "a forced change needs a reason"),
        (["set", "dualwrite", "--cohort", "ghost"], 'no cohort "ghost"'),
        (["set", "dualwrite", "--cohort", "x", "--users", "../etc"], "$.cohorts[0].users[0]"),
        (["set", "dualwrite", "--cohort", "default", "--remove"], "cannot be removed"),
    ]
    for args, message in cases:
        r = stage_cli(s, *args)
        assert r.returncode == 1, (args, r.returncode, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
    users = s.tmp / "users.csv"
    users.write_text("alice\n")
    r = stage_cli(s, "set", "dualwrite", "--cohort", "x", "--users-file", str(users))
    assert r.returncode == 1 and "unknown user list format" in r.stderr, r.stderr
    # A body the admin API cannot read is named by its JSON path.
    status, _, body = request("POST", s.sg.admin_url + "/admin/stage",
                              {"stage": "dualwrite", "percent": [1], "extra": 1}, headers=AUTH)
    assert status == 400, body
    assert b"$.extra: unknown key" in body and b"$.percent" in body
    status, _, body = request("POST", s.sg.admin_url + "/admin/stage", {"stage": "dualwrite"})
    assert status == 401  # the token is required
    assert plan_of(s.sg)["version"] == before
    assert history_of(s.sg) == []
    # The four the plan's rules refused are counted (the others never got past the body).
    m = s.sg.metrics()
    assert m["shadowgate_control_changes_refused_total"] == 4
    assert m["shadowgate_control_change_failures_total"] == 0

    # A .txt list works and goes in sorted.
    users = s.tmp / "users.txt"
    users.write_text("# pilot\nzed\nalice\n\n")
    r = stage_cli(s, "set", "dualwrite", "--cohort", "x", "--users-file", str(users))
    assert r.returncode == 0, r.stderr
    assert plan_of(s.sg)["plan"]["cohorts"][0]["users"] == ["alice", "zed"]
    # The same change again is no change, and is not recorded.
    r = stage_cli(s, "set", "dualwrite", "--cohort", "x")
    assert r.returncode == 0 and "unchanged" in r.stdout, r.stdout
    assert len(history_of(s.sg)) == 1


def git_head(s: Stack, user: str) -> str:
    return subprocess.run(["git", "-C", str(s.data / user), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_a_freeze_refuses_writes_with_retry_after_and_they_never_reach_v1(off_stack):
    s = off_stack
    init_users(s, ["alice", "bob"])
    put(s, "alice", "persona", "before\n")
    assert stage_cli(s, "set", "dualwrite", "--cohort", "pilot", "--users", "alice").returncode == 0
    head = git_head(s, "alice")

    r = stage_cli(s, "freeze", "--minutes", "2", "--cohort", "pilot", "--reason", "cutover")
    assert r.returncode == 0, r.stderr
    status, headers, body = request("PUT", s.sg.url + "/users/alice/blocks/persona",
                                    {"content": "during the freeze\n"})
    assert status == 503, body
    retry = int(headers.get("retry-after") or headers.get("Retry-After"))
    assert 60 < retry <= 120
    assert json.loads(body)["error"] == "frozen"
    status, _, body = request("POST", s.sg.url + "/users/alice/blocks/persona/diffs/x/approve")
    assert status == 503
    # Nothing reached v1: its git HEAD did not move. Reads are served as usual.
    assert git_head(s, "alice") == head
    status, _, body = request("GET", s.sg.url + "/users/alice/blocks/persona")
    assert status == 200 and b"before" in body
    # Another cohort writes as usual.
    put(s, "bob", "persona", "not frozen\n")
    assert s.sg.metrics()['shadowgate_rejected_requests_total{reason="frozen"}'] == 2
    plan = plan_of(s.sg)
    assert plan["freeze"]["active"] is True and plan["freeze"]["cohorts"] == ["pilot"]

    r = stage_cli(s, "unfreeze", "--reason", "done")
    assert r.returncode == 0, r.stderr
    put(s, "alice", "persona", "after the freeze\n")
    assert git_head(s, "alice") != head
    assert [h["event"] for h in history_of(s.sg)][:2] == ["unfreeze", "freeze"]

    # A window ends by itself.
    status, _, body = request("POST", s.sg.admin_url + "/admin/freeze",
                              {"minutes": 0.02, "reason": "short"}, headers=AUTH)
    assert status == 200, body
    status, _, _ = request("PUT", s.sg.url + "/users/bob/blocks/persona", {"content": "x\n"})
    assert status == 503
    time.sleep(1.5)
    put(s, "bob", "persona", "the window ended\n")
    for bad in ({"minutes": 0}, {"minutes": "5"}, {"minutes": 5, "cohorts": ["nope"]}):
        status, _, body = request("POST", s.sg.admin_url + "/admin/freeze", bad, headers=AUTH)
        assert status in (400, 409), (bad, status, body)


def test_two_replicas_on_one_database_follow_each_other_within_a_second(off_stack):
    s = off_stack
    a = s.sg
    b_cfg = json.loads(json.dumps(s.cfg))
    b_cfg["control"] = {"replica_id": "replica-b"}
    b = start_shadowgate(b_cfg, env=s.env)
    try:
        wait_for("b reads the plan", lambda: plan_of(b)["version"] == 1, timeout=10)
        init_users(s, ["alice"])

        r = stage_cli(s, "set", "dualwrite", "--reason", "via a", sg=a)
        assert r.returncode == 0, r.stderr
        t0 = time.monotonic()
        wait_for("b follows a", lambda: plan_of(b)["version"] == 2, timeout=5, interval=0.05)
        assert time.monotonic() - t0 < 2.0
        assert plan_of(b)["plan"]["default"] == "dualwrite"

        # A freeze made through b holds on a at once after a's next poll.
        r = stage_cli(s, "freeze", "--minutes", "1", "--reason", "via b", sg=b)
        assert r.returncode == 0, r.stderr
        wait_for("a follows b", lambda: plan_of(a)["version"] == 3, timeout=5, interval=0.05)
        status, _, _ = request("PUT", a.url + "/users/alice/blocks/persona", {"content": "x\n"})
        assert status == 503

        # Each replica acknowledges the version it applies.
        def both_ack():
            rows = {r["replica_id"]: r for r in plan_of(a)["replicas"]}
            return "replica-b" in rows and len(rows) == 2 and \
                all(r["applied_version"] == 3 for r in rows.values())
        wait_for("both replicas acknowledge version 3", both_ack, timeout=5)
        assert b.metrics()["shadowgate_control_plan_version"] == 3
    finally:
        b.stop()


def test_a_replica_that_cannot_read_the_plan_keeps_its_freeze_and_is_not_ready(tmp_path):
    """The fence: with the database gone past control.stale_after, a freeze window does not end
    (a flip may have happened meanwhile) and /readyz fails; once the plan is read again the
    replica follows it."""
    import db_harness
    from db_harness import dolt_config, fresh_database

    server = db_harness.private_server(tmp_path / "db")
    db = server.start()
    name = fresh_database(db, "fence")
    dolt = {**dolt_config(db, name), "connect_timeout_ms": 1000, "read_timeout_ms": 1000,
            "write_timeout_ms": 1000}
    s = Stack(tmp_path, stage="off", dolt=dolt, db=db,
              control={"poll_interval_ms": 200, "stale_after_ms": 1000})
    try:
        init_users(s, ["alice"])
        status, _, body = request("POST", s.sg.admin_url + "/admin/freeze",
                                  {"minutes": 0.05, "reason": "flip"}, headers=AUTH)  # 3 s
        assert status == 200, body
        server.halt()
        wait_for("the fence", lambda: s.sg.metrics()["shadowgate_control_fenced"] == 1,
                 timeout=10)
        time.sleep(3.5)  # past the window's end
        status, _, _ = request("PUT", s.sg.url + "/users/alice/blocks/persona", {"content": "x"})
        assert status == 503  # still frozen: this replica cannot know what changed
        status, _, body = request("GET", s.sg.admin_url + "/readyz")
        assert status == 503 and json.loads(body)["plan_ok"] is False, body
        assert s.sg.metrics()["shadowgate_control_poll_failures_total"] >= 1
        assert "event=control_fenced" in s.sg.log()

        server.start()
        wait_for("the fence lifts", lambda: s.sg.metrics()["shadowgate_control_fenced"] == 0,
                 timeout=20)
        put(s, "alice", "persona", "the window is over\n")
        status, _, _ = request("GET", s.sg.admin_url + "/readyz")
        assert status == 200
    finally:
        s.close()
        server.stop()
