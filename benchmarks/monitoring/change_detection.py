"""Change detection on per-prediction error streams: tether's detectors vs river's ADWIN.

Run by hand from the repository root (river is in the `dev` extra):

    PYTHONPATH=src .venv/bin/python benchmarks/monitoring/change_detection.py [--seeds 100]

Streams: 0/1 errors at rate p0 for `CHANGE` rows, then 2 x p0 (the error rate doubles at
a known row); and 300k rows at a constant rate (no change). Every detector, with its
default settings, sees the same streams. Delay = rows after the change until the first
alarm at or after it; a false alarm = an alarm before the change, or any alarm on the
no-change stream.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tether.monitoring.detectors import BernoulliCUSUM, PageHinkley

CHANGE = 5000
AFTER = 10_000
NO_CHANGE_ROWS = 300_000


def fire_indices(detector: Any, stream: list[float]) -> list[int]:
    fired = []
    for index, value in enumerate(stream):
        detector.update(value)
        if detector.drift_detected:
            fired.append(index)
    return fired


def detectors() -> dict[str, Callable[[], Any]]:
    from river.drift import ADWIN

    return {"river ADWIN (defaults)": ADWIN, "tether BernoulliCUSUM": BernoulliCUSUM,
            "tether PageHinkley": PageHinkley}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--no-change-seeds", type=int, default=3)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2])
    args = parser.parse_args()
    makers = detectors()
    print(f"abrupt change: rate p0 for {CHANGE} rows, then 2 x p0 for {AFTER} rows, "
          f"{args.seeds} seeds; no change: {NO_CHANGE_ROWS:,} rows x {args.no_change_seeds} "
          "seeds\n")
    print("| p0 | detector | median delay (rows) | vs ADWIN | missed | false alarms before "
          "change | false alarms, no-change rows | seconds |")
    print("|" + "---|" * 8)
    for rate in args.rates:
        streams = []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            streams.append(np.r_[rng.random(CHANGE) < rate,
                                 rng.random(AFTER) < 2 * rate].astype(float).tolist())
        quiet = [(np.random.default_rng(10_000 + s).random(NO_CHANGE_ROWS) < rate)
                 .astype(float).tolist() for s in range(args.no_change_seeds)]
        baseline_delay = None
        for name, make in makers.items():
            started = time.perf_counter()
            delays, missed, early = [], 0, 0
            for stream in streams:
                fired = fire_indices(make(), stream)
                early += sum(i < CHANGE for i in fired)
                after = [i for i in fired if i >= CHANGE]
                if after:
                    delays.append(after[0] - CHANGE)
                else:
                    missed += 1
            false_alarms = sum(len(fire_indices(make(), stream)) for stream in quiet)
            seconds = time.perf_counter() - started
            delay = statistics.median(delays) if delays else float("nan")
            if baseline_delay is None:
                baseline_delay = delay
            print(f"| {rate} | {name} | {delay:.0f} | {delay / baseline_delay:.2f} | "
                  f"{missed}/{len(streams)} | {early} | {false_alarms} | {seconds:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
