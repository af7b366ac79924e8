"""Storage layer of the v1 reference service.

A re-implementation of what the real v1 (YouLab, FastAPI + GitPython + PyYAML)
does to its storage, written from /work/shared/v1-contract.md and the recorded
fixtures.  It uses the same libraries the same way, so that the files, blobs,
commits and JSON it produces match v1 byte for byte (up to times and shas):

    {data_dir}/{user_id}/.git/                 one repository per user
    {data_dir}/{user_id}/.gitignore            first commit "Initialize user storage"
    {data_dir}/{user_id}/memory-blocks/{label}.md
    {data_dir}/{user_id}/pending_diffs/{id}.json   never committed

Deliberate v1 quirks reproduced here (do not "fix" them):
  * the working-tree block file is read in text mode (universal newlines), so
    "\\r\\n" reads back as "\\n", while a version read from git keeps "\\r\\n";
  * a frontmatter whose YAML is not a mapping (a list, a scalar) makes writes
    and GET block fail with a 500, as in v1;
  * diff listings carry old_value/new_value = null (see app.py);
  * reject works on any existing diff file whatever its status.

Not part of v1: every user id, label and diff id that is used to build a path
is checked by `check_name` first (see app.py for the HTTP answer).
"""


import json
import re
import threading
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import yaml
from git import Repo

GIT_NAME = "YouLab System"
GIT_EMAIL = "system@youlab.local"
GITIGNORE = "# YouLab user storage\n*.pyc\n__pycache__/\n"
INIT_MESSAGE = "Initialize user storage"

FRONTMATTER_RE = re.compile(r"^---\n(.*?)\n---\n", re.DOTALL)


# --------------------------------------------------------------------------
# names


def check_name(name: Any) -> bool:
    """True when `name` may be used as one path component.

    Refused (v1 itself does not check; this reference does): non-strings, the
    empty string, anything containing "/", "\\", "..", NUL, or starting with ".".
    """
    if not isinstance(name, str) or not name:
        return False
    if "/" in name or "\\" in name or ".." in name or "\x00" in name:
        return False
    if name.startswith("."):
        return False
    return True


def check_relpath(rel: Any) -> bool:
    """True when `rel` is a safe path relative to a user directory
    (used by the test-only raw-commit endpoint)."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return False
    if rel.startswith("/"):
        return False
    parts = rel.split("/")
    for p in parts:
        if p in ("", ".", ".."):
            return False
    if parts[0] == ".git":
        return False
    return True


# --------------------------------------------------------------------------
# frontmatter


def parse_frontmatter(content: str) -> tuple[Any, str]:
    """v1's parse_frontmatter: (metadata, body)."""
    m = FRONTMATTER_RE.match(content)
    if not m:
        return {}, content
    body = content[m.end():]
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        meta = {}
    return meta, body.lstrip("\n")


def format_block(metadata: dict, body: str) -> str:
    front = yaml.dump(metadata, default_flow_style=False, sort_keys=False)
    return f"---\n{front}---\n\n{body}"


def build_block_file(label: str, content: str, schema: Optional[str] = None,
                     title: Optional[str] = None) -> str:
    """The file text every v1 write path produces for `content`."""
    existing, body = parse_frontmatter(content)
    # a non-mapping frontmatter raises TypeError here, as in v1 (-> 500)
    metadata: dict = {
        "block": label,
        **existing,
        "updated_at": datetime.now(timezone.utc).isoformat(),
    }
    if schema:
        metadata["schema"] = schema
    if title:
        metadata["title"] = title
    elif "title" not in metadata:
        metadata["title"] = label.replace("_", " ").title()
    if not existing:
        body = content
    return format_block(metadata, body)


def write_text_exact(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def read_text_universal(path: Path) -> str:
    # text mode with universal newlines, exactly like v1's Path.read_text()
    with open(path, "r", encoding="utf-8") as f:
        return f.read()


# --------------------------------------------------------------------------
# pending diffs


@dataclass
class PendingDiff:
    id: str
    user_id: str
    agent_id: str
    block_label: str
    field: Optional[str]
    operation: str
    current_value: str
    proposed_value: str
    reasoning: str
    confidence: str
    source_query: Optional[str]
    status: str
    created_at: str
    reviewed_at: Optional[str] = None
    applied_commit: Optional[str] = None


DIFF_FIELDS = [f.name for f in fields(PendingDiff)]


class DiffStore:
    def __init__(self, diffs_dir: Path) -> None:
        self.dir = diffs_dir
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, diff_id: str) -> Path:
        return self.dir / f"{diff_id}.json"

    def save(self, diff: PendingDiff) -> None:
        # json.dumps(..., indent=2): ASCII escapes, no trailing newline
        write_text_exact(self.path(diff.id), json.dumps(asdict(diff), indent=2))

    def get(self, diff_id: str) -> Optional[PendingDiff]:
        p = self.path(diff_id)
        if not p.exists():
            return None
        return PendingDiff(**json.loads(read_text_universal(p)))

    def list_pending(self, block_label: Optional[str] = None) -> list[PendingDiff]:
        out = []
        for p in self.dir.glob("*.json"):
            try:
                d = PendingDiff(**json.loads(read_text_universal(p)))
            except Exception:
                continue
            if d.status == "pending" and (block_label is None or d.block_label == block_label):
                out.append(d)
        return sorted(out, key=lambda d: d.created_at, reverse=True)

    def count_pending(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.list_pending():
            counts[d.block_label] = counts.get(d.block_label, 0) + 1
        return counts

    def update_status(self, diff_id: str, status: str,
                      applied_commit: Optional[str] = None) -> None:
        d = self.get(diff_id)
        if d:
            d.status = status
            d.reviewed_at = datetime.now().isoformat()
            if applied_commit:
                d.applied_commit = applied_commit
            self.save(d)

    def supersede_older(self, block_label: str, keep_id: str) -> int:
        n = 0
        for d in self.list_pending(block_label):
            if d.id != keep_id:
                self.update_status(d.id, "superseded")
                n += 1
        return n


class DiffError(ValueError):
    pass


# --------------------------------------------------------------------------
# one user's storage


class UserStorage:
    def __init__(self, base: Path, user_id: str) -> None:
        self.user_id = user_id
        self.user_dir = base / user_id
        self.blocks_dir = self.user_dir / "memory-blocks"
        self.diffs_dir = self.user_dir / "pending_diffs"
        self._repo: "Optional[Repo]" = None

    # -- repository ------------------------------------------------------
    @property
    def exists(self) -> bool:
        return self.user_dir.exists() and (self.user_dir / ".git").exists()

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            self._repo = Repo(str(self.user_dir))
        return self._repo

    def init(self) -> None:
        if self.exists:
            return
        self.blocks_dir.mkdir(parents=True, exist_ok=True)
        self.diffs_dir.mkdir(parents=True, exist_ok=True)
        repo = Repo.init(str(self.user_dir))
        with repo.config_writer() as cw:
            cw.set_value("user", "name", GIT_NAME)
            cw.set_value("user", "email", GIT_EMAIL)
        (self.user_dir / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        repo.index.add([".gitignore"])
        repo.index.commit(INIT_MESSAGE)
        self._repo = repo

    def close(self) -> None:
        if self._repo is not None:
            try:
                self._repo.close()
            except Exception:
                pass
            self._repo = None

    # -- blocks ----------------------------------------------------------
    def block_path(self, label: str) -> Path:
        return self.blocks_dir / f"{label}.md"

    def list_blocks(self) -> list[str]:
        if not self.blocks_dir.exists():
            return []
        return [p.stem for p in self.blocks_dir.glob("*.md")]

    def read_block(self, label: str) -> Optional[str]:
        p = self.block_path(label)
        if not p.exists():
            return None
        return read_text_universal(p)

    def read_block_body(self, label: str) -> Optional[str]:
        content = self.read_block(label)
        return None if content is None else parse_frontmatter(content)[1]

    def read_block_metadata(self, label: str) -> Any:
        content = self.read_block(label)
        return None if content is None else parse_frontmatter(content)[0]

    def write_block(self, label: str, content: str, message: Optional[str] = None,
                    author: str = "user", schema: Optional[str] = None,
                    title: Optional[str] = None) -> str:
        self.blocks_dir.mkdir(parents=True, exist_ok=True)
        text = build_block_file(label, content, schema=schema, title=title)
        p = self.block_path(label)
        write_text_exact(p, text)
        self.repo.index.add([str(p.relative_to(self.user_dir))])
        if message is None:
            message = f"Update {label} block"
        commit = self.repo.index.commit(f"{message}\n\nAuthor: {author}")
        return commit.hexsha

    def raw_commit(self, files: dict[str, Optional[str]], message: str) -> str:
        """Test-only: write/delete files verbatim and make one commit."""
        repo = self.repo
        index = repo.index
        to_add, to_remove = [], []
        tracked = {path for (path, _stage) in index.entries.keys()}
        for rel, content in files.items():
            p = self.user_dir / rel
            if content is None:
                if p.is_file():
                    p.unlink()
                if rel in tracked:
                    to_remove.append(rel)
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                write_text_exact(p, content)
                to_add.append(rel)
        if to_remove:
            index.remove(to_remove)
        if to_add:
            index.add(to_add)
        if to_remove or to_add:
            index.write()
        return index.commit(message).hexsha

    # -- history ---------------------------------------------------------
    @staticmethod
    def _message(commit) -> str:
        msg = commit.message
        if isinstance(msg, bytes):
            return msg.decode("utf-8", errors="replace")
        return str(msg)

    @classmethod
    def _author(cls, commit) -> str:
        for line in cls._message(commit).strip().split("\n"):
            if line.startswith("Author: "):
                return line.replace("Author: ", "")
        return "unknown"

    def history(self, label: str, limit: int = 20) -> list[dict]:
        p = self.block_path(label)
        if not p.exists():
            return []
        rel = str(p.relative_to(self.user_dir))
        out = []
        for i, c in enumerate(self.repo.iter_commits(paths=rel, max_count=limit)):
            out.append({
                "sha": c.hexsha,
                "message": self._message(c).split("\n")[0],
                "author": self._author(c),
                "timestamp": datetime.fromtimestamp(c.committed_date).isoformat(),
                "is_current": i == 0,
            })
        return out

    def block_at(self, label: str, sha: str) -> Optional[str]:
        try:
            commit = self.repo.commit(sha)
            blob = commit.tree / f"memory-blocks/{label}.md"
            return blob.data_stream.read().decode("utf-8")
        except Exception:
            return None

    def restore(self, label: str, sha: str) -> str:
        content = self.block_at(label, sha)
        if content is None:
            raise DiffError(f"Version {sha[:8]} not found for {label}")
        return self.write_block(label, content,
                                message=f"Restore {label} to version {sha[:8]}",
                                author="user")

    # -- diffs -----------------------------------------------------------
    @property
    def diffs(self) -> DiffStore:
        return DiffStore(self.diffs_dir)

    def approve(self, diff_id: str) -> str:
        store = self.diffs
        diff = store.get(diff_id)
        if diff is None:
            raise DiffError(f"Diff {diff_id} not found")
        if diff.status != "pending":
            raise DiffError(f"Diff {diff_id} is not pending (status: {diff.status})")
        current_body = self.read_block_body(diff.block_label) or ""
        if diff.operation == "append":
            new_body = current_body.rstrip() + "\n\n" + diff.proposed_value
        elif diff.operation == "replace":
            if diff.current_value and diff.current_value in current_body:
                new_body = current_body.replace(diff.current_value, diff.proposed_value, 1)
            else:
                raise DiffError(
                    f"Cannot apply diff {diff_id}: current_value not found in block. "
                    "The block may have been modified since the diff was created."
                )
        elif diff.operation == "full_replace":
            new_body = diff.proposed_value
        else:
            raise DiffError(f"Unknown diff operation: {diff.operation}")
        sha = self.write_block(
            diff.block_label, new_body,
            message=f"Apply agent suggestion: {diff.reasoning[:50]}",
            author=f"agent:{diff.agent_id}",
        )
        store.update_status(diff_id, "approved", sha)
        store.supersede_older(diff.block_label, diff_id)
        return sha

    def reject(self, diff_id: str) -> None:
        self.diffs.update_status(diff_id, "rejected")

    def plant_diff(self, fields_in: dict) -> PendingDiff:
        """Test-only: write a pending diff file the way v1's agents do."""
        label = fields_in["block_label"]
        current = self.read_block(label) or ""
        data = {
            "id": str(uuid.uuid4()),
            "user_id": self.user_id,
            "agent_id": "tutor",
            "block_label": label,
            "field": None,
            "operation": "append",
            "current_value": current,
            "proposed_value": "Agent suggestion.",
            "reasoning": "Suggest append for clarity",
            "confidence": "medium",
            "source_query": None,
            "status": "pending",
            "created_at": datetime.now().isoformat(),
            "reviewed_at": None,
            "applied_commit": None,
        }
        data.update(fields_in)
        diff = PendingDiff(**data)
        self.diffs.save(diff)
        return diff


class StorageManager:
    """Caches one UserStorage (and its Repo) per user id, like v1."""

    def __init__(self, base_dir: Path | str) -> None:
        self.base = Path(base_dir)
        self.base.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, UserStorage] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str) -> UserStorage:
        with self._lock:
            s = self._cache.get(user_id)
            if s is None:
                s = self._cache[user_id] = UserStorage(self.base, user_id)
            return s

    def close(self) -> None:
        with self._lock:
            for s in self._cache.values():
                s.close()
            self._cache.clear()


__all__ = [
    "DIFF_FIELDS", "DiffError", "PendingDiff", "StorageManager", "UserStorage",
    "build_block_file", "check_name", "check_relpath", "parse_frontmatter",
]
