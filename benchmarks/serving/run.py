"""Serving benchmark: tether beside MLServer, BentoML, `mlflow models serve` and a minimal
Starlette server, same model folders, same rows, same pinned core, one run.

Run by hand from the repository root (needs `wrk` and `taskset`; the first run creates
the peers' venvs, benchmarks/.venv-mlserver and .venv-bentoml, a few minutes):

    .venv/bin/python benchmarks/serving/run.py                       # all parts, ~40 min
        [--parts throughput swap cold-start soak] [--seconds 6]
        [--models LogisticRegression HistGradientBoosting ...] [--servers tether mlserver ...]
        [--connections 1 8 32] [--soak-seconds 300] [--soak-rate 200]

Parts:
- throughput: every server pinned to CPU 0, `wrk -t1` to CPU 1; 1-row and 100-row
  bodies, 1, 8 and 32 connections; req/s, p50, p99 and the ratios tether / best peer
  (MLServer, BentoML, mlflow) and tether / minimal.
- swap: alias flips during a load, each pushed to `/admin/reload`.
- cold-start: process start to ready (tether: `/ready` 200, the model loaded and warmed;
  mlflow: `/ping` 200; MLServer: the model's V2 ready; BentoML: `/readyz`), interleaved
  rounds, the median.
- soak: a constant-rate open-loop load (not closed-loop like wrk: a slow answer does not
  slow the sender, so queueing shows in the latencies) on the example project's
  HistGradientBoosting model, server and sender unpinned as a user runs them; tether and
  the minimal server one after the other; req/s, p50, p99 and failures.

`--suite one-connection` compares, at one connection on `/invocations`, tether with the
prediction log's default durability (`ids`: answers without prediction ids do not wait
for their commit), tether with `acked` (every answer waits, as `/predict` answers do by
default), and the minimal server (which logs nothing), rounds interleaved: the p50
ratios to the minimal server.

`--suite settings` measures tether against itself instead, each setting beside its
baseline in the same run: prediction-log durability (batched vs acked) on /predict, the
access log (off vs text vs JSON), and model threads (libraries' default vs 1) on the
example project's HistGradientBoosting model, idle and with two CPU-bound neighbours.
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
import peers
import soak
import workloads

from tether.net import free_port, wait_http

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PYTHON = sys.executable
SERVER_CPU, LOAD_CPU = "0", "1"
TOKEN = peers.TOKEN
ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
       "PYTHONPATH": str(ROOT / "src"),
       "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
PARTS = ("throughput", "swap", "cold-start", "soak")


def start(command: list[str], log: Path, env: dict[str, str], pin: bool = True
          ) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(["taskset", "-c", SERVER_CPU, *command] if pin else command,
                                stdout=handle, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
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
    failed = (float(non2xx.group(1)) if non2xx else 0.0)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": latency("50"),
            "p99": latency("99"), "non2xx": failed,
            "socket_errors": float(sum(int(g) for g in sockets.groups())) if sockets else 0.0,
            "requests": float(total.group(1)) if total else 0.0}


def throughput(models: dict[str, workloads.Workload], servers: list[str],
               connections: list[int], folder: Path, seconds: float
               ) -> list[dict[str, Any]]:
    results = []
    for model in models.values():
        for server in servers:
            port = free_port()
            spec = peers.spec(server, model.path, port, folder, ENV)
            log = folder / f"{server}-{port}.log"
            process = start(spec.command, log, spec.env)
            try:
                one_row = model.bodies[(spec.protocol, 1)]
                wait_http(spec.url, body=one_row.read_bytes(), process=process, log=log,
                          timeout=240)
                wrk(spec.url, one_row, 8, 2)  # warm-up
                for rows in workloads.ROWS:
                    body = model.bodies[(spec.protocol, rows)]
                    for conns in connections:
                        figures = wrk(spec.url, body, conns, seconds)
                        print(f"  {model.name:20} {server:8} rows={rows:<3} c={conns:<2} "
                              f"{figures['rps']:8.0f} req/s  p50 {figures['p50']:7.1f} ms  "
                              f"p99 {figures['p99']:7.1f} ms  errors "
                              f"{figures['non2xx'] + figures['socket_errors']:.0f}", flush=True)
                        results.append({"model": model.name, "server": server, "rows": rows,
                                        "connections": conns, **figures})
            except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
                print(f"  {model.name:20} {server:8} FAILED: {str(exc)[-600:]}", flush=True)
            finally:
                stop(process)
    return results


def table(results: list[dict[str, Any]], servers: list[str]) -> str:
    index = {(r["model"], r["server"], r["rows"], r["connections"]): r for r in results}
    peer_names = [s for s in servers if s in peers.PEER_SERVERS]
    lines = ["| model | rows | conns | " + " | ".join(f"{s} req/s" for s in servers)
             + " | tether / best peer | tether / minimal | p50 ms " + " / ".join(servers)
             + " | p99 ms " + " / ".join(servers) + " |",
             "|---" * (len(servers) * 1 + 3 + 4) + "|"]

    def figure(row: dict[str, Any] | None, key: str, digits: int) -> str:
        return "-" if row is None or (key == "rps" and row["rps"] == 0) else (
            f"{row[key]:.{digits}f}" + ("!" if row["non2xx"] + row["socket_errors"] else ""))

    keys = sorted({(r["model"], r["rows"], r["connections"]) for r in results})
    for model, rows, conns in keys:
        found = {s: index.get((model, s, rows, conns)) for s in servers}
        tether = found.get("tether")
        best = max((found[s] for s in peer_names if found.get(s)), default=None,
                   key=lambda r: r["rps"] if not r["non2xx"] + r["socket_errors"] else 0.0)
        minimal = found.get("minimal")

        lines.append(
            f"| {model} | {rows} | {conns} | "
            + " | ".join(figure(found[s], "rps", 0) for s in servers)
            + f" | {_ratio(tether, best, True)} | {_ratio(tether, minimal, False)} | "
            + " / ".join(figure(found[s], "p50", 1) for s in servers) + " | "
            + " / ".join(figure(found[s], "p99", 1) for s in servers) + " |")
    return "\n".join(lines) + "\n(! = some requests failed: non-2xx or socket errors)"


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, name: bool) -> str:
    if a is None or b is None or not b["rps"]:
        return "-"
    return f"{a['rps'] / b['rps']:.2f}" + (f" ({b['server']})" if name else "")


def cold_start(model: workloads.Workload, servers: list[str], folder: Path,
               rounds: int) -> str:
    """Process start to ready, servers interleaved round by round."""
    servers = [s for s in servers if s != "minimal"]  # it has no readiness route
    times: dict[str, list[float]] = {s: [] for s in servers}
    for _ in range(rounds):
        for server in servers:
            port = free_port()
            spec = peers.spec(server, model.path, port, folder, ENV)
            log = folder / f"cold-{server}-{port}.log"
            started = time.perf_counter()
            process = start(spec.command, log, spec.env, pin=False)
            try:
                wait_http(spec.ready_url, process=process, log=log, timeout=240,
                          interval=0.02)
                times[server].append(time.perf_counter() - started)
            finally:
                stop(process)
    base = statistics.median(times["mlflow"]) if times.get("mlflow") else None
    lines = ["| server | ready when | median s | min s | max s | vs mlflow |",
             "|---|---|---|---|---|---|"]
    what = {"tether": "/ready 200 (model loaded and warmed)", "mlflow": "/ping 200",
            "mlserver": "V2 model ready 200",
            "bentoml": "/readyz 200"}
    for server, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {server} | {what[server]} | {median:.2f} | {min(values):.2f} | "
                     f"{max(values):.2f} | "
                     + (f"{median / base:.2f}" if base else "-") + " |")
    return "\n".join(lines)


def swap_under_load(model: workloads.Workload, folder: Path, flips: int,
                    seconds: float) -> dict[str, float]:
    """Alias flips between two registered versions while wrk loads the server."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tether.project import Project

    config = folder / "swap" / "tether.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(peers.POLICY)
    env = {**ENV, "TETHER_HOME": str(folder / "swap" / ".tether"), "TETHER_ADMIN_TOKEN": TOKEN}
    os.environ["TETHER_HOME"] = env["TETHER_HOME"]
    bench = Project.open(config)
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    versions = []
    for c in (1.0, 0.1):
        fitted = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
        fitted.fit(features, target)
        _, version = bench.registry.log_candidate(
            fitted, features=features, params={"C": c}, metrics={}, artifacts={}, files={},
            reason="benchmark")
        versions.append(version)
    bench.registry.promote(versions[0], "benchmark")
    port = free_port()
    process = start([PYTHON, "-m", "tether", "--config", str(config), "serve", "--port",
                     str(port)], folder / "swap.log", env)
    base = f"http://127.0.0.1:{port}"
    one_row_path = model.bodies[("split", 1)]
    one_row = one_row_path.read_bytes()
    try:
        wait_http(f"{base}/invocations", body=one_row, process=process, timeout=180)
        load = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c32", f"-d{int(seconds)}s", "--latency",
             "-s", str(HERE / "post.lua"), f"{base}/invocations"],
            env={**ENV, "BODY": str(one_row_path)}, stdout=subprocess.PIPE, text=True)
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


def run_tether(model_dir: Path, folder: Path, serving: str, args: list[str], body: Path,
               path: str, seconds: float, cpus: str = SERVER_CPU,
               connections: tuple[int, ...] = (8, 32)) -> list[dict[str, float]]:
    port = free_port()
    config = folder / f"settings-{port}" / "tether.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(peers.POLICY + (f"serving: {{{serving}}}\n" if serving else ""))
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


def settings_suite(models: dict[str, workloads.Workload], folder: Path,
                   seconds: float) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    lr = models["LogisticRegression"].path
    body_paths = {rows: models["LogisticRegression"].bodies[("split", rows)]
                  for rows in workloads.ROWS}
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
    hgb = models["HistGradientBoosting"].path
    body = models["HistGradientBoosting"].bodies[("split", 1)]
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


ONE_CONNECTION = [("minimal", None), ("tether, ids", "durability: ids"),
                  ("tether, acked", "durability: acked")]


def minimal_at(model: workloads.Workload, folder: Path, body: Path, seconds: float,
               ) -> dict[str, float]:
    port = free_port()
    spec = peers.spec("minimal", model.path, port, folder, ENV)
    log = folder / f"minimal-{port}.log"
    process = start(spec.command, log, spec.env)
    try:
        wait_http(spec.url, body=body.read_bytes(), process=process, log=log, timeout=180)
        wrk(spec.url, body, 1, 1)  # warm-up
        return wrk(spec.url, body, 1, seconds)
    finally:
        stop(process)


def one_connection(models: dict[str, workloads.Workload], folder: Path, seconds: float,
                   rounds: int) -> str:
    found: dict[tuple[str, int, str], list[float]] = {}
    for model in models.values():
        for rows in workloads.ROWS:
            body = model.bodies[("split", rows)]
            for index in range(rounds):
                for label, serving in (ONE_CONNECTION if index % 2 == 0
                                       else ONE_CONNECTION[::-1]):
                    figures = (minimal_at(model, folder, body, seconds) if serving is None
                               else run_tether(model.path, folder, serving, [], body,
                                               "/invocations", seconds, connections=(1,))[0])
                    found.setdefault((model.name, rows, label), []).append(figures["p50"])
                    print(f"  {model.name:20} rows={rows:<3} {label:16} p50 "
                          f"{figures['p50']:6.2f} ms", flush=True)
    lines = ["| model | rows | minimal p50 ms | tether (ids, the default) p50 ms | ids / minimal "
             "| tether (acked) p50 ms | acked / minimal |", "|---|---|---|---|---|---|---|"]
    for model in models.values():
        for rows in workloads.ROWS:
            base, ids, acked = (statistics.median(found[(model.name, rows, label)])
                                for label, _ in ONE_CONNECTION)
            lines.append(f"| {model.name} | {rows} | {base:.2f} | {ids:.2f} | "
                         f"{ids / base:.2f} | {acked:.2f} | {acked / base:.2f} |")
    return "\n".join(lines)


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


def versions_line(servers: list[str]) -> str:
    from importlib.metadata import version

    parts = [f"tether {version('tether')}", f"mlflow {version('mlflow')}",
             f"scikit-learn {version('scikit-learn')}"]
    if "mlserver" in servers:
        parts.append(f"MLServer {peers.version_of('mlserver', 'mlserver')} "
                     f"(mlserver-mlflow {peers.version_of('mlserver', 'mlserver-mlflow')}; "
                     f"max_batch_size {peers.MLSERVER_MAX_BATCH_SIZE}, max_batch_time "
                     f"{peers.MLSERVER_MAX_BATCH_TIME} s, parallel_workers "
                     f"{peers.MLSERVER_PARALLEL_WORKERS})")
    if "bentoml" in servers:
        parts.append(f"BentoML {peers.version_of('bentoml', 'bentoml')} (batchable, "
                     f"max_batch_size 4096 rows, max_latency_ms 10000, 1 worker)")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seconds", type=float, default=6.0, help="each wrk run")
    parser.add_argument("--models", nargs="+", default=workloads.available())
    parser.add_argument("--servers", nargs="+", choices=peers.SERVERS,
                        default=list(peers.SERVERS))
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--swap-seconds", type=float, default=60.0)
    parser.add_argument("--flips", type=int, default=100)
    parser.add_argument("--cold-start-rounds", type=int, default=3)
    parser.add_argument("--soak-seconds", type=float, default=300.0)
    parser.add_argument("--soak-rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--soak-servers", nargs="+", choices=peers.SERVERS,
                        default=["tether", "minimal"])
    parser.add_argument("--suite", choices=["peers", "one-connection", "settings"],
                        default="peers",
                        help="peers: the parts above; one-connection: tether's durability "
                             "choices beside the minimal server; settings: tether's settings "
                             "against each other")
    parser.add_argument("--rounds", type=int, default=3, help="one-connection rounds")
    args = parser.parse_args()
    if args.suite == "one-connection":
        print(f"load average at start: {os.getloadavg()}", flush=True)
        with tempfile.TemporaryDirectory(prefix="tether-bench-") as scratch:
            models = workloads.build(Path(scratch), args.models)
            print("one connection, /invocations, server on CPU 0, wrk -t1 on CPU 1, "
                  f"{args.rounds} interleaved rounds, medians:", flush=True)
            print("\n" + one_connection(models, Path(scratch), args.seconds, args.rounds))
        print(f"\nload average at end: {os.getloadavg()}")
        return
    if args.suite == "settings":
        with tempfile.TemporaryDirectory(prefix="tether-bench-") as scratch:
            models = workloads.build(Path(scratch),
                                     ["LogisticRegression", "HistGradientBoosting"])
            print("tether settings (LR on CPU 0; HistGradientBoosting on CPUs 0-1; wrk -t1 "
                  "on CPU 1):", flush=True)
            print("\n" + settings_table(settings_suite(models, Path(scratch), args.seconds)))
        return
    for peer in ("mlserver", "bentoml"):
        if peer in args.servers or (peer in args.soak_servers and "soak" in args.parts):
            peers.ensure_venv(peer)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as scratch:
        folder = Path(scratch)
        needed = list(args.models)
        for extra in ("LogisticRegression", "HistGradientBoosting"):
            if extra not in needed and set(args.parts) - {"throughput"}:
                needed.append(extra)
        models = workloads.build(folder, needed)
        print(versions_line(args.servers), flush=True)
        if "throughput" in args.parts:
            print("\nthroughput (server on CPU 0, wrk -t1 on CPU 1):", flush=True)
            results = throughput({k: models[k] for k in args.models}, args.servers,
                                 args.connections, folder, args.seconds)
            print()
            print(table(results, args.servers), flush=True)
        if "cold-start" in args.parts:
            print(f"\ncold start, HistGradientBoosting, {args.cold_start_rounds} interleaved "
                  "rounds, unpinned:", flush=True)
            print(cold_start(models["HistGradientBoosting"], args.servers, folder,
                             args.cold_start_rounds), flush=True)
        if "soak" in args.parts:
            print(f"\nsoak: {args.soak_rate:.0f} req/s for {args.soak_seconds:.0f} s each, "
                  "HistGradientBoosting, 1-row bodies, unpinned:", flush=True)
            rows = []
            for server in args.soak_servers:
                port = free_port()
                spec = peers.spec(server, models["HistGradientBoosting"].path, port, folder,
                                  ENV)
                log = folder / f"soak-{server}-{port}.log"
                process = start(spec.command, log, spec.env, pin=False)
                try:
                    body = models["HistGradientBoosting"].bodies[(spec.protocol, 1)]
                    wait_http(spec.url, body=body.read_bytes(), process=process, log=log,
                              timeout=240)
                    rows.append((server, soak.run(spec.url, body.read_bytes(),
                                                  args.soak_rate, args.soak_seconds)))
                finally:
                    stop(process)
            print(soak.table(rows), flush=True)
        if "swap" in args.parts:
            print(f"\nswap under load: {args.flips} alias flips (each pushed to /admin/reload) "
                  f"during a {args.swap_seconds:.0f} s wrk load, 32 connections, 1-row "
                  "requests:", flush=True)
            swap = swap_under_load(models["LogisticRegression"], folder, args.flips,
                                   args.swap_seconds)
            print(f"| flips | requests | non-2xx | socket errors | flip->new version p50 | max |"
                  f"\n|---|---|---|---|---|---|\n"
                  f"| {swap['flips']:.0f} | {swap['requests']:.0f} | {swap['non2xx']:.0f} | "
                  f"{swap['socket_errors']:.0f} | {swap['p50_ms']:.1f} ms | "
                  f"{swap['max_ms']:.1f} ms |")
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
