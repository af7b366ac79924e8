"""Reconcile: `shadowgate reconcile` finds each kind of planted drift between v1
storage and Dolt, `--repair` clears what it can (a user only Dolt holds is reported, never
deleted), clean data reports zero, and a checkpoint resumes. Real parts: the shadowgate binary,
the v1 reference service and its git storage, MariaDB (the ctest fixture)."""

from __future__ import annotations

import json
import os
import subprocess

from sg_harness import shadowgate_bin
from test_mirror import Stack, init_users, put
from test_shadow import SHADOW, propose

USERS = ["ru1", "ru2", "ru3", "ru4"]


def reconcile(s: Stack, *args):
    res = subprocess.run([str(shadowgate_bin()), "reconcile", "-c", str(s.cfg_path), *args],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, **s.env})
    return res


def report(s: Stack, *args):
    res = reconcile(s, "--json", *args)
    return res.returncode, json.loads(res.stdout)


def seeded(tmp_path) -> Stack:
    s = Stack(tmp_path, shadow=SHADOW)
    init_users(s, USERS)
    for u in USERS:
        put(s, u, "student", f"---\ntitle: {u}\n---\nhello {u}\n")
        put(s, u, "student", f"---\ntitle: {u}\n---\nhello again {u}\n")
        put(s, u, "goals", "learn\n")
        propose(s, u, "student", "more")
    s.converge()
    s.sg.stop()  # the mirror would mend a missing watermark on its own; reconcile runs alone
    return s


def test_reconcile_finds_each_kind_of_drift_and_repair_clears_it(tmp_path):
    s = seeded(tmp_path)
    try:
        code, r = report(s)
        assert code == 0 and r["clean"] is True, r
        assert r["users_checked"] == 4 and r["by_kind"] == {} and r["drift"] == []

        s.sql("DELETE FROM users WHERE user_id = 'ru1'; DELETE FROM commits WHERE user_id = 'ru1';"
              "DELETE FROM blocks WHERE user_id = 'ru1';"
              "DELETE FROM block_versions WHERE user_id = 'ru1';"
              "DELETE FROM pending_diffs WHERE user_id = 'ru1';"
              "DELETE FROM mirror_watermarks WHERE user_id = 'ru1';")
        s.sql("CREATE TEMPORARY TABLE t AS SELECT * FROM blocks WHERE user_id = 'ru2'"
              " AND label = 'goals'; UPDATE t SET label = 'ghost'; INSERT INTO blocks SELECT * FROM t;")
        s.sql("UPDATE block_versions SET content = CONCAT(content, 'tampered') WHERE user_id ="
              " 'ru3' AND label = 'student' ORDER BY ordinal LIMIT 1;")
        s.sql("UPDATE pending_diffs SET status = 'rejected' WHERE user_id = 'ru4';")
        s.sql("INSERT INTO users (user_id, head, diffs_fingerprint) VALUES ('zz-only-dolt', '', '');")

        # The independent judge sees each plant too (it can fail).
        seen = {line.split()[0] for line in s.judge()}
        assert seen == {"'ru1'", "'ru2'", "'ru3'", "'ru4'", "'zz-only-dolt'"}, s.judge()

        res = reconcile(s)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "progress done=4 total=4" in res.stderr  # the progress line (not a terminal)
        code, r = report(s)
        assert code == 1
        assert r["by_kind"] == {"missing user": 1, "extra block": 1,
                                "different version.content": 1, "different diff.status": 1,
                                "extra user": 1}, r["by_kind"]
        found = {(d["user"], d["kind"], d["item"], d["key"]) for d in r["drift"]}
        assert ("ru1", "missing", "user", "") in found
        assert ("ru2", "extra", "block", "ghost") in found
        assert ("zz-only-dolt", "extra", "user", "") in found
        assert any(u == "ru3" and k == "different" and i == "version" for u, k, i, _ in found)
        assert any(u == "ru4" and k == "different" and i == "diff" for u, k, i, _ in found)
        assert r["users_drifted"] == 5 and r["extra_users"] == 1

        commits = int(s.sql("SELECT COUNT(*) FROM mirror_commit_log").strip())
        code, r = report(s, "--repair")
        assert r["users_repaired"] == 4, r
        assert code == 1  # the user only Dolt holds is still there: reported, not deleted
        # One Dolt commit for the whole repair (on MariaDB: one record of it).
        made = s.sql("SELECT message FROM mirror_commit_log ORDER BY id").strip().splitlines()
        assert len(made) == commits + 1, made
        assert made[-1] == "shadowgate reconcile --repair: 4 users written again as v1 has them"
        code, r = report(s)
        assert r["by_kind"] == {"extra user": 1}, r
        s.sql("DELETE FROM users WHERE user_id = 'zz-only-dolt';")
        code, r = report(s)
        assert code == 0 and r["clean"], r
        # The independent judge agrees (v1's answers against SQL), and so does verify.
        assert s.judge() == []
        assert s.verify().returncode == 0
    finally:
        s.close()


def test_a_bad_checkpoint_is_refused_and_users_can_be_listed(tmp_path):
    # A checkpoint left by an interrupted run resumes it: test_backfill kills reconcile halfway.
    s = seeded(tmp_path)
    try:
        s.sql("UPDATE block_versions SET author = 'agent:drift' WHERE user_id = 'ru4';")
        cp = tmp_path / "reconcile.checkpoint"
        cp.write_text("{broken")
        res = reconcile(s, "--checkpoint", str(cp))
        assert res.returncode == 3, res.stdout + res.stderr
        assert "not a reconcile checkpoint" in res.stdout
        assert cp.read_text() == "{broken"

        # Only some users: the list is checked, nothing else.
        code, r = report(s, "--user", "ru1", "--user", "ru4")
        assert r["users_checked"] == 2 and {d["user"] for d in r["drift"]} == {"ru4"}, r
        code, r = report(s, "--user", "nobody")
        assert r["users_failed"] == 1 and "neither" in r["failures"][0]["error"], r
    finally:
        s.close()


# Each plan column the v2 service reads, planted one at a time: (SQL, item, column, the read
# endpoints whose answer renders that column; none for columns no v1 answer shows).
PLANTED = [
    ("UPDATE blocks SET content = CONCAT(content, 'planted') WHERE {b}",
     "block", "content", ["get_block"]),
    ("UPDATE blocks SET metadata = JSON_SET(metadata, '$.title', 'planted') WHERE {b}",
     "block", "metadata", ["get_block"]),
    ("UPDATE blocks SET updated_at = '2001-01-01 00:00:00' WHERE {b}",
     "block", "updated_at", []),
    ("UPDATE block_versions SET content = CONCAT(content, 'planted') WHERE {v}",
     "version", "content", ["get_version"]),
    ("UPDATE block_versions SET metadata = JSON_SET(metadata, '$.title', 'planted') WHERE {v}",
     "version", "metadata", ["get_version"]),
    ("UPDATE block_versions SET author = 'agent:planted' WHERE {v}",
     "version", "author", ["block_history"]),
    ("UPDATE block_versions SET message = 'planted' WHERE {v}",
     "version", "message", ["block_history"]),
    ("UPDATE block_versions SET created_at = '2001-01-01 00:00:00' WHERE {v}",
     "version", "created_at", ["block_history"]),
    ("UPDATE block_versions SET is_current = FALSE WHERE {v}",
     "version", "is_current", ["block_history"]),
    ("UPDATE block_versions SET ordinal = -5 WHERE {v}",
     "version", "ordinal", ["block_history"]),
    ("UPDATE pending_diffs SET reasoning = 'planted' WHERE {d}",
     "diff", "reasoning", ["list_diffs"]),
    ("UPDATE pending_diffs SET created_at = '2001-01-01 00:00:00' WHERE {d}",
     "diff", "created_at", ["list_diffs"]),
    ("UPDATE pending_diffs SET proposed_value = 'planted' WHERE {d}",
     "diff", "proposed_value", []),
    ("UPDATE pending_diffs SET status = 'rejected' WHERE {d}",
     "diff", "status", ["list_diffs", "diff_counts", "list_blocks"]),
]


def test_a_change_in_each_plan_column_is_named_repaired_and_shown_by_the_comparer(tmp_path):
    from test_shadow import read_all, records_for, wait_shadow_idle, discrepancy_total
    s = Stack(tmp_path, shadow=SHADOW)
    try:
        init_users(s, ["pc"])
        put(s, "pc", "student", "---\ntitle: First\n---\nline one\r\nline two\n")
        head = put(s, "pc", "student", "---\ntitle: Second\n---\n\n\nagain\r\n")
        diff = propose(s, "pc", "student", "more")
        s.converge()
        read_all(s, "pc", "student", head)
        assert discrepancy_total(wait_shadow_idle(s)) == 0
        where = {"b": "user_id = 'pc' AND label = 'student'",
                 "v": f"user_id = 'pc' AND label = 'student' AND id = '{head}'",
                 "d": f"user_id = 'pc' AND id = '{diff['id']}'"}
        for sql, item, column, endpoints in PLANTED:
            s.sql(sql.format(**where))
            code, r = report(s)
            assert code == 1, (column, r)
            named = [d for d in r["drift"] if d["item"] == item and d.get("column") == column]
            assert len(named) == 1 and named[0]["user"] == "pc", (item, column, r["drift"])
            assert named[0]["v1"] != named[0]["v2"], named
            assert r["unrepresentable"] == 0, r
            before = {ep: len(records_for(s, ep, 1000)) for ep in endpoints}
            for _ in range(2):  # every read shows it
                read_all(s, "pc", "student", head)
            wait_shadow_idle(s)
            for ep in endpoints:
                got = records_for(s, ep, 1000)
                assert len(got) == before[ep] + 2, (item, column, ep)
                assert got[0]["user"] == "pc" and got[0]["differences"], got[0]
            code, r = report(s, "--repair")
            assert r["users_repaired"] == 1, (column, r)
            code, r = report(s)
            assert code == 0 and r["clean"], (column, r)
            assert s.judge() == [], column
            assert s.verify().returncode == 0, column
    finally:
        s.close()
