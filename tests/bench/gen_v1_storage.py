#!/usr/bin/python3
"""Generate synthetic YouLab v1 block storage, for benchmarking `shadowgate migrate`.

    gen_v1_storage.py OUT_DIR --users N --blocks B --versions V --diffs D
                      [--seed S] [--jobs J] [--body-bytes MEAN] [--loose]

Writes OUT_DIR/{user}/ as v1 would (see /work/shared/v1-contract.md §2-§5):

  .git/                     HEAD -> refs/heads/master (as in the real sample), config with the
                            YouLab System identity; history built by ONE `git fast-import`
                            process per user fed a generated stream
  .gitignore                committed first ("Initialize user storage")
  memory-blocks/{label}.md  B blocks, V versions each (one commit per write; a few commits
                            touch two blocks), YAML frontmatter as v1's yaml.dump writes it
  pending_diffs/{id}.json   D proposals per user with blocks, json.dumps(indent=2), never
                            committed; statuses mixed, approved ones point at their commit

The working tree (.gitignore, the HEAD version of every block, pending_diffs/) and a matching
.git/index are written too, as v1 would have them (the mirror reads neither, but `git status` is
clean and v1 itself could keep writing to the storage).

Objects: fast-import writes one pack per user (fast to generate). Real v1 storage holds loose
objects (GitPython commits one at a time and never repacks small repositories); `--loose` makes
fast-import explode every pack into loose objects (slower to generate, about 4 KiB of disk per
object), for measuring the reader on realistic storage.

Self-checks: every commit id is also computed here (restore messages and applied_commit need
them) and the branch tip fast-import wrote must equal the computed one; the hand-written
frontmatter is compared with yaml.dump for the first blocks of every worker.

Deterministic for a given --seed (apart from file mtimes). Needs git; PyYAML optional (used for
the rare custom frontmatter and the self-check; Debian's /usr/bin/python3 has it).
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
import time
import uuid
from multiprocessing import Pool

try:
    import yaml
except ImportError:  # custom frontmatter falls back to the hand-written subset
    yaml = None

IDENT = b"YouLab System <system@youlab.local>"
GITIGNORE = b"# YouLab user storage\n*.pyc\n__pycache__/\n"
GIT_CONFIG = (
    "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
    "\tlogallrefupdates = true\n[user]\n\tname = YouLab System\n\temail = system@youlab.local\n"
)
LABELS = ["student", "journey", "progress", "operating_manual", "engagement_strategy",
          "course_syllabus"]
SCHEMAS = ["college-essay/student", "college-essay/journey", "tutoring/progress"]
BASE_EPOCH = 1735689600  # 2025-01-01T00:00:00Z

WORDS = (
    "the student wants to improve essay structure and focus on the personal statement while "
    "keeping a steady weekly rhythm of drafts feedback revisions reading notes goals deadlines "
    "applications scholarship interview practice chemistry calculus history literature debate "
    "robotics volunteering summer program mentor counselor tutor session reflection strengths "
    "weaknesses habits motivation confidence schedule timeline outline brainstorm theme voice "
    "anecdote evidence paragraph transition conclusion introduction hook audience tone clarity "
    "concise specific vivid authentic growth challenge leadership community family culture "
    "music soccer coding biology internship research project portfolio recommendation letter "
    "prefers short sessions in the evening and responds well to concrete examples with clear "
    "next steps plus occasional encouragement"
).split() + [
    "café", "naïve", "résumé", "façade", "jalapeño", "Zürich", "São Paulo", "日本語",
    "中文", "한국어", "עברית", "العربية", "Ελληνικά", "русский", "🎓", "📚", "✓", "—", "“quoted”",
    "it’s", "½", "→", "∑", "µs",
]
HEADINGS = [
    "Goals", "Background", "Strengths", "Areas to improve", "Next steps", "Notes",
    "Session log", "Timeline", "Reading list", "Essay ideas", "Open questions", "Preferences",
    "Week {n}", "Draft {n} feedback", "Meeting {n}", "Résumé ideas", "Ziele & Pläne",
    "学习计划", "Check-ins ✓", "Things that worked", "Blockers",
]
MESSAGES = [
    "Edit", "Fix typo", "Add spring goals", "Reorganise sections", "User edit via editor",
    "Notes from meeting — follow up", "Update after session", "Résumé tweaks ✓",
    "Clarify goals\n\nMoved the deadlines up and split the reading list.",
]
REASONINGS = [
    "Suggest append for clarity", "Student mentioned a new deadline in today's session",
    "Capture the study habits discussed during the last three conversations",
    "The current summary is outdated after the interview practice",
    "Add the reading list the student asked for — with links",
    "Consolidate duplicate notes about essay structure and motivation",
    "Record progress on the calculus problem sets (½ done)",
]
QUERIES = [
    None, None, "What should I focus on this week?", "Can you remember my essay deadline?",
    "How did the mock interview go?", "Help me plan the next month 📅",
]


def git_hash(kind, data):
    h = hashlib.sha1(b"%s %d\0" % (kind, len(data)))
    h.update(data)
    return h.digest()


GITIGNORE_SHA = git_hash(b"blob", GITIGNORE)


class Pools:
    """Text fragments drawn once per process from --seed; bodies are built from them."""

    def __init__(self, seed):
        r = random.Random(f"pools:{seed}")

        def sentence():
            words = [r.choice(WORDS) for _ in range(r.randint(6, 16))]
            x = r.random()
            if x < 0.08:
                i = r.randrange(len(words))
                words[i] = f"**{words[i]}**"
            elif x < 0.12:
                i = r.randrange(len(words))
                words[i] = f"`{words[i]}`"
            elif x < 0.15:
                words.append(f"([notes](https://example.org/notes/{r.randint(1, 999)}))")
            s = " ".join(words)
            return s[0].upper() + s[1:] + r.choice([".", ".", ".", "!", "?", "…"])

        self.sentences = [sentence() for _ in range(4000)]
        self.bullets = [" ".join(r.choice(WORDS) for _ in range(r.randint(2, 10)))
                        for _ in range(3000)]
        self.headings = [h.replace("{n}", str(r.randint(1, 40))) for h in HEADINGS * 10]


class Body:
    """A markdown body as a list of blocks (paragraphs, lists, headings) joined by blank lines."""

    def __init__(self, r, pools, title, target):
        self.r, self.p, self.target = r, pools, target
        self.parts = []
        if r.random() < 0.8:
            self.parts.append(f"# {title}")
        self.size = sum(len(x) + 2 for x in self.parts)
        while self.size < target:
            self.add(len(self.parts))
        self.trailing_nl = r.random() < 0.5

    def fragment(self):
        r, p = self.r, self.p
        x = r.random()
        if x < 0.22:
            return "## " + r.choice(p.headings)
        if x < 0.55:
            return " ".join(r.choices(p.sentences, k=r.randint(1, 4)))
        if x < 0.85:
            marker = r.choice(["- ", "- ", "* ", "1. ", "- [ ] ", "- [x] "])
            return "\n".join(marker + b for b in r.choices(p.bullets, k=r.randint(2, 7)))
        if x < 0.92:
            return "> " + r.choice(p.sentences)
        if x < 0.96:
            rows = "\n".join(f"| {r.choice(p.bullets)[:30]} | {r.randint(1, 100)} |"
                             for _ in range(r.randint(2, 5)))
            return "| Item | Score |\n|---|---|\n" + rows
        return "```\n" + "\n".join(r.choices(p.bullets, k=r.randint(2, 5))) + "\n```"

    def add(self, at):
        f = self.fragment()
        self.parts.insert(at, f)
        self.size += len(f) + 2

    def edit(self):
        """One user or agent edit: append, insert, replace or delete, drifting around target."""
        r, n = self.r, len(self.parts)
        x = r.random()
        if self.size > self.target * 1.25 and n > 2:
            x = 0.95
        elif self.size < self.target * 0.8:
            x = 0.1
        if x < 0.5 or n < 2:
            self.add(n)
        elif x < 0.6:
            self.add(r.randrange(1, n))
        elif x < 0.9:
            i = r.randrange(1, n)
            self.size -= len(self.parts[i]) + 2
            del self.parts[i]
            self.add(i)
        else:
            i = r.randrange(1, n)
            self.size -= len(self.parts[i]) + 2
            del self.parts[i]

    def append_text(self, text):  # approve of an `append` proposal: body.rstrip() + "\n\n" + p
        self.parts.append(text)
        self.size += len(text) + 2
        self.trailing_nl = False

    def replace_all(self, text):  # approve of a `full_replace` proposal
        self.parts = [text]
        self.size = len(text)
        self.trailing_nl = False

    def text(self):
        s = "\n\n".join(self.parts)
        return s + "\n" if self.trailing_nl else s

    def copy(self):
        b = Body.__new__(Body)
        b.r, b.p, b.target = self.r, self.p, self.target
        b.parts, b.size, b.trailing_nl = list(self.parts), self.size, self.trailing_nl
        return b


PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_/-]*( [A-Za-z0-9_/-]+)*")
YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}
_checked = [0]


def render_meta(meta):
    """yaml.dump(meta, default_flow_style=False, sort_keys=False) for v1's usual shapes (block,
    updated_at, [schema], title; plain strings) by hand, since yaml.dump costs ~0.3 ms; anything
    else through yaml.dump itself. The first few hand renderings are checked against yaml."""
    keys = list(meta)
    fast = keys in (["block", "updated_at", "title"], ["block", "updated_at", "schema", "title"])
    if fast:
        for k in keys:
            if k != "updated_at" and (not PLAIN.fullmatch(meta[k])
                                      or meta[k].lower() in YAML_WORDS):
                fast = False
    if not fast and yaml is not None:
        return yaml.dump(meta, default_flow_style=False, sort_keys=False)
    out = []
    for k, v in meta.items():
        if k == "updated_at":
            out.append(f"{k}: '{v}'\n")
        elif isinstance(v, list):
            out.append(f"{k}:\n" + "".join(f"- {x}\n" for x in v))
        else:
            out.append(f"{k}: {v}\n")
    s = "".join(out)
    if yaml is not None and _checked[0] < 40:
        _checked[0] += 1
        want = yaml.dump(meta, default_flow_style=False, sort_keys=False)
        if s != want:
            raise AssertionError(f"frontmatter differs from yaml.dump:\n{s!r}\n{want!r}")
    return s


def block_file(meta, body_text):
    return ("---\n" + render_meta(meta) + "---\n\n" + body_text).encode()


def iso_utc(t, us):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).replace(microsecond=us).isoformat()


def iso_local(t, us):  # naive local time, as v1's datetime.now().isoformat()
    return dt.datetime.fromtimestamp(t).replace(microsecond=us).isoformat()


def user_name(i, r):
    if r.random() < 0.1:  # some deployments key storage by UUID
        return str(uuid.UUID(int=r.getrandbits(128), version=4))
    return f"user-{i:05d}"


class Repo:
    """Builds one user's fast-import stream while computing every object id itself."""

    def __init__(self):
        self.stream = []
        self.files = {}  # label -> (blob sha, content)
        self.head = None
        self.blobs = {GITIGNORE_SHA}
        self.commits = 0

    def commit(self, t, message, author, changes):
        """changes: [(label, content bytes)]; None label list means the init commit."""
        msg = f"{message}\n\nAuthor: {author}".encode() if author else message.encode()
        s = self.stream
        s.append(b"commit refs/heads/master\nauthor %s %d +0000\ncommitter %s %d +0000\n"
                 b"data %d\n" % (IDENT, t, IDENT, t, len(msg)))
        s.append(msg)
        s.append(b"\n")
        if not changes:
            s.append(b"M 100644 inline .gitignore\ndata %d\n" % len(GITIGNORE))
            s.append(GITIGNORE)
            s.append(b"\n")
        for label, content in changes:
            sha = git_hash(b"blob", content)
            self.blobs.add(sha)
            self.files[label] = (sha, content)
            s.append(b"M 100644 inline memory-blocks/%s.md\ndata %d\n" % (label.encode(),
                                                                        len(content)))
            s.append(content)
            s.append(b"\n")
        root = [(b".gitignore", b"100644 .gitignore\0" + GITIGNORE_SHA)]
        if self.files:
            names = sorted((label + ".md").encode() for label in self.files)
            mb = b"".join(b"100644 " + n + b"\0" + self.files[n[:-3].decode()][0] for n in names)
            root.append((b"memory-blocks/", b"40000 memory-blocks\0" + git_hash(b"tree", mb)))
        root.sort()
        tree = git_hash(b"tree", b"".join(e for _, e in root))
        body = b"tree %s\n" % tree.hex().encode()
        if self.head:
            body += b"parent %s\n" % self.head.encode()
        body += b"author %s %d +0000\ncommitter %s %d +0000\n\n" % (IDENT, t, IDENT, t) + msg
        self.head = git_hash(b"commit", body).hex()
        self.commits += 1
        return self.head


def gen_user(args, i):
    """Everything for user i: returns (name, repo, worktree files {relpath: bytes}, stats)."""
    r = random.Random(f"{args.seed}:{i}")
    pools = POOLS
    name = user_name(i, r)
    repo = Repo()
    t = BASE_EPOCH + r.randint(0, 200 * 86400)
    repo.commit(t, "Initialize user storage", None, [])
    files = {".gitignore": GITIGNORE}
    stats = {"users": 1, "empty": 0, "versions": 0, "body_bytes": 0, "diffs": 0, "two_block": 0}
    # about 3% of users (never the first) signed up but have no blocks yet
    if i % 37 == 36 or args.blocks == 0 or args.versions == 0:
        stats["empty"] = 1
        return name, repo, files, stats

    labels = LABELS + [f"notes_{k}" for k in range(max(0, args.blocks - len(LABELS)))]
    labels = r.sample(labels, args.blocks)
    blocks = {}
    for label in labels:
        target = args.body_bytes * r.lognormvariate(0, 0.5) / 1.133
        if r.random() < 0.05:
            target *= r.uniform(4, 12)  # a few much larger blocks
        style = "custom" if r.random() < 0.05 else ("schema" if r.random() < 0.3 else "plain")
        blocks[label] = {
            "title": label.replace("_", " ").title(), "style": style, "body": None,
            "versions": [],  # [(commit sha, meta, body copy, content)]
            "target": max(80, int(target)), "schema": r.choice(SCHEMAS),
            "custom_title": r.choice(["My plan", "Résumé & goals", "Notes: spring term",
                                      "Essay — draft log", "Custom Title"]),
        }

    def meta_for(label, kind, us_t):
        b = blocks[label]
        upd = iso_utc(us_t[0], us_t[1])
        if kind in ("approve", "agent", "system"):  # written without frontmatter: defaults
            return {"block": label, "updated_at": upd, "title": b["title"]}
        if b["style"] == "custom":  # the editor sends the frontmatter back every time
            return {"block": label, "title": b["custom_title"], "schema": b["schema"],
                    "tags": ["essay", "spring"], "updated_at": upd}
        if b["style"] == "schema":
            return {"block": label, "updated_at": upd, "schema": b["schema"], "title": b["title"]}
        return {"block": label, "updated_at": upd, "title": b["title"]}

    # Which writes happen, in order: each block gets exactly V versions.
    queue = []
    init_all = r.random() < 0.7  # v1 initialised the default blocks at sign-up
    if init_all:
        queue += [[label] for label in labels]
    rest = [label for label in labels for _ in range(args.versions - (1 if init_all else 0))]
    r.shuffle(rest)
    queue += [[x] for x in rest]
    if len(labels) >= 2 and r.random() < 0.15:  # a commit touching two blocks
        start = len(labels) if init_all else 0
        for k in range(start, len(queue) - 1):
            if queue[k][0] != queue[k + 1][0]:
                queue[k] = [queue[k][0], queue[k + 1][0]]
                del queue[k + 1]
                stats["two_block"] += 1
                break

    approvals = []  # (commit sha, label, time, reasoning, operation, proposed, prior content)
    for n, group in enumerate(queue):
        if init_all and n < len(labels):
            dt_s = 0  # sign-up: all in the same second as the init commit
        else:
            x = r.random()
            dt_s = (0 if x < 0.25 else r.randint(1, 300) if x < 0.6
                    else r.randint(300, 86400) if x < 0.9 else r.randint(86400, 30 * 86400))
        t += dt_s
        us = r.randrange(1_000_000)
        first = blocks[group[0]]["body"] is None
        if len(group) == 2:
            kind = "sync"
        elif first:
            kind = "init" if init_all else r.choice(["user", "user", "agent"])
        else:
            x = r.random()
            nver = len(blocks[group[0]]["versions"])
            kind = ("user" if x < 0.55 else "approve" if x < 0.72 else "agent" if x < 0.84
                    else "system" if x < 0.9 else "restore" if nver >= 2 else "user")
        label = group[0]
        b = blocks[label]
        prior = b["versions"][-1][3] if b["versions"] else b""
        extra = None
        if kind == "init":
            message, author = f"Initialize {label} block", "system"
        elif kind == "user":
            message = f"Update {label}" if r.random() < 0.7 else r.choice(MESSAGES)
            author = "user"
        elif kind == "agent":
            message, author = r.choice([f"Update {label} from conversation",
                                        f"Summarise session into {label}"]), "agent:tutor"
        elif kind == "system":
            message, author = f"Nightly cleanup of {label}", "system"
        elif kind == "sync":
            message, author = f"Sync {group[0]} and {group[1]}", r.choice(["system",
                                                                          "agent:tutor"])
        elif kind == "approve":
            reasoning = r.choice(REASONINGS)
            message, author = f"Apply agent suggestion: {reasoning[:50]}", "agent:tutor"
            op = r.choice(["append", "append", "llm_diff", "full_replace"])
            proposed = " ".join(r.choices(pools.sentences, k=r.randint(1, 3)))
            extra = (reasoning, op, proposed)
        else:  # restore
            old = r.choice(b["versions"][:-1])
            message, author = f"Restore {label} to version {old[0][:8]}", "user"
            extra = old

        changes, metas = [], []
        for lab in group:
            bl = blocks[lab]
            if bl["body"] is None:
                bl["body"] = Body(r, pools, bl["title"], bl["target"])
            if kind == "restore":
                meta = dict(extra[1])  # the old frontmatter, with a new updated_at in place
                meta["updated_at"] = iso_utc(t, us)
                bl["body"] = extra[2].copy()
            else:
                meta = meta_for(lab, "system" if kind == "sync" else kind, (t, us))
                if kind == "approve":
                    if extra[1] == "full_replace":
                        bl["body"].replace_all(extra[2])
                    else:
                        bl["body"].append_text(extra[2])
                elif not (bl["versions"] == [] and kind in ("init", "user", "agent", "sync")):
                    bl["body"].edit()
            content = block_file(meta, bl["body"].text())
            changes.append((lab, content))
            metas.append(meta)
            stats["versions"] += 1
            stats["body_bytes"] += len(content)
        sha = repo.commit(t, message, author, changes)
        for (lab, content), meta in zip(changes, metas):
            blocks[lab]["versions"].append((sha, meta, blocks[lab]["body"].copy(), content))
        if kind == "approve":
            approvals.append((sha, label, t, extra[0], extra[1], extra[2], prior))

    for label, (sha, content) in repo.files.items():
        files[f"memory-blocks/{label}.md"] = content

    # Pending diffs: proposals agents wrote straight into pending_diffs/.
    t_end = t + r.randint(60, 7 * 86400)
    r.shuffle(approvals)
    statuses = ["pending"] * 8 + ["approved"] * 4 + ["rejected"] * 4 + ["superseded"] * 3 + [
        "expired"]
    for _ in range(args.diffs):
        did = str(uuid.UUID(int=r.getrandbits(128), version=4))
        status = r.choice(statuses)
        if status == "approved" and approvals:
            sha, label, tc, reasoning, op, proposed, prior = approvals.pop()
            created = tc - r.randint(5, 3 * 86400)
            reviewed, applied = iso_local(tc, r.randrange(1_000_000)), sha
            current = prior.decode()
        else:
            if status == "approved":
                status = "rejected"
            label = r.choice(labels)
            vers = blocks[label]["versions"]
            current = r.choice(vers)[3].decode()
            op = r.choice(["append", "replace", "llm_diff", "full_replace"])
            reasoning = r.choice(REASONINGS)
            proposed = " ".join(r.choices(pools.sentences, k=r.randint(1, 3)))
            created = r.randint(BASE_EPOCH, t_end)
            reviewed = (None if status in ("pending", "expired")
                        else iso_local(created + r.randint(30, 86400), r.randrange(1_000_000)))
            applied = None
        doc = {
            "id": did, "user_id": name, "agent_id": "tutor" if r.random() < 0.9 else "advisor",
            "block_label": label, "field": None, "operation": op, "current_value": current,
            "proposed_value": proposed, "reasoning": reasoning,
            "confidence": r.choice(["low", "medium", "high"]),
            "source_query": r.choice(QUERIES), "status": status,
            "created_at": iso_local(created, r.choice([0] + [r.randrange(1_000_000)] * 9)),
            "reviewed_at": reviewed, "applied_commit": applied,
        }
        files[f"pending_diffs/{did}.json"] = json.dumps(doc, indent=2).encode()
        stats["diffs"] += 1
    return name, repo, files, stats


def write_index(gd, root, entries):
    """A version 2 .git/index for `entries` [(relpath, blob sha)], with the files' stat data."""
    out = [b"DIRC" + struct.pack(">II", 2, len(entries))]
    for rel, sha in sorted(entries, key=lambda e: e[0].encode()):
        st = os.stat(os.path.join(root, rel))
        path = rel.encode()
        e = struct.pack(">10I", int(st.st_ctime) & 0xFFFFFFFF, st.st_ctime_ns % 1_000_000_000,
                        int(st.st_mtime) & 0xFFFFFFFF, st.st_mtime_ns % 1_000_000_000,
                        st.st_dev & 0xFFFFFFFF, st.st_ino & 0xFFFFFFFF, 0o100644,
                        st.st_uid, st.st_gid, st.st_size & 0xFFFFFFFF)
        e += sha + struct.pack(">H", min(len(path), 0xFFF)) + path
        out.append(e + b"\0" * (8 - len(e) % 8))
    data = b"".join(out)
    with open(os.path.join(gd, "index"), "wb") as f:
        f.write(data + hashlib.sha1(data).digest())


def write_user(i):
    args = ARGS
    name, repo, files, stats = gen_user(args, i)
    root = os.path.join(args.out_dir, name)
    gd = os.path.join(root, ".git")
    for d in ("objects/pack", "objects/info", "refs/heads", "refs/tags", "memory-blocks",
              "pending_diffs"):
        os.makedirs(os.path.join(gd if d.startswith(("objects", "refs")) else root, d),
                    exist_ok=True)
    with open(os.path.join(gd, "HEAD"), "w") as f:
        f.write("ref: refs/heads/master\n")
    with open(os.path.join(gd, "config"), "w") as f:
        f.write(GIT_CONFIG)
    cmd = ["git", "--git-dir=" + gd]
    # Below unpackLimit objects, fast-import explodes its pack into loose objects.
    cmd += ["-c", "core.fsync=none", "-c", "fastimport.unpackLimit=%d" % (1 << 30 if args.loose else 0)]
    cmd += ["fast-import", "--quiet", "--date-format=raw"]
    p = subprocess.run(cmd, input=b"".join(repo.stream), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError(f"{name}: git fast-import failed: {p.stderr.decode(errors='replace')}")
    with open(os.path.join(gd, "refs/heads/master")) as f:
        tip = f.read().strip()
    if tip != repo.head:
        raise RuntimeError(f"{name}: fast-import made {tip}, expected {repo.head}")
    for rel, data in files.items():
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    write_index(gd, root, [(".gitignore", GITIGNORE_SHA)] +
                [(f"memory-blocks/{label}.md", sha) for label, (sha, _) in repo.files.items()])
    stats["commits"] = repo.commits
    stats["blobs"] = len(repo.blobs)
    return stats


ARGS = None
POOLS = None


def init_worker(args):
    global ARGS, POOLS
    ARGS = args
    POOLS = Pools(args.seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--blocks", type=int, default=4, help="blocks per user (default 4)")
    ap.add_argument("--versions", type=int, default=10, help="versions per block (default 10)")
    ap.add_argument("--diffs", type=int, default=3, help="pending diff files per user with blocks")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--body-bytes", type=int, default=1200,
                    help="mean body size target in bytes (default 1200; 5%% of blocks 4-12x)")
    ap.add_argument("--loose", action="store_true",
                    help="loose objects, as real v1 storage has (default: one pack per user)")
    args = ap.parse_args()
    if os.path.isdir(args.out_dir) and os.listdir(args.out_dir):
        sys.exit(f"gen_v1_storage: {args.out_dir} exists and is not empty")
    os.makedirs(args.out_dir, exist_ok=True)
    args.out_dir = os.path.abspath(args.out_dir)

    t0 = time.monotonic()
    tot = {}
    with Pool(max(1, args.jobs), initializer=init_worker, initargs=(args,)) as pool:
        for st in pool.imap_unordered(write_user, range(args.users), chunksize=16):
            for k, v in st.items():
                tot[k] = tot.get(k, 0) + v
    secs = time.monotonic() - t0
    mean_kb = tot.get("body_bytes", 0) / max(1, tot.get("versions", 0)) / 1024
    print(f"gen_v1_storage: {tot.get('users', 0)} users ({tot.get('empty', 0)} without blocks), "
          f"{tot.get('commits', 0)} commits ({tot.get('two_block', 0)} touching two blocks), "
          f"{tot.get('blobs', 0)} blobs, {tot.get('versions', 0)} versions "
          f"(mean file {mean_kb:.1f} KiB), {tot.get('diffs', 0)} diffs, "
          f"{'loose' if args.loose else 'packed'}, {args.jobs} jobs, {secs:.1f} s")


if __name__ == "__main__":
    main()
