"""How long a rollback takes to reach traffic: embedded push, remote push, remote poll.

From the moment the rollback is decided (just before the registry write) to the first
`/predict` answered by the old version (`X-Model-Version`). Three paths, one run:

- embedded: server and controller in one process (`tether up`); the controller calls
  the server's reload on its event loop (the old version is still loaded);
- remote push: a separate `tether serve` process; the controller POSTs /admin/reload;
- remote poll (baseline): the same server, no push; it notices at its next poll
  (`TETHER_POLL_SECONDS`, 2 s by default), as the seeds' reload endpoints do.

Run: PYTHONPATH=src .venv/bin/python benchmarks/control/rollback.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tether import lifecycle
from tether.demo.run import write_demo_project
from tether.example.loans import TARGET, generate
from tether.net import bound_socket, free_port, wait_http
from tether.project import Project

ROW = generate(n=1, seed=5).drop(columns=[TARGET]).to_dict("records")
TOKEN = "bench-token"


def until_version(client: httpx.Client, version: int, timeout: float = 30.0) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        answer = client.post("/predict", json={"dataframe_records": ROW})
        if answer.headers.get("x-model-version") == str(version):
            return time.perf_counter()
    raise RuntimeError(f"version {version} never answered")


def measure(project: Project, client: httpx.Client, push: Callable[[], None] | None,
            rounds: int, switch: Callable[[int], None] | None = None) -> list[float]:
    """Alternate promote 2 / roll back to 1; time each rollback to the first v1 answer."""
    timings = []
    for _ in range(rounds):
        lifecycle.promote(project, 2, "bench: forward")
        if push is not None:
            push()
        until_version(client, 2)
        decided_on = project.registry.state()  # what the controller has read when it decides
        started = time.perf_counter()
        lifecycle.rollback(project, "bench: back", to=1, on_switch=switch, current=decided_on)
        if push is not None:
            push()
        timings.append((until_version(client, 1) - started) * 1000)
    return timings


def embedded(project: Project, rounds: int) -> list[float]:
    import uvicorn

    from tether import apps

    built = apps.up(project, interval=3600)  # the controller idles; the bench drives
    sock = bound_socket()
    server = uvicorn.Server(uvicorn.Config(built.app, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    # what the controller itself uses: the pointer swap at the alias write, then a reload
    assert built.controller is not None
    push, switch = built.controller.push, built.controller.switch
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
            return measure(project, client, push, rounds, switch)
    finally:
        server.should_exit = True
        thread.join(30)


def remote(project: Project, folder: Path, rounds: int, use_push: bool) -> list[float]:
    port = free_port()
    env = {**os.environ, "TETHER_ADMIN_TOKEN": TOKEN, "TETHER_POLL_SECONDS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from tether.cli import main; main()", "serve", "--port",
         str(port)], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/ready", timeout=120, process=process)
        push = (lambda: httpx.post(f"{base}/admin/reload", timeout=30,
                                   headers={"Authorization": f"Bearer {TOKEN}"})
                .raise_for_status()) if use_push else None
        with httpx.Client(base_url=base) as client:
            return measure(project, client, push, rounds)
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-rollback-"))
    try:
        write_demo_project(folder)
        project = Project.open(folder / "tether.yaml")
        lifecycle.train(project, reason="bench v1")
        lifecycle.train(project, reason="bench v2")
        lifecycle.promote(project, 1, "bench: first")
        results = {"embedded, push (tether up)": embedded(project, args.rounds)}
        results["separate server, push"] = remote(project, folder, args.rounds, True)
        results["separate server, poll 2 s (baseline)"] = remote(project, folder,
                                                                 max(5, args.rounds // 4),
                                                                 False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    baseline = statistics.median(results["separate server, poll 2 s (baseline)"])
    print(f"\n{'path':40} {'n':>4} {'p50 ms':>9} {'max ms':>9} {'p50 vs poll':>12}")
    for name, timings in results.items():
        p50 = statistics.median(timings)
        print(f"{name:40} {len(timings):>4} {p50:>9.1f} {max(timings):>9.1f} "
              f"{p50 / baseline:>11.3f}x")


if __name__ == "__main__":
    main()
