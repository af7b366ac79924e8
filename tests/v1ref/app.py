"""v1 reference service: a FastAPI app that behaves like the real v1 block API.

Behaviour follows /work/shared/v1-contract.md and the recorded transcript
(/work/shared/fixtures/v1-transcript.jsonl); storage details live in v1ref_storage.py.
Built with the same stack as v1 (FastAPI 0.92 / pydantic 1.10 / GitPython /
PyYAML, Debian's /usr/bin/python3), so 422 bodies, coercions ({"content": 42}
becomes "42") and serialisation are v1's own.

    create_app(data_dir, test_endpoints=False, check_names=True) -> FastAPI

Public routes (v1):
    POST /users/init                                   {user_id, name?, email?, course_id?}
    GET  /users/{u}/exists
    GET  /users/{u}/blocks
    GET  /users/{u}/blocks/diffs/counts
    GET  /users/{u}/blocks/{label}
    PUT  /users/{u}/blocks/{label}                     {content, message?, schema_ref?}
    GET  /users/{u}/blocks/{label}/history?limit=N     (default 20, max 100)
    GET  /users/{u}/blocks/{label}/versions/{sha}
    POST /users/{u}/blocks/{label}/restore             {commit_sha}
    GET  /users/{u}/blocks/{label}/diffs
    POST /users/{u}/blocks/{label}/diffs/{id}/approve
    POST /users/{u}/blocks/{label}/diffs/{id}/reject?reason=...

Test-only routes (only with test_endpoints=True, i.e. server.py --test-endpoints).
They emulate v1's background agents, which write storage directly and never go
through the HTTP API:
    POST /_test/users/{u}/blocks/{label}/agent-write
         {content, message?="Background agent update", author?="agent:planner", schema_ref?}
         -> {"commit_sha", "label"}      same write path as PUT
    POST /_test/users/{u}/diffs
         {any subset of the pending-diff fields; block_label required}
         -> the whole diff as written to pending_diffs/{id}.json
    POST /_test/users/{u}/raw-commit
         {files: {relative_path: text | null}, message, author?}
         -> {"commit_sha"}                 files written verbatim (null deletes),
                                           one commit "{message}\\n\\nAuthor: {author}"
                                           (just "{message}" without author)

Where each answer comes from:
  - from the recorded transcript (/work/shared/fixtures/v1-transcript.jsonl, replayed byte for
    byte by tests/integration/test_v1_conformance.py): every public route's success and error
    bodies, 422s, history order and times, approve/reject/restore, the storage layout;
  - from the contract (v1-contract.md) where the transcript has no case: any git revision as a
    version sha (repo.commit()), a 5xx followed by a closed connection, no identifier checks
    (--unchecked-names reproduces that);
  - the reference's own choices, not v1's: the hostile-name 400s below, the 404 for a version
    sha with such characters, the /_test/ routes and their raw-commit path checks. Tests of
    shadowgate must not take these for v1's behaviour.

Hostile names (not specified by v1, which builds paths from them unchecked):
a user id, label or diff id that is empty, contains "/", "\\", "..", NUL, or
starts with "." is refused with 400 {"detail": "Invalid user_id"} /
{"detail": "Invalid label"} / {"detail": "Invalid diff_id"}.  Checks run after
request validation (422); the user id is checked before the user lookup (404
"User ... not found"), labels and diff ids after it.  A version sha containing
such characters is treated as an unknown version (404, as v1 would answer for
a sha it cannot resolve).  With check_names=False (server.py --unchecked-names) no
name is checked, as in the real v1: tests of shadowgate's own guard run against that.  raw-commit paths must be relative, without "..",
"." or empty components, and outside .git/ (400 "Invalid path").
"""

from typing import Any, Dict, List, Optional

from fastapi import APIRouter, FastAPI, HTTPException, Query
from pydantic import BaseModel

from v1ref_storage import (
    DIFF_FIELDS,
    DiffError,
    StorageManager,
    UserStorage,
    check_name as _check_name,
    check_relpath,
    parse_frontmatter,
)

# --------------------------------------------------------------------------
# models (the same shapes and pydantic-1 types as v1's)


class UserInitRequest(BaseModel):
    user_id: str
    name: Optional[str] = None
    email: Optional[str] = None
    course_id: str = "college-essay"


class UserInitResponse(BaseModel):
    user_id: str
    created: bool
    blocks_initialized: List[str]
    message: str


class BlockSummary(BaseModel):
    label: str
    pending_diffs: int


class BlockDetail(BaseModel):
    label: str
    content: str
    body: str
    metadata: Dict[str, Any]
    pending_diffs: int


class BlockUpdateRequest(BaseModel):
    content: str
    message: Optional[str] = None
    schema_ref: Optional[str] = None


class BlockUpdateResponse(BaseModel):
    commit_sha: str
    label: str


class VersionInfo(BaseModel):
    sha: str
    message: str
    author: str
    timestamp: str
    is_current: bool


class RestoreRequest(BaseModel):
    commit_sha: str


class DiffSummary(BaseModel):
    id: str
    block: str
    field: Optional[str]
    operation: str
    reasoning: str
    confidence: str
    created_at: str
    agent_id: str
    old_value: Optional[str] = None
    new_value: Optional[str] = None


class ApproveResponse(BaseModel):
    diff_id: str
    commit_sha: str


class AgentWriteRequest(BaseModel):
    content: str
    message: Optional[str] = None
    author: Optional[str] = None
    schema_ref: Optional[str] = None


class RawCommitRequest(BaseModel):
    files: Dict[str, Optional[str]]
    message: str
    author: Optional[str] = None


# --------------------------------------------------------------------------


def create_app(data_dir: str, test_endpoints: bool = False,
               check_names: bool = True) -> FastAPI:
    storage = StorageManager(data_dir)
    # check_names=False is v1 as it really is: every name is joined to the data dir unchecked.
    check_name = _check_name if check_names else (lambda name: isinstance(name, str))
    app = FastAPI(title="v1 reference (YouLab block API)")
    app.state.storage = storage

    @app.on_event("shutdown")
    def _close_repos() -> None:
        storage.close()

    def user_or_404(user_id: str) -> UserStorage:
        if not check_name(user_id):
            raise HTTPException(status_code=400, detail="Invalid user_id")
        s = storage.get(user_id)
        if not s.exists:
            raise HTTPException(status_code=404, detail=f"User {user_id} not found")
        return s

    def label_ok(label: str) -> None:
        if not check_name(label):
            raise HTTPException(status_code=400, detail="Invalid label")

    def diff_id_ok(diff_id: str) -> None:
        if not check_name(diff_id):
            raise HTTPException(status_code=400, detail="Invalid diff_id")

    # ---------------------------------------------------------------- users
    users = APIRouter(prefix="/users")

    @users.post("/init", response_model=UserInitResponse)
    async def init_user(request: UserInitRequest) -> UserInitResponse:
        if not check_name(request.user_id):
            raise HTTPException(status_code=400, detail="Invalid user_id")
        s = storage.get(request.user_id)
        if s.exists:
            return UserInitResponse(user_id=request.user_id, created=False,
                                    blocks_initialized=[],
                                    message="User already initialized")
        s.init()
        # No course block templates are configured in this reference (as in
        # the recorded v1), so no "Initialize {block} block" commits are made.
        created: List[str] = []
        return UserInitResponse(user_id=request.user_id, created=True,
                                blocks_initialized=created,
                                message=f"Initialized {len(created)} memory blocks")

    @users.get("/{user_id}/exists")
    async def user_exists(user_id: str) -> Dict[str, bool]:
        if not check_name(user_id):
            raise HTTPException(status_code=400, detail="Invalid user_id")
        return {"exists": storage.get(user_id).exists}

    # ---------------------------------------------------------------- blocks
    blocks = APIRouter(prefix="/users/{user_id}/blocks")

    @blocks.get("", response_model=List[BlockSummary])
    async def list_blocks(user_id: str) -> List[BlockSummary]:
        s = user_or_404(user_id)
        labels = s.list_blocks()
        counts = s.diffs.count_pending()
        return [BlockSummary(label=l, pending_diffs=counts.get(l, 0)) for l in labels]

    @blocks.get("/diffs/counts")
    async def diff_counts(user_id: str) -> Dict[str, int]:
        s = user_or_404(user_id)
        return s.diffs.count_pending()

    @blocks.get("/{label}", response_model=BlockDetail)
    async def get_block(user_id: str, label: str) -> BlockDetail:
        s = user_or_404(user_id)
        label_ok(label)
        content = s.read_block(label)
        if content is None:
            raise HTTPException(status_code=404, detail=f"Block {label} not found")
        # v1 reads the file three times (content, body, metadata): same cost here
        body = s.read_block_body(label)
        metadata = s.read_block_metadata(label)
        counts = s.diffs.count_pending()
        return BlockDetail(label=label, content=content, body=body or "",
                           metadata=metadata or {},
                           pending_diffs=counts.get(label, 0))

    @blocks.put("/{label}", response_model=BlockUpdateResponse)
    async def update_block(user_id: str, label: str,
                           request: BlockUpdateRequest) -> BlockUpdateResponse:
        s = user_or_404(user_id)
        label_ok(label)
        sha = s.write_block(label, request.content,
                            message=request.message or f"Update {label}",
                            author="user", schema=request.schema_ref)
        return BlockUpdateResponse(commit_sha=sha, label=label)

    @blocks.get("/{label}/history", response_model=List[VersionInfo])
    async def block_history(user_id: str, label: str,
                            limit: int = Query(20, le=100)) -> List[VersionInfo]:
        s = user_or_404(user_id)
        label_ok(label)
        return [VersionInfo(**v) for v in s.history(label, limit)]

    @blocks.get("/{label}/versions/{commit_sha}")
    async def block_version(user_id: str, label: str, commit_sha: str) -> Dict[str, Any]:
        s = user_or_404(user_id)
        label_ok(label)
        content = s.block_at(label, commit_sha) if check_name(commit_sha) else None
        if content is None:
            raise HTTPException(status_code=404, detail="Version not found")
        metadata, body = parse_frontmatter(content)
        return {"content": content, "body": body, "metadata": metadata,
                "sha": commit_sha}

    @blocks.post("/{label}/restore", response_model=BlockUpdateResponse)
    async def restore_block(user_id: str, label: str,
                            request: RestoreRequest) -> BlockUpdateResponse:
        s = user_or_404(user_id)
        label_ok(label)
        sha = request.commit_sha
        try:
            if not check_name(sha):
                raise DiffError(f"Version {sha[:8]} not found for {label}")
            new_sha = s.restore(label, sha)
        except ValueError as e:
            raise HTTPException(status_code=404, detail=str(e)) from None
        return BlockUpdateResponse(commit_sha=new_sha, label=label)

    @blocks.get("/{label}/diffs", response_model=List[DiffSummary])
    async def list_block_diffs(user_id: str, label: str) -> List[DiffSummary]:
        s = user_or_404(user_id)
        label_ok(label)
        out = []
        for d in s.diffs.list_pending(label):
            # v1 builds these with camelCase oldValue/newValue keys, which the
            # pydantic model ignores: old_value/new_value are always null.
            out.append(DiffSummary(**{
                "id": d.id, "block": d.block_label, "field": d.field,
                "operation": d.operation, "reasoning": d.reasoning,
                "confidence": d.confidence, "created_at": d.created_at,
                "agent_id": d.agent_id,
                "oldValue": d.current_value, "newValue": d.proposed_value,
            }))
        return out

    @blocks.post("/{label}/diffs/{diff_id}/approve", response_model=ApproveResponse)
    async def approve_diff(user_id: str, label: str, diff_id: str) -> ApproveResponse:
        s = user_or_404(user_id)
        label_ok(label)
        diff_id_ok(diff_id)
        try:
            sha = s.approve(diff_id)
        except ValueError as e:
            raise HTTPException(status_code=400, detail=str(e)) from None
        return ApproveResponse(diff_id=diff_id, commit_sha=sha)

    @blocks.post("/{label}/diffs/{diff_id}/reject")
    async def reject_diff(user_id: str, label: str, diff_id: str,
                          reason: Optional[str] = Query(None)) -> Dict[str, str]:
        s = user_or_404(user_id)
        label_ok(label)
        diff_id_ok(diff_id)
        s.reject(diff_id)
        return {"status": "rejected", "diff_id": diff_id}

    app.include_router(users)
    app.include_router(blocks)

    # ------------------------------------------------------------ test only
    if test_endpoints:
        t = APIRouter(prefix="/_test/users/{user_id}")

        @t.post("/blocks/{label}/agent-write")
        async def agent_write(user_id: str, label: str,
                              request: AgentWriteRequest) -> Dict[str, str]:
            s = user_or_404(user_id)
            label_ok(label)
            sha = s.write_block(label, request.content,
                                message=request.message or "Background agent update",
                                author=request.author or "agent:planner",
                                schema=request.schema_ref)
            return {"commit_sha": sha, "label": label}

        @t.post("/diffs")
        async def plant_diff(user_id: str, body: Dict[str, Any]) -> Dict[str, Any]:
            s = user_or_404(user_id)
            unknown = sorted(set(body) - set(DIFF_FIELDS))
            if unknown:
                raise HTTPException(status_code=400,
                                    detail=f"Unknown diff field(s): {', '.join(unknown)}")
            if "block_label" not in body:
                raise HTTPException(status_code=400, detail="block_label is required")
            label_ok(body["block_label"])
            if "id" in body:
                diff_id_ok(body["id"])
            diff = s.plant_diff(body)
            return dict(diff.__dict__)

        @t.post("/raw-commit")
        async def raw_commit(user_id: str, request: RawCommitRequest) -> Dict[str, str]:
            s = user_or_404(user_id)
            for rel in request.files:
                if not check_relpath(rel):
                    raise HTTPException(status_code=400, detail="Invalid path")
            message = request.message
            if request.author is not None:
                message = f"{message}\n\nAuthor: {request.author}"
            return {"commit_sha": s.raw_commit(dict(request.files), message)}

        app.include_router(t)

    return app
