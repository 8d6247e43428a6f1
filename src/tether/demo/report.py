"""The demo's HTML report: metrics, traffic and drift over time, every event marked."""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tether.errors import TetherError
from tether.events import EventKind
from tether.monitoring.drift import detect_drift
from tether.monitoring.estimation import Calibrator, estimate_performance
from tether.monitoring.monitor import Monitor
from tether.monitoring.multiclass_estimation import ClassCalibrators, estimate_multiclass
from tether.outputs import model_scores, window_features
from tether.project import Project
from tether.scoring import evaluate
from tether.store import Event

__all__ = ["write_report"]

MARKED: dict[str, str] = {
    EventKind.TRIGGER: "grey", EventKind.RETRAIN_STARTED: "tab:orange",
    EventKind.GATE_PASSED: "tab:green", EventKind.ROLLOUT_STARTED: "tab:purple",
    EventKind.ROLLOUT_STEP: "tab:purple", EventKind.PROMOTED: "tab:green",
    EventKind.ROLLED_BACK: "tab:red", EventKind.ROLLOUT_ABORTED: "tab:red"}
MIN_ROWS = 40


def _figure_png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _bucket_seconds(frame: pd.DataFrame) -> float:
    span = float(frame["ts"].max() - frame["ts"].min()) if len(frame) else 1.0
    return max(2.0, span / 40)


def _series(frame: pd.DataFrame, start: float, width: float, task: str, primary: str,
            calibrators: dict[int, Calibrator | ClassCalibrators | None]) -> pd.DataFrame:
    rows = []
    frame = frame.assign(bucket=((frame["ts"] - start) // width) * width + width / 2)
    for (bucket, version), group in frame.groupby(["bucket", "model_version"]):
        served = group[~group["error"].astype(bool)]
        labeled = served[served["label"].notna()]
        live = math.nan
        if len(labeled) >= MIN_ROWS:
            value = evaluate(task, labeled["label"].to_numpy(float),
                             labeled["prediction"].to_numpy(float), model_scores(labeled),
                             names=[primary])[primary]
            live = math.nan if value is None else value
        estimate = math.nan
        calibrator = calibrators.get(int(version))
        scored = served[served["score"].notna()]
        proba = model_scores(served)
        if isinstance(calibrator, ClassCalibrators) and proba is not None \
                and len(served) >= MIN_ROWS:  # multiclass CBPE
            guess = estimate_multiclass(calibrator, proba).get(primary)
            estimate = math.nan if guess is None else guess
        elif isinstance(calibrator, Calibrator) and len(scored) >= MIN_ROWS:
            guess = estimate_performance(calibrator, scored["score"].to_numpy(float),
                                         scored["prediction"].to_numpy(float)).get(primary)
            estimate = math.nan if guess is None else guess
        rows.append({"t": bucket, "version": int(version), "rows": len(group),
                     "live": live, "estimate": estimate})
    return pd.DataFrame(rows)


def _mark(axis: Any, events: list[Event], start: float) -> None:
    for event in events:
        color = MARKED.get(event.kind)
        if color is None:
            continue
        x = event.ts - start
        axis.axvline(x, color=color, linewidth=1, alpha=0.7)
        label = event.kind.replace("_", " ") + (f" v{event.version}" if event.version else "")
        axis.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                      fontsize=7, va="top", ha="right", color=color)


def write_report(project: Project, path: Path) -> Path:
    """Plots of the stored history; returns the file written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = project.store
    events = store.events(project.model_name)
    frame = store.prediction_window(project.model_name, features=True)
    primary = project.policy.metric.primary
    task = project.policy.model.task.value
    figures: list[tuple[str, str]] = []
    if not frame.empty:
        start = float(frame["ts"].min())
        width = _bucket_seconds(frame)
        monitor = Monitor(project)
        calibrators: dict[int, Calibrator | ClassCalibrators | None] = {}
        for version in sorted(frame["model_version"].unique()):
            try:
                known = monitor.profile(int(version))
            except TetherError:
                calibrators[int(version)] = None
                continue
            calibrators[int(version)] = (
                Calibrator.from_dict(known.calibration) if known.calibration
                else ClassCalibrators.from_dict(known.class_calibration)
                if known.class_calibration else None)
        series = _series(frame, start, width, task, primary, calibrators)

        fig, axis = plt.subplots(figsize=(11, 3.6))
        for version, group in series.groupby("version"):
            line = axis.plot(group["t"], group["live"], marker="o", markersize=3,
                             label=f"v{version} live {primary} (labels)")
            axis.plot(group["t"], group["estimate"], linestyle="--",
                      color=line[0].get_color(), label=f"v{version} estimated (no labels)")
        _mark(axis, events, start)
        axis.set_xlabel("seconds")
        axis.set_ylabel(primary)
        axis.legend(fontsize=7, loc="lower left")
        figures.append((f"Live and estimated {primary} per version", _figure_png(fig)))

        fig, axis = plt.subplots(figsize=(11, 3.0))
        share = series.pivot_table(index="t", columns="version", values="rows",
                                   aggfunc="sum").fillna(0)
        share = share.div(share.sum(axis=1), axis=0)
        axis.stackplot(share.index, share.T.to_numpy(),
                       labels=[f"v{v}" for v in share.columns])
        _mark(axis, events, start)
        axis.set_ylim(0, 1)
        axis.set_xlabel("seconds")
        axis.set_ylabel("traffic share")
        axis.legend(fontsize=7, loc="lower left")
        figures.append(("Traffic share per version", _figure_png(fig)))

        first = int(frame["model_version"].min())
        try:
            profile = monitor.profile(first)
        except TetherError:
            profile = None
        if profile is not None:
            served = window_features(frame)
            served = served[[c for c in profile.features if c in served.columns]]
            buckets = ((frame["ts"] - start) // width) * width + width / 2
            points = []
            for bucket, group in served.groupby(buckets):
                if len(group) >= 100:
                    report = detect_drift(profile, group)
                    points.append((bucket, report.share_drifted))
            fig, axis = plt.subplots(figsize=(11, 2.8))
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, [np.nan if y is None else y for y in ys], marker="o",
                          markersize=3, color="tab:red")
            axis.axhline(project.policy.monitoring.drift_share_threshold, color="grey",
                         linestyle=":", label="drift share threshold")
            _mark(axis, events, start)
            axis.set_ylim(0, 1)
            axis.set_xlabel("seconds")
            axis.set_ylabel(f"share drifted vs v{first}")
            axis.legend(fontsize=7, loc="upper left")
            figures.append((f"Share of features drifted against v{first}'s training data",
                            _figure_png(fig)))
    rows = "".join(
        f"<tr><td>{datetime.fromtimestamp(e.ts, tz=UTC):%H:%M:%S}</td>"
        f"<td>{html.escape(e.kind)}</td><td>{e.version if e.version is not None else ''}</td>"
        f"<td>{html.escape(e.reason)}</td></tr>" for e in events)
    images = "".join(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{png}'>"
                     for title, png in figures)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>tether demo</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1150px}"
        "td{padding:2px 8px;border-bottom:1px solid #ddd;font-size:13px;vertical-align:top}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>tether demo: {html.escape(project.model_name)}</h1>{images}"
        "<h2>Every decision</h2><table><tr><th>time (UTC)</th><th>event</th><th>version</th>"
        f"<th>reason</th></tr>{rows}</table></body></html>")
    return path
