"""`tether serve` from two source trees on the same model, interleaved in one run.

Did a change cost serving throughput or latency? Run by hand from the repository root
(needs `wrk` and `taskset`; a few minutes):

    PYTHONPATH=src .venv/bin/python benchmarks/serving/before_after.py \\
        --before /path/to/the/other/checkout/src [--rounds 3] [--seconds 6]

Both sides serve the same registered version of a model trained by tether on the example
loan data (OneHotEncoder + StandardScaler + LogisticRegression, so the model call is
cheap and the server's own work shows), with its training profile, from the same
registry and store, as `tether serve` runs it in production: validation, the prediction
log, metrics, and (since the composition root) the monitoring gauges computed in a
thread every `monitoring.interval_seconds` (`--interval`, default 1 s: ten times the
shipped default, the worst case). Each round runs both sides, in alternating order, for
1- and 100-row `dataframe_split` requests at 8 and 32 connections; the server is pinned
to CPU 0 and `wrk -t1` to CPU 1. The table gives medians over rounds and after/before,
with the server's CPU time per request (user + system, every thread, from /proc): on a
shared machine the CPU a request costs moves far less than what a neighbour leaves of
the wall clock.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import orjson
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import ENV, PYTHON, start, stop, wrk  # noqa: E402

from tether.net import free_port, wait_http  # noqa: E402

TRAINER = '''
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CATEGORICAL = ["home_ownership", "purpose"]


def train(ctx):
    encode = ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore"),
                                 CATEGORICAL)], remainder=StandardScaler())
    return make_pipeline(encode, LogisticRegression(max_iter=500)).fit(ctx.X, ctx.y)
'''


def project(folder: Path, interval: float) -> Path:
    """The example policy with the benchmark's trainer, trained and promoted once."""
    from tether import lifecycle
    from tether.project import Project

    example = Path(__file__).resolve().parents[2] / "src" / "tether" / "example" / "project"
    policy = yaml.safe_load((example / "tether.yaml").read_text())
    policy["trainer"] = "bench_train:train"
    policy["trainer_params"] = {}
    policy["data"]["params"] = {"n": 4000, "seed": 1}
    policy.setdefault("monitoring", {})["interval_seconds"] = interval
    folder.mkdir(parents=True)
    (folder / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    (folder / "bench_train.py").write_text(TRAINER)
    os.environ["TETHER_HOME"] = str(folder / ".tether")
    opened = Project.open(folder / "tether.yaml")
    result = lifecycle.train(opened, reason="benchmark")
    lifecycle.promote(opened, result.version, "benchmark")
    return folder / "tether.yaml"


def bodies(folder: Path) -> dict[int, Path]:
    from tether.example.loans import TARGET, generate

    features = generate(n=100, seed=7).drop(columns=[TARGET])
    out = {}
    for rows in (1, 100):
        split = features.head(rows).to_dict("split")
        path = folder / f"body-{rows}.json"
        path.write_bytes(orjson.dumps({"dataframe_split": {"columns": split["columns"],
                                                           "data": split["data"]}}))
        out[rows] = path
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (fields 14 and 15 of stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(source: str, config: Path, home: Path, body_paths: dict[int, Path],
            seconds: float, log: Path) -> dict[tuple[int, int], dict[str, float]]:
    port = free_port()
    env = {**ENV, "PYTHONPATH": source, "TETHER_HOME": str(home)}
    process = start([PYTHON, "-m", "tether", "--config", str(config), "serve", "--port",
                     str(port)], log, env)
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        wait_http(url, body=body_paths[1].read_bytes(), process=process, timeout=180)
        wrk(url, body_paths[1], 8, 1)  # warm-up
        found = {}
        for rows, body in body_paths.items():
            for connections in (8, 32):
                used = cpu_seconds(process.pid)
                figures = wrk(url, body, connections, seconds)
                used = cpu_seconds(process.pid) - used
                figures["cpu_ms"] = 1000.0 * used / max(figures["requests"], 1.0)
                found[(rows, connections)] = figures
        return found
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True,
                        help="the other tree's src folder (the baseline)")
    parser.add_argument("--after", default=str(HERE.parents[1] / "src"),
                        help="this tree's src folder (default)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="each wrk run")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="monitoring.interval_seconds of the served project")
    args = parser.parse_args()
    sides = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    with tempfile.TemporaryDirectory(prefix="tether-bench-ab-") as scratch:
        folder = Path(scratch)
        config = project(folder / "project", args.interval)
        home = folder / "project" / ".tether"
        body_paths = bodies(folder)
        results: dict[str, list[dict[tuple[int, int], dict[str, float]]]] = {
            "before": [], "after": []}
        for round_ in range(args.rounds):
            order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
            for side in order:
                figures = measure(sides[side], config, home, body_paths, args.seconds,
                                  folder / f"{side}-{round_}.log")
                results[side].append(figures)
                print(f"  round {round_ + 1} {side:6} " + "  ".join(
                    f"rows={r} c={c}: {f['rps']:.0f} req/s p99 {f['p99']:.1f} ms "
                    f"cpu {f['cpu_ms']:.2f} ms/req" for (r, c), f in figures.items()),
                    flush=True)
    print(f"\n{args.rounds} rounds, medians; before {sides['before']}, after {sides['after']}; "
          f"monitoring every {args.interval:g} s")
    print("| rows | conns | before req/s | after req/s | after/before | "
          "p99 ms before / after | CPU ms/request before / after | after/before |")
    print("|---|---|---|---|---|---|---|---|")
    for key in results["after"][0]:
        before = [r[key] for r in results["before"]]
        after = [r[key] for r in results["after"]]
        rps_b = statistics.median(f["rps"] for f in before)
        rps_a = statistics.median(f["rps"] for f in after)
        p99_b = statistics.median(f["p99"] for f in before)
        p99_a = statistics.median(f["p99"] for f in after)
        cpu_b = statistics.median(f["cpu_ms"] for f in before)
        cpu_a = statistics.median(f["cpu_ms"] for f in after)
        print(f"| {key[0]} | {key[1]} | {rps_b:.0f} | {rps_a:.0f} | {rps_a / rps_b:.3f} | "
              f"{p99_b:.1f} / {p99_a:.1f} | {cpu_b:.3f} / {cpu_a:.3f} | "
              f"{cpu_a / cpu_b:.3f} |")


if __name__ == "__main__":
    main()
