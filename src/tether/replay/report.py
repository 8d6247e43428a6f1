"""The replay's HTML report: every policy's realized metric on one chart, every decision
marked, then the figures and each policy's timeline. One self-contained file (the chart is
an inline PNG drawn by matplotlib; no scripts, nothing fetched)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from tether.replay.history import describe_seconds, when

__all__ = ["write_report"]

MARKS: dict[str, tuple[str, str]] = {  # kind -> (marker, label)
    "retrain_started": ("o", "retrain"), "gate_failed": ("x", "gate failed"),
    "rollout_started": ("^", "canary"), "promoted": ("*", "promoted"),
    "rollout_aborted": ("v", "canary aborted"), "rolled_back": ("X", "rolled back")}


def _dates(*ts: float) -> np.ndarray:
    """Times as numpy datetimes, which matplotlib draws as dates (also before 1970)."""
    return np.array([int(t) for t in ts], dtype="datetime64[s]")


def chart(document: dict[str, Any]) -> str:
    """The chart as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = document["metric"]["name"]
    mids = _dates(*((w["start_ts"] + w["end_ts"]) / 2 for w in document["windows"]))
    figure, axis = plt.subplots(figsize=(12, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lows = []
    for number, policy in enumerate(document["policies"]):
        color = colors[number % len(colors)]
        values = [w["metric"] if w["metric"] is not None else float("nan")
                  for w in policy["windows"]]
        lows += [v for v in values if v == v]
        axis.plot(mids, values, color=color, marker=".", linewidth=1.5,
                  label=f"{policy['name']} (mean {_fmt(policy['mean_metric'])})")
        bottom = min(lows) if lows else 0.0
        for decision in policy["decisions"]:
            mark = MARKS.get(decision["kind"])
            if mark is None:
                continue
            axis.plot(_dates(decision["ts"]), [bottom - 0.01 * (number + 1)], mark[0],
                      color=color, markersize=8 if mark[0] == "*" else 6, alpha=0.85)
    for change in document["changes"]:
        axis.axvline(_dates(change["ts"])[0], color="grey", linestyle=":", linewidth=0.8)
    floor = document["metric"]["floor"]
    if floor is not None:
        axis.axhline(floor, color="black", linestyle="--", linewidth=0.8,
                     label=f"floor {floor:g}")
    for marker, label in MARKS.values():
        axis.plot([], [], marker, color="grey", linestyle="none", label=label)
    axis.plot([], [], color="grey", linestyle=":", label="change detected (policy)")
    axis.set_ylabel(f"realized {name} per window")
    axis.legend(loc="lower left", fontsize=8, ncol=3)
    axis.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(document: dict[str, Any], path: Path) -> Path:
    data, chosen = document["data"], document["metric"]
    figures = []
    for policy in document["policies"]:
        share = policy["share_under_floor"]
        recovered = [r["seconds"] for r in policy["recoveries"] if r["seconds"] is not None]
        costs = policy["costs"]
        wall = sum(costs[k] for k in ("training_seconds", "mlflow_seconds", "server_seconds",
                                      "controller_seconds"))
        figures.append([
            policy["name"], _fmt(policy["mean_metric"]), _fmt(policy["mean_accuracy"]),
            "-" if share is None else f"{share:.0%}", str(policy["retrains"]),
            str(policy["promotions"]), str(policy["rollbacks"]),
            f"{policy['labels_used']:,}",
            f"{len(recovered)}/{len(policy['recoveries'])}"
            + (f" ({', '.join(describe_seconds(s) for s in recovered)})" if recovered else ""),
            f"{wall:.0f} s"])
    first = document["windows"][0]
    width = first["end_ts"] - first["start_ts"]
    sections = [
        f"<h1>tether replay: {html.escape(data['source'])}</h1>",
        f"<p>{data['replayed_rows']:,} rows replayed from {when(data['start_ts'])[:10]} to "
        f"{when(data['end_ts'])[:10]} after {data['initial_rows']:,} rows trained the initial "
        f"model; labels reach /feedback {describe_seconds(data['label_delay_seconds'])} "
        f"after each prediction; the controller passes every "
        f"{describe_seconds(data['pass_interval_seconds'])} of history. Metric: "
        f"{html.escape(chosen['name'])}, per window of "
        f"{describe_seconds(width)}.</p>",
        f"<img src='data:image/png;base64,{chart(document)}' alt='realized metric by policy'>",
        _table(figures, ["policy", f"mean {chosen['name']}", "mean accuracy",
                         "windows under floor", "retrains", "promotions", "rollbacks",
                         "labels used", "recovered after detected changes", "wall time"]),
    ]
    for policy in document["policies"]:
        rows = [[when(d["ts"]), d["kind"], "-" if d["version"] is None else str(d["version"]),
                 d["reason"]] for d in policy["decisions"] if d["kind"] != "trigger_skipped"]
        skipped = sum(1 for d in policy["decisions"] if d["kind"] == "trigger_skipped")
        sections.append(f"<h2>{html.escape(policy['name'])}: timeline</h2>")
        if skipped:
            sections.append(f"<p>{skipped} trigger(s) skipped (cool-down, budget, a rollout "
                            "or a retrain under way): in the JSON document.</p>")
        sections.append(_table(rows, ["time (UTC)", "event", "version", "reason"]))
    style = ("body{font-family:sans-serif;max-width:1250px;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 6px;font-size:13px;text-align:left}img{max-width:100%}")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>tether replay"
                    f"</title><style>{style}</style></head><body>{''.join(sections)}"
                    "</body></html>")
    return path
