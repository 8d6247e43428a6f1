"""`tether drift` on files, as a user runs it, beside Evidently's DataDriftPreset.

Run by hand from the repository root:

    .venv/bin/python benchmarks/monitoring/drift_files.py
        [--rows 300000 1000000] [--formats csv parquet] [--repeat 3] [--before DIR/src]

Each figure is a fresh process timed from start to exit, files on disk (written once to
benchmarks/.cache/drift-files/, gitignored): `tether drift --reference A --current B
--json`, and a script in Evidently's own venv (benchmarks/.venv-evidently, Evidently
0.7.23) that reads both files with pandas and runs `Report([DataDriftPreset()])`.
20 numeric columns, the last six shifted by 0.02-0.5 reference standard deviations (as
drift_vs_evidently.py). At these sizes both tools pick the normed Wasserstein distance,
threshold 0.1, so the verdicts compare column by column.

`--before` adds `tether drift` from another checkout's `src` folder (e.g. `git worktree
add /tmp/before <commit>`), run the same way in the same run.

Also printed, to show where tether's time goes: the same drift path without the CLI
(read, profile, compare, JSON: a `python -c` of the library calls `tether drift` makes),
`python -c "import tether.cli"`, and reading both files with tether's reader, pandas
(`read_csv` / `read_parquet`) and pyarrow (`csv.read_csv`, multithreaded, /
`parquet.read_table`, then `to_pandas`), fastest of --repeat in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from drift_vs_evidently import SHIFTS, ensure_venv

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "benchmarks" / ".cache" / "drift-files"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MLFLOW_DISABLE_TELEMETRY": "true",
       "DO_NOT_TRACK": "true"}

DRIFT_PATH = """
import json, sys
from pathlib import Path
from tether.tables import read_columns
from tether.monitoring.profile import build_profile
from tether.monitoring.drift import detect_drift
reference, current = read_columns(Path(sys.argv[1])), read_columns(Path(sys.argv[2]))
report = detect_drift(build_profile(reference), current)
sys.stdout.write(json.dumps(report.as_dict(), default=str))
"""

READERS = """
import sys, time
from pathlib import Path
import pandas as pd
from pyarrow import csv, parquet
from tether.tables import read_columns
paths, repeat = [Path(p) for p in sys.argv[1:3]], int(sys.argv[3])
def pandas_read(path):
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
def arrow_read(path):
    reader = parquet.read_table if path.suffix == ".parquet" else csv.read_csv
    return reader(path).to_pandas()
for name, read in (("pandas", pandas_read), ("pyarrow", arrow_read), ("tether", read_columns)):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        read(paths[0]), read(paths[1])
        times.append(time.perf_counter() - started)
    print(name, min(times))
"""


def make_files(rows: int) -> dict[str, tuple[Path, Path]]:
    """Reference and current as CSV and Parquet, generated once and cached."""
    import numpy as np
    import pandas as pd

    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {fmt: (CACHE / f"reference-{rows}.{fmt}", CACHE / f"current-{rows}.{fmt}")
             for fmt in ("csv", "parquet")}
    if all(p.exists() for pair in paths.values() for p in pair):
        return paths
    rng = np.random.default_rng(rows)
    reference, current = {}, {}
    for i, shift in enumerate(SHIFTS):
        if i % 2:
            ref, cur = rng.lognormal(0.0, 0.5, rows), rng.lognormal(0.0, 0.5, rows)
        else:
            ref, cur = rng.normal(10.0, 2.0, rows), rng.normal(10.0, 2.0, rows)
        reference[f"f{i:02d}"] = ref
        current[f"f{i:02d}"] = cur + shift * ref.std()
    for frame, index in ((pd.DataFrame(reference), 0), (pd.DataFrame(current), 1)):
        frame.to_csv(paths["csv"][index], index=False)
        frame.to_parquet(paths["parquet"][index])
    return paths


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env or ENV)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{command[:3]} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done.stdout


def tether_verdicts(output: str) -> dict[str, bool]:
    report = json.loads(output)
    return {f["name"]: bool(f["drifted"]) for f in report["features"]}


def evidently_worker(reference: str, current: str) -> None:
    """Runs in Evidently's venv: read with pandas, run the preset, print the verdicts."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def read(path: str) -> pd.DataFrame:
        return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)

    result = Report([DataDriftPreset()]).run(current_data=read(current),
                                             reference_data=read(reference)).dict()
    verdicts = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            value, threshold = float(metric["value"]), float(config["threshold"])
            tested = "p_value" in config["method"].lower()
            verdicts[config["column"]] = value < threshold if tested else value >= threshold
    print(json.dumps(verdicts))


def load() -> str:
    return os.getloadavg().__repr__()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[300_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "parquet"])
    parser.add_argument("--repeat", type=int, default=3, help="tether runs per figure")
    parser.add_argument("--evidently-repeat", type=int, default=1)
    parser.add_argument("--before", type=Path, help="another checkout's src folder")
    parser.add_argument("--evidently-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evidently_worker:
        evidently_worker(*args.evidently_worker)
        return
    evidently = ensure_venv()
    print(f"load average at start: {load()}", flush=True)
    import_cli = min(timed([sys.executable, "-c", "import tether.cli"])[0]
                     for _ in range(args.repeat))
    python_pass = min(timed([sys.executable, "-c", "pass"])[0] for _ in range(args.repeat))
    print(f"python -c pass: {python_pass:.3f} s; python -c 'import tether.cli': "
          f"{import_cli:.3f} s\n", flush=True)
    print("| rows/side | format | what | seconds (median; min) | Evidently / this | "
          "verdicts equal |")
    print("|---|---|---|---|---|---|")
    for rows in args.rows:
        paths = make_files(rows)
        for fmt in args.formats:
            reference, current = (str(p) for p in paths[fmt])
            ev_runs = [timed([str(evidently), __file__, "--evidently-worker", reference,
                              current]) for _ in range(args.evidently_repeat)]
            ev_seconds = statistics.median(s for s, _ in ev_runs)
            ev_verdicts = json.loads(ev_runs[0][1].strip().splitlines()[-1])
            rows_out = [("Evidently (process start to exit)", [s for s, _ in ev_runs],
                         ev_verdicts)]
            cli = [timed([str(BIN / "tether"), "drift", "--reference", reference,
                          "--current", current, "--json"]) for _ in range(args.repeat)]
            rows_out.append(("`tether drift` (process start to exit)", [s for s, _ in cli],
                             tether_verdicts(cli[0][1])))
            if args.before is not None:
                before_env = {**ENV, "PYTHONPATH": str(args.before.resolve())}
                runs = [timed([sys.executable, "-m", "tether", "drift", "--reference",
                               reference, "--current", current, "--json"], before_env)
                        for _ in range(args.repeat)]
                rows_out.append((f"`tether drift` from {args.before}", [s for s, _ in runs],
                                 tether_verdicts(runs[0][1])))
            path_only = [timed([sys.executable, "-c", DRIFT_PATH, reference, current])
                         for _ in range(args.repeat)]
            rows_out.append(("tether's drift path without the CLI's imports",
                             [s for s, _ in path_only], tether_verdicts(path_only[0][1])))
            for what, seconds, verdicts in rows_out:
                same = sum(verdicts.get(c) == v for c, v in ev_verdicts.items())
                median = statistics.median(seconds)
                print(f"| {rows:,} | {fmt} | {what} | {median:.2f}; {min(seconds):.2f} | "
                      f"{ev_seconds / median:.0f}x | {same}/{len(ev_verdicts)} |", flush=True)
            readers = subprocess.run([sys.executable, "-c", READERS, reference, current,
                                      str(args.repeat)], capture_output=True, text=True,
                                     env=ENV, check=True).stdout.split()
            figures = dict(zip(readers[::2], map(float, readers[1::2]), strict=True))
            print(f"| {rows:,} | {fmt} | reading both files (fastest of {args.repeat}): tether "
                  f"{figures['tether']:.2f} s, pandas {figures['pandas']:.2f} s, pyarrow "
                  f"(multithreaded) {figures['pyarrow']:.2f} s | | | |", flush=True)
            drifted = sorted(c for c, v in ev_verdicts.items() if v)
            print(f"|  |  | (Evidently flags {', '.join(drifted) or 'none'}) | | | |")
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
