"""The batcher's wait for expected requests (`serving.max_wait_ms`) against no wait, one run.

Run by hand from the repository root (needs `wrk` and `taskset`):

    PYTHONPATH=src .venv/bin/python benchmarks/serving/batch_wait.py
        [--model HistGradientBoosting] [--rows 100] [--connections 1 8 32] [--seconds 8]

`tether serve` on CPU 0, `wrk -t1` on CPU 1, `/invocations`, the same model folder and
body; each server started with `serving: {max_wait_ms: 0}` (no wait) and with the
default, interleaved per connection count. Besides req/s and latency, the requests per
model call, read from the server's `tether_batch_size_rows` histogram around the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import peers
import workloads
from run import ENV, PYTHON, SERVER_CPU, free_port, stop, wait_http, wrk

SETTINGS = {"no wait": "serving: {max_wait_ms: 0}\n", "default (2 ms)": ""}


def batch_totals(port: int) -> tuple[float, float]:
    """(batches, rows) so far, from the server's batch-size histogram."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    found = {"count": 0.0, "sum": 0.0}
    for line in text.decode().splitlines():
        for key in found:
            if line.startswith(f"tether_batch_size_rows_{key}"):
                found[key] += float(line.split()[-1])
    return found["count"], found["sum"]


def measure(folder: Path, model: Path, body: Path, setting: str, connections: int,
            seconds: float, rows: int) -> dict[str, float]:
    port = free_port()
    config = folder / f"serve-{port}" / "tether.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(peers.POLICY + setting)
    command = [PYTHON, "-m", "tether", "--config", str(config), "serve", "--port", str(port),
               "--no-poll", "--model-path", str(model)]
    log = folder / f"serve-{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(["taskset", "-c", SERVER_CPU, *command],
                                   stdout=subprocess.DEVNULL, stderr=handle, env=ENV,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        wait_http(url, body=body.read_bytes(), process=process, log=log, timeout=180)
        wrk(url, body, connections, 1)  # warm-up
        batches, batch_rows = batch_totals(port)
        figures = wrk(url, body, connections, seconds)
        after_batches, after_rows = batch_totals(port)
        calls = max(after_batches - batches, 1.0)
        return {**figures, "per_call": (after_rows - batch_rows) / calls / rows}
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="HistGradientBoosting",
                        choices=workloads.available())
    parser.add_argument("--rows", type=int, default=100, choices=workloads.ROWS)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tether-batch-wait-") as scratch:
        folder = Path(scratch)
        workload = workloads.build(folder, [args.model])[args.model]
        body = workload.bodies[("split", args.rows)]
        print(f"\n{args.model}, {args.rows}-row bodies, server on CPU {SERVER_CPU}\n")
        print("| conns | setting | req/s | p50 ms | p99 ms | requests per call | "
              "req/s vs no wait |")
        print("|---|---|---|---|---|---|---|")
        for connections in args.connections:
            results = {name: measure(folder, workload.path, body, setting, connections,
                                     args.seconds, args.rows)
                       for name, setting in SETTINGS.items()}
            base = results["no wait"]["rps"]
            for name, r in results.items():
                print(f"| {connections} | {name} | {r['rps']:.0f} | {r['p50']:.1f} | "
                      f"{r['p99']:.1f} | {r['per_call']:.1f} | {r['rps'] / base:.2f} |",
                      flush=True)
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
