"""`tether dashboard` serves the page and its API on its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tether.net import free_port, wait_http
from tether.project import Project

ROOT = Path(__file__).resolve().parents[2]


def test_dashboard_command_serves_the_page_and_prints_its_url(empty_project: Project) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    command = [sys.executable, "-c", "from tether.cli import main; main()", "dashboard",
               "--port", str(port)]
    process = subprocess.Popen(command, cwd=empty_project.config.path.parent, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        state = wait_http(f"http://127.0.0.1:{port}/api/state", process=process)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        script = httpx.get(f"http://127.0.0.1:{port}/static/dashboard/vendor/chart.umd.min.js",
                           timeout=5)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert state.status_code == 200
    assert "has no version yet" in state.json()["message"]
    assert page.status_code == 200 and "<canvas id=\"chart-metric\">" in page.text
    assert script.status_code == 200 and "Chart.js v4" in script.text[:200]
    assert f"dashboard for loan-default at http://127.0.0.1:{port}/" in output
    assert "read-only: set TETHER_ADMIN_TOKEN" in output
