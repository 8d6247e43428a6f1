"""What the prediction log's write costs one request: a batch of one request's rows
(the example loan model's mixed columns: seven numbers, two texts) encoded and
committed to a fresh SQLite store, one write per transaction, as the server's log
writes when each answer waits for its commit (`serving.durability: acked`, one
connection).

Compares two source trees in one run, rounds interleaved, each in a fresh process:

    git archive <base commit> src | tar -x -C /tmp/base
    PYTHONPATH=src .venv/bin/python benchmarks/store/request_write.py --before /tmp/base/src
        [--rounds 5] [--writes 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import json, secrets, sys, tempfile, time
import numpy as np
from tether.example.loans import generate
from tether.store import Outputs, PredictionBatch, Store

rows, writes = int(sys.argv[1]), int(sys.argv[2])
frame = generate(n=rows, seed=1).drop(columns=["default"]).reset_index(drop=True)
folder = tempfile.mkdtemp(prefix="tether-request-write-")
store = Store(f"sqlite:///{folder}/store.db")

def batch():
    return PredictionBatch("bench", 1, "champion", [secrets.token_hex(16) for _ in range(rows)],
                           frame, Outputs(ts=np.full(rows, time.time()),
                                          prediction=np.ones(rows), score=np.full(rows, 0.7),
                                          latency_ms=np.full(rows, 3.0),
                                          error=np.zeros(rows, dtype=bool)))

for _ in range(100):
    store.log_batches([batch()])
pending = [batch() for _ in range(writes)]
started = time.perf_counter()
for one in pending:
    store.log_batches([one])
print(json.dumps({"us": (time.perf_counter() - started) / writes * 1e6}))
"""


def measure(src: str, rows: int, writes: int) -> float:
    env = {**os.environ, "PYTHONPATH": src, "MLFLOW_DISABLE_TELEMETRY": "true"}
    out = subprocess.run([sys.executable, "-c", WORKER, str(rows), str(writes)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["us"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="src folder of the tree to compare")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    trees = {"before": args.before, "after": str(ROOT / "src")}
    print("| rows per write | before us/write | after us/write | after / before |")
    print("|---|---|---|---|")
    for rows in (1, 100):
        found: dict[str, list[float]] = {name: [] for name in trees}
        for index in range(args.rounds):
            for name in (list(trees) if index % 2 == 0 else list(trees)[::-1]):
                found[name].append(measure(trees[name], rows, args.writes))
        before, after = (statistics.median(found[name]) for name in trees)
        print(f"| {rows} | {before:.0f} | {after:.0f} | {after / before:.2f} |", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
