"""A retrain with MLflow inferring the model's pip requirements (a new interpreter loads
the model) beside one reusing what the same process inferred for the same kind of model.

    PYTHONPATH=src .venv/bin/python benchmarks/registry/requirements.py [--rounds 3]

Runs in a temporary copy of the example project (`tether init`), interleaved per round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-c", "from tether.cli import main; main()", "init",
                        folder], check=True, capture_output=True)
        os.chdir(folder)
        from tether import lifecycle
        from tether.project import Project
        from tether.registry import runs

        project = Project.open(Path("tether.yaml"))
        lifecycle.train(project, reason="warm-up")  # imports, the registry's first run
        inferred, reused = [], []
        for index in range(args.rounds):
            runs._requirements.clear()
            started = time.perf_counter()
            lifecycle.train(project, reason="inferred")
            inferred.append(time.perf_counter() - started)
            started = time.perf_counter()
            lifecycle.train(project, reason="reused")
            reused.append(time.perf_counter() - started)
            print(f"round {index + 1}: inferred {inferred[-1]:.2f} s, "
                  f"reused {reused[-1]:.2f} s", flush=True)
    a, b = statistics.median(inferred), statistics.median(reused)
    print("\n| retrain of the example project | median s | ratio |\n|---|---|---|")
    print(f"| requirements inferred by MLflow (baseline) | {a:.2f} | 1.00 |")
    print(f"| requirements reused in the process | {b:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
