"""The federated demo: the loop closes by itself when one hospital's data moves.

1. A SuperLink and three SuperNodes (hospitals, each with its own patients) start on
   this machine; v1 is trained across them (FedAvg), gated and promoted.
2. Server and controller start in this process; patients of every hospital are scored
   over HTTP, their outcomes arrive later.
3. A wildfire season starts at hospital_02 only: its patients' air, breathing and sleep
   move. The hospital's own summary of its recent data (counts per bin, no rows)
   against its training data shows it; the controller fires a drift trigger for that
   site and retrains across the three hospitals (hospital_02 now adds the season's
   patients to its training data), gates v2 against v1, walks it through the canary
   steps and promotes it.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tether import lifecycle
from tether.config import load_config
from tether.demo.run import DemoResult, Stage, failed
from tether.errors import TetherError
from tether.events import EventKind
from tether.example.health import TARGET, generate
from tether.federated.environment import find_flower_bin
from tether.federated.local import LocalFederation
from tether.federated.template import SITES, site_files, write_site_data, write_template
from tether.net import bound_socket
from tether.project import Project

__all__ = ["FEDERATED_DEMO_POLICY", "run_federated_demo"]

DRIFTING_SITE = "hospital_02"
SEASON = 0.9
FEDERATED_DEMO_POLICY: dict[str, Any] = {
    "gate.max_latency_ms": 500,
    # v2 is judged on last season's validation set too: it may not beat v1 there by much
    "gate.min_delta": -0.01,
    "monitoring.window_size": 600,
    "monitoring.min_labels": 100,
    "monitoring.interval_seconds": 1.0,
    # the demo is about one site's drift: the served traffic's own triggers stay quiet
    "triggers.drift_consecutive": 120,
    "triggers.on_change_detected": False,
    "triggers.metric_drop": None,
    "triggers.metric_floor": None,
    "triggers.cooldown_seconds": 600,
    "rollout.steps": [0.2, 0.5],
    "rollout.min_predictions": 100,
    "rollout.min_labels": 60,
    # longer than a federated retrain: a pass that retrains starts its canary's clock
    # when the pass began
    "rollout.step_timeout_seconds": 600,
    "rollout.max_metric_drop": 0.05,
    "rollout.max_p99_latency_ms": 1000,
    "rollback.probation_seconds": 30,
    "rollback.probation_min_predictions": 150,
    "federated.summary_interval_seconds": 15,
    "federated.round_timeout_seconds": 60,
}


def write_demo_project(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    write_template(folder)
    path = folder / "tether.yaml"
    policy = yaml.safe_load(path.read_text())
    for dotted, value in FEDERATED_DEMO_POLICY.items():
        node = policy
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def run_federated_demo(folder: Path, *,
                       show: Callable[[str, dict[str, Any]], None] | None = None,
                       report: bool = True, timeout: float = 900.0) -> DemoResult:
    """Run the whole loop on a local federation; `show(phase, status)` as it goes."""
    import uvicorn

    from tether.apps import up as build
    from tether.demo.traffic import Replayer

    stage = Stage(show or (lambda phase, status: None))
    started = time.monotonic()
    config_path = write_demo_project(folder)
    flower_bin = find_flower_bin(Path.cwd())
    sites: dict[str, dict[str, str | int | float]] = {
        site: dict(site_files(folder, site)) for site in SITES}
    season: dict[str, float] = {}

    def sample(rows: int, seed: int) -> pd.DataFrame:
        each = max(rows // len(SITES), 1)
        return pd.concat([generate(site, each, seed=seed, shift=season.get(site, 0.0))
                          for site in SITES], ignore_index=True)

    stage.enter("starting the SuperLink and three SuperNodes")
    saved = {k: os.environ.get(k) for k in ("TETHER_FLOWER_SUPERLINK", "TETHER_FLOWER_BIN")}
    with LocalFederation(flower_bin, folder / ".tether" / "federation", sites) as federation:
        os.environ["TETHER_FLOWER_SUPERLINK"] = federation.address
        os.environ["TETHER_FLOWER_BIN"] = str(flower_bin)
        try:
            project = Project(load_config(config_path, environ={"TETHER_POLL_SECONDS": "1",
                                                                **os.environ}))
            stage.enter("training v1 across three hospitals")
            lifecycle.train(project, reason="demo: initial model",
                            progress=lambda text, done, total: stage.show(text, {}))
            lifecycle.gate(project, 1)
            lifecycle.promote(project, 1, "demo: first champion")
            replayer = _loop(project, stage, started + timeout, sample, season, folder,
                             build, uvicorn, Replayer)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    events = project.store.events(project.model_name)
    path = None
    if report:
        from tether.demo.report import write_report

        stage.show("writing the report", {})
        path = write_report(project, folder / "report.html")
    return DemoResult(folder=folder, events=events, report=path,
                      seconds=time.monotonic() - started, rows=replayer.counters.rows,
                      labels=replayer.counters.labels,
                      failed_requests=replayer.counters.failed_requests, phases=stage.phases)


def _loop(project: Project, stage: Stage, deadline: float,
          sample: Callable[[int, int], pd.DataFrame], season: dict[str, float], folder: Path,
          build: Any, uvicorn: Any, replayer_class: Any) -> Any:
    stage.enter("starting server and controller")
    process = build(project, interval=project.policy.monitoring.interval_seconds, lock_ttl=5)
    sock = bound_socket()
    server = uvicorn.Server(uvicorn.Config(process.app, log_level="error", access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    replayer = replayer_class(f"http://127.0.0.1:{sock.getsockname()[1]}", sample=sample,
                              target=TARGET, batch_rows=60, max_rate_rows=600.0)

    stage.follow(project, replayer, deadline)
    try:
        stage.wait("starting server and controller",
                   lambda: not thread.is_alive() or server.started)
        if not server.started:
            raise TetherError("demo: the server did not start")
        replayer.start()
        stage.enter("calm traffic from three hospitals")
        stage.wait("calm traffic from three hospitals", lambda: replayer.counters.labels >= 1200)
        stage.enter(f"a wildfire season at {DRIFTING_SITE}")
        season[DRIFTING_SITE] = SEASON
        write_site_data(folder, DRIFTING_SITE, shift=SEASON)  # its recent patients move
        stage.wait(f"{DRIFTING_SITE}'s summary of its recent data: drift",
                   lambda: _retraining(project) or failed(project))
        # the hospital adds the season's patients to the data it trains on
        write_site_data(folder, DRIFTING_SITE, shift=SEASON, train_shift=SEASON)
        stage.wait("a retrain across the hospitals, gate, canary",
                   lambda: project.registry.state().champion != 1 or failed(project))
        if project.registry.state().champion == 1:
            last = project.store.events(project.model_name, limit=1)
            raise TetherError("demo: the retrained model did not make it through: "
                              + (f"{last[0].kind}: {last[0].reason}" if last else "no events"))
        stage.enter("done")
    finally:
        replayer.stop()
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
    return replayer


def _retraining(project: Project) -> bool:
    return bool(project.store.events(project.model_name, kinds=[EventKind.RETRAIN_STARTED]))
