"""Processes the end-to-end tests start: `tether up` in a project folder, and stopping
any of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tether.net import free_port, wait_http

CLI = "from tether.cli import main; main()"


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s; a stopped (SIGSTOP) process is continued first."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tether_up(folder: Path) -> Iterator[Callable[[], str]]:
    """A starter of `tether up` in `folder` (its output appended to up.log): each call
    starts one and returns its URL once ready; all are stopped when the generator ends."""
    started: list[subprocess.Popen[bytes]] = []
    log = folder / "up.log"

    def start() -> str:
        port = free_port()
        with log.open("ab") as out:
            started.append(subprocess.Popen(
                [sys.executable, "-c", CLI, "up", "--port", str(port), "--interval", "0.5"],
                cwd=folder, env={**os.environ, "TETHER_POLL_SECONDS": "1"},
                stdout=out, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/ready", process=started[-1], log=log, timeout=180)
        return url

    try:
        yield start
    finally:
        for process in started:
            stop(process)
