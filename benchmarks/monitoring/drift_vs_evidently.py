"""Drift on 20 numeric features: tether vs Evidently's DataDriftPreset, same data, same run.

Run by hand from the repository root:

    PYTHONPATH=src .venv/bin/python benchmarks/monitoring/drift_vs_evidently.py
        [--rows 100000 1000000] [--methods default ks]

Evidently is installed only in `benchmarks/.venv-evidently` (created on first run,
gitignored). Every measurement runs in a fresh subprocess: time is wall clock of the
drift computation on data already in memory; memory is the peak resident set size above
the process's peak after loading the data (ru_maxrss), i.e. what the computation adds.

tether is timed twice: "full" (profile the reference, then check: what `tether drift`
does with two files) and "check" (the profile is already saved with the model version:
what the monitor does on every window).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "benchmarks" / ".venv-evidently"
FEATURES = 20
# Mean shifts in reference standard deviations; normed Wasserstein ~ shift, threshold 0.1.
SHIFTS = [0.0] * 14 + [0.02, 0.05, 0.08, 0.12, 0.2, 0.5]


def make_data(rows: int, folder: Path) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(rows)
    columns = {}
    current = {}
    for i, shift in enumerate(SHIFTS):
        if i % 2:
            ref = rng.lognormal(0.0, 0.5, rows)
            cur = rng.lognormal(0.0, 0.5, rows)
        else:
            ref = rng.normal(10.0, 2.0, rows)
            cur = rng.normal(10.0, 2.0, rows)
        columns[f"f{i:02d}"] = ref
        current[f"f{i:02d}"] = cur + shift * ref.std()
    reference_path, current_path = folder / f"ref{rows}.parquet", folder / f"cur{rows}.parquet"
    pd.DataFrame(columns).to_parquet(reference_path)
    pd.DataFrame(current).to_parquet(current_path)
    return reference_path, current_path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(tool: str, reference_path: str, current_path: str, method: str) -> None:
    import pandas as pd

    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    verdicts: dict[str, bool] = {}
    scores: dict[str, float] = {}
    if tool == "evidently":
        from evidently import Report
        from evidently.presets import DataDriftPreset

        preset = DataDriftPreset() if method == "default" else DataDriftPreset(method=method)
        baseline = _peak_mb()
        started = time.perf_counter()
        result = Report([preset]).run(current_data=current, reference_data=reference).dict()
        seconds = time.perf_counter() - started
        for metric in result["metrics"]:
            config = metric["config"]
            if config.get("type", "").endswith("ValueDrift"):
                value, threshold = float(metric["value"]), float(config["threshold"])
                tested = "p_value" in config["method"].lower() or method == "ks"
                verdicts[config["column"]] = value < threshold if tested else value >= threshold
                scores[config["column"]] = value
    else:
        from tether.monitoring.drift import detect_drift
        from tether.monitoring.profile import Profile, build_profile

        chosen = None if method == "default" else method
        if tool == "tether-check":
            profile = Profile.from_dict(json.loads(Path(reference_path + ".profile.json")
                                                   .read_text()))
            del reference
            baseline = _peak_mb()
            started = time.perf_counter()
        else:
            baseline = _peak_mb()
            started = time.perf_counter()
            profile = build_profile(reference)
        report = detect_drift(profile, current, method=chosen)
        seconds = time.perf_counter() - started
        for feature in report.features:
            # Evidently does not correct p-values across features: compare raw p-values.
            verdicts[feature.name] = (bool(feature.p_value is not None and feature.p_value < 0.05)
                                      if feature.method == "ks" else bool(feature.drifted))
            scores[feature.name] = float(feature.p_value if feature.method == "ks"
                                         else feature.score or 0.0)
        if tool == "tether":
            Path(reference_path + ".profile.json").write_text(json.dumps(profile.as_dict()))
    print(json.dumps({"seconds": seconds, "peak_mb": max(_peak_mb() - baseline, 0.0),
                      "verdicts": verdicts, "scores": scores}))


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "evidently==0.7.23",
                        "pandas<2.3", "pyarrow"], check=True)
    return python


def measure(python: Path, tool: str, paths: tuple[Path, Path], method: str,
            repeat: int) -> dict:
    """The fastest of `repeat` fresh processes (the box is shared; the minimum is the
    least disturbed run), with the smallest peak memory seen."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    runs = []
    for _ in range(repeat):
        output = subprocess.run(
            [str(python), __file__, "--worker", tool, str(paths[0]), str(paths[1]), method],
            check=True, capture_output=True, text=True, env=env).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "peak_mb": min(r["peak_mb"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", default=["default", "ks"])
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs per measurement below 1M rows (1 at 1M and above).")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    evidently_python = ensure_venv()
    print(f"{FEATURES} numeric features; shifts (in sd) {SHIFTS[-6:]} on the last six\n")
    header = ("| rows/side | method | tool | seconds | vs Evidently | peak MB | vs Evidently "
              "| verdicts equal |")
    print(header)
    print("|" + "---|" * 8)
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.rows:
            paths = make_data(rows, Path(scratch))
            repeat = args.repeat if rows < 1_000_000 else 1
            for method in args.methods:
                baseline = measure(evidently_python, "evidently", paths, method, repeat)
                full = measure(Path(sys.executable), "tether", paths, method, repeat)
                check = measure(Path(sys.executable), "tether-check", paths, method, repeat)
                label = "preset default (Wasserstein)" if method == "default" else method
                print(f"| {rows:,} | {label} | Evidently | {baseline['seconds']:.2f} | 1 | "
                      f"{baseline['peak_mb']:.0f} | 1 | |")
                for name, result in (("tether full", full), ("tether check", check)):
                    same = sum(result["verdicts"][c] == baseline["verdicts"][c]
                               for c in baseline["verdicts"])
                    print(f"| {rows:,} | {label} | {name} | {result['seconds']:.3f} | "
                          f"{baseline['seconds'] / result['seconds']:.0f}x faster | "
                          f"{result['peak_mb']:.0f} | "
                          f"{result['peak_mb'] / max(baseline['peak_mb'], 1):.2f} | "
                          f"{same}/{len(baseline['verdicts'])} |", flush=True)
                drifted = sorted(c for c, v in baseline["verdicts"].items() if v)
                print(f"|  |  | (Evidently flags {', '.join(drifted) or 'none'}) | | | | | |")


if __name__ == "__main__":
    main()
