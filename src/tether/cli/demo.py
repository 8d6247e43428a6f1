"""demo: the whole loop on the example project, with no servers to start."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from tether.cli._common import JSON_OPTION, console, emit, err_console, events_table
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
    timeout: float | None = typer.Option(
        None, "--timeout", min=10.0,
        help="Seconds the whole demo may take (default 150, 900 with --federated); give a "
             "busy machine more. When it runs out, the timeline and report so far are "
             "still written."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train, serve, drift, retrain, canary, promote, then roll back a bad release.

    With --federated: train across three hospitals, serve, let one hospital's data drift,
    retrain across the hospitals, canary, promote."""
    from tether.demo import run_demo

    directory = directory or Path(".tether-demo-federated" if federated else ".tether-demo")

    from tether.demo.run import DemoFailed

    started = time.monotonic()
    failure: DemoFailed | None = None
    with _display(started, as_json) as show:
        try:
            if federated:
                from tether.demo.federated import run_federated_demo

                result = run_federated_demo(directory, show=show, report=report,
                                            **({"timeout": timeout} if timeout else {}))
            else:
                result = run_demo(directory, show=show, report=report,
                                  **({"timeout": timeout} if timeout else {}))
        except DemoFailed as exc:
            failure, result = exc, exc.result

    def render() -> None:
        decisions = [e for e in result.events
                     if e.kind not in (EventKind.TRIGGER_SKIPPED, EventKind.HOOK_IGNORED)]
        console.print(events_table(decisions, title=(
            f"timeline ({result.seconds:.0f} s, {result.rows:,} rows, {result.labels:,} "
            f"labels, {result.failed_requests} failed requests)")))
        if result.report is not None:
            console.print(f"report: {result.report}")
        console.print(f"the registry: {_tether_command()} --config "
                      f"{directory / 'tether.yaml'} status")

    emit({"seconds": result.seconds, "rows": result.rows, "labels": result.labels,
          "failed_requests": result.failed_requests,
          "report": str(result.report) if result.report else None,
          "events": [event.as_dict() for event in result.events],
          "error": str(failure) if failure is not None else None}, as_json, render)
    if failure is not None:
        err_console.print(f"[red]error:[/red] {failure}", soft_wrap=True)
        raise typer.Exit(failure.exit_code)


@contextmanager
def _display(started: float, quiet: bool) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """How the demo shows its progress: a live panel on a terminal; elsewhere (a CI log,
    a pipe) one plain line per phase, on stderr; nothing under --json."""
    if quiet:
        yield lambda phase, status: None
        return
    if not console.is_terminal:
        said: list[str] = []

        def line(phase: str, status: dict[str, Any]) -> None:
            if not said or said[-1] != phase:
                said.append(phase)
                err_console.print(f"{time.monotonic() - started:6.1f} s  {phase}",
                                  soft_wrap=True, highlight=False)

        yield line
        return
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        yield lambda phase, status: live.update(
            _panel(phase, status, time.monotonic() - started))


def register(app: typer.Typer) -> None:
    app.command()(demo)


def _tether_command() -> str:
    """How to run `tether` again from this shell: its name when it is on the PATH (as
    this very program), else the path of this program (`make demo` runs it from the
    virtualenv, which the shell may not have activated)."""
    import shutil
    import sys

    running = Path(sys.argv[0])
    found = shutil.which("tether")
    if running.name != "tether" or (found and Path(found).resolve() == running.resolve()):
        return "tether"
    return str(running)
