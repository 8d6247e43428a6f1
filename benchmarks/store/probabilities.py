"""What keeping a multiclass model's class probabilities costs the prediction log.

Writes N predictions of 13 float features (wine sized) in flushes of 5,000 rows, as the
model server's log does, into a fresh SQLite file, then reads the newest 5,000 back as a
window (what a monitoring snapshot reads): once with one score a row (the baseline, as a
binary model is logged) and once with k class probabilities a row as well. Same machine,
same run, interleaved; each figure beside the baseline as a ratio.

    PYTHONPATH=src python benchmarks/store/probabilities.py [--rows 200000] [--classes 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from log_timing import FLUSH_ROWS, write_then_read

from tether.store import Outputs


def run(folder: Path, rows: int, classes: int, rng: np.random.Generator) -> dict[str, float]:
    return write_then_read(
        folder / f"store-{classes}.db", rows, rng,
        lambda n, ts: Outputs(ts=np.full(n, ts), prediction=np.ones(n),
                              score=np.full(n, np.nan if classes else 0.7),
                              latency_ms=np.full(n, 2.0), error=np.zeros(n, dtype=bool),
                              proba=rng.dirichlet(np.ones(classes), size=n) if classes
                              else None))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--classes", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # interleaved, twice each, the better of two per figure: the first run of a process
    # pays for imports and a cold page cache
    runs: dict[int, list[dict[str, float]]] = {0: [], args.classes: []}
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(2):
            for classes in (0, args.classes):
                folder = Path(scratch) / f"{attempt}"
                folder.mkdir(exist_ok=True)
                runs[classes].append(run(folder, args.rows, classes, rng))
    base, kept = ({key: min(r[key] for r in runs[k]) for key in runs[k][0]}
                  for k in (0, args.classes))
    print(f"{args.rows:,} predictions, 13 features, flushes of {FLUSH_ROWS:,}, SQLite")
    print("| log | us per prediction written | ms to read a 5,000-row window | MB on disk |")
    print("|---|---|---|---|")
    print(f"| one score a row (baseline) | {base['write_us']:.2f} | {base['read_ms']:.1f} | "
          f"{base['mb']:.1f} |")
    print(f"| {args.classes} class probabilities a row | {kept['write_us']:.2f} "
          f"({kept['write_us'] / base['write_us']:.2f}x) | {kept['read_ms']:.1f} "
          f"({kept['read_ms'] / base['read_ms']:.2f}x) | {kept['mb']:.1f} "
          f"({kept['mb'] / base['mb']:.2f}x) |")


if __name__ == "__main__":
    main()
