"""Turning a `dataframe_split` body into the model's typed rows, in one process, one core.

Run by hand from the repository root:

    .venv/bin/python benchmarks/serving/validation.py [--repeat 300]

The example project's loan rows (7 float and 2 text columns, as the HistGradientBoosting
and LightGBM rows of the serving benchmark send them), 1 and 100 rows per body.
"per value" is the way mixed signatures were built before (`pd.DataFrame` from the row
lists, pandas inferring every value, then each column checked and cast), still the way
for bodies the column path sends back (nulls, datetimes); "column by column" is
`Validator.split` as it is. Both give the same frame (checked here). Fastest of 5 batches
of --repeat calls each.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from tether.example.loans import TARGET, generate
from tether.registry import ColumnSpec
from tether.serving.validation import Validator


def best_ms(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        times.append((time.perf_counter() - started) / repeat)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    frame = generate(n=100, seed=0).drop(columns=[TARGET])
    specs = [ColumnSpec(name, "string" if frame[name].dtype.kind in "OTU" or
                        str(frame[name].dtype) in ("str", "string") else "double")
             for name in frame.columns]
    frame = frame.astype({s.name: float for s in specs if s.dtype == "double"})
    check = Validator(specs, allow_nan=False)
    print(f"load average: {os.getloadavg()}; columns: "
          + ", ".join(f"{s.name} ({s.dtype})" for s in specs))
    print("\n| rows | per value ms | column by column ms | per value / column by column |")
    print("|---|---|---|---|")
    for rows in (1, 100):
        body = {"columns": list(frame.columns), "data": frame.head(rows).values.tolist()}
        columns, data = body["columns"], body["data"]

        def per_value(data: list[Any] = data, columns: list[str] = columns) -> pd.DataFrame:
            return check.frame(pd.DataFrame(data, columns=columns))

        def column_by_column(body: dict[str, Any] = body) -> Any:
            return check.split(body)

        pd.testing.assert_frame_equal(column_by_column(), per_value())
        before = best_ms(per_value, args.repeat)
        after = best_ms(column_by_column, args.repeat)
        print(f"| {rows} | {before:.3f} | {after:.3f} | {before / after:.1f}x |")


if __name__ == "__main__":
    main()
