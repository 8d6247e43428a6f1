"""Time `tether demo` end to end against its 3-minute budget.

Run: PYTHONPATH=src .venv/bin/python benchmarks/demo/run.py [--runs 1]
Each phase's start is printed, then the whole run beside the 180 s budget.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from tether.demo import run_demo

BUDGET_SECONDS = 180.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(f"{'run':>3} {'phase':45} {'starts at s':>12}")
    totals = []
    for run in range(1, args.runs + 1):
        folder = Path(tempfile.mkdtemp(prefix="tether-bench-demo-"))
        try:
            result = run_demo(folder / "demo", report=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for phase, at in result.phases:
            print(f"{run:>3} {phase:45} {at:>12.1f}")
        totals.append(result.seconds)
        outcome = [f"{kind} v{version}" for kind, version in result.champion_history]
        print(f"{run:>3} {'outcome: ' + ', '.join(outcome):45}")
    print(f"\n{'run':>3} {'seconds':>8} {'budget':>7} {'ratio':>6}")
    for run, seconds in enumerate(totals, 1):
        print(f"{run:>3} {seconds:>8.1f} {BUDGET_SECONDS:>7.0f} {seconds / BUDGET_SECONDS:>6.2f}")


if __name__ == "__main__":
    main()
