"""What logging a prediction costs: tether's batched store against one row per prediction.

Writes N predictions of 30 float features (breast-cancer sized) in flushes of 5,000 rows,
as the model server's log does, into a fresh SQLite file, and times the whole write:
encoding and the transaction. Baseline: the common layout of one table row per
prediction with its features as a JSON document, indexed by id, time and
(model, version, time), inserted with `executemany`.

    PYTHONPATH=src python benchmarks/store/write.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tether.store import Outputs, PredictionBatch, Store

FLUSH_ROWS = 5_000
COLUMNS = [f"f{i}" for i in range(30)]


def flushes(rows: int, rng: np.random.Generator) -> list[tuple[list[str], np.ndarray]]:
    found = []
    for start in range(0, rows, FLUSH_ROWS):
        n = min(FLUSH_ROWS, rows - start)
        found.append(([f"req-{start + i:012x}" for i in range(n)], rng.normal(size=(n, 30))))
    return found


def tether_write(folder: Path, data: list[tuple[list[str], np.ndarray]], now: float) -> float:
    store = Store(f"sqlite:///{folder / 'tether.db'}")
    started = time.perf_counter()
    for ids, matrix in data:
        n = len(ids)
        store.log_batches([PredictionBatch(
            model_name="m", model_version=1, route="champion", ids=ids,
            features=pd.DataFrame(matrix, columns=COLUMNS),
            outputs=Outputs(ts=np.full(n, now), prediction=np.ones(n), score=np.full(n, 0.7),
                            latency_ms=np.full(n, 2.0), error=np.zeros(n, dtype=bool)))])
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def row_per_prediction_write(folder: Path, data: list[tuple[list[str], np.ndarray]],
                             now: float) -> float:
    db = sqlite3.connect(folder / "rows.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE predictions (id TEXT PRIMARY KEY, ts REAL, model_name TEXT, "
               "model_version INTEGER, route TEXT, features TEXT, prediction REAL, "
               "score REAL, latency_ms REAL, error INTEGER)")
    db.execute("CREATE INDEX ix_ts ON predictions (ts)")
    db.execute("CREATE INDEX ix_model_version_ts ON predictions (model_name, model_version, ts)")
    started = time.perf_counter()
    for ids, matrix in data:
        rows = [(pid, now, "m", 1, "champion", json.dumps(dict(zip(COLUMNS, values,
                                                                   strict=True))),
                 1.0, 0.7, 2.0, 0)
                for pid, values in zip(ids, matrix.tolist(), strict=True)]
        db.execute("BEGIN")
        db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    data = flushes(args.rows, np.random.default_rng(0))
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = tether_write(folder, data, now)
        baseline = row_per_prediction_write(folder, data, now)
        sizes = {name: (folder / name).stat().st_size + (folder / f"{name}-wal").stat().st_size
                 if (folder / f"{name}-wal").exists() else (folder / name).stat().st_size
                 for name in ("tether.db", "rows.db")}
    print(f"\n{args.rows:,} predictions, 30 float features, flushes of {FLUSH_ROWS:,} rows, "
          "SQLite\n")
    print("| store | us per prediction | rows/s | MB on disk |")
    print("|---|---|---|---|")
    for name, seconds, size in (("tether (batched)", ours, sizes["tether.db"]),
                                ("one row per prediction, JSON features (baseline)", baseline,
                                 sizes["rows.db"])):
        print(f"| {name} | {seconds / args.rows * 1e6:.2f} | {args.rows / seconds:,.0f} | "
              f"{size / 1e6:.1f} |")
    print(f"\ntether writes {baseline / ours:.1f}x faster than the baseline, "
          f"{sizes['rows.db'] / sizes['tether.db']:.1f}x smaller")


if __name__ == "__main__":
    main()
