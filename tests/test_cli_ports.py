"""`--port` on every command that listens: 1-65535, or 0 for any free port, printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.net import bound_socket
from tether.project import Project

ROOT = Path(__file__).resolve().parents[1]
LISTENERS = ["serve", "up", "controller", "dashboard"]


@pytest.mark.parametrize("command", LISTENERS)
@pytest.mark.parametrize("port", ["65536", "-1", "http"])
def test_a_port_outside_the_range_is_one_line_and_exit_2(
        project: Project, command: str, port: str) -> None:
    result = CliRunner().invoke(app, [command, "--port", port])
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output
    assert "Traceback" not in result.output


def test_a_port_taken_by_another_process_is_one_line(project: Project) -> None:
    with bound_socket() as taken:
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("command", "path"), [("serve", "/ping"), ("up", "/ping"),
                                               ("controller", "/health"),
                                               ("dashboard", "/api/state")])
def test_port_0_takes_a_free_port_and_prints_it(project: Project, command: str,
                                                path: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    process = subprocess.Popen(
        [sys.executable, "-c", "from tether.cli import main; main()", command, "--port", "0"],
        cwd=project.config.path.parent, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"http://127\.0\.0\.1:(\d+)", process.stdout.readline())
            url = found.group(0) if found else None
        assert url is not None and not url.endswith(":0")
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(url + path, timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        process.terminate()
        process.communicate(timeout=60)
    assert answer is not None and answer.status_code == 200
