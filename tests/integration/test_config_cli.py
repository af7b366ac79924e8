"""`shadowgate serve --check-config` and start-up with bad config, through the real binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sg_harness import scratch_dir, shadowgate_bin
from v1ref_harness import REPO_ROOT


def run(*args, env=None):
    return subprocess.run([str(shadowgate_bin()), *args], capture_output=True, text=True,
                          timeout=30, env=env)


def write(text: str) -> Path:
    f = scratch_dir("sg-cfg-") / "c.json"
    f.write_text(text)
    return f


def test_example_config_is_valid():
    res = run("serve", "--check-config", str(REPO_ROOT / "config" / "shadowgate.example.jsonc"))
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


@pytest.mark.parametrize("text, paths", [
    ('{"proxy": {"listne": {}}}', ["$.proxy.listne"]),
    ('{"proxy": {"threads": "many"}}', ["$.proxy.threads"]),
    ('{"proxy": {"listen": {"port": 70000}}}', ["$.proxy.listen.port"]),
    ('{"stage": "live-ish"}', ["$.stage"]),
    ('{"dolt": {"password": "hunter2"}}', ["$.dolt.password"]),
    ('{"admin": {"listen": {"host": "0.0.0.0", "port": 9"}}}', ["$"]),  # syntax error
    ('{"admin": {"listen": {"host": "0.0.0.0"}}}', ["$.admin.listen.host"]),
    ('{"v1": {"connect_timeout_ms": 0}, "log": {"level": "loud"}, "x": 1}',
     ["$.v1.connect_timeout_ms", "$.log.level", "$.x"]),
])
def test_every_problem_is_named_by_its_path(text, paths):
    res = run("serve", "--check-config", str(write(text)))
    assert res.returncode == 2, (res.stdout, res.stderr)
    for p in paths:
        assert f"{p}:" in res.stderr or f"{p} " in res.stderr, (p, res.stderr)
    assert "hunter2" not in res.stderr  # a secret put in the file is not echoed back


def test_serve_refuses_invalid_config_without_listening():
    res = run("serve", "--config", str(write('{"proxy": {"limits": {"body_limit_bytes": -1}}}')))
    assert res.returncode == 2
    assert "$.proxy.limits.body_limit_bytes" in res.stderr


def test_missing_file_is_reported():
    res = run("serve", "--check-config", "/nonexistent/shadowgate.json")
    assert res.returncode == 2 and "/nonexistent/shadowgate.json" in res.stderr


def test_print_defaults_round_trips():
    res = run("serve", "--print-defaults")
    assert res.returncode == 0
    again = run("serve", "--check-config", str(write(res.stdout)))
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("text, path", [
    ('{"stage": "off", "stage": "shadow"}', "$.stage"),
    ('{"proxy": {"limits": {"idle_timeout_ms": 1000, "idle_timeout_ms": 2000}}}',
     "$.proxy.limits.idle_timeout_ms"),
    ('{"shadow": {"v2_http": {"endpoints": {"get_block": {"map": '
     '[{"drop": "a"}, {"drop": "b", "drop": "c"}]}}}}}',
     "$.shadow.v2_http.endpoints.get_block.map[1].drop"),
])
def test_a_duplicate_key_is_a_problem_at_its_path(text, path):
    res = run("serve", "--check-config", str(write(text)))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert f"{path}: duplicate key" in res.stderr, res.stderr
    # the same keys once each are fine
    assert run("serve", "--check-config", str(write('{"stage": "off"}'))).returncode == 0


def test_check_config_wants_an_existing_v1_data_dir_where_the_stage_mirrors():
    scratch = scratch_dir("sg-cfg-dir-")
    missing = scratch / "no-such-dir"
    a_file = scratch / "a-file"
    a_file.write_text("x")
    for where, says in ((missing, "does not exist"), (a_file, "is not a directory")):
        text = '{"stage": "dualwrite", "v1_data_dir": "%s"}' % where
        res = run("serve", "--check-config", str(write(text)))
        assert res.returncode == 2, (where, res.stdout)
        assert "$.v1_data_dir:" in res.stderr and says in res.stderr, res.stderr
    ok = run("serve", "--check-config",
             str(write('{"stage": "dualwrite", "v1_data_dir": "%s"}' % scratch)))
    assert ok.returncode == 0, ok.stderr
    # off mirrors nothing: the directory is not needed
    off = run("serve", "--check-config", str(write('{"stage": "off", "v1_data_dir": "%s"}' % missing)))
    assert off.returncode == 0, off.stderr
