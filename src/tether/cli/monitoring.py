"""drift, monitor, backtest."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tether.cli._common import (
    JSON_OPTION,
    check_output_file,
    console,
    emit,
    err_console,
    project_of,
)
from tether.errors import ConfigError, DataError, TetherError
from tether.monitoring.methods import METHODS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tether.monitoring.backtest import Predictor
    from tether.monitoring.drift import DriftReport
    from tether.monitoring.monitor import Snapshot
    from tether.project import Project
    from tether.tables import Columns

__all__ = ["register"]

DRIFTED = 1


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _read(path: Path, what: str) -> pd.DataFrame:
    from tether.tables import read_table

    frame = read_table(path)
    _check_rows(len(frame), path, what)
    return frame


def _read_columns(path: Path, what: str) -> Columns:
    from tether.tables import read_columns

    columns = read_columns(path)
    _check_rows(len(columns), path, what)
    return columns


def _check_rows(rows: int, path: Path, what: str) -> None:
    if rows == 0:
        raise DataError(f"{path}: the {what} file has no rows")


def _write_html(path: Path, page: str) -> None:
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot write the report ({exc.strerror or exc})") from exc
    err_console.print(f"report written to {path}")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)


def _drift_table(report: DriftReport) -> Table:
    table = Table()
    for column in ("column", "kind", "method", "score", "p (adj.)", "threshold", "verdict"):
        # a name cut to "employment…" would not say which column drifted: fold it instead
        table.add_column(column, overflow="fold")
    for f in report.features:
        verdict = ("[dim]" + escape(f.reason or "no verdict") + "[/dim]" if f.drifted is None
                   else "[red]drift[/red]" if f.drifted else "[green]ok[/green]")
        if f.drifted is not None and f.reason:  # why, where no score says it (a type mismatch)
            verdict += f": [dim]{escape(f.reason)}[/dim]"
        p = f.p_adjusted if f.p_adjusted is not None else f.p_value
        table.add_row(f.name, f.kind, f.method, _fmt(f.score), _fmt(p), _fmt(f.threshold),
                      verdict)
    return table


def _drift_summary(report: DriftReport) -> str:
    if not report.enough_data:
        return f"no verdict: {report.reason}"
    verdict = "[red]DRIFT[/red]" if report.drifted else "[green]no drift[/green]"
    text = (f"{verdict}: {report.share_drifted:.0%} of {len(report.features)} column(s) "
            f"drifted (threshold {report.share_threshold:.0%})")
    if report.missing_columns:
        text += f"; missing from current: {', '.join(report.missing_columns)}"
    if report.extra_columns:
        text += f"; not in reference: {', '.join(report.extra_columns)}"
    return text


def drift(
    reference: Path = typer.Option(..., "--reference", help="Reference CSV or Parquet file."),
    current: Path = typer.Option(..., "--current", help="Current CSV or Parquet file."),
    method: str | None = typer.Option(None, "--method",
                                      help=f"Force one method: {', '.join(METHODS)}."),
    alpha: float = typer.Option(0.05, "--alpha", min=1e-9, max=0.5,
                                help="False discovery rate for the tests."),
    share: float = typer.Option(0.5, "--share", min=0.0, max=1.0,
                                help="Share of drifted columns that means drift."),
    html_out: Path | None = typer.Option(None, "--html", help="Write an HTML report here."),
    exclude: list[str] = typer.Option([], "--exclude", metavar="COLUMN",
                                      help="Leave this column out (an id, a timestamp); "
                                           "repeat for more."),
    target: str | None = typer.Option(None, "--target", metavar="COLUMN",
                                      help="The label column: left out of the features."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Drift of CURRENT against REFERENCE, column by column; no project or registry needed.

    Exit code 1 when the data drifted, 0 when it did not.
    """
    if method is not None and method not in METHODS:
        raise DataError(f"--method {method!r}: choose from {', '.join(METHODS)}")
    from tether.monitoring.drift import detect_drift
    from tether.monitoring.profile import build_profile

    check_output_file(html_out)
    reference_frame = _read_columns(reference, "reference")
    current_frame = _read_columns(current, "current")
    left_out = [*exclude, *([target] if target is not None else [])]
    unknown = [c for c in left_out if c not in reference_frame.columns
               and c not in current_frame.columns]
    if unknown:
        raise DataError(f"--exclude/--target: no column {', '.join(map(repr, unknown))} in "
                        f"{reference} or {current}")
    reference_frame = reference_frame.without(left_out)
    current_frame = current_frame.without(left_out)
    common = [c for c in reference_frame.columns if c in current_frame.columns]
    if not common:
        raise DataError(f"{current}: no column in common with {reference} (reference has "
                        f"{', '.join(map(str, reference_frame.columns[:5]))}...)")
    with err_console.status("profiling the reference"):
        profile = build_profile(reference_frame)
    with err_console.status("comparing"):
        report = detect_drift(profile, current_frame, method=method, alpha=alpha,
                              share_threshold=share)
    if html_out is not None:
        from tether.monitoring.report import drift_html

        _write_html(html_out, drift_html(report, profile, current_frame))

    def render() -> None:
        console.print(_drift_table(report))
        console.print(_drift_summary(report))

    emit(report.as_dict(), as_json, render)
    if report.drifted:
        raise typer.Exit(DRIFTED)


def _snapshot_view(snap: Snapshot) -> None:
    where = f"version {snap.version}" + (f" on {snap.route}" if snap.route else "")
    console.print(f"[bold]{snap.model}[/bold] {where}: {snap.n_predictions} prediction(s), "
                  f"{snap.n_labels} label(s), coverage {_fmt(snap.label_coverage, 3)}, "
                  f"error rate {_fmt(snap.error_rate, 3)}, p99 latency "
                  f"{_fmt(snap.latency_p99_ms, 4)} ms")
    metrics = Table(title="metrics")
    for column in ("metric", "live", "95% interval", "n", "estimated", "undefined because"):
        metrics.add_column(column)
    for name in sorted(set(snap.live) | set(snap.estimated)):
        live = snap.live.get(name)
        why = [reason for reason in ((live.reason if live else None),
                                     snap.estimated.reason(name)) if reason]
        metrics.add_row(name, _fmt(live.value if live else None),
                        f"{_fmt(live.lower)} - {_fmt(live.upper)}" if live else "-",
                        str(live.n) if live else "-", _fmt(snap.estimated.get(name)),
                        "; ".join(dict.fromkeys(why)))
    if snap.live or snap.estimated:
        console.print(metrics)
    if snap.drift is not None and snap.drift.enough_data:
        console.print(_drift_table(snap.drift))
        console.print(_drift_summary(snap.drift)
                      + f"; prediction drift {_fmt(snap.drift.prediction_drift)}")
    for stream, fired in snap.change.items():
        console.print(f"change detector ({stream}): "
                      + ("[red]change detected[/red]" if fired else "quiet"))
    for key, reason in snap.reasons.items():
        console.print(f"[dim]{key}: {reason}[/dim]")


def monitor(
    ctx: typer.Context,
    version: int | None = typer.Option(None, "--version", help="Default: the champion."),
    route: str | None = typer.Option(None, "--route",
                                     help="champion, canary or shadow; default: all routes."),
    window: int | None = typer.Option(None, "--window", min=1,
                                      help="Last N predictions (default monitoring.window_size)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The live picture of every version taking traffic (or of --version N) from the
    store: metrics, drift, changes. Under --json: the champion's, with the challenger's
    under `challenger` while one rolls out."""
    from tether.monitoring.monitor import Monitor

    project = project_of(ctx)
    monitor_ = Monitor(project)
    if version is not None:
        snap = monitor_.snapshot(version, route, window=window)
        emit(snap.as_dict(), as_json, lambda: _snapshot_view(snap))
        return
    state = project.registry.state()
    if state.champion is None:
        raise DataError(f"{project.model_name} has no champion yet; pass --version N")
    champion = monitor_.snapshot(state.champion, route, window=window)
    challenger = None
    if state.rollout is not None and route in (None, state.rollout.mode):
        challenger = monitor_.snapshot(state.rollout.version, state.rollout.mode,
                                       window=window)

    def render() -> None:
        _snapshot_view(champion)
        if challenger is not None:
            console.print()
            _snapshot_view(challenger)

    emit({**champion.as_dict(),
          "challenger": challenger.as_dict() if challenger is not None else None},
         as_json, render)


def _model_predictor(ctx: typer.Context, uri: str) -> tuple[Predictor, list[Any] | None]:
    from tether.registry import load_model_dir

    if uri.startswith("models:/"):
        try:
            project = project_of(ctx)
        except ConfigError as exc:
            raise ConfigError(f"--model {uri}: a models:/ URI is read from the project's "
                              f"registry, and there is no project here ({exc}); run it in "
                              "the project's folder, pass --config PATH, or give --model a "
                              "local MLflow model folder") from exc
        loaded = project.registry.load_model(_registered_version(project, uri))
    else:
        if not Path(uri).is_dir():
            raise DataError(f"--model {uri!r}: not a folder with an MLflow model")
        loaded = load_model_dir(uri, name=Path(uri).name, version=0)

    def predict(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        predictions = loaded.predict(frame)
        scores = loaded.predict_proba(frame) if loaded.predict_proba is not None else None
        if scores is not None and scores.ndim == 2:
            scores = scores[:, -1]
        return predictions, scores

    from tether.classes import model_classes

    return predict, model_classes(loaded)


def _registered_version(project: Project, uri: str) -> int:
    """The number of the project's model version `models:/NAME/VERSION` or
    `models:/NAME@ALIAS` names; DataError for another model, an unknown alias, or
    another form."""
    from tether.registry.adoption import parse_uri

    forms = "models:/NAME/VERSION or models:/NAME@ALIAS"
    try:
        source = parse_uri(uri)
    except ConfigError:
        source = None
    if source is None or source.name is None:
        raise DataError(f"--model {uri!r}: expected {forms}, or a local MLflow model folder")
    if source.name != project.model_name:
        raise DataError(f"--model {uri!r}: this project's registry holds model "
                        f"{project.model_name!r}, not {source.name!r}")
    if source.version is not None:
        return source.version
    state = project.registry.state()
    named = [v.version for v in state.versions if source.alias in v.aliases]
    if not named:
        held = sorted({a for v in state.versions for a in v.aliases})
        raise DataError(f"--model {uri!r}: no version of {project.model_name!r} has alias "
                        f"{source.alias!r}; its aliases: {', '.join(held) or 'none'}")
    return named[0]


def _backtest_view(result: dict[str, Any]) -> None:
    table = Table()
    metric = "rmse" if result["task"] == "regression" else "accuracy"
    for column in ("chunk", "rows", "labels", f"realized {metric}", f"estimated {metric}",
                   "drifted", "alarms"):
        table.add_column(column)
    for c in result["chunks"]:
        alarms = ", ".join(f"{a['stream']}@{a['row']}" for a in c["alarms"])
        share = c["drift"]["share_drifted"]
        table.add_row(str(c["index"]), f"{c['start_row']}-{c['end_row'] - 1}", str(c["labels"]),
                      _fmt(c["realized"].get(metric)), _fmt(c["estimated"].get(metric)),
                      "-" if share is None else f"{share:.0%}"
                      + (" [red]drift[/red]" if c["drift"]["drifted"] else ""),
                      f"[red]{alarms}[/red]" if alarms else "")
    console.print(table)
    summary = result["summary"]
    alarms = ", ".join(f"{stream} {count}" for stream, count in summary["alarms"].items())
    console.print(f"{summary['chunks']} chunk(s), {summary['drifted_chunks']} drifted; "
                  f"alarms: {alarms or 'no detector (needs target or proba)'}")


def backtest_command(
    ctx: typer.Context,
    reference: Path = typer.Option(..., "--reference", help="Reference CSV or Parquet file."),
    analysis: Path = typer.Option(..., "--analysis", help="History to replay, oldest first."),
    chunk_size: int = typer.Option(1000, "--chunk-size", min=1, help="Rows per chunk."),
    target: str | None = typer.Option(None, "--target", help="Target column (labels)."),
    proba: str | None = typer.Option(None, "--proba", help="Positive-class probability column."),
    pred: str | None = typer.Option(None, "--pred", help="Prediction column."),
    model: str | None = typer.Option(None, "--model",
                                     help="MLflow model folder, models:/NAME/VERSION or "
                                          "models:/NAME@ALIAS, to predict when "
                                          "--proba/--pred are absent."),
    alpha: float = typer.Option(0.05, "--alpha", min=1e-9, max=0.5),
    share: float = typer.Option(0.5, "--share", min=0.0, max=1.0),
    html_out: Path | None = typer.Option(None, "--html", help="Write an HTML report here."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay monitoring over history in chunks: what would tether have flagged, and when?"""
    from tether.monitoring.backtest import backtest

    check_output_file(html_out)
    reference_frame = _read(reference, "reference")
    analysis_frame = _read(analysis, "analysis")
    predictor, classes = _model_predictor(ctx, model) if model is not None else (None, None)
    with _progress() as progress:
        task = progress.add_task("backtest", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            result = backtest(reference_frame, analysis_frame, chunk_size=chunk_size,
                              target=target, proba=proba, pred=pred, predictor=predictor,
                              alpha=alpha, share_threshold=share, classes=classes,
                              progress=advance)
        except TetherError:
            raise
        except ValueError as exc:
            raise DataError(f"backtest: {exc}") from exc
    if html_out is not None:
        from tether.monitoring.report import backtest_html

        _write_html(html_out, backtest_html(result))
    emit(result, as_json, lambda: _backtest_view(result))


def register(app: typer.Typer) -> None:
    app.command()(drift)
    app.command()(monitor)
    app.command("backtest")(backtest_command)
