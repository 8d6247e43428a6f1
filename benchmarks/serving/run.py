"""Serving benchmark: tether vs `mlflow models serve` vs a minimal Starlette server.

Run by hand from the repository root (needs `wrk` and `taskset`; takes a few minutes):

    PYTHONPATH=src .venv/bin/python benchmarks/serving/run.py

Every server is pinned to CPU 0 and `wrk -t1` to CPU 1. Models: LogisticRegression
(behind a StandardScaler) and a 50-tree RandomForest on sklearn's breast-cancer data
(30 float features); requests of 1 and 100 rows in `dataframe_split`; 8 and 32
connections. tether runs with validation, the prediction log (SQLite) and metrics on.
Then the swap test: alias flips during a load, each pushed to `/admin/reload`.

`--suite settings` measures tether against itself, each setting beside its baseline in
the same run: prediction-log durability (batched vs acked) on /predict, the access log
(off vs text vs JSON), and model threads (libraries' default vs 1) on the example
project's HistGradientBoosting model, idle and with two CPU-bound neighbours.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tether.net import free_port, wait_http

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PYTHON = sys.executable
SERVER_CPU, LOAD_CPU = "0", "1"
TOKEN = "bench-token"
ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
       "PYTHONPATH": str(ROOT / "src"),
       "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

POLICY = """model: {name: bench, task: binary_classification, target: target}
trainer: train:train
data: {generator: tether.example.loans:generate, params: {n: 100}}
"""


def models(folder: Path) -> dict[str, Path]:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    built = {
        "LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        "RandomForest(50)": RandomForestClassifier(n_estimators=50, random_state=0),
    }
    paths = {}
    for name, model in built.items():
        model.fit(features, target)
        path = folder / name.replace("(", "").replace(")", "")
        mlflow.sklearn.save_model(model, str(path), serialization_format="cloudpickle",
                                  signature=infer_signature(features, model.predict(features)),
                                  input_example=features.head(3))
        paths[name] = path
    return paths


def bodies(folder: Path) -> dict[int, Path]:
    import orjson
    from sklearn.datasets import load_breast_cancer

    features = load_breast_cancer(as_frame=True).data
    out = {}
    for rows in (1, 100):
        split = features.head(rows).to_dict("split")
        path = folder / f"body-{rows}.json"
        path.write_bytes(orjson.dumps({"dataframe_split": {"columns": split["columns"],
                                                           "data": split["data"]}}))
        out[rows] = path
    return out


def start(command: list[str], log: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(["taskset", "-c", SERVER_CPU, *command], stdout=handle,
                                stderr=subprocess.STDOUT, env=env or ENV,
                                start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wrk(url: str, body: Path, connections: int, seconds: float) -> dict[str, float]:
    output = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s",
         "--latency", "-s", str(HERE / "post.lua"), url],
        env={**ENV, "BODY": str(body)}, capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict[str, float]:
    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not found:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        output)
    total = re.search(r"(\d+) requests in", output)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": latency("50"),
            "p99": latency("99"), "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
            "socket_errors": float(sum(int(g) for g in sockets.groups())) if sockets else 0.0,
            "requests": float(total.group(1)) if total else 0.0}


def project(folder: Path, serving: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tether.yaml").write_text(POLICY + (f"serving: {{{serving}}}\n" if serving else ""))
    return folder / "tether.yaml"


def servers(model_dir: Path, folder: Path, port: int) -> dict[str, list[str]]:
    config = project(folder / f"project-{port}")
    return {
        "tether": [PYTHON, "-m", "tether", "--config", str(config), "serve", "--port",
                   str(port), "--no-poll", "--model-path", str(model_dir)],
        "mlflow": [str(Path(PYTHON).parent / "mlflow"), "models", "serve", "-m", str(model_dir),
                   "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"],
        "minimal": [PYTHON, str(HERE / "minimal_server.py"), str(model_dir), str(port)],
    }


def throughput(paths: dict[str, Path], body_paths: dict[int, Path], folder: Path,
               seconds: float) -> list[dict[str, Any]]:
    results = []
    for model_name, model_dir in paths.items():
        for server in ("tether", "mlflow", "minimal"):
            port = free_port()
            command = servers(model_dir, folder, port)[server]
            process = start(command, folder / f"{server}-{port}.log")
            url = f"http://127.0.0.1:{port}/invocations"
            try:
                wait_http(url, body=body_paths[1].read_bytes(), process=process, timeout=180)
                wrk(url, body_paths[1], 8, 1)  # warm-up
                for rows, body in body_paths.items():
                    for connections in (8, 32):
                        figures = wrk(url, body, connections, seconds)
                        print(f"  {model_name:18} {server:8} rows={rows:<3} c={connections:<2} "
                              f"{figures['rps']:8.0f} req/s  p99 {figures['p99']:7.1f} ms",
                              flush=True)
                        results.append({"model": model_name, "server": server, "rows": rows,
                                        "connections": connections, **figures})
            finally:
                stop(process)
    return results


def table(results: list[dict[str, Any]]) -> str:
    def find(model: str, server: str, rows: int, connections: int) -> dict[str, Any]:
        return next(r for r in results if (r["model"], r["server"], r["rows"],
                                           r["connections"]) == (model, server, rows,
                                                                 connections))

    lines = ["| model | rows | conns | tether req/s | mlflow req/s | minimal req/s | "
             "tether/mlflow | tether/minimal | p99 ms tether / mlflow / minimal |",
             "|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["model"], r["rows"], r["connections"]) for r in results},
                  key=lambda k: (k[0], k[1], k[2]))
    for model, rows, connections in keys:
        t, m, n = (find(model, s, rows, connections) for s in ("tether", "mlflow", "minimal"))
        lines.append(
            f"| {model} | {rows} | {connections} | {t['rps']:.0f} | {m['rps']:.0f} | "
            f"{n['rps']:.0f} | {t['rps'] / max(m['rps'], 1e-9):.1f}x | "
            f"{t['rps'] / max(n['rps'], 1e-9):.2f} | "
            f"{t['p99']:.1f} / {m['p99']:.1f} / {n['p99']:.1f} |")
    return "\n".join(lines)


def swap_under_load(body_paths: dict[int, Path], folder: Path, flips: int,
                    seconds: float) -> dict[str, float]:
    """Alias flips between two registered versions while wrk loads the server."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tether.project import Project

    config = project(folder / "swap")
    env = {**ENV, "TETHER_HOME": str(folder / "swap" / ".tether"), "TETHER_ADMIN_TOKEN": TOKEN}
    os.environ["TETHER_HOME"] = env["TETHER_HOME"]
    bench = Project.open(config)
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    versions = []
    for c in (1.0, 0.1):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
        model.fit(features, target)
        _, version = bench.registry.log_candidate(
            model, features=features, params={"C": c}, metrics={}, artifacts={}, files={},
            reason="benchmark")
        versions.append(version)
    bench.registry.promote(versions[0], "benchmark")
    port = free_port()
    process = start([PYTHON, "-m", "tether", "--config", str(config), "serve", "--port",
                     str(port)], folder / "swap.log", env)
    base = f"http://127.0.0.1:{port}"
    one_row = body_paths[1].read_bytes()
    try:
        wait_http(f"{base}/invocations", body=one_row, process=process, timeout=180)
        load = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c32", f"-d{int(seconds)}s", "--latency",
             "-s", str(HERE / "post.lua"), f"{base}/invocations"],
            env={**ENV, "BODY": str(body_paths[1])}, stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        delays = []
        gap = max((seconds - 4) / flips, 0.05)
        with httpx.Client(base_url=base, timeout=10) as client:
            for flip in range(flips):
                target_version = versions[(flip + 1) % 2]
                bench.registry.promote(target_version, "benchmark flip")
                flipped = time.perf_counter()
                client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
                while True:
                    answer = client.post("/predict", content=one_row,
                                         headers={"Content-Type": "application/json"})
                    if answer.headers.get("x-model-version") == str(target_version):
                        break
                delays.append((time.perf_counter() - flipped) * 1000.0)
                time.sleep(gap)
        output, _ = load.communicate(timeout=seconds + 30)
        figures = parse_wrk(output)
    finally:
        stop(process)
    return {"flips": float(flips), "p50_ms": statistics.median(delays), "max_ms": max(delays),
            **figures}


# tether against itself: one setting at a time, baseline first -------------------------

SETTINGS = [
    # (group, label, serving settings, extra `tether serve` arguments)
    ("durability", "batched", "durability: batched", []),
    ("durability", "acked", "durability: acked", []),
    ("access log", "off", "", ["--no-access-log"]),
    ("access log", "text", "", ["--access-log", "--log-format", "text"]),
    ("access log", "json", "", ["--access-log", "--log-format", "json"]),
]


def hgb_model(folder: Path) -> tuple[Path, Path]:
    """The example project's model (HistGradientBoosting behind an ordinal encoder) on
    its loan data, and a 1-row body."""
    import importlib.util

    import mlflow.sklearn
    import orjson
    from mlflow.models import infer_signature

    from tether.example.loans import generate

    spec = importlib.util.spec_from_file_location(
        "example_train", ROOT / "src" / "tether" / "example" / "project" / "train.py")
    assert spec is not None and spec.loader is not None
    trainer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trainer)
    data = generate(n=6000, seed=1)
    features, target = data.drop(columns=["default"]), data["default"]

    class Context:
        X, y, sample_weight, seed, params = features, target, None, 7, {}

    model = trainer.train(Context())
    path = folder / "HistGradientBoosting"
    mlflow.sklearn.save_model(model, str(path), serialization_format="cloudpickle",
                              signature=infer_signature(features, model.predict(features)),
                              input_example=features.head(3))
    split = features.head(1).to_dict("split")
    body = folder / "body-loans-1.json"
    body.write_bytes(orjson.dumps({"dataframe_split": {"columns": split["columns"],
                                                       "data": split["data"]}}))
    return path, body


def run_tether(model_dir: Path, folder: Path, serving: str, args: list[str], body: Path,
               path: str, seconds: float, cpus: str = SERVER_CPU,
               connections: tuple[int, ...] = (8, 32)) -> list[dict[str, float]]:
    port = free_port()
    config = project(folder / f"settings-{port}", serving)
    command = [PYTHON, "-m", "tether", "--config", str(config), "serve", "--port", str(port),
               "--no-poll", "--model-path", str(model_dir), *args]
    log = folder / f"settings-{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(["taskset", "-c", cpus, *command], stdout=subprocess.DEVNULL,
                                   stderr=handle, env=ENV, start_new_session=True)
    url = f"http://127.0.0.1:{port}{path}"
    try:
        wait_http(url, body=body.read_bytes(), process=process, log=log, timeout=180)
        wrk(url, body, 8, 1)  # warm-up
        return [{"connections": c, **wrk(url, body, c, seconds)} for c in connections]
    finally:
        stop(process)


def settings_suite(paths: dict[str, Path], body_paths: dict[int, Path], folder: Path,
                   seconds: float) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    lr = paths["LogisticRegression"]
    for group, label, serving, args in SETTINGS:
        rows_list = (1, 100) if group == "durability" else (1,)
        for rows in rows_list:
            for figures in run_tether(lr, folder, serving, args, body_paths[rows], "/predict",
                                      seconds):
                print(f"  {group:10} {label:8} rows={rows:<3} c={figures['connections']:<2.0f} "
                      f"{figures['rps']:8.0f} req/s  p99 {figures['p99']:7.1f} ms", flush=True)
                results.append({"group": group, "label": label, "rows": rows,
                                "model": "LogisticRegression", "load": "no added load",
                                **figures})
    hgb, body = hgb_model(folder)
    for load in ("no added load", "2 CPU-bound neighbours"):
        hogs = [] if load == "no added load" else [
            subprocess.Popen([PYTHON, "-c", "while True: pass"]) for _ in range(2)]
        try:
            for label, serving in (("default", "model_threads: null"), ("1", "model_threads: 1")):
                # both cores: OpenMP's default is one thread per core the process may use
                for figures in run_tether(hgb, folder, serving, [], body, "/invocations",
                                          seconds, cpus="0,1"):
                    print(f"  threads    {label:8} {load:18} c={figures['connections']:<2.0f} "
                          f"{figures['rps']:8.0f} req/s  p50 {figures['p50']:7.1f} ms  "
                          f"p99 {figures['p99']:7.1f} ms", flush=True)
                    results.append({"group": "model threads", "label": label, "rows": 1,
                                    "model": "HistGradientBoosting", "load": load, **figures})
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    return results


def settings_table(results: list[dict[str, Any]]) -> str:
    lines = ["| setting | model | load | rows | conns | value | req/s | p50 ms | p99 ms | "
             "req/s vs first | p99 vs first |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    baselines: dict[tuple[Any, ...], dict[str, Any]] = {}

    def ratio(value: float, base: float) -> str:
        return f"{value / base:.2f}" if base > 0 and value > 0 else "-"  # wrk saw no answer

    for r in results:
        key = (r["group"], r["load"], r["rows"], r["connections"])
        base = baselines.setdefault(key, r)
        lines.append(
            f"| {r['group']} | {r['model']} | {r['load']} | {r['rows']} | "
            f"{r['connections']:.0f} | {r['label']} | {r['rps']:.0f} | {r['p50']:.1f} | "
            f"{r['p99']:.1f} | {ratio(r['rps'], base['rps'])} | "
            f"{ratio(r['p99'], base['p99'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="each wrk run")
    parser.add_argument("--swap-seconds", type=float, default=60.0)
    parser.add_argument("--flips", type=int, default=100)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--suite", choices=["peers", "settings"], default="peers",
                        help="peers: tether vs MLflow vs minimal, then the swap test; "
                             "settings: tether's settings against each other")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as scratch:
        folder = Path(scratch)
        paths = models(folder)
        body_paths = bodies(folder)
        if args.suite == "settings":
            print("tether settings (LR on CPU 0; HistGradientBoosting on CPUs 0-1; wrk -t1 "
                  "on CPU 1):", flush=True)
            print("\n" + settings_table(settings_suite(paths, body_paths, folder,
                                                       args.seconds)))
            return
        if not args.skip_throughput:
            print("throughput (server on CPU 0, wrk -t1 on CPU 1):", flush=True)
            results = throughput(paths, body_paths, folder, args.seconds)
            print()
            print(table(results))
        print(f"\nswap under load: {args.flips} alias flips (each pushed to /admin/reload) "
              f"during a {args.swap_seconds:.0f} s wrk load, 32 connections, 1-row requests:",
              flush=True)
        swap = swap_under_load(body_paths, folder, args.flips, args.swap_seconds)
        print(f"| flips | requests | non-2xx | socket errors | flip->new version p50 | max |\n"
              f"|---|---|---|---|---|---|\n"
              f"| {swap['flips']:.0f} | {swap['requests']:.0f} | {swap['non2xx']:.0f} | "
              f"{swap['socket_errors']:.0f} | {swap['p50_ms']:.1f} ms | {swap['max_ms']:.1f} ms |")


if __name__ == "__main__":
    main()
