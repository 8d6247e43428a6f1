"""The fleet's figures, one run: throughput through nginx with 1, 2 and 3 replicas; the
store's write rate on PostgreSQL beside SQLite; convergence of 3 replicas after a
decision, push beside poll-only; the controller's pass time as predictions grow, with
50 versions in the registry.

Every part is a real process or database on 127.0.0.1: `tether serve` replicas (the
store on PostgreSQL when a URL is given, as the chart runs them), nginx (tests/fleet's
config: round robin, keep-alive upstreams), wrk. The registry is a local MLflow
(SQLite) so that the figures are tether's, not an MLflow server's; tests/fleet measures
convergence against an `mlflow server` on PostgreSQL with S3 artifacts.

Run from the repository root (needs nginx, wrk and, for the PostgreSQL figures, an
empty database it may wipe):

    PYTHONPATH=. .venv/bin/python benchmarks/fleet/run.py \\
        [--postgres postgresql+psycopg://tether:tether@127.0.0.1:5432/tether_test_fleet] \\
        [--parts throughput store convergence controller] [--seconds 8] [--flips 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from tests.conftest import write_project
from tests.fleet import nginx
from tests.fleet.fleet import Convergence, Member
from tests.processes import stop
from tether import lifecycle
from tether.apps import controller as controller_process
from tether.config import load_config
from tether.control.push import http_push
from tether.events import EventKind
from tether.example.loans import TARGET, generate
from tether.net import free_port, wait_http
from tether.project import Project
from tether.registry import State
from tether.store import Outputs, PredictionBatch, Store, metadata

CLI = "from tether.cli import main; main()"
TOKEN = "bench-token"
HERE = Path(__file__).resolve().parent
POST_LUA = HERE.parent / "serving" / "post.lua"


# a project and its replicas -------------------------------------------------------------

def make_project(folder: Path, store_url: str | None) -> tuple[Project, dict[str, str]]:
    """The example project with its shipped policy (monitoring every 10 s in each
    replica) on the tests' smaller data, trained twice (v1 champion, v2 candidate)."""
    # the controller's own triggers stay quiet: a pass is measured, not a retrain
    write_project(folder, **{"triggers.drift_consecutive": 10**6, "triggers.metric_floor": None,
                             "triggers.metric_drop": None, "triggers.on_change_detected": False})
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env.update({"TETHER_HOME": str(folder / ".tether"), "TETHER_ADMIN_TOKEN": TOKEN,
                "MLFLOW_DISABLE_TELEMETRY": "true"})
    if store_url:
        metadata.drop_all(sa.create_engine(store_url))
        env["TETHER_STORE_URL"] = store_url
    project = Project(load_config(folder / "tether.yaml", env))
    first = lifecycle.train(project, reason="bench").version
    lifecycle.promote(project, first, "bench")
    lifecycle.train(project, reason="bench")
    return project, env


@contextmanager
def replicas(folder: Path, env: dict[str, str], count: int,
             poll_seconds: float = 2.0) -> Iterator[list[Member]]:
    members = []
    try:
        for index in range(count):
            port = free_port()
            member = Member(f"replica-{index}", port,
                            [sys.executable, "-c", CLI, "serve", "--port", str(port)],
                            folder / f"replica-{index}.log")
            with member.log.open("ab") as out:
                member.process = subprocess.Popen(
                    member.command, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                    env={**env, "TETHER_POLL_SECONDS": str(poll_seconds)})
            members.append(member)
        for member in members:
            wait_http(f"{member.url}/ready", timeout=180, process=member.process,
                      log=member.log)
        yield members
    finally:
        for member in members:
            if member.process is not None:
                stop(member.process)


# throughput -------------------------------------------------------------------------------

def wrk(url: str, body: Path, connections: int, seconds: float) -> float:
    """Requests per second answered 2xx by `url`/predict (wrk -t1, keep-alive)."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "-s", str(POST_LUA),
         f"{url}/predict"], env={**os.environ, "BODY": str(body)}, capture_output=True,
        text=True, check=True).stdout
    answered = float(output.split("Requests/sec:")[1].split()[0])
    bad = output.split("Non-2xx or 3xx responses:")
    if len(bad) > 1:
        raise RuntimeError(f"non-2xx answers: {bad[1].split()[0]}\n{output}")
    return answered


def throughput(folder: Path, env: dict[str, str], seconds: float) -> None:
    bodies = {}
    for rows in (1, 20):
        frame = generate(n=rows, seed=3).drop(columns=[TARGET])
        path = folder / f"body-{rows}.json"
        path.write_text(json.dumps({"dataframe_split": {
            "columns": list(frame.columns), "data": frame.to_numpy().tolist()}}))
        bodies[rows] = path
    print("\nthroughput through nginx (wrk -t1, 16 connections; requests/s, ratio to 1 "
          "replica)", flush=True)
    print(f"{'replicas':>8} {'1-row req/s':>12} {'x':>6} {'20-row req/s':>13} {'x':>6}")
    base: dict[int, float] = {}
    for count in (1, 2, 3):
        with replicas(folder, env, count) as members:
            port = free_port()
            balancer = nginx.start(folder / f"nginx-{count}", port,
                                   [m.address for m in members])
            try:
                url = f"http://127.0.0.1:{port}"
                wait_http(f"{url}/ready", timeout=30, process=balancer)
                wrk(url, bodies[1], 8, 2)  # warm-up
                found = {rows: wrk(url, body, 16, seconds) for rows, body in bodies.items()}
            finally:
                stop(balancer)
        base = base or found
        print(f"{count:>8} {found[1]:>12.0f} {found[1] / base[1]:>6.2f} "
              f"{found[20]:>13.0f} {found[20] / base[20]:>6.2f}", flush=True)


# the store --------------------------------------------------------------------------------

def write_rate(url: str, writers: int, rows: int, seconds: float) -> tuple[float, float]:
    """(rows/s, commits/s) of `writers` threads each logging `rows`-row batches."""
    store = Store(url)
    features = generate(n=rows, seed=1).drop(columns=[TARGET])
    done = [0] * writers
    deadline = time.perf_counter() + seconds

    def write(index: int) -> None:
        count = 0
        while time.perf_counter() < deadline:
            ids = [f"w{index}-{count}-{i}-{time.perf_counter_ns()}" for i in range(rows)]
            store.log_batches([PredictionBatch(
                model_name="bench", model_version=1, route="champion", ids=ids,
                features=features, outputs=Outputs(
                    ts=np.full(rows, time.time()), prediction=np.ones(rows),
                    score=np.full(rows, 0.7), latency_ms=np.full(rows, 2.0),
                    error=np.zeros(rows, dtype=bool)))])
            count += 1
        done[index] = count

    started = time.perf_counter()
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    store.close()
    return sum(done) * rows / elapsed, sum(done) / elapsed


def store_rates(folder: Path, postgres: str | None, seconds: float) -> None:
    if not postgres:
        print("\nstore: skipped (no --postgres)")
        return
    print("\nstore write rate (prediction batches of the loan example's 9 features; rows/s "
          "and commits/s; PostgreSQL / SQLite)", flush=True)
    print(f"{'writers':>7} {'rows/batch':>10} {'SQLite rows/s':>14} {'PostgreSQL rows/s':>18} "
          f"{'x':>6} {'SQLite commits/s':>17} {'PostgreSQL commits/s':>21}")
    for writers in (1, 3):
        for rows in (1, 20, 1000):
            sqlite_url = f"sqlite:///{folder / f'store-{writers}-{rows}.db'}"
            metadata.drop_all(sa.create_engine(postgres))
            lite = write_rate(sqlite_url, writers, rows, seconds)
            pg = write_rate(postgres, writers, rows, seconds)
            print(f"{writers:>7} {rows:>10} {lite[0]:>14.0f} {pg[0]:>18.0f} "
                  f"{pg[0] / lite[0]:>6.2f} {lite[1]:>17.0f} {pg[1]:>21.0f}", flush=True)


# convergence ------------------------------------------------------------------------------

def flips(project: Project, members: list[Member], count: int,
          push: Callable[[], None] | None) -> list[float]:
    state = project.registry.state()
    versions = [state.champion, max(v.version for v in state.versions)]
    if versions[1] == versions[0]:
        versions[1] = min(v.version for v in state.versions)
    took = []
    for flip in range(count):
        target = versions[(flip + 1) % 2]
        assert target is not None
        with Convergence(members, target) as watch:
            lifecycle.promote(project, target, f"bench flip {flip}")
            decided = time.monotonic()
            if push is not None:
                push()
            seen = watch.wait(60)
        took.append(max(0.0, max(seen.values()) - decided))
    return took


def convergence(folder: Path, project: Project, env: dict[str, str], count: int) -> None:
    print(f"\nconvergence of 3 replicas after a decision (alias written -> every replica "
          f"answers with the new version), {count} flips", flush=True)
    rows = []
    with replicas(folder, env, 3, poll_seconds=2.0) as members:
        pushed = flips(project, members, count, http_push([m.url for m in members], TOKEN))
        polled = flips(project, members, max(4, count // 2), None)
    rows = [("push (/admin/reload to each)", pushed), ("poll only, every 2 s", polled)]
    base = statistics.median(pushed)
    print(f"{'path':<30} {'p50 ms':>8} {'max ms':>8} {'p50 x push':>11}")
    for name, took in rows:
        p50 = statistics.median(took)
        print(f"{name:<30} {p50 * 1000:>8.0f} {max(took) * 1000:>8.0f} "
              f"{p50 / base if base else float('nan'):>11.1f}", flush=True)


# the controller ---------------------------------------------------------------------------

def register_versions(project: Project, total: int) -> None:
    """Register versions of the champion's model until the registry holds `total`."""
    from mlflow import MlflowClient  # the benchmark's own setup, outside tether's walls

    settings = project.settings
    client = MlflowClient(tracking_uri=settings.tracking_uri,
                          registry_uri=settings.registry_uri)
    template = client.get_model_version(project.model_name, "1")
    assert template.source is not None
    have = len(project.registry.state().versions)
    for _ in range(total - have):
        made = client.create_model_version(project.model_name, template.source,
                                           run_id=template.run_id)
        # retired, as old versions are: nothing the controller would roll out
        project.registry.set_state(int(made.version), State.RETIRED, "bench: an old version")


def log_window(project: Project, version: int, rows: int, start: float, end: float) -> None:
    """`rows` labeled predictions of `version` served between start and end."""
    frame = generate(n=rows, seed=version + rows, shift=0.3)
    features = frame.drop(columns=[TARGET])
    ids = [f"v{version}-{rows}-{i}-{start}" for i in range(rows)]
    rng = np.random.default_rng(rows)
    scores = np.clip(0.5 * frame[TARGET].to_numpy() + rng.uniform(0, 0.5, rows), 0, 1)
    for at in range(0, rows, 5000):
        part = slice(at, at + 5000)
        n = len(ids[part])
        project.store.log_batches([PredictionBatch(
            model_name=project.model_name, model_version=version, route="champion",
            ids=ids[part], features=features.iloc[part].reset_index(drop=True),
            outputs=Outputs(ts=np.linspace(start, end, rows)[part],
                            prediction=(scores[part] >= 0.5).astype(float),
                            score=scores[part], latency_ms=np.full(n, 2.0),
                            error=np.zeros(n, dtype=bool)))])
        project.store.add_feedback(zip(ids[part], frame[TARGET].to_numpy()[part].astype(float),
                                       strict=True))


def controller_passes(folder: Path, project: Project, env: dict[str, str],
                      postgres: str | None, passes: int) -> None:
    print("\ncontroller pass time (observe -> plan -> apply -> status; 50 versions in the "
          "registry, a champion on probation; median of passes, ratio to 1k)", flush=True)
    print(f"{'predictions':>11} {'store':>10} {'pass ms':>8} {'x 1k':>6}")
    register_versions(project, 50)
    state = project.registry.state()
    if state.champion == 1:
        lifecycle.promote(project, 2, "bench")
    stores = [("sqlite", f"sqlite:///{folder / 'controller-store.db'}")]
    if postgres:
        stores.append(("postgresql", postgres))
    for kind, url in stores:
        if kind == "postgresql":
            metadata.drop_all(sa.create_engine(url))
        variant = Project(load_config(folder / "serve" / "tether.yaml",
                                      {**env, "TETHER_STORE_URL": url}))
        # promoted a minute ago: on probation for the whole run (600 s), every pass
        # analyses the new champion's window against the old one's
        now = time.time()
        variant.record(EventKind.PROMOTED, "bench", version=2, ts=now - 60)
        process = controller_process(variant)  # one controller: it keeps the lease
        assert process.controller is not None
        logged, base = 0, None
        for size in (1_000, 10_000, 100_000):
            # the old champion served half before the promotion, the new one half since
            half = (size - logged) // 2
            log_window(variant, 1, half, now - 7200, now - 61)
            log_window(variant, 2, half, now - 59, now - 1)
            logged = size
            timings = []
            for _ in range(passes + 1):
                started = time.perf_counter()
                done = process.controller.tick()
                timings.append(time.perf_counter() - started)
                assert not done.standby, done
            took = statistics.median(timings[1:])  # the first pass warms caches
            base = base or took
            print(f"{size:>11} {kind:>10} {took * 1000:>8.0f} {took / base:>6.2f}  "
                  f"{'; '.join(done.lines())[:70]}", flush=True)
        variant.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("TETHER_TEST_POSTGRES_URL"),
                        help="an empty PostgreSQL database the benchmark may wipe")
    parser.add_argument("--parts", nargs="+",
                        default=["throughput", "store", "convergence", "controller"])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--flips", type=int, default=20)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install {tool})")
    if nginx.NGINX is None:
        sys.exit("nginx is not installed (apt-get install nginx)")
    print(f"machine: {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tether-fleet-bench-") as tmp:
        folder = Path(tmp)
        # one trained project for every part (v1 champion, v2 candidate)
        project, env = make_project(folder / "serve", args.postgres)
        if "throughput" in args.parts:
            throughput(folder / "serve", env, args.seconds)
        if "convergence" in args.parts:
            convergence(folder / "serve", project, env, args.flips)
        project.store.close()
        if "store" in args.parts:
            store_rates(folder, args.postgres, args.seconds)
        if "controller" in args.parts:
            controller_passes(folder, project, env, args.postgres, args.passes)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
