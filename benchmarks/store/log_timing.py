"""What the store benchmarks time: flushes of a prediction log written into a fresh
SQLite store, then the newest 5,000 rows read back as a window (what a monitoring
snapshot reads)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tether.store import Outputs, PredictionBatch, Store

FLUSH_ROWS = 5_000
COLUMNS = [f"f{i}" for i in range(13)]


def write_then_read(path: Path, rows: int, rng: np.random.Generator,
                    outputs: Callable[[int, float], Outputs]) -> dict[str, float]:
    """Log `rows` predictions of 13 float features in flushes of FLUSH_ROWS, each flush's
    outputs from `outputs(n, ts)`; microseconds written per row, milliseconds per window
    read, megabytes on disk."""
    store = Store(f"sqlite:///{path}")
    now = time.time()
    written = 0.0
    for start in range(0, rows, FLUSH_ROWS):
        n = min(FLUSH_ROWS, rows - start)
        batch = PredictionBatch(
            model_name="m", model_version=1, route="champion",
            ids=[f"req-{start + i:012x}" for i in range(n)],
            features=pd.DataFrame(rng.normal(size=(n, len(COLUMNS))), columns=COLUMNS),
            outputs=outputs(n, now + start))
        began = time.perf_counter()
        store.log_batches([batch])
        written += time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(5):
        window = store.prediction_window("m", limit=5_000)
    read = (time.perf_counter() - began) / 5
    assert len(window) == 5_000
    store.close()
    return {"write_us": written / rows * 1e6, "read_ms": read * 1000,
            "mb": path.stat().st_size / 1e6}
