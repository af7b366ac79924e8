"""Start the real shadowgate binary, and a scripted HTTP upstream, from tests.

Standard library only.

API
---
shadowgate_bin() -> Path      env SHADOWGATE_BIN, else <repo>/build/proxy/shadowgate
scratch_dir(prefix) -> Path     a temporary directory removed at exit (SG_KEEP_TEST_DIRS=1 keeps it)
wait_for(what, check, timeout=30.0, interval=0.2, detail=None) -> value
    Polls check() until it returns something true and returns that; past `timeout` fails the test
    (AssertionError naming `what`, plus detail() when given). The deadline only bounds a hang.
start_shadowgate(config: dict, *, env=None, timeout=15.0) -> Shadowgate
    Writes `config` to a temp file and runs `shadowgate serve --config F --ready-file R`;
    waits for R and returns a Shadowgate. Listen ports should be 0 (the OS picks them).
Shadowgate: .port .admin_port .url .admin_url .proc .log_path .config_path
            .stop(sig=SIGTERM, timeout=15.0) -> exit code;  .log() -> str
            .metrics() -> Samples (series "name{labels}" -> value; a series is found whatever
            the order its labels are written in)
            usable as a context manager.
ScriptedUpstream(): a fake v1 for behaviours the real reference service cannot show (chunked
    answers, hangs, garbage, slow answers). Named a fake on purpose: it only speaks enough
    HTTP/1.1 for these tests. Paths:
      /echo        200, JSON {method, target, headers: [[name, value]...], body_len, body}
      /chunked     200, chunked body of several chunks (JSON array)
      /slow?ms=N   sleeps N ms, then like /echo
      /hang        reads the request and never answers
      /garbage     answers bytes that are not HTTP
      /close       200 with "Connection: close", then closes
      /quietclose  200 keep-alive by the book, then closes at once without a word
      /crash?ms=N  500 without "Connection: close", closes N ms later (uvicorn after a crash)
      /big?n=N     200 with N bytes of "x"
      anything else 404 JSON
    .port .url .requests (list of (method, target, headers dict lower-case)) .connections (int)
    .quiet_closes (int: /quietclose connections closed)
    .stop()
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Optional

from v1ref_harness import REPO_ROOT, request

__all__ = ["shadowgate_bin", "start_shadowgate", "Shadowgate", "ScriptedUpstream", "base_config",
           "scratch_dir"]


def shadowgate_bin() -> Path:
    env = os.environ.get("SHADOWGATE_BIN")
    return Path(env) if env else REPO_ROOT / "build" / "proxy" / "shadowgate"


def base_config(upstream_port: int, **overrides) -> dict:
    """A config with OS-chosen listen ports in front of 127.0.0.1:upstream_port."""
    cfg = {
        "proxy": {"listen": {"host": "127.0.0.1", "port": 0}, "threads": 2},
        "v1": {"address": {"host": "127.0.0.1", "port": upstream_port}},
        "admin": {"listen": {"host": "127.0.0.1", "port": 0}},
        "log": {"level": "info"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            _merge(cfg[key], value)
        else:
            cfg[key] = value
    return cfg


def _merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def series_key(series: str) -> str:
    """`series` ("name{b=\"2\",a=\"1\"}") with its labels sorted by name, as /metrics writes
    them."""
    name, brace, rest = series.partition("{")
    if not brace:
        return name
    labels = sorted(_LABEL.findall(rest))
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


class Samples(dict):
    """series -> value of one scrape; looking a series up does not depend on the order of its
    labels (the exposition writes them sorted by name)."""

    def __init__(self, items=()):
        super().__init__((series_key(k), v) for k, v in dict(items).items())

    def __getitem__(self, key):
        return super().__getitem__(series_key(key))

    def __contains__(self, key):
        return super().__contains__(series_key(key))

    def get(self, key, default=None):
        return super().get(series_key(key), default)


class Shadowgate:
    def __init__(self, proc, workdir: Path, ready: dict, log_path: Path, config_path: Path):
        self.proc = proc
        self.workdir = workdir
        self.port = ready["proxy_port"]
        self.admin_port = ready["admin_port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = log_path
        self.config_path = config_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> Samples:
        status, _, body = request("GET", self.admin_url + "/metrics")
        assert status == 200, status
        out = {}
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return Samples(out)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


_scratch_dirs: list = []


def wait_for(what: str, check, timeout: float = 30.0, interval: float = 0.2, detail=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} ({timeout} s)" +
                         (f": {detail()}" if detail else ""))


def scratch_dir(prefix: str) -> Path:
    """A temporary directory removed when the test process exits (kept with SG_KEEP_TEST_DIRS=1,
    for a look at configs and logs after a failure)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    _scratch_dirs.append(d)
    return d


@atexit.register
def _remove_scratch_dirs() -> None:
    if os.environ.get("SG_KEEP_TEST_DIRS") == "1":
        return
    for d in _scratch_dirs:
        shutil.rmtree(d, ignore_errors=True)


def start_shadowgate(config: dict, *, env: Optional[dict] = None, timeout: float = 15.0,
                     binary: Optional[Path] = None) -> Shadowgate:
    workdir = scratch_dir("sg-test-")
    config_path = workdir / "shadowgate.json"
    config_path.write_text(json.dumps(config, indent=2))
    ready_path = workdir / "ready.json"
    log_path = workdir / "shadowgate.log"
    full_env = dict(os.environ)
    full_env.update(env or {})
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(binary or shadowgate_bin()), "serve", "--config", str(config_path),
         "--ready-file", str(ready_path)],
        stdout=log, stderr=subprocess.STDOUT, env=full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready_path.exists():
            return Shadowgate(proc, workdir, json.loads(ready_path.read_text()), log_path,
                              config_path)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"shadowgate did not start: {log_path.read_text(errors='replace')}")


class ScriptedUpstream:
    """A fake upstream (see module docstring); one thread per connection."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = []
        self.connections = 0
        self.quiet_closes = 0  # answers of /quietclose sent and their connection closed
        self._lock = threading.Lock()
        self._stopped = False
        self._conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self._stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _accept(self):
        while not self._stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(f):
        line = f.readline()
        if not line:
            return None
        method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers = []
        while True:
            h = f.readline().decode("latin-1").rstrip("\r\n")
            if not h:
                break
            name, _, value = h.partition(":")
            headers.append([name, value.strip()])
        lower = {n.lower(): v for n, v in headers}
        body = b""
        if "content-length" in lower:
            body = f.read(int(lower["content-length"]))
        elif lower.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(f.readline().split(b";")[0], 16)
                if size == 0:
                    f.readline()
                    break
                body += f.read(size)
                f.readline()
        return method, target, headers, body

    def _serve(self, conn):
        f = conn.makefile("rb")
        try:
            while True:
                req = self._read_request(f)
                if req is None:
                    return
                method, target, headers, body = req
                with self._lock:
                    self.requests.append((method, target, {n.lower(): v for n, v in headers}))
                path, _, query = target.partition("?")
                params = dict(urllib.parse.parse_qsl(query))
                if path == "/hang":
                    time.sleep(3600)
                    return
                if path == "/garbage":
                    conn.sendall(b"this is not http\r\n\r\n")
                    return
                if path == "/slow":
                    time.sleep(int(params.get("ms", "1000")) / 1000)
                    path = "/echo"
                if path == "/echo":
                    payload = json.dumps({"method": method, "target": target, "headers": headers,
                                          "body_len": len(body),
                                          "body": body.decode("utf-8", "replace")}).encode()
                    self._send(conn, 200, payload, method)
                elif path == "/chunked":
                    parts = [b"[1,", b"2,", b"3]"]
                    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n")
                    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
                    conn.sendall(head + (b"" if method == "HEAD" else chunks))
                elif path == "/close":
                    self._send(conn, 200, b'{"closing":true}', method, extra=b"Connection: close\r\n")
                    conn.shutdown(socket.SHUT_WR)
                    return
                elif path == "/quietclose":
                    # An answer that keeps the connection alive by the book, then the connection
                    # closed at once without a word (a server restarting, an idle timeout that
                    # came early): the next request sent on it meets a dead socket.
                    self._send(conn, 200, b'{"quiet":true}', method)
                    conn.shutdown(socket.SHUT_RDWR)
                    self.quiet_closes += 1
                    return
                elif path == "/crash":
                    # uvicorn after an unhandled exception: a 500 without `Connection: close`,
                    # then the connection closed a moment later, whatever was sent meanwhile
                    # unread (the peer's kernel answers it with a reset).
                    self._send(conn, 500, b"Internal Server Error", method,
                               content_type=b"text/plain")
                    time.sleep(float(params.get("ms", "50")) / 1000)
                    return
                elif path == "/big":
                    self._send(conn, 200, b"x" * int(params.get("n", "1000")), method,
                               content_type=b"text/plain")
                else:
                    self._send(conn, 404, b'{"detail":"Not Found"}', method)
        except (OSError, ValueError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    @staticmethod
    def _send(conn, status, payload, method, extra=b"", content_type=b"application/json"):
        reason = {200: b"OK", 404: b"Not Found"}.get(status, b"X")
        head = (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Upstream: scripted\r\n"
                % (status, reason, content_type, len(payload))) + extra + b"\r\n"
        conn.sendall(head + (b"" if method == "HEAD" else payload))


# Bodies of every kind a client writes, for traffic that must still give 0 discrepancies: Windows
# and old-Mac line ends, leading blank lines, frontmatter written by the user (strings that look
# like other YAML types, lists, nesting, non-ASCII), broken YAML, empty frontmatter, non-ASCII
# text and 20 kB bodies. No YAML dates: JSON cannot carry them (they are reported as
# unrepresentable, see the README's "The v2 tables").
BODY_KINDS = ["plain", "crlf", "lone_cr", "leading_blank", "user_frontmatter", "broken_yaml",
              "empty_frontmatter", "non_ascii", "large"]


def varied_body(rng, n: int, label: str, kind: str | None = None) -> str:
    kind = kind or rng.choice(BODY_KINDS)
    if kind == "crlf":
        return f"## {label}\r\n\r\nrevision {n}\r\nsecond line\r\n"
    if kind == "lone_cr":
        return f"## {label}\rrevision {n}\rmixed\r\nends\n"
    if kind == "leading_blank":
        return "\n" * rng.randint(1, 4) + f"## {label}\n\nrevision {n} after blank lines\n"
    if kind == "user_frontmatter":
        return ("---\n"
                f"title: Notes {n}\n"
                f"tags: [a, 'yes', '1.0', \"null\", caf\u00e9]\n"
                "nested:\n  z: 1\n  a: [x, {k: v}]\n"
                "quote: 'a: b # not a comment'\n"
                "---\n"
                f"body {n} under the user's frontmatter\n")
    if kind == "broken_yaml":
        return f"---\ntitle: [unclosed\n  - : :\n---\n\nrevision {n} below broken YAML\n"
    if kind == "empty_frontmatter":
        return f"---\n\n---\nrevision {n} under empty frontmatter\n"
    if kind == "non_ascii":
        return f"## {label} \u00e9t\u00e9 \u2603 \U0001F600 \u4e2d\u6587\n\nrevision {n} \u00fc\n"
    if kind == "large":
        line = f"revision {n}: " + "lorem ipsum dolor sit amet " * 3 + "\n"
        return (line * (20_000 // len(line) + 1))[:20_000]
    return f"## {label}\n\nrevision {n}\n"
