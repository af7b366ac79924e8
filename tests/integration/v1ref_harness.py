"""Start and talk to the v1 reference service (tests/v1ref/server.py) from tests.

Standard library only; importing this module needs neither pytest nor the v1ref
dependencies (those are Debian's, used by the child process: /usr/bin/python3,
override with env SHADOWGATE_V1REF_PYTHON).

API
---
REPO_ROOT: Path                      the checkout root (parents[2] of this file)
V1REF_SERVER: Path                   tests/v1ref/server.py
shared_dir() -> Path                 env SHADOWGATE_SHARED, else <repo>/../shared
free_port(host="127.0.0.1") -> int   a port that was free a moment ago (someone else may take
                                     it: prefer port 0 and a process that reports its port)
refusing_port() -> (socket, int)     a port held by a bound socket that never listens: every
                                     connection to it is refused, and nobody else can take it

start_v1ref(data_dir, tz="UTC", extra_args=(), *, test_endpoints=True,
            host="127.0.0.1", port=0, timeout=30.0, env=None) -> V1Ref
    Runs `/usr/bin/python3 tests/v1ref/server.py --data-dir DATA_DIR
    [--test-endpoints] --port PORT ...extra_args` with TZ=tz, waits until it
    prints its port and answers HTTP, and returns a V1Ref.  Raises
    RuntimeError (with the server's stderr) if it does not come up.
    test_endpoints=True adds --test-endpoints (the /_test/... agent emulation
    routes, see tests/v1ref/app.py); pass False to get a server without them.

V1Ref:  .host .port .url ("http://127.0.0.1:PORT") .proc (subprocess.Popen)
        .data_dir (Path) .log_path (Path: the server's stderr, a temp file)
        .log() -> str                 the server's stderr so far
        .stop(timeout=10.0) -> int    SIGTERM, wait, (SIGKILL if stuck); exit code;
                                      the log file is removed after a clean (0) exit
                                      unless .keep_log is set
        .request(method, path, body_json=None, headers=None) -> (status, headers, body)
        .json(method, path, body_json=None, headers=None) -> (status, parsed or None)
        usable as a context manager (stops on exit).

request(method, url, body_json=None, headers=None, *, body=None, timeout=30.0)
        -> (status: int, headers: dict[str, str] (lower-case names), body: bytes)
    One HTTP/1.1 request on a fresh connection.  body_json is sent as JSON
    (Content-Type: application/json) unless `body` (bytes/str) is given.
    `url` may carry a query string; the path is sent as is (no re-quoting).
request_json(method, url, body_json=None, headers=None, **kw)
        -> (status, parsed JSON or None when the body is not JSON)
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[2]
V1REF_SERVER = REPO_ROOT / "tests" / "v1ref" / "server.py"
DEFAULT_PYTHON = "/usr/bin/python3"

__all__ = [
    "REPO_ROOT", "V1REF_SERVER", "V1Ref", "free_port", "refusing_port", "request",
    "request_json",
    "shared_dir", "start_v1ref",
]


def shared_dir() -> Path:
    env = os.environ.get("SHADOWGATE_SHARED")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared"


def refusing_port(host: str = "127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    return s, s.getsockname()[1]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def request(method: str, url: str, body_json: Any = None,
            headers: Optional[Mapping[str, str]] = None, *,
            body: Any = None, timeout: float = 30.0) -> Tuple[int, dict, bytes]:
    u = urllib.parse.urlsplit(url)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body.encode("utf-8") if isinstance(body, str) else body
    elif body_json is not None:
        data = json.dumps(body_json).encode("utf-8")
        if not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        out_headers: dict = {}
        for k, v in resp.getheaders():
            k = k.lower()
            out_headers[k] = f"{out_headers[k]}, {v}" if k in out_headers else v
        return resp.status, out_headers, payload
    finally:
        conn.close()


def request_json(method: str, url: str, body_json: Any = None,
                 headers: Optional[Mapping[str, str]] = None, **kw) -> Tuple[int, Any]:
    status, _h, payload = request(method, url, body_json, headers, **kw)
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, None


class V1Ref:
    def __init__(self, proc: subprocess.Popen, host: str, port: int,
                 data_dir: Path, log_path: Path) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.data_dir = data_dir
        self.log_path = log_path
        self.url = f"http://{host}:{port}"
        self.keep_log = False  # the stderr log is deleted after a clean stop

    def request(self, method: str, path: str, body_json: Any = None,
                headers: Optional[Mapping[str, str]] = None, **kw):
        return request(method, self.url + path, body_json, headers, **kw)

    def json(self, method: str, path: str, body_json: Any = None,
             headers: Optional[Mapping[str, str]] = None, **kw):
        return request_json(method, self.url + path, body_json, headers, **kw)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.proc.returncode == 0 and not self.keep_log:
            try:
                self.log_path.unlink()
            except OSError:
                pass
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "V1Ref":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_v1ref(data_dir, tz: str = "UTC", extra_args: Iterable[str] = (), *,
                test_endpoints: bool = True, host: str = "127.0.0.1", port: int = 0,
                timeout: float = 30.0, env: Optional[Mapping[str, str]] = None) -> V1Ref:
    data_dir = Path(data_dir)
    python = os.environ.get("SHADOWGATE_V1REF_PYTHON", DEFAULT_PYTHON)
    cmd = [python, str(V1REF_SERVER), "--data-dir", str(data_dir),
           "--host", host, "--port", str(port)]
    if test_endpoints:
        cmd.append("--test-endpoints")
    cmd.extend(extra_args)
    child_env = dict(os.environ)
    # keep the child away from pyenv/virtualenv python paths
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        child_env.pop(k, None)
    child_env["TZ"] = tz
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env.setdefault("GIT_TERMINAL_PROMPT", "0")
    if env:
        child_env.update(env)
    fd, log_name = tempfile.mkstemp(prefix="v1ref-", suffix=".log")
    log_file = os.fdopen(fd, "wb")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file,
                                stdin=subprocess.DEVNULL, env=child_env,
                                cwd=str(REPO_ROOT))
    finally:
        log_file.close()
    log_path = Path(log_name)

    def fail(why: str):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise RuntimeError(f"v1ref did not start ({why}); stderr:\n"
                           + log_path.read_text(errors="replace"))

    deadline = time.monotonic() + timeout
    buf = b""
    got_port = None
    while got_port is None:
        left = deadline - time.monotonic()
        if left <= 0:
            fail("timeout waiting for 'v1ref listening'")
        r, _w, _x = select.select([proc.stdout], [], [], min(left, 0.5))
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                fail(f"exited with {proc.wait()}")
            buf += chunk
            for line in buf.split(b"\n"):
                if line.startswith(b"v1ref listening port="):
                    got_port = int(line.split(b"=", 1)[1])
        elif proc.poll() is not None:
            fail(f"exited with {proc.returncode}")
    ref = V1Ref(proc, host, got_port, data_dir, log_path)
    while True:
        try:
            status, _ = ref.json("GET", "/users/v1ref-probe/exists", timeout=5)
            if status == 200:
                return ref
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            fail("not answering HTTP")
        time.sleep(0.05)
