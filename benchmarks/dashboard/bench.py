"""How fast the dashboard's endpoints answer over a store with millions of predictions.

Fills a SQLite store with N predictions (default 2,000,000) over the last 24 hours
(v1, then v2 with a v3 canary for the last 6 hours; 30% labeled), written as the
model server's log writes it (one batch per second of traffic), kept in
benchmarks/.cache/ for the next run, then times each endpoint through a real uvicorn
server on 127.0.0.1 against the baseline the dashboard replaces: loading the same
window into pandas with `Store.prediction_window` and aggregating it there.

    PYTHONPATH=src python benchmarks/dashboard/bench.py [--rows 2000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tether.store import Store

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "benchmarks" / ".cache"
MODEL = "loan-default"
DAY = 86400.0


def fill(store_path: Path, rows: int, now: float) -> None:
    """As the model server's log writes them: one batch per second of traffic."""
    import pandas as pd

    from tether.store import Outputs, PredictionBatch

    store = Store(f"sqlite:///{store_path}")
    rng = np.random.default_rng(0)
    per_second = rows / DAY
    chunk = 3600  # seconds of traffic per call
    written = 0
    started = time.perf_counter()
    for hour_start in range(0, int(DAY), chunk):
        batches = []
        labels: list[tuple[str, float]] = []
        for second in range(hour_start, hour_start + chunk):
            n = int((second + 1) * per_second) - int(second * per_second)
            if n == 0:
                continue
            t0 = now - DAY + second
            late = second > DAY - 6 * 3600
            champion = 2 if second > DAY - 16 * 3600 else 1
            for version, route, share in ((champion, "champion", 0.9 if late else 1.0),
                                          (3, "canary", 0.1 if late else 0.0)):
                k = round(n * share)
                if k == 0:
                    continue
                ids = [f"p{written + i:09d}" for i in range(k)]
                written += k
                scores = rng.beta(2, 5, k)
                latency = rng.lognormal(1.5, 0.5, k)
                batches.append(PredictionBatch(
                    model_name=MODEL, model_version=version, route=route, ids=ids,
                    features=pd.DataFrame({"income": np.round(latency * 9000, 2),
                                           "credit_score": 600 + np.arange(k) % 200,
                                           "purpose": ["car"] * k}),
                    outputs=Outputs(ts=t0 + np.sort(rng.uniform(0, 1, k)),
                                    prediction=(scores >= 0.5).astype(float), score=scores,
                                    latency_ms=latency, error=rng.random(k) < 0.002)))
                labeled = rng.random(k) < 0.3
                labels += [(pid, float(rng.random() < s))
                           for pid, s, keep in zip(ids, scores, labeled, strict=True) if keep]
        store.log_batches(batches, skip_duplicates=False)
        for start in range(0, len(labels), 5000):
            store.add_feedback(labels[start:start + 5000])
        print(f"\r  filled {written:,}/{rows:,} ({time.perf_counter() - started:.0f} s)",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    store.close()


def pandas_baseline(store: Store, since: float, bucket: float) -> int:
    """What the endpoints replace: the window into pandas, then group by bucket and version."""
    frame = store.prediction_window(MODEL, since=since)
    frame["bucket"] = (frame["ts"] // bucket) * bucket
    grouped = frame.groupby(["bucket", "model_version"])
    table = grouped.agg(requests=("id", "size"), errors=("error", "sum"),
                        p99=("latency_ms", lambda s: s.quantile(0.99)),
                        labeled=("label", "count"))
    return len(table)


def timed(function: Callable[[], object], repeat: int) -> float:
    function()  # warm the caches, as a page that polls does
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import httpx
    import uvicorn

    from tether.dashboard.app import create_dashboard_app
    from tether.project import Project
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"dashboard-v3-{args.rows}.db"
    meta = CACHE / f"dashboard-v3-{args.rows}.now"
    if not cached.exists() or not meta.exists():
        print(f"building a store with {args.rows:,} predictions in {cached}", file=sys.stderr)
        now = time.time()
        partial = cached.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        fill(partial, args.rows, now)
        partial.rename(cached)
        meta.write_text(str(now))
    now = float(meta.read_text())

    folder = Path(tempfile.mkdtemp(prefix="tether-bench-dashboard-"))
    example = ROOT / "src" / "tether" / "example" / "project"
    shutil.copyfile(example / "train.py", folder / "train.py")
    (folder / "tether.yaml").write_text((example / "tether.yaml").read_text())
    os.environ["TETHER_STORE_URL"] = f"sqlite:///{cached}"
    project = Project.open(folder / "tether.yaml")
    app = create_dashboard_app(project, admin_token=None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
    store = Store(f"sqlite:///{cached}")
    age = time.time() - now  # the cached store was filled earlier: look back from its "now"

    def get(path: str, **params: object) -> Callable[[], object]:
        def call() -> object:
            response = client.get(path, params={k: str(v) for k, v in params.items()})
            response.raise_for_status()
            return response.json()
        return call

    rows = []
    for hours, bucket in ((1, 30), (6, 300), (24, 900)):
        window = hours * 3600 + age
        since = time.time() - window
        count = store.count_predictions(MODEL, since=since)
        for metric in ("roc_auc", "accuracy"):
            endpoint = timed(get("/api/timeseries", window=window, bucket=bucket,
                                 metric=metric), args.repeat)
            rows.append((f"/api/timeseries {hours}h {metric}", count, endpoint))
        baseline = timed(lambda since=since, bucket=bucket: pandas_baseline(store, since,
                                                                            bucket), 1)
        rows.append((f"pandas window {hours}h (baseline)", count, baseline))
    # a bucket width that is not whole 5 s: the rows of the window, aggregated in numpy
    window = 3600 + age
    odd = math.ceil(window / 500) + (math.ceil(window / 500) % 5 == 0)  # <= 500 buckets
    count = store.count_predictions(MODEL, since=time.time() - window)
    rows.append((f"/api/timeseries 1h accuracy, {odd} s buckets", count,
                 timed(get("/api/timeseries", window=window, bucket=odd, metric="accuracy"),
                       args.repeat)))
    rows.append(("/api/events", 0, timed(get("/api/events"), args.repeat)))
    rows.append(("/api/state", 0, timed(get("/api/state"), args.repeat)))
    current = timed(lambda: store.prediction_window(MODEL, version=2, limit=1000), args.repeat)
    rows.append(("drift's current window (1000 rows)", 1000, current))

    baselines = {r[0].split()[2]: r[2] for r in rows if "baseline" in r[0]}
    print(f"\nSQLite store: {args.rows:,} predictions over 24 h, 30% labeled; "
          f"median of {args.repeat} (baseline: 1 run)\n")
    print(f"| {'what':<38} | {'rows in window':>14} | {'seconds':>8} | {'vs pandas':>9} |")
    print(f"|{'-' * 40}|{'-' * 16}|{'-' * 10}|{'-' * 11}|")
    for name, count, seconds in rows:
        span = name.split()[1] if name.startswith("/api/timeseries") else None
        ratio = (f"{baselines[span] / seconds:.0f}x" if span in baselines else "")
        print(f"| {name:<38} | {count:>14,} | {seconds:>8.3f} | {ratio:>9} |")
    server.should_exit = True
    thread.join(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
