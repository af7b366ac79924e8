"""The real shadowgate binary over real sockets: transparency against the v1 reference service,
limits, timeouts, upstream failures, admin endpoints and graceful shutdown."""

from __future__ import annotations

import http.client
import json
import re
import select
import signal
import socket
import threading
import time

import pytest

from sg_harness import ScriptedUpstream, base_config, scratch_dir, start_shadowgate, wait_for
from v1ref_harness import refusing_port, request, start_v1ref

TOKEN = "test-admin-token-123"

# Headers whose values legitimately differ between two answers to the same request.
VOLATILE_HEADERS = {"date"}


def wait_soon(what, check):
    """wait_for with a short poll: the events waited for here come within milliseconds."""
    return wait_for(what, check, timeout=10.0, interval=0.01)


@pytest.fixture(scope="module")
def v1():
    data = scratch_dir("sg-v1-")
    ref = start_v1ref(data)
    yield ref
    ref.stop()


@pytest.fixture(scope="module")
def v1_twin():
    """A second reference service that receives the same writes directly (for write replies)."""
    data = scratch_dir("sg-v1twin-")
    ref = start_v1ref(data)
    yield ref
    ref.stop()


@pytest.fixture(scope="module")
def sg(v1):
    cfg = base_config(v1.port, proxy={"limits": {"body_limit_bytes": 2 * 1024 * 1024,
                                                 "header_limit_bytes": 8192}})
    gate = start_shadowgate(cfg, env={"SHADOWGATE_ADMIN_TOKEN": TOKEN})
    yield gate
    gate.stop()


@pytest.fixture(scope="module")
def scripted():
    up = ScriptedUpstream()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def sg_scripted(scripted):
    cfg = base_config(scripted.port,
                      proxy={"limits": {"request_timeout_ms": 1000, "idle_timeout_ms": 1500,
                                        "body_limit_bytes": 1024 * 1024}},
                      v1={"response_timeout_ms": 800, "connect_timeout_ms": 500})
    gate = start_shadowgate(cfg, env={"SHADOWGATE_ADMIN_TOKEN": TOKEN})
    yield gate
    gate.stop()


def comparable_headers(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k not in VOLATILE_HEADERS}


def assert_same_answer(v1, sg, method, path, body_json=None, headers=None):
    """The same request straight to v1 and through shadowgate gives the same answer."""
    direct = request(method, v1.url + path, body_json, headers)
    proxied = request(method, sg.url + path, body_json, headers)
    assert proxied[0] == direct[0], (method, path)
    assert proxied[2] == direct[2], (method, path)
    assert comparable_headers(proxied[1]) == comparable_headers(direct[1]), (method, path)
    return direct


SHA = re.compile(r"\b[0-9a-f]{40}\b")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?")


def normalized(body: bytes) -> str:
    return TIME.sub("<time>", SHA.sub("<sha>", body.decode()))


def write_both(v1_twin, sg, method, path, body_json=None, twin_body_json=None):
    """A write goes through shadowgate to one v1 and straight to its twin: same answer, shas and
    times aside (they depend on the clock). Returns (proxied, direct)."""
    direct = request(method, v1_twin.url + path,
                     body_json if twin_body_json is None else twin_body_json)
    proxied = request(method, sg.url + path, body_json)
    assert proxied[0] == direct[0], (method, path, proxied, direct)
    assert normalized(proxied[2]) == normalized(direct[2]), (method, path)
    return proxied, direct


def every_read(v1, sg, user, label, sha):
    """Every read endpoint of the contract, compared byte for byte."""
    for path in [f"/users/{user}/exists", f"/users/{user}/blocks",
                 f"/users/{user}/blocks/diffs/counts", f"/users/{user}/blocks/{label}",
                 f"/users/{user}/blocks/{label}/history", f"/users/{user}/blocks/{label}/history?limit=1",
                 f"/users/{user}/blocks/{label}/versions/{sha}",
                 f"/users/{user}/blocks/{label}/versions/{sha[:8]}",
                 f"/users/{user}/blocks/{label}/diffs"]:
        status, _, _ = assert_same_answer(v1, sg, "GET", path)
        assert status == 200, path


def test_every_endpoint_is_transparent(v1, v1_twin, sg):
    user, label = "alice", "student"
    write_both(v1_twin, sg, "POST", "/users/init", {"user_id": user, "name": "Alice"})
    write_both(v1_twin, sg, "POST", "/users/init", {"user_id": user})  # idempotent: created false
    first = write_both(v1_twin, sg, "PUT", f"/users/{user}/blocks/{label}",
                       {"content": "---\ntitle: Me\n---\n\nHello, café ☕", "message": "first"})
    sha1 = json.loads(first[0][2])["commit_sha"]
    twin_sha1 = json.loads(first[1][2])["commit_sha"]
    write_both(v1_twin, sg, "PUT", f"/users/{user}/blocks/{label}",
               {"content": "Line one\r\nline two", "schema_ref": "college-essay/student"})
    every_read(v1, sg, user, label, sha1)

    write_both(v1_twin, sg, "POST", f"/users/{user}/blocks/{label}/restore", {"commit_sha": sha1},
               {"commit_sha": twin_sha1})
    every_read(v1, sg, user, label, sha1)

    # Agents propose diffs straight into storage (not through the API), on both twins alike.
    for ref in (v1, v1_twin):
        for i, op in enumerate(["append", "full_replace", "append"]):
            status, _, _ = ref.request("POST", f"/_test/users/{user}/diffs",
                                       {"id": f"diff-{i}", "block_label": label, "operation": op,
                                        "proposed_value": f"proposal {i}", "agent_id": "tutor",
                                        "created_at": f"2026-01-0{i + 1}T10:00:00"})
            assert status == 200
    every_read(v1, sg, user, label, sha1)
    write_both(v1_twin, sg, "POST", f"/users/{user}/blocks/{label}/diffs/diff-1/approve")
    write_both(v1_twin, sg, "POST", f"/users/{user}/blocks/{label}/diffs/diff-2/reject?reason=no")
    every_read(v1, sg, user, label, sha1)

    # Errors pass through untouched: 404, 400, 422.
    for method, path, body in [
        ("GET", "/users/nobody/blocks", None),
        ("GET", f"/users/{user}/blocks/missing", None),
        ("GET", f"/users/{user}/blocks/{label}/versions/{'0' * 40}", None),
        ("GET", f"/users/{user}/blocks/{label}/history?limit=101", None),
        ("GET", f"/users/{user}/blocks/{label}/history?limit=abc", None),
        ("POST", f"/users/{user}/blocks/{label}/diffs/nope/approve", None),
        ("PUT", f"/users/{user}/blocks/{label}", {"message": "no content"}),
        ("POST", f"/users/{user}/blocks/{label}/restore", {"commit_sha": "deadbeef"}),
        ("GET", "/no/such/route", None),
        ("DELETE", f"/users/{user}/blocks/{label}", None),
    ]:
        direct = request(method, v1.url + path, body)
        proxied = request(method, sg.url + path, body)
        assert (proxied[0], proxied[2]) == (direct[0], direct[2]), (method, path)
        assert direct[0] >= 400, (method, path, direct[0])
    m = sg.metrics()
    assert m['shadowgate_requests_total{endpoint="get_version",code="2xx"}'] >= 4
    assert m['shadowgate_requests_total{endpoint="approve_diff",code="2xx"}'] == 1
    assert m['shadowgate_requests_total{endpoint="get_block",code="4xx"}'] >= 1


def test_metrics_label_by_endpoint_never_by_path(sg):
    request("GET", sg.url + "/users/secret-user-42/blocks")
    status, headers, body = request("GET", sg.admin_url + "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert "secret-user-42" not in text
    labels = set(re.findall(r'endpoint="([^"]+)"', text))
    assert labels == {"user_init", "user_exists", "list_blocks", "diff_counts", "get_block",
                      "put_block", "block_history", "get_version", "restore_version",
                      "list_diffs", "approve_diff", "reject_diff", "passthrough"}
    for series in ["shadowgate_request_duration_seconds_bucket", "shadowgate_upstream_errors_total",
                   "shadowgate_open_connections", "shadowgate_upstream_duration_seconds_count"]:
        assert series in text


def test_large_bodies_both_ways(v1, sg):
    request("POST", v1.url + "/users/init", {"user_id": "big"})
    content = "x" * (1024 * 1024 + 17) + "\nend"
    status, _, body = request("PUT", sg.url + "/users/big/blocks/huge", {"content": content})
    assert status == 200, body
    direct = assert_same_answer(v1, sg, "GET", "/users/big/blocks/huge")
    assert json.loads(direct[2])["body"].endswith("\nend")
    assert len(direct[2]) > 1024 * 1024


def raw_exchange(port, data: bytes, *, read_timeout=5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(read_timeout)
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out


def test_chunked_request_body_reaches_v1(v1, sg):
    request("POST", v1.url + "/users/init", {"user_id": "chunky"})
    payload = json.dumps({"content": "sent in chunks " * 100}).encode()
    parts = [payload[:50], payload[50:300], payload[300:]]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    req = (b"PUT /users/chunky/blocks/c HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body)
    out = raw_exchange(sg.port, req)
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    status, _, got = request("GET", v1.url + "/users/chunky/blocks/c")
    assert status == 200 and json.loads(got)["body"] == "sent in chunks " * 100


def test_chunked_and_head_answers(scripted, sg_scripted):
    status, headers, body = request("GET", sg_scripted.url + "/chunked")
    assert status == 200 and json.loads(body) == [1, 2, 3]
    conn = http.client.HTTPConnection("127.0.0.1", sg_scripted.port, timeout=5)
    conn.request("HEAD", "/big?n=5000")
    res = conn.getresponse()
    assert res.status == 200 and res.getheader("Content-Length") == "5000"
    assert res.read() == b""
    conn.request("GET", "/big?n=5000")  # same connection still usable after HEAD
    res = conn.getresponse()
    assert res.status == 200 and res.read() == b"x" * 5000
    conn.close()


def test_keep_alive_reuses_connections(v1, sg):
    assert request("POST", v1.url + "/users/init", {"user_id": "alice"})[0] == 200
    before = sg.metrics()
    conn = http.client.HTTPConnection("127.0.0.1", sg.port, timeout=10)
    for _ in range(50):
        conn.request("GET", "/users/alice/exists")
        res = conn.getresponse()
        assert res.status == 200 and json.loads(res.read()) == {"exists": True}
    conn.close()
    after = sg.metrics()
    key_c = 'shadowgate_upstream_connects_total{upstream="v1"}'
    key_r = 'shadowgate_upstream_reuses_total{upstream="v1"}'
    assert after[key_c] - before[key_c] <= 2  # one per worker thread at most
    assert after[key_r] - before[key_r] >= 48
    assert after["shadowgate_accepted_connections_total"] - before["shadowgate_accepted_connections_total"] == 1


def test_many_concurrent_clients(v1, sg):
    assert request("POST", v1.url + "/users/init", {"user_id": "alice"})[0] == 200
    assert request("PUT", v1.url + "/users/alice/blocks/student", {"content": "hi\n"})[0] == 200
    errors = []

    def client(i):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", sg.port, timeout=20)
            for _ in range(10):
                conn.request("GET", "/users/alice/blocks/student")
                res = conn.getresponse()
                body = res.read()
                if res.status != 200 or json.loads(body)["label"] != "student":
                    errors.append((i, res.status))
            conn.close()
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_forwarding_headers(scripted, sg_scripted):
    status, _, body = request("GET", sg_scripted.url + "/echo?q=1&r=%20x",
                              headers={"X-User-Id": "u1", "Authorization": "Bearer abc",
                                       "Connection": "X-Hop", "X-Hop": "secret",
                                       "Keep-Alive": "timeout=5", "TE": "trailers",
                                       "Upgrade": "websocket"})
    assert status == 200
    seen = json.loads(body)
    names = {n.lower(): v for n, v in seen["headers"]}
    assert seen["target"] == "/echo?q=1&r=%20x"
    assert names["x-user-id"] == "u1" and names["authorization"] == "Bearer abc"
    assert names["x-forwarded-for"] == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        names["x-request-id"])
    for hop in ["x-hop", "keep-alive", "te", "upgrade"]:
        assert hop not in names, hop
    assert names.get("connection", "keep-alive").lower() != "x-hop"

    _, _, body = request("GET", sg_scripted.url + "/echo",
                         headers={"X-Forwarded-For": "10.0.0.1", "X-Request-Id": "given-id"})
    names = {n.lower(): v for n, v in json.loads(body)["headers"]}
    assert names["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert names["x-request-id"] == "given-id"


def test_hostile_paths_never_reach_v1(scripted, sg_scripted):
    before = len(scripted.requests)
    for path in ["/users/..%2F..%2Fetc/blocks", "/users/%2e%2e/exists", "/users/.hidden/blocks",
                 "/users/u1/blocks/a%5Cb", "/users/u1/blocks/%00x"]:
        status, headers, body = request("GET", sg_scripted.url + path)
        assert status == 400, path
        j = json.loads(body)
        assert j["error"] == "hostile_path" and j["request_id"] == headers["x-request-id"]
    assert len(scripted.requests) == before


def test_hostile_paths_on_writes_never_reach_v1(scripted, sg_scripted):
    before = len(scripted.requests)
    for method, path in [("PUT", "/users/..%2F..%2Fetc/blocks/student"),
                         ("PUT", "/users/u1/blocks/..%2Fescape"),
                         ("POST", "/users/u1/blocks/a%5Cb/restore"),
                         ("POST", "/users/.hidden/blocks/student/diffs/d1/approve"),
                         ("POST", "/users/u1/blocks/student/diffs/..%2Fx/reject"),
                         ("POST", "/users/%00/blocks/student/restore")]:
        status, _, body = request(method, sg_scripted.url + path, {"content": "x"})
        assert status == 400 and json.loads(body)["error"] == "hostile_path", (method, path)
    assert len(scripted.requests) == before


def test_reject_hostile_paths_false_passes_them_to_v1(scripted):
    cfg = base_config(scripted.port, proxy={"reject_hostile_paths": False})
    with start_shadowgate(cfg) as gate:
        for path in ["/users/..%2F..%2Fetc/blocks", "/users/.hidden/exists"]:
            status, _, _ = request("GET", gate.url + path)
            assert status == 404, path  # the scripted upstream's answer to a path it lacks
            with scripted._lock:
                assert scripted.requests[-1][1] == path


def test_a_get_on_a_pooled_connection_found_dead_is_sent_once_more(scripted, sg_scripted):
    retries = 'shadowgate_upstream_retries_total{upstream="v1"}'
    stale = 'shadowgate_upstream_dropped_total{upstream="v1",reason="stale"}'
    before = sg_scripted.metrics()
    # One client connection: one worker thread, whose pool now holds the connection the upstream
    # closed without a word (the newest, taken first).
    conn = http.client.HTTPConnection("127.0.0.1", sg_scripted.port, timeout=10)
    closes = scripted.quiet_closes
    conn.request("GET", "/quietclose")
    res = conn.getresponse()
    assert res.status == 200 and res.read() == b'{"quiet":true}'
    wait_soon("the upstream closed it", lambda: scripted.quiet_closes == closes + 1)
    conn.request("GET", "/echo?after=quietclose")
    res = conn.getresponse()
    assert res.status == 200 and json.loads(res.read())["target"] == "/echo?after=quietclose"
    assert sg_scripted.metrics()[retries] == before[retries] + 1  # sent again, once
    # A write is not resent: the pooled connection is probed first and dropped when dead.
    conn.request("GET", "/quietclose")
    conn.getresponse().read()
    wait_soon("the upstream closed it", lambda: scripted.quiet_closes == closes + 2)
    conn.request("PUT", "/echo?write", body=b"{}", headers={"Content-Type": "application/json"})
    res = conn.getresponse()
    assert res.status == 200 and json.loads(res.read())["target"] == "/echo?write"
    after = sg_scripted.metrics()
    assert after[retries] == before[retries] + 1
    assert after[stale] == before.get(stale, 0) + 1
    conn.close()


def test_upstream_down_gives_502():
    held, port = refusing_port()  # bound, never listening: refused, and nobody can take it
    with held, start_shadowgate(base_config(port)) as gate:
        status, headers, body = request("GET", gate.url + "/users/u1/exists")
        assert status == 502
        j = json.loads(body)
        assert j["error"] == "upstream_error" and j["request_id"] == headers["x-request-id"]
        assert request("GET", gate.admin_url + "/readyz")[0] == 503
        assert request("GET", gate.admin_url + "/healthz")[0] == 200
        m = gate.metrics()
        assert m['shadowgate_upstream_errors_total{upstream="v1",kind="connect_refused"}'] == 1


def test_slow_and_broken_upstream(scripted, sg_scripted):
    key = 'shadowgate_upstream_errors_total{upstream="v1",kind="response_timeout"}'
    before = sg_scripted.metrics()[key]
    status, headers, body = request("GET", sg_scripted.url + "/hang")
    assert status == 504 and json.loads(body)["error"] == "upstream_timeout"
    assert sg_scripted.metrics()[key] == before + 1  # the response timeout, counted as such
    status, _, _ = request("GET", sg_scripted.url + "/slow?ms=200")
    assert status == 200  # under the 800 ms response timeout
    status, _, body = request("GET", sg_scripted.url + "/garbage")
    assert status == 502 and json.loads(body)["error"] == "upstream_error"
    m = sg_scripted.metrics()
    assert m['shadowgate_upstream_errors_total{upstream="v1",kind="response_timeout"}'] >= 1
    assert m['shadowgate_upstream_errors_total{upstream="v1",kind="bad_response"}'] >= 1


def test_upstream_closing_connection_is_not_reused(scripted, sg_scripted):
    for _ in range(3):
        status, _, body = request("GET", sg_scripted.url + "/close")
        assert status == 200 and json.loads(body) == {"closing": True}
        status, _, _ = request("GET", sg_scripted.url + "/echo")
        assert status == 200


def test_write_after_a_5xx_that_closes_the_connection_never_fails(scripted, sg_scripted):
    # Regression: a 500 whose connection the upstream closes a moment later without saying so,
    # then at once a PUT on the same client connection: the PUT must reach the upstream and get
    # its answer, every time (1,000 pairs on one keep-alive client connection).
    before = sg_scripted.metrics()
    with scripted._lock:
        puts_before = sum(1 for r in scripted.requests if r[0] == "PUT")
    conn = http.client.HTTPConnection("127.0.0.1", sg_scripted.port, timeout=10)
    failed = []
    for i in range(1000):
        conn.request("POST", "/crash?ms=50", body=b"{}", headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 500
        conn.request("PUT", f"/echo?n={i}", body=b'{"content": "x"}',
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            failed.append((i, r.status, body[:200]))
    conn.close()
    assert failed == []
    with scripted._lock:
        puts = sum(1 for r in scripted.requests if r[0] == "PUT") - puts_before
    assert puts == 1000
    after = sg_scripted.metrics()
    key = 'shadowgate_upstream_dropped_total{upstream="v1",reason="5xx"}'
    assert after[key] - before.get(key, 0) == 1000


def test_oversized_header_and_body(sg):
    status, _, body = request("GET", sg.url + "/users/alice/exists", headers={"X-Big": "a" * 10000})
    assert status == 431 and json.loads(body)["error"] == "header_too_large"
    big = {"content": "y" * (3 * 1024 * 1024)}
    status, _, body = request("PUT", sg.url + "/users/alice/blocks/student", big)
    assert status == 413 and json.loads(body)["error"] == "body_too_large"
    # chunked with no length announced is cut at the limit too
    chunk = b"z" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)) + b"0\r\n\r\n"
    out = raw_exchange(sg.port, b"PUT /users/alice/blocks/student HTTP/1.1\r\nHost: x\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert out.startswith(b"HTTP/1.1 413"), out[:100]
    m = sg.metrics()
    assert m['shadowgate_rejected_requests_total{reason="header_too_large"}'] >= 1
    assert m['shadowgate_rejected_requests_total{reason="body_too_large"}'] >= 2
    status, _, _ = request("GET", sg.url + "/users/alice/exists")
    assert status == 200


def send_in_pieces(port, data: bytes, piece: int) -> bytes:
    """Sends `data` in writes of `piece` bytes (a short pause between them so they tend to
    arrive as separate reads; the limit must hold however they arrive) and returns the answer."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(5.0)
        try:
            for i in range(0, len(data), piece):
                s.sendall(data[i:i + piece])
                time.sleep(0.002)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the rest was sent
        out = b""
        try:
            while not out.endswith(b"}") and (chunk := s.recv(65536)):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def test_the_header_limit_is_for_the_whole_header_section(v1, sg):
    # sg's limit is 8 kB. 596 headers of ~55 bytes (32 kB) in one write and in 1 kB writes: 431
    # both ways; a header section just under the limit in 1 kB writes is forwarded.
    request("POST", v1.url + "/users/init", {"user_id": "hdr"})
    def head(n):
        fields = b"".join(b"X-Field-%04d: %s\r\n" % (i, b"v" * 38) for i in range(n))
        return (b"GET /users/hdr/exists HTTP/1.1\r\nHost: x\r\n" + fields +
                b"Connection: close\r\n\r\n")
    big = head(596)
    assert len(big) > 32000
    before = sg.metrics().get('shadowgate_rejected_requests_total{reason="header_too_large"}', 0)
    assert raw_exchange(sg.port, big).startswith(b"HTTP/1.1 431")
    for piece in (1024, 100):
        out = send_in_pieces(sg.port, big, piece)
        assert out.startswith(b"HTTP/1.1 431"), (piece, out[:100])
    after = sg.metrics()['shadowgate_rejected_requests_total{reason="header_too_large"}']
    assert after - before == 3
    fits = head(148)
    assert 7900 < len(fits) < 8192
    out = send_in_pieces(sg.port, fits, 1024)
    assert out.startswith(b"HTTP/1.1 200"), out[:100]
    over = head(152)
    assert 8192 < len(over) < 9000
    assert send_in_pieces(sg.port, over, 1024).startswith(b"HTTP/1.1 431")


def test_the_admin_listener_bounds_the_whole_header_section_too(sg):
    # Its limit is 8 kB; it used Beast's own, which applies to one read only: 32 kB of headers
    # sent in 1 kB writes were read.
    admin_port = int(sg.admin_url.rsplit(":", 1)[1])
    fields = b"".join(b"X-Field-%04d: %s\r\n" % (i, b"v" * 38) for i in range(596))
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n"
    for piece in (len(big), 1024, 100):
        out = send_in_pieces(admin_port, big, piece)
        assert out.startswith(b"HTTP/1.1 431"), (piece, out[:100])
    small = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields[:5000] + b"Connection: close\r\n\r\n"
    assert raw_exchange(admin_port, small).startswith(b"HTTP/1.1 200")


def test_malformed_request_gets_400(sg):
    out = raw_exchange(sg.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:100]


def test_client_abandoning_a_request_is_counted(sg):
    before = sg.metrics()["shadowgate_client_read_aborts_total"]
    with socket.create_connection(("127.0.0.1", sg.port)) as s:
        # TCP delivers the partial request before the close: no pause needed in between.
        s.sendall(b"PUT /users/alice/blocks/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    deadline = time.monotonic() + 10
    while sg.metrics()["shadowgate_client_read_aborts_total"] == before:
        assert time.monotonic() < deadline, "abandoned request not counted"
        time.sleep(0.05)


def test_expect_100_continue(v1, sg):
    payload = json.dumps({"content": "after continue"}).encode()
    with socket.create_connection(("127.0.0.1", sg.port)) as s:
        s.settimeout(5)
        s.sendall(b"PUT /users/alice/blocks/expect HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(payload))
        interim = s.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        s.sendall(payload)
        final = s.recv(65536)
        assert final.startswith(b"HTTP/1.1 200"), final
    assert json.loads(request("GET", v1.url + "/users/alice/blocks/expect")[2])["body"] == "after continue"


def test_trickling_client_is_cut_off(sg_scripted):
    key = 'shadowgate_rejected_requests_total{reason="request_timeout"}'
    before = sg_scripted.metrics()[key]
    with socket.create_connection(("127.0.0.1", sg_scripted.port)) as s:
        s.settimeout(5)
        s.sendall(b"GET /echo HTTP/1.1\r\n")
        got = b""
        try:
            for _ in range(40):
                s.sendall(b"X")  # a header line that never ends, one byte at a time
                if select.select([s], [], [], 0.1)[0]:
                    break  # the proxy answered
        except OSError:
            pass  # the proxy closed on us: that is the point
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    assert got.startswith(b"HTTP/1.1 408"), got[:100]
    assert sg_scripted.metrics()[key] == before + 1


def test_idle_keep_alive_connection_is_closed(sg_scripted):
    key = 'shadowgate_client_idle_closes_total{wait="first_byte"}'
    before = sg_scripted.metrics()[key]
    with socket.create_connection(("127.0.0.1", sg_scripted.port)) as s:
        s.settimeout(15)  # only bounds a hang
        assert s.recv(10) == b""  # closed by the proxy, nothing sent
    assert sg_scripted.metrics()[key] == before + 1  # by its idle timer, counted as such


@pytest.fixture(scope="module")
def sg_first_byte(scripted):
    cfg = base_config(scripted.port, proxy={"limits": {"first_byte_timeout_ms": 300,
                                                       "idle_timeout_ms": 600000}})
    gate = start_shadowgate(cfg)
    yield gate
    gate.stop()


def closed_by_peer(s: socket.socket) -> bool:
    """Waits (up to a generous deadline) for the peer to close `s`; True when it did."""
    s.settimeout(30)
    try:
        return s.recv(10) == b""
    except (socket.timeout, ConnectionResetError):
        return False


def test_a_connection_that_sends_nothing_is_closed_sooner_than_an_idle_one(sg_first_byte):
    before = sg_first_byte.metrics()
    used = socket.create_connection(("127.0.0.1", sg_first_byte.port))
    used.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        got += used.recv(4096)
    assert got.startswith(b"HTTP/1.1 200"), got[:100]
    # Opened after `used` went idle, closed after first_byte_timeout: by then `used` has been
    # idle longer than that and must still be open (its limit is idle_timeout, 10 minutes).
    with socket.create_connection(("127.0.0.1", sg_first_byte.port)) as silent:
        assert closed_by_peer(silent)
    used.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    used.settimeout(10)
    again = b""
    while chunk := used.recv(4096):
        again += chunk
    used.close()
    assert again.startswith(b"HTTP/1.1 200"), again[:100]
    after = sg_first_byte.metrics()
    key = 'shadowgate_client_idle_closes_total{wait="%s"}'
    assert after[key % "first_byte"] - before.get(key % "first_byte", 0) == 1
    assert after[key % "between_requests"] == before.get(key % "between_requests", 0)


@pytest.mark.parametrize("host_lines, status", [
    (b"", 400),                                   # HTTP/1.1 without Host
    (b"Host: a\r\nHost: a\r\n", 400),            # two
    (b"Host: a\r\nhost: b\r\n", 400),
    (b"Host: a b\r\n", 400),                      # not a host
    (b"Host: a/b\r\n", 400),
    (b"Host: user@a\r\n", 400),
    (b"Host: a:8x\r\n", 400),
    (b"Host: \r\n", 400),
    (b"Host: [::1\r\n", 400),
    (b"Host: example.com\r\n", 200),
    (b"Host: example.com:8080\r\n", 200),
    (b"Host: 127.0.0.1:1\r\n", 200),
    (b"Host: [::1]:8080\r\n", 200),
])
def test_host_header_rules(v1, sg, host_lines, status):
    request("POST", v1.url + "/users/init", {"user_id": "alice"})
    before = sg.metrics().get('shadowgate_rejected_requests_total{reason="bad_request"}', 0)
    out = raw_exchange(sg.port, b"GET /users/alice/exists HTTP/1.1\r\n" + host_lines +
                       b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 %d" % status), (host_lines, out[:200])
    after = sg.metrics().get('shadowgate_rejected_requests_total{reason="bad_request"}', 0)
    assert after - before == (1 if status == 400 else 0)
    if status == 400:
        assert b"Host" in out and b"bad_request" in out


def test_admin_token(sg):
    assert request("GET", sg.admin_url + "/healthz")[0] == 200
    assert request("GET", sg.admin_url + "/readyz")[0] == 200
    status, headers, _ = request("GET", sg.admin_url + "/admin/config")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert request("GET", sg.admin_url + "/admin/config",
                   headers={"Authorization": "Bearer wrong"})[0] == 401
    for scheme in ("bearer", "BEARER"):  # RFC 9110 §11.1: the scheme is case-insensitive
        assert request("GET", sg.admin_url + "/admin/config",
                       headers={"Authorization": f"{scheme} {TOKEN}"})[0] == 200
    status, _, body = request("GET", sg.admin_url + "/admin/config",
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and json.loads(body)["admin"]["token_env"] == "SHADOWGATE_ADMIN_TOKEN"
    assert TOKEN not in body.decode()
    assert TOKEN not in sg.log()


def test_admin_paths_and_methods(sg):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # A path that exists, asked with a method it does not serve: 405 and what it allows.
    for method, path, allow in (("POST", "/admin/config", "GET, HEAD"),
                                ("DELETE", "/admin/reconcile", "GET, HEAD, POST"),
                                ("GET", "/admin/mirror/retry", "POST"),
                                ("POST", "/healthz", "GET, HEAD")):
        status, headers, body = request(method, sg.admin_url + path, headers=auth)
        assert status == 405, (method, path, status, body[:200])
        assert headers["allow"] == allow
        assert json.loads(body)["error"] == "method_not_allowed"
    # No such path: 404, but under /admin/ only once the token is right.
    status, _, body = request("GET", sg.admin_url + "/admin/nothing", headers=auth)
    assert status == 404 and json.loads(body)["error"] == "not_found"
    assert request("GET", sg.admin_url + "/admin/nothing")[0] == 401
    assert request("GET", sg.admin_url + "/nothing")[0] == 404
    assert request("HEAD", sg.admin_url + "/healthz")[0] == 200


def test_admin_without_token_is_closed(scripted):
    with start_shadowgate(base_config(scripted.port), env={"SHADOWGATE_ADMIN_TOKEN": ""}) as gate:
        status, _, body = request("GET", gate.admin_url + "/admin/config",
                                  headers={"Authorization": "Bearer "})
        assert status == 403 and json.loads(body)["error"] == "admin_token_unset"


def in_flight(scripted, target):
    with scripted._lock:
        return any(r[1] == target for r in scripted.requests)


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_drains_in_flight_requests(scripted, sig):
    gate = start_shadowgate(base_config(scripted.port, proxy={"shutdown_grace_ms": 5000}))
    target = f"/slow?ms=1500&sig={sig.name}"
    result = {}

    def slow():
        result["answer"] = request("GET", gate.url + target)

    t = threading.Thread(target=slow)
    t.start()
    wait_soon("the request upstream", lambda: in_flight(scripted, target))
    accepted = gate.metrics()["shadowgate_accepted_connections_total"]
    idle = socket.create_connection(("127.0.0.1", gate.port))  # an idle keep-alive client
    wait_soon("the idle client accepted", lambda: gate.metrics()[
        "shadowgate_accepted_connections_total"] == accepted + 1)
    gate.proc.send_signal(sig)
    idle.settimeout(10)
    assert idle.recv(10) == b""  # idle connection closed by the drain
    wait_soon("the listener closed", lambda: refused(gate.port))
    t.join(10)
    status, headers, body = result["answer"]
    assert status == 200 and json.loads(body)["target"] == target
    assert headers["connection"] == "close"  # the drained answer says so
    assert gate.proc.wait(10) == 0
    assert f"event=draining signal={sig.name}" in gate.log()
    assert "drained=true" in gate.log()


def test_a_request_outlasting_the_grace_is_cut_off_and_the_exit_is_clean(scripted):
    gate = start_shadowgate(base_config(scripted.port, proxy={"shutdown_grace_ms": 300},
                                        v1={"response_timeout_ms": 60000}))
    target = "/slow?ms=20000&grace=1"
    result = {}

    def slow():
        try:
            result["answer"] = request("GET", gate.url + target, timeout=30)
        except OSError as e:  # http.client's RemoteDisconnected is one
            result["error"] = e

    t = threading.Thread(target=slow)
    t.start()
    wait_soon("the request upstream", lambda: in_flight(scripted, target))
    gate.proc.send_signal(signal.SIGTERM)
    assert gate.proc.wait(15) == 0  # 300 ms of grace, not the request's 20 s
    t.join(15)
    assert "error" in result, result  # cut off, no answer
    assert "drained=false open_connections=1" in gate.log()


def test_pipelined_requests_answer_in_order(v1, sg):
    request("POST", v1.url + "/users/init", {"user_id": "alice"})
    request("PUT", v1.url + "/users/alice/blocks/student", {"content": "hi"})
    reqs = b"".join(b"GET /users/%s/exists HTTP/1.1\r\nHost: x\r\n\r\n" % u
                    for u in [b"alice", b"nobody-here", b"alice"])
    reqs += b"GET /users/alice/blocks/student HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw_exchange(sg.port, reqs)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
    assert statuses == [b"200", b"200", b"200", b"200"], out[:500]
    assert out.count(b'{"exists":true}') == 2 and out.count(b'{"exists":false}') == 1


def test_http_1_0_client(v1, sg):
    request("POST", v1.url + "/users/init", {"user_id": "alice"})
    out = raw_exchange(sg.port, b"GET /users/alice/exists HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    assert body == b'{"exists":true}'
    assert b"transfer-encoding" not in head.lower()
    # HTTP/1.0 with keep-alive asked for: the connection stays open for a second request.
    with socket.create_connection(("127.0.0.1", sg.port)) as s:
        s.settimeout(5)
        for _ in range(2):
            s.sendall(b"GET /users/alice/exists HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            got = b""
            while b'{"exists":true}' not in got:
                got += s.recv(4096)
            assert got.startswith(b"HTTP/1.0 200") and b"keep-alive" in got.lower()


def test_upstream_connect_timeout_gives_504():
    # A listener whose accept queue is full drops further SYNs (Linux: tcp_conn_request drops a
    # SYN while the accept queue is full), so connecting to it hangs: the closest loopback
    # stand-in for an unreachable v1. The queue fills as the kernel completes the fillers'
    # handshakes; the probe below waits for that (a hang that never comes fails the test).
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    fillers = []
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    hangs = False
    for _ in range(20):
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", port))
            fillers.append(probe)  # it took a place in the queue: the next probe may hang
        except (socket.timeout, OSError):
            probe.close()
            hangs = True
            break
    assert hangs, "connects to a listener with a full accept queue did not hang"
    cfg = base_config(port, v1={"connect_timeout_ms": 400})
    try:
        with start_shadowgate(cfg) as gate:
            status, _, body = request("GET", gate.url + "/users/u/exists")
            assert status == 504 and json.loads(body)["error"] == "upstream_timeout"
            m = gate.metrics()  # the connect timeout, not a read timeout or anything later
            assert m['shadowgate_upstream_errors_total{upstream="v1",kind="connect_timeout"}'] == 1
    finally:
        for c in fillers:
            c.close()
        blackhole.close()


def test_a_session_that_throws_is_logged_and_counted_and_the_service_goes_on(scripted):
    # Regression: an exception out of a session was dropped by asio::detached without a
    # line or a counter. A test fault (SHADOWGATE_TEST_FAULTS) makes one session throw.
    env = {"SHADOWGATE_TEST_FAULTS": "session_throw"}
    with start_shadowgate(base_config(scripted.port), env=env) as gate:
        key = 'shadowgate_task_failures_total{task="session"}'
        tasks = {k for k in gate.metrics() if k.startswith("shadowgate_task_failures_total")}
        assert {'shadowgate_task_failures_total{task="%s"}' % t for t in
                ("session", "accept_loop", "sweep", "worker_thread", "admin_thread",
                 "mirror_worker", "shadow_worker", "gate_flusher")} <= tasks, tasks
        assert gate.metrics()[key] == 0
        assert "event=test_faults_enabled" in gate.log()
        with pytest.raises(OSError):  # the connection goes with its session, no answer
            request("GET", gate.url + "/_shadowgate_test/throw")
        wait_soon("the failure counted", lambda: gate.metrics()[key] == 1)
        assert ('event=task_failed task=session essential=false error="test fault: a session '
                'threw') in gate.log()
        # Not essential: the service goes on serving, and nothing else failed.
        status, _, body = request("GET", gate.url + "/echo?after=throw")
        assert status == 200 and json.loads(body)["target"] == "/echo?after=throw"
        assert gate.metrics()['shadowgate_task_failures_total{task="accept_loop"}'] == 0
        # The thrown session gave its connection slot back (its guard ran).
        wait_soon("no open connection", lambda: gate.metrics()["shadowgate_open_connections"] == 0)
        assert gate.stop() == 0


def test_an_essential_task_that_throws_drains_the_service_and_exits_1(scripted):
    # The deadline sweep is essential: without it no timeout holds. A test fault arms this
    # worker's sweep to throw at its next tick; the service drains and exits non-zero.
    env = {"SHADOWGATE_TEST_FAULTS": "sweep_throw"}
    gate = start_shadowgate(base_config(scripted.port, proxy={"threads": 1}), env=env)
    try:
        status, _, _ = request("GET", gate.url + "/_shadowgate_test/throw-sweep")
        assert status == 404  # forwarded as any request (the scripted upstream lacks it)
        assert gate.proc.wait(15) == 1
        log = gate.log()
        assert 'event=task_failed task=sweep essential=true error="test fault: the sweep' in log
        assert "event=stopping reason=" in log and "event=stopped drained=true" in log
    finally:
        gate.stop()
