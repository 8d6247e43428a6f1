"""demo: the whole loop on the example project, with no servers to start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from tether.cli._common import JSON_OPTION, console, emit

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
    directory: Path = typer.Option(Path(".tether-demo"), "--dir",
                                   help="Folder for the demo project (recreated)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train, serve, drift, retrain, canary, promote, then roll back a bad release."""
    import time

    from tether.demo import run_demo

    started = time.monotonic()
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        def show(phase: str, status: dict[str, Any]) -> None:
            live.update(_panel(phase, status, time.monotonic() - started))

        result = run_demo(directory, show=show, report=report)

    def render() -> None:
        table = Table(title=f"timeline ({result.seconds:.0f} s, {result.rows:,} rows, "
                            f"{result.labels:,} labels, {result.failed_requests} failed "
                            "requests)")
        for column in ("time", "event", "version", "reason"):
            table.add_column(column)
        for event in result.events:
            if event.kind in ("trigger_skipped", "hook_ignored"):
                continue
            table.add_row(datetime.fromtimestamp(event.ts, tz=UTC).strftime("%H:%M:%S"),
                          event.kind, str(event.version or ""), event.reason[:140])
        console.print(table)
        if result.report is not None:
            console.print(f"report: {result.report}")
        console.print(f"the registry: tether --config {directory / 'tether.yaml'} status")

    emit({"seconds": result.seconds, "rows": result.rows, "labels": result.labels,
          "failed_requests": result.failed_requests,
          "report": str(result.report) if result.report else None,
          "events": [event.as_dict() for event in result.events]}, as_json, render)


def register(app: typer.Typer) -> None:
    app.command()(demo)
