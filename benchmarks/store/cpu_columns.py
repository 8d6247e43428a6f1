"""What keeping each model call's CPU time and batch size costs the prediction log.

Writes N predictions of 13 float features in flushes of 5,000 rows, as the model
server's log does, into a fresh SQLite file, then reads the newest 5,000 back as a
window: once in the five-column outputs layout written before the two columns were kept
(the baseline), once in the current layout (a marker word, then seven columns). Same
machine, same run, interleaved, the best of `--rounds`; each figure beside the baseline as a ratio.

    PYTHONPATH=src python benchmarks/store/cpu_columns.py [--rows 200000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from log_timing import FLUSH_ROWS, write_then_read

from tether.store import Outputs, codec, writes


def five_columns(outputs: Outputs) -> bytes:
    """The layout before the model's CPU time and batch size were kept."""
    return np.stack([outputs.ts, outputs.prediction, outputs.score, outputs.latency_ms,
                     outputs.error]).astype("<f8").tobytes()


def run(folder: Path, rows: int, encode: Callable[[Outputs], bytes],
        rng: np.random.Generator) -> dict[str, float]:
    writes.encode_outputs = encode  # the writer's encoder, swapped for the baseline
    return write_then_read(
        folder / f"store-{encode.__name__}.db", rows, rng,
        lambda n, ts: Outputs(ts=np.full(n, ts), prediction=np.ones(n),
                              score=np.full(n, 0.7), latency_ms=np.full(n, 2.0),
                              error=np.zeros(n, dtype=bool), model_cpu_ms=np.full(n, 0.4),
                              batch_rows=np.full(n, 3.0)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    layouts = {"five": five_columns, "seven": codec.encode_outputs}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in layouts}
    # interleaved, the order reversed every other round, the best of the rounds per
    # figure: the first run of a process pays for imports and a cold page cache
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for attempt in range(args.rounds):
                order = list(layouts.items())
                for name, encode in (order if attempt % 2 == 0 else order[::-1]):
                    folder = Path(scratch) / f"{attempt}"
                    folder.mkdir(exist_ok=True)
                    runs[name].append(run(folder, args.rows, encode, rng))
    finally:
        writes.encode_outputs = codec.encode_outputs
    base, kept = ({key: min(r[key] for r in runs[name]) for key in runs[name][0]}
                  for name in layouts)
    print(f"{args.rows:,} predictions, 13 features, flushes of {FLUSH_ROWS:,}, SQLite")
    print("| outputs layout | us per prediction written | ms to read a 5,000-row window "
          "| MB on disk |")
    print("|---|---|---|---|")
    print(f"| five columns (baseline) | {base['write_us']:.2f} | {base['read_ms']:.1f} | "
          f"{base['mb']:.1f} |")
    print(f"| seven columns, with CPU time and batch size | {kept['write_us']:.2f} "
          f"({kept['write_us'] / base['write_us']:.2f}x) | {kept['read_ms']:.1f} "
          f"({kept['read_ms'] / base['read_ms']:.2f}x) | {kept['mb']:.1f} "
          f"({kept['mb'] / base['mb']:.2f}x) |")


if __name__ == "__main__":
    main()
