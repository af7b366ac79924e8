"""fake_v2: a stand-in for a v2 HTTP service, for the shadow tests of the v2_http target.

No real v2 service exists yet, so this FAKE answers v1's reads in another JSON shape: it asks
the v1 reference service (same storage) and reshapes two endpoints, leaving the rest as v1 has
them:

  GET {prefix}/users/{u}/blocks          -> {"items": [{"name": label, "pending": n}], "count": k}
  GET {prefix}/users/{u}/blocks/{label}  -> {"block": {"name", "text", "body", "meta"},
                                             "pending": n}

Planted faults for the tests: POST /_fake/fault with {"content_suffix": "..."} appends text to
every block's "text"; {} clears it. GET /_fake/stats gives the number of reads answered.

Usage: fake_v2.py --port P --v1 http://127.0.0.1:Q [--prefix /api/v2]
(--port 0: the OS picks; the first line on stdout is "port N")
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"fault": {}, "reads": 0}
LOCK = threading.Lock()
LIST = re.compile(r"^/users/[^/]+/blocks$")
BLOCK = re.compile(r"^/users/[^/]+/blocks/(?!diffs$)[^/]+$")


def reshape(path: str, status: int, body: bytes) -> bytes:
    if status != 200:
        return body
    plain = urllib.parse.urlsplit(path).path
    if LIST.match(plain):
        blocks = json.loads(body)
        return json.dumps({"items": [{"name": b["label"], "pending": b["pending_diffs"]}
                                     for b in blocks], "count": len(blocks)}).encode()
    if BLOCK.match(plain):
        b = json.loads(body)
        with LOCK:
            suffix = STATE["fault"].get("content_suffix", "")
        return json.dumps({"block": {"name": b["label"], "text": b["content"] + suffix,
                                     "body": b["body"], "meta": b["metadata"]},
                           "pending": b["pending_diffs"]}).encode()
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    v1 = None
    prefix = ""

    def log_message(self, *args):
        pass

    def answer(self, status: int, body: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_fake/stats":
            with LOCK:
                return self.answer(200, json.dumps({"reads": STATE["reads"]}).encode())
        if not self.path.startswith(self.prefix + "/"):
            return self.answer(404, b'{"detail":"Not Found"}')
        path = self.path[len(self.prefix):]
        conn = http.client.HTTPConnection(self.v1.hostname, self.v1.port, timeout=10)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            status, body = r.status, r.read()
        finally:
            conn.close()
        with LOCK:
            STATE["reads"] += 1
        self.answer(status, reshape(path, status, body))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b"{}"
        if self.path != "/_fake/fault":
            return self.answer(404, b'{"detail":"Not Found"}')
        with LOCK:
            STATE["fault"] = json.loads(payload or b"{}")
        self.answer(200, b"{}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--v1", required=True)
    ap.add_argument("--prefix", default="/api/v2")
    args = ap.parse_args()
    Handler.v1 = urllib.parse.urlsplit(args.v1)
    Handler.prefix = args.prefix
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
