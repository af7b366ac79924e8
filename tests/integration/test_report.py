"""Reports: `shadowgate report` / GET /admin/report in JSON, Markdown and HTML from a
real running service with a planted discrepancy; the HTML page is opened in headless Chromium
(Debian's chromium), whose rendered text must show the verdict, the endpoint table and the
sample side by side; a screenshot is kept as a test artifact (build/tests/artifacts/)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sg_harness import shadowgate_bin
from test_gate import gate_stack
from test_mirror import TOKEN, Stack, init_users, put
from test_shadow import plant, read, wait_shadow_idle
from v1ref_harness import request

ARTIFACTS = Path(os.environ.get("SG_ARTIFACTS", Path.cwd() / "artifacts"))


def report_cli(s: Stack, tmp_path: Path, *args):
    cfg = json.loads(json.dumps(s.cfg))
    cfg["admin"]["listen"]["port"] = s.sg.admin_port
    path = tmp_path / "report-cli.json"
    path.write_text(json.dumps(cfg))
    return subprocess.run([str(shadowgate_bin()), "report", "-c", str(path), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **s.env})


def chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("chromium is not installed (deploy/setup.sh installs it)")


def browser(*args):
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                           *args], capture_output=True, text=True, timeout=120)


def test_reports_in_three_formats_and_the_html_renders_in_chromium(tmp_path):
    s = gate_stack(tmp_path, state_file=str(tmp_path / "gate.json"), history_bucket_ms=1000)
    try:
        init_users(s, ["rp1", "rp2"])
        put(s, "rp1", "student", "---\ntitle: t\n---\nhello\n")
        put(s, "rp2", "student", "plain\n")
        s.converge()
        for _ in range(5):
            read(s, "/users/rp1/blocks/student")
            read(s, "/users/rp2/blocks")
        wait_shadow_idle(s)
        plant(s, "UPDATE blocks SET content = REPLACE(content, 'hello', 'hullo <b>x</b>')"
                 " WHERE user_id = 'rp1'")
        for _ in range(3):
            read(s, "/users/rp1/blocks/student")
        wait_shadow_idle(s)

        # JSON: the machine form.
        res = report_cli(s, tmp_path, "--format", "json")
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["verdict"] == "NO-GO"
        gb = next(e for e in doc["endpoints"] if e["endpoint"] == "get_block")
        assert gb["mismatch"] == 3 and gb["match"] + gb["lagging"] == 5, gb
        assert doc["samples"] and doc["samples"][0]["endpoint"] == "get_block"
        assert {p["path"] for p in doc["top_paths"]} >= {"/content", "/body"}
        assert sum(p["discrepancies"] for p in doc["rate_over_time"]) == 3
        # Filters: another endpoint has no samples; a range in the past has nothing.
        lb = json.loads(report_cli(s, tmp_path, "--format", "json", "--endpoint",
                                   "list_blocks").stdout)
        assert [e["endpoint"] for e in lb["endpoints"]] == ["list_blocks"] and lb["samples"] == []
        old = json.loads(report_cli(s, tmp_path, "--format", "json", "--to",
                                    "2020-01-01T00:00:00Z").stdout)
        assert old["samples"] == [] and old["rate_over_time"] == []
        status, _, body = request("GET", s.sg.admin_url + "/admin/report?format=pdf",
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 400
        status, _, _ = request("GET", s.sg.admin_url + "/admin/report")
        assert status == 401

        # Markdown: for a ticket.
        md = report_cli(s, tmp_path, "--format", "md").stdout
        assert md.startswith("# shadowgate report: NO-GO")
        assert "| get_block |" in md and "`/content`" in md

        # HTML: one self-contained file, rendered by a real browser.
        page = tmp_path / "report.html"
        res = report_cli(s, tmp_path, "--format", "html", "-o", str(page))
        assert res.returncode == 0 and page.stat().st_size > 1000, res.stderr
        html = page.read_text()
        assert "src=" not in html and "href=" not in html  # no external assets
        rendered = browser("--dump-dom", page.as_uri())
        assert rendered.returncode == 0, rendered.stderr[-2000:]
        dom = rendered.stdout
        assert 'id="verdict">NO-GO</span>' in dom
        assert "<table id=\"endpoints\">" in dom and ">get_block</td>" in dom
        assert 'class="sbs"' in dom and "<pre class=\"v1\">" in dom and "<pre class=\"v2\">" in dom
        assert "<mark>" in dom and "hullo &lt;b&gt;x&lt;/b&gt;" in dom  # escaped, highlighted
        assert "<b>x</b>" not in dom  # the body's markup stays text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "report.png"
        shot.unlink(missing_ok=True)
        res = browser("--window-size=1280,2400", f"--screenshot={shot}", page.as_uri())
        assert res.returncode == 0, res.stderr[-2000:]
        assert shot.exists() and shot.stat().st_size > 20_000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        shutil.copy(page, ARTIFACTS / "report.html")
    finally:
        s.close()
