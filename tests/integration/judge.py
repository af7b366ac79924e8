"""An independent judge of mirrored data.

One side is v1's own reading: the v1 reference service's answers (it reads v1 storage as v1
does: Path.read_text, parse_frontmatter, GitPython), the `git` command line, and the
pending_diffs/*.json files read with Python's json. The other side is SQL on the columns the
YouLab v2 service will read (blocks, block_versions, pending_diffs of ../shared/dolt-schema.md,
with the text columns that rebuild v1's texts), fetched with the `mariadb` command-line client.
No shadowgate code runs on either side: a bug shared by the mirror and `shadowgate verify` (one
reader, one renderer) cannot hide here.

Texts are rebuilt from the columns the way v1 writes them: "---\\n" + yaml.dump(metadata in
metadata_keys order, default_flow_style=False, sort_keys=False) + "---\\n" + blank_lines * "\\n" +
content, or content alone without frontmatter (PyYAML of Debian, as the reference service uses).

API
---
differences(v1_url, db, database, data_dir, users=None, tz="UTC") -> list[str]
    Every way the plan's columns disagree with v1 for `users` (default: every user of v1 storage
    and every user of the users table), one readable line each; [] when they agree.
assert_mirrored(v1_url, db, database, data_dir, users=None, tz="UTC")
    pytest.fail with the differences, if any.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from db_harness import admin_sql
from v1ref_harness import request

HISTORY_LIMIT = 100  # v1's maximum; the judged users have fewer versions per block


def _q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select(db: dict, database: str, columns: list[str], rest: str) -> list[list]:
    """SELECT each of `columns` (SQL expressions) as base64, so any byte survives the CLI's
    batch output (base64 rather than hex: a row of the largest block must fit the server's
    max_allowed_packet). A number must be given as CONCAT(n)."""
    coded = ", ".join(f"REPLACE(TO_BASE64({c}), '\\n', '')" for c in columns)
    out = admin_sql(db, f"USE {database}; SELECT {coded} {rest}")
    rows = []
    for line in out.splitlines():
        cells = line.split("\t")
        rows.append([None if c == "NULL" else base64.b64decode(c).decode("utf-8")
                     for c in cells])
    return rows


def _v1(v1_url: str, path: str):
    status, _, body = request("GET", v1_url + path)
    return status, (json.loads(body) if body else None)


def _seg(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _ordered(value, pointers: list[str]):
    """`value` with every mapping's keys in the order the JSON Pointers list them."""
    order: dict[tuple, list[str]] = {}
    for p in pointers:
        toks = [t.replace("~1", "/").replace("~0", "~") for t in p.split("/")[1:]]
        order.setdefault(tuple(toks[:-1]), []).append(toks[-1])

    def build(v, path):
        if isinstance(v, dict):
            listed = [k for k in order.get(path, []) if k in v]
            keys = listed + [k for k in v if k not in listed]
            return {k: build(v[k], path + (k,)) for k in keys}
        if isinstance(v, list):
            return [build(x, path + (str(i),)) for i, x in enumerate(v)]
        return v
    return build(value, ())


def rebuilt_text(content, metadata, metadata_keys, frontmatter, blank_lines) -> str:
    if frontmatter not in ("1",):
        return content
    meta = json.loads(metadata) if metadata is not None else {}
    meta = _ordered(meta, json.loads(metadata_keys or "[]"))
    return ("---\n" + yaml.dump(meta, default_flow_style=False, sort_keys=False) + "---\n" +
            "\n" * int(blank_lines) + content)


def _git(repo: Path, *args) -> str:
    res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, (args, res.stderr)
    return res.stdout


def _local_time(utc_text: str, tz: str) -> str:
    when = datetime.strptime(utc_text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M:%S")


def _iso(text):
    """A DATETIME(6) as Python's isoformat() prints it (microseconds omitted when zero)."""
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").isoformat()


def users_of(db: dict, database: str, data_dir: Path) -> list[str]:
    in_storage = {p.name for p in Path(data_dir).iterdir() if (p / ".git").exists()}
    in_sql = {r[0] for r in select(db, database, ["user_id"], "FROM users")}
    return sorted(in_storage | in_sql)


def differences(v1_url: str, db: dict, database: str, data_dir: Path, users=None,
                tz: str = "UTC") -> list[str]:
    data_dir = Path(data_dir)
    out: list[str] = []
    for user in (users if users is not None else users_of(db, database, data_dir)):
        out += _user_differences(v1_url, db, database, data_dir, user, tz)
    return out


def _user_differences(v1_url, db, database, data_dir, user, tz) -> list[str]:
    out: list[str] = []

    def diff(what, v1_value, sql_value):
        if v1_value != sql_value:
            out.append(f"{user!r} {what}: v1 {v1_value!r} != sql {sql_value!r}")

    u = _seg(user)
    where = f"WHERE user_id = {_q(user)}"
    status, body = _v1(v1_url, f"/users/{u}/exists")
    assert status == 200, (user, status, body)
    in_sql = bool(select(db, database, ["user_id"], f"FROM users {where}"))
    diff("exists", body["exists"], in_sql)
    if not body["exists"]:
        return out
    repo = data_dir / user

    # The block list and pending counts.
    status, listed = _v1(v1_url, f"/users/{u}/blocks")
    assert status == 200, (user, status, listed)
    v1_counts = {b["label"]: b["pending_diffs"] for b in listed}
    blocks = {r[0]: r for r in select(
        db, database, ["label", "content", "metadata", "metadata_keys", "CONCAT(frontmatter)",
                       "CONCAT(blank_lines)", "DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%s.%f')",
                       "v1_commit"], f"FROM blocks {where}")}
    pending = dict(select(db, database, ["block_label", "CONCAT(COUNT(*))"],
                          f"FROM pending_diffs {where} AND status = 'pending' "
                          "GROUP BY block_label"))
    diff("block labels", sorted(v1_counts), sorted(blocks))
    diff("pending counts", {k: v for k, v in v1_counts.items() if v},
         {k: int(v) for k, v in pending.items() if k in blocks})

    # Each current block: v1's GET block against the blocks row.
    for label, row in sorted(blocks.items()):
        if label not in v1_counts:
            continue
        status, got = _v1(v1_url, f"/users/{u}/blocks/{_seg(label)}")
        assert status == 200, (user, label, status, got)
        _, content, metadata, keys, fm, blank, updated, v1_commit = row
        diff(f"block {label!r} body", got["body"], content)
        diff(f"block {label!r} metadata", got["metadata"],
             json.loads(metadata) if metadata is not None else {})
        diff(f"block {label!r} text", got["content"],
             rebuilt_text(content, metadata, keys, fm, blank))
        # README, "The v2 tables": updated_at is the time of the newest commit of the file.
        newest, when = _git(repo, "log", "-1", "--format=%H %ct", "--",
                            f"memory-blocks/{label}.md").split()
        diff(f"block {label!r} v1_commit (git log)", newest, v1_commit)
        diff(f"block {label!r} updated_at (git log)",
             datetime.fromtimestamp(int(when), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f"),
             updated)

    # History and versions of every label either side knows.
    labels = set(v1_counts) | {r[0] for r in select(
        db, database, ["label"], f"FROM block_versions {where} GROUP BY label")}
    for label in sorted(labels):
        out += _history_differences(v1_url, db, database, repo, user, label, tz)

    # Pending diffs: v1's list per block, and every field of every file against its row.
    for label in sorted(v1_counts):
        status, v1_diffs = _v1(v1_url, f"/users/{u}/blocks/{_seg(label)}/diffs")
        assert status == 200, (user, label, status)
        rows = select(db, database, ["id", "block_label", "field", "operation", "reasoning",
                                     "confidence",
                                     "DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')",
                                     "agent_id"],
                      f"FROM pending_diffs {where} AND block_label = {_q(label)} "
                      "AND status = 'pending' ORDER BY created_at DESC, id")
        diff(f"diffs of {label!r}",
             sorted((d["id"], d["block"], d["field"], d["operation"], d["reasoning"],
                     d["confidence"], d["created_at"], d["agent_id"]) for d in v1_diffs),
             sorted((r[0], r[1], r[2], r[3], r[4], r[5], _iso(r[6]), r[7]) for r in rows))
    files = {}
    diff_dir = repo / "pending_diffs"
    if diff_dir.is_dir():
        for f in diff_dir.glob("*.json"):
            files[f.stem] = json.loads(f.read_text(encoding="utf-8"))
    fields = ["agent_id", "block_label", "field", "operation", "current_value", "proposed_value",
              "reasoning", "confidence", "status", "source_query", "applied_commit"]
    rows = {r[0]: r for r in select(
        db, database, ["id", *fields, "DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f')",
                       "DATE_FORMAT(reviewed_at, '%Y-%m-%d %H:%i:%s.%f')"],
        f"FROM pending_diffs {where}")}
    diff("pending diff ids (files)", sorted(files), sorted(rows))
    for diff_id in sorted(set(files) & set(rows)):
        doc, row = files[diff_id], rows[diff_id]
        for i, name in enumerate(fields, start=1):
            diff(f"diff {diff_id!r} {name}", doc.get(name), row[i])
        diff(f"diff {diff_id!r} created_at", doc.get("created_at"), _iso(row[-2]))
        diff(f"diff {diff_id!r} reviewed_at", doc.get("reviewed_at"), _iso(row[-1]))
    return out


def _history_differences(v1_url, db, database, repo, user, label, tz) -> list[str]:
    out: list[str] = []

    def diff(what, v1_value, sql_value):
        if v1_value != sql_value:
            out.append(f"{user!r} {label!r} {what}: v1 {v1_value!r} != sql {sql_value!r}")

    base = f"/users/{_seg(user)}/blocks/{_seg(label)}"
    status, history = _v1(v1_url, f"{base}/history?limit={HISTORY_LIMIT}")
    assert status == 200, (user, label, status, history)
    rows = select(db, database, ["id", "message", "author",
                                 "DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s')",
                                 "CONCAT(is_current)",
                                 "content", "metadata", "metadata_keys", "CONCAT(frontmatter)",
                                 "CONCAT(blank_lines)", "CONCAT(deleted)"],
                  f"FROM block_versions WHERE user_id = {_q(user)} AND label = {_q(label)} "
                  f"ORDER BY ordinal DESC LIMIT {HISTORY_LIMIT}")
    # v1 answers [] for the history of a block that does not exist (now): so must the columns.
    current = select(db, database, ["label"], f"FROM blocks WHERE user_id = {_q(user)} "
                     f"AND label = {_q(label)}")
    diff("history", [(h["sha"], h["message"], h["author"], h["timestamp"], h["is_current"])
                     for h in history],
         [(r[0], r[1], r[2], _local_time(r[3], tz), r[4] == "1") for r in rows]
         if current else [])
    # git's own order and times, as a second reading of the same commits
    log = _git(repo, "log", f"-{HISTORY_LIMIT}", "--format=%H %ct", "--",
               f"memory-blocks/{label}.md").split()
    diff("history (git log)", [log[i] for i in range(0, len(log), 2)], [r[0] for r in rows])
    for r in rows:
        sha, content, metadata, keys, fm, blank, deleted = r[0], *r[5:]
        status, got = _v1(v1_url, f"{base}/versions/{sha}")
        if deleted == "1":
            diff(f"version {sha[:8]} status (deleted)", status, 404)
            continue
        if status != 200:
            out.append(f"{user!r} {label!r} version {sha[:8]}: v1 answers {status}")
            continue
        diff(f"version {sha[:8]} body", got["body"], content)
        diff(f"version {sha[:8]} metadata", got["metadata"],
             json.loads(metadata) if metadata is not None else {})
        diff(f"version {sha[:8]} text", got["content"],
             rebuilt_text(content, metadata, keys, fm, blank))
    return out


def assert_mirrored(v1_url, db, database, data_dir, users=None, tz="UTC"):
    found = differences(v1_url, db, database, data_dir, users, tz)
    if found:
        pytest.fail("the plan's columns disagree with v1:\n" + "\n".join(found[:40]))
