"""replay: the whole loop over a real history, in simulated time, beside the baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tether.cli._common import JSON_OPTION, Options, check_output_file, console, err_console

__all__ = ["register"]

PLAIN_STEPS = 20  # lines a replay prints when its output is not a terminal


def replay(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="The history: CSV or Parquet, oldest row "
                                                  "first."),
    target: str = typer.Option(..., "--target", help="The column with the true outcome."),
    time_column: str | None = typer.Option(None, "--time-column",
                                           help="Column of dates or epoch seconds."),
    rate: str | None = typer.Option(None, "--rate",
                                    help="Without a time column: rows per period (1/d, "
                                         "24/d) or a period per row (1h)."),
    start: str | None = typer.Option(None, "--start",
                                     help="With --rate: the first row's date "
                                          "(default 2000-01-01)."),
    label_delay: str | None = typer.Option(None, "--label-delay",
                                           help="How long after a prediction its label "
                                                "reaches /feedback (e.g. 1d; default 0)."),
    initial: str | None = typer.Option(None, "--initial",
                                       help="Rows (N) or a period (3y) that train the initial "
                                            "model (default: the first tenth)."),
    compare: str | None = typer.Option(None, "--compare",
                                       help="Baselines beside the project's policy: static, "
                                            "periodic:P (e.g. static,periodic:1y)."),
    window: str | None = typer.Option(None, "--window",
                                      help="Width of the windows the metric is reported "
                                           "over (default: at most 60 windows)."),
    html: Path | None = typer.Option(None, "--html", help="Write the HTML report here."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay the history through the real server, labels and controller in simulated
    time, with the project's policy and the baselines side by side."""
    from tether.config import load_config
    from tether.replay import ReplayOptions, load_history
    from tether.replay import replay as run_replay

    check_output_file(html)
    options = ctx.find_object(Options) or Options()
    config = load_config(options.config)
    history = load_history(data, target=target, time_column=time_column, rate=rate,
                           start=start)
    settings = ReplayOptions(label_delay=label_delay, initial=initial, compare=compare,
                             window=window)
    with _bar() as advance:
        document = run_replay(history, config, settings, progress=advance)
    if html is not None:
        from tether.replay.report import write_report

        write_report(document, html)
    if as_json:
        console.out(json.dumps(document, indent=2, sort_keys=True), highlight=False)
        return
    _render(document, html)


class _bar:
    """A Rich bar with an ETA on a terminal; otherwise a plain line every 5 %."""

    def __enter__(self) -> Any:
        if err_console.is_terminal:
            self.progress: Progress | None = Progress(
                TextColumn("{task.description}"), BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), console=err_console,
                transient=True)
            self.progress.__enter__()
            self.task = self.progress.add_task("replay", total=1.0)
        else:
            self.progress = None
        self.said = -1
        return self.advance

    def advance(self, description: str, share: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=description, completed=share)
            return
        step = int(share * PLAIN_STEPS)
        if step != self.said:
            self.said = step
            err_console.print(f"{share:4.0%} {description}", soft_wrap=True)

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)


def _figure(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _render(document: dict[str, Any], html: Path | None) -> None:
    from tether.replay.history import describe_seconds, when

    data, chosen = document["data"], document["metric"]
    console.print(f"replayed {data['replayed_rows']:,} rows ({when(data['start_ts'])[:10]} to "
                  f"{when(data['end_ts'])[:10]}) after {data['initial_rows']:,} initial rows; "
                  f"labels {describe_seconds(data['label_delay_seconds'])} late; a pass every "
                  f"{describe_seconds(data['pass_interval_seconds'])}; "
                  f"{document['seconds']:.0f} s")
    table = Table(title=f"realized {chosen['name']} per window, by policy")
    columns = ["policy", f"mean {chosen['name']}"]
    has_accuracy = any(p["mean_accuracy"] is not None for p in document["policies"])
    if has_accuracy and chosen["name"] != "accuracy":
        columns.append("mean accuracy")
    floor = chosen["floor"]
    columns += [f"windows under {floor:g}" if floor is not None else "under floor",
                "retrains", "promotions", "rollbacks", "labels sent", "labels used"]
    for column in columns:
        table.add_column(column, justify="left" if column == "policy" else "right")
    for policy in document["policies"]:
        row = [policy["name"], _figure(policy["mean_metric"])]
        if len(columns) == 9:
            row.append(_figure(policy["mean_accuracy"]))
        share = policy["share_under_floor"]
        row += ["-" if share is None else f"{share:.0%}", str(policy["retrains"]),
                str(policy["promotions"]), str(policy["rollbacks"]),
                f"{policy['labels_sent']:,}", f"{policy['labels_used']:,}"]
        table.add_row(*row)
    console.print(table)
    for line in comparisons(document):
        console.print(line)
    for policy in document["policies"]:
        recovered = [r for r in policy["recoveries"] if r["seconds"] is not None]
        if policy["recoveries"]:
            times = ", ".join(describe_seconds(r["seconds"]) for r in recovered) or "none"
            console.print(f"{policy['name']}: recovered after {len(recovered)} of "
                          f"{len(policy['recoveries'])} detected changes ({times})")
    own = document["policies"][0]
    console.print(decisions_table(own["decisions"]))
    if html is not None:
        console.print(f"report: {html}")


def decisions_table(decisions: list[dict[str, Any]]) -> Table:
    """The project's decisions, each reason whole: Rich wraps it at word boundaries, so
    no number or word is cut."""
    from tether.replay.history import when

    shown = [d for d in decisions if d["kind"] not in ("trigger_skipped",)]
    timeline = Table(title=f"the project's policy: {len(shown)} decisions")
    for column in ("date", "event", "version"):
        timeline.add_column(column, no_wrap=True)
    timeline.add_column("reason", overflow="fold", ratio=1)
    for decision in shown:
        timeline.add_row(when(decision["ts"])[:10], decision["kind"],
                         "-" if decision["version"] is None else str(decision["version"]),
                         decision["reason"])
    return timeline


def comparisons(document: dict[str, Any]) -> list[str]:
    """One line per baseline: the project's policy against it, with the counts behind it."""
    name = document["metric"]["name"]
    bigger = document["metric"]["bigger_is_better"]
    own, *others = document["policies"]
    lines = []
    for other in others:
        if own["mean_metric"] is None or other["mean_metric"] is None:
            continue
        delta = own["mean_metric"] - other["mean_metric"]
        verdict = ("better than" if (delta > 0) == bigger else "worse than") if delta else \
            "the same as"
        lines.append(f"policy vs {other['name']}: mean {name} {own['mean_metric']:.4f} vs "
                     f"{other['mean_metric']:.4f} ({delta:+.4f}, {verdict} {other['name']}); "
                     "retrains "
                     f"{own['retrains']} vs {other['retrains']}, promotions "
                     f"{own['promotions']} vs {other['promotions']}, labels used "
                     f"{own['labels_used']:,} vs {other['labels_used']:,}")
    return lines


def register(app: typer.Typer) -> None:
    app.command()(replay)
