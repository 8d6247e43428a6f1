"""Drive one Flower run from tether and receive what it produces.

`run_federated(ctx, build)` is what a federated trainer calls: it starts a report
receiver, submits the project's Flower app to the SuperLink (`flwr run`), and, while
the run goes on, logs every round into the candidate's MLflow run (`ctx.log_metrics`,
step = round): each site's samples, training loss, the global model's and its own
update's loss and ROC AUC on the site's validation split, and the global model's
metrics on the central validation rows (`ctx.data`). It returns the final global model
(`build(arrays)`), or raises TrainingError with one line: which sites dropped, why the
run failed, or that it timed out (the run is then stopped).

Only model arrays and aggregate numbers cross the network; see docs/federated.md.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tether.config import FederatedPolicy
from tether.errors import ConfigError, TrainingError
from tether.federated.arrays import decode_arrays
from tether.federated.environment import Flower, find_flower_bin
from tether.federated.receiver import ReportReceiver
from tether.project import Project
from tether.scoring import evaluate

__all__ = ["FederatedResult", "flower_for", "report_receiver", "run_federated", "start_run",
           "wait_for"]

STATUS_EVERY_SECONDS = 5.0
WAIT_SECONDS = 0.5

Builder = Callable[[dict[str, np.ndarray]], Any]


@dataclass
class FederatedResult:
    """What a finished run produced: the final arrays and every round's numbers."""

    run_id: int
    arrays: dict[str, np.ndarray]
    rounds: int
    sites: list[str]
    dropped: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"flower_run_id": self.run_id, "rounds": self.rounds, "sites": self.sites,
                "dropped": self.dropped, "seconds": round(self.seconds, 3)}


def policy_of(project: Project) -> FederatedPolicy:
    federated = project.policy.federated
    if federated is None:
        raise ConfigError(f"{project.config.path}: no `federated` section; a federated "
                          "trainer needs the Flower app and the SuperLink it runs on")
    return federated


def flower_for(project: Project, superlink: str | None = None) -> Flower:
    """Flower's CLI for this project (its own FLWR_HOME under TETHER_HOME)."""
    federated = policy_of(project)
    return Flower(find_flower_bin(project.settings.project_dir),
                  project.settings.home / "flower", federated, superlink=superlink)


def report_receiver(federated: FederatedPolicy) -> ReportReceiver:
    """A receiver the ServerApp can reach: on loopback when the SuperLink is local, else
    on every interface, advertised as `TETHER_FEDERATED_REPORT_HOST` (a pod IP) or
    `federated.report_host`."""
    host = os.environ.get("TETHER_FEDERATED_REPORT_HOST") or federated.report_host
    loopback = host in ("127.0.0.1", "localhost", "::1")
    return ReportReceiver(host=host if loopback else "0.0.0.0", advertise=host)


def start_run(project: Project, receiver: ReportReceiver, mode: str,
              extra: dict[str, str | int | float | bool] | None = None) -> tuple[Flower, int]:
    """Submit the project's Flower app; returns (flower, run id)."""
    federated = policy_of(project)
    app_dir = (project.settings.project_dir / federated.app).resolve()
    if not (app_dir / "pyproject.toml").is_file():
        raise ConfigError(f"federated.app: {app_dir} has no pyproject.toml (a Flower app "
                          "folder, as `tether init --example federated` writes it)")
    flower = flower_for(project)
    run_config: dict[str, str | int | float | bool] = {
        **federated.run_config,
        "mode": mode,
        "num-server-rounds": federated.rounds,
        "min-sites": federated.min_sites,
        "expected-sites": max(len(federated.sites), federated.min_sites),
        "round-timeout": float(federated.round_timeout_seconds),
        "join-timeout": float(federated.join_timeout_seconds),
        "report-url": receiver.url,
        "report-token": receiver.token,
        **(extra or {}),
    }
    return flower, flower.start_run(app_dir, run_config)


def wait_for(receiver: ReportReceiver, flower: Flower, run_id: int, deadline: float,
             handle: Callable[[dict[str, Any]], bool]) -> None:
    """Feed reports to `handle` until it returns True; fail on a run that ended without
    its last report, or on the deadline (the run is stopped then)."""
    checked = time.monotonic()
    while True:
        report = receiver.get(timeout=WAIT_SECONDS)
        if report is not None:
            if report.get("kind") == "failed":
                raise TrainingError(f"federated run {run_id} failed: {report.get('reason')}")
            if handle(report):
                return
            continue
        now = time.monotonic()
        if now >= deadline:
            flower.stop(run_id)
            raise TrainingError(f"federated run {run_id} did not finish within "
                                "federated.run_timeout_seconds; stopped it")
        if now - checked >= STATUS_EVERY_SECONDS:
            checked = now
            status = flower.status(run_id)
            if status.finished:
                # the last report may still be in flight
                late = receiver.get(timeout=2.0)
                if late is not None:
                    receiver.reports.put(late)
                    continue
                details = status.details or "no details"
                raise TrainingError(f"federated run {run_id} ended ({details}) without "
                                    f"reporting a model; see `flwr log {run_id}` on the "
                                    "SuperLink")


def _site_metrics(site: dict[str, Any]) -> dict[str, float]:
    name = site["site"]
    prefix = f"site/{name}/"
    if site.get("phase") == "evaluate":
        return {prefix + "final_val_loss": site.get("eval-loss", math.nan),
                prefix + "final_val_roc_auc": site.get("eval-roc-auc", math.nan)}
    return {prefix + "samples": site.get("num-examples", math.nan),
            prefix + "train_loss": site.get("train-loss", math.nan),
            prefix + "global_val_loss": site.get("global-val-loss", math.nan),
            prefix + "global_val_roc_auc": site.get("global-val-roc-auc", math.nan),
            prefix + "local_val_loss": site.get("local-val-loss", math.nan),
            prefix + "local_val_roc_auc": site.get("local-val-roc-auc", math.nan)}


def run_federated(ctx: Any, build: Builder) -> Any:
    """Train across the sites; returns `build(final arrays)`, the model to register.

    `ctx` is the TrainContext tether hands the trainer (its `project` names the policy;
    `ctx.data` are the central validation rows). Raises TrainingError (one line) when
    the run fails, fewer than `federated.min_sites` sites take part, or it times out;
    ConfigError when the Flower app or environment is missing.
    """
    project: Project = ctx.project
    federated = policy_of(project)
    started = time.monotonic()
    x_central = ctx.data[ctx.features]
    y_central = ctx.data[ctx.target].to_numpy()
    history: list[dict[str, Any]] = []
    state: dict[str, Any] = {"sites": [], "dropped": {}, "final": None}
    ctx.report("federated: waiting for sites", 0, federated.rounds)
    with report_receiver(federated) as receiver:
        flower, run_id = start_run(project, receiver, "train", {
            "features": ",".join(ctx.features), "target": ctx.target, "seed": ctx.seed})
        ctx.log_params({"flower_run_id": run_id, "federated_rounds": federated.rounds,
                        "federated_min_sites": federated.min_sites,
                        "flower_superlink": flower.superlink})
        round_started = time.monotonic()

        def handle(report: dict[str, Any]) -> bool:
            nonlocal round_started
            kind = report["kind"]
            if kind == "sites":
                state["sites"] = sorted(report.get("sites") or [])
                ctx.log_params({"federated_sites": ",".join(state["sites"])})
                ctx.report(f"federated: {len(state['sites'])} sites joined", 0,
                           federated.rounds)
                return False
            if kind == "round":
                number = int(report["round"])
                model = build(decode_arrays(report["arrays"]))
                values: dict[str, float] = {}
                for site in report.get("sites") or []:
                    values.update(_site_metrics(site))
                central = _central_metrics(model, x_central, y_central, ctx)
                values.update({f"global/val_{k}": v for k, v in central.items()})
                values["round/sites"] = float(sum(1 for s in report.get("sites") or []
                                                  if s.get("phase") == "train"))
                now = time.monotonic()
                values["round/seconds"] = now - round_started
                round_started = now
                ctx.log_metrics(values, step=number)
                state["dropped"] = dict(report.get("dropped") or {})
                history.append({"round": number, "metrics": values,
                                "dropped": state["dropped"]})
                ctx.report(f"federated: round {number}/{federated.rounds}", number,
                           federated.rounds)
                return False
            if kind == "final":
                state["final"] = report
                state["dropped"] = dict(report.get("dropped") or {})
                return True
            return False

        try:
            wait_for(receiver, flower, run_id, started + federated.run_timeout_seconds, handle)
        except BaseException:
            # whatever stopped tether (a bad report, Ctrl-C) stops the run on the SuperLink
            # too: no federation trains for a run nobody will register
            flower.stop(run_id)
            raise
    final = state["final"]
    result = FederatedResult(run_id=run_id, arrays=decode_arrays(final["arrays"]),
                             rounds=int(final.get("rounds", federated.rounds)),
                             sites=state["sites"], dropped=state["dropped"], history=history,
                             seconds=time.monotonic() - started)
    if result.dropped:
        ctx.log_params({"federated_dropped": "; ".join(f"{site} ({why})" for site, why
                                                      in sorted(result.dropped.items()))})
    ctx.details["federated"] = result.summary()
    return build(result.arrays)


def _central_metrics(model: Any, x: Any, y: np.ndarray, ctx: Any) -> dict[str, float]:
    if len(y) == 0:
        return {}
    from tether.training import predict_scores

    predictions, scores = predict_scores(model, x)
    task = ctx.project.policy.model.task
    return evaluate(task, y.astype(float), predictions.astype(float), scores).defined()


