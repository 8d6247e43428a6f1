"""demo: the whole loop on the example project, with no servers to start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from tether.cli._common import JSON_OPTION, console, emit, events_table
from tether.events import EventKind

__all__ = ["register"]


def _panel(phase: str, status: dict[str, Any], elapsed: float) -> Table:
    table = Table(show_header=False, box=None, title=f"tether demo  [dim]{elapsed:5.1f} s[/dim]")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("phase", phase)
    if status:
        rollout = status.get("rollout")
        table.add_row("champion", f"v{status['champion']}")
        table.add_row("rollout", f"{rollout.mode} {rollout.weight:.0%} to v{rollout.version} "
                                 f"(step {rollout.step})" if rollout else "-")
        table.add_row("traffic", f"{status['rows']:,} rows predicted, {status['labels']:,} "
                                 "labels returned")
        table.add_row("last event", status["last_event"][:110])
    return table


def demo(
    directory: Path | None = typer.Option(None, "--dir",
                                          help="Folder for the demo project (recreated; "
                                               "default .tether-demo, or "
                                               ".tether-demo-federated)."),
    federated: bool = typer.Option(False, "--federated",
                                   help="The health-risk model trained across three "
                                        "hospitals (Flower; `make flower-env` first)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train, serve, drift, retrain, canary, promote, then roll back a bad release.

    With --federated: train across three hospitals, serve, let one hospital's data drift,
    retrain across the hospitals, canary, promote."""
    import time

    from tether.demo import run_demo

    directory = directory or Path(".tether-demo-federated" if federated else ".tether-demo")

    started = time.monotonic()
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        def show(phase: str, status: dict[str, Any]) -> None:
            live.update(_panel(phase, status, time.monotonic() - started))

        if federated:
            from tether.demo.federated import run_federated_demo

            result = run_federated_demo(directory, show=show, report=report)
        else:
            result = run_demo(directory, show=show, report=report)

    def render() -> None:
        decisions = [e for e in result.events
                     if e.kind not in (EventKind.TRIGGER_SKIPPED, EventKind.HOOK_IGNORED)]
        console.print(events_table(decisions, title=(
            f"timeline ({result.seconds:.0f} s, {result.rows:,} rows, {result.labels:,} "
            f"labels, {result.failed_requests} failed requests)")))
        if result.report is not None:
            console.print(f"report: {result.report}")
        console.print(f"the registry: tether --config {directory / 'tether.yaml'} status")

    emit({"seconds": result.seconds, "rows": result.rows, "labels": result.labels,
          "failed_requests": result.failed_requests,
          "report": str(result.report) if result.report else None,
          "events": [event.as_dict() for event in result.events]}, as_json, render)


def register(app: typer.Typer) -> None:
    app.command()(demo)
