"""init, retrain, gate, promote, rollback, status, history."""

from __future__ import annotations

import os
import shlex
import shutil
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from tether.cli._common import (
    JSON_OPTION,
    console,
    emit,
    err_console,
    events_table,
    progress_bar,
    project_of,
)
from tether.errors import ConfigError
from tether.example import EXAMPLE_NAMES, EXAMPLES, FEDERATED, RAINFALL, TEMPLATES
from tether.scoring.tasks import Task

if TYPE_CHECKING:
    from tether import lifecycle
    from tether.control.status import ControllerStatus
    from tether.project import Project

__all__ = ["register"]

FAILED = 1


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


EXAMPLE_HELP = ("The example to start from: "
                + ", ".join(f"{name} ({item.what})" for name, item in EXAMPLES.items())
                + f", {FEDERATED} (a health-risk model trained across three hospitals "
                  f"with Flower), or {RAINFALL} (50 years of daily weather to "
                  "`tether replay`).")


def init(
    directory: Path = typer.Argument(Path("."), help="Folder to scaffold the project in."),
    task: Task | None = typer.Option(None, "--task",
                                     help="What the model predicts; picks its example "
                                          "(default: binary_classification)."),
    example: str | None = typer.Option(
        None, "--example",
        help=EXAMPLE_HELP),
    template: str | None = typer.Option(None, "--template", hidden=True),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Scaffold tether.yaml and a trainer from an example (default: the loan-default
    classifier)."""
    _project_folder(directory)
    if example == RAINFALL and task in (None, Task.BINARY) and template is None:
        _init_rainfall(directory, force)
        return
    chosen = _example(example, template, task)
    if chosen == FEDERATED:
        from tether.federated.template import write_template

        files = write_template(directory, force=force)
        console.print(f"wrote {len(files)} files in {directory}: tether.yaml, train.py, the "
                      "Flower app in app/ and each hospital's data in sites/")
        console.print(f"next: {_cd(directory)}start a SuperLink and a SuperNode per site "
                      "(docs/federated.md), then [bold]tether retrain[/bold]", soft_wrap=True)
        return
    from tether.config import CONFIG_FILE
    from tether.project import Project

    source_dir = resources.files("tether.example") / chosen
    _make_folder(directory)
    names = (CONFIG_FILE, "train.py")
    for name in names:
        if (directory / name).exists() and not force:
            raise ConfigError(f"{directory / name}: already exists; pass --force to "
                              "overwrite it")
    written: list[str] = []
    for name in names:
        with resources.as_file(source_dir / name) as source:
            shutil.copyfile(source, directory / name)
        written.append(str(directory / name))
    console.print(f"wrote {', '.join(written)}")
    project = Project.open(directory / CONFIG_FILE)
    registry = project.registry.local_file
    if registry is not None and not registry.exists():
        with err_console.status("creating the registry"):
            project.registry.create()
        console.print(f"created the registry {registry}")
    console.print(f"next: {_cd(directory)}[bold]tether retrain[/bold], [bold]tether gate[/bold], "
                  "[bold]tether promote[/bold]", soft_wrap=True)


def _project_folder(directory: Path) -> None:
    """Refuse, in one line and before anything is written, a project folder that is a
    file or lies under one."""
    for folder in (directory, *directory.parents):
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder}: is a file, not a folder; pass `tether init` a new "
                              "or existing folder")


def _make_folder(directory: Path) -> None:
    """Create the folder `tether init` writes in, or say in one line why it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot create the folder ({exc.strerror}); pass "
                          "`tether init` a folder you can write in") from exc


def _cd(directory: Path) -> str:
    """`cd DIR && ` when the project is not the current folder, for the next-step hint."""
    if directory.resolve() == Path.cwd().resolve():
        return ""
    return f"cd {shlex.quote(str(directory))} && "


def _example(example: str | None, template: str | None, task: Task | None) -> str:
    """The example folder `tether init` copies (or FEDERATED)."""
    if template is not None:  # the older spelling of --example federated
        if template != FEDERATED:
            raise ConfigError(f"--template {template!r}: the one template is {FEDERATED!r}")
        example = example or FEDERATED
    if example is None:
        return TEMPLATES[task or Task.BINARY]
    if example in (FEDERATED, RAINFALL):
        if task not in (None, Task.BINARY):
            raise ConfigError(f"--example {example} is a binary classifier; it does not "
                              f"take --task {task.value}")
        return FEDERATED
    found = EXAMPLES.get(example)
    if found is None:
        raise ConfigError(f"--example {example!r} is not an example; choose one of "
                          + ", ".join(EXAMPLE_NAMES))
    if task is not None and task is not found.task:
        raise ConfigError(f"--example {example} is {found.task.value}; it does not take "
                          f"--task {task.value}")
    return found.folder


def _init_rainfall(directory: Path, force: bool) -> None:
    """The rainfall project and its history, for `tether replay` (`make replay`)."""
    from tether.config import CONFIG_FILE
    from tether.replay.datasets import RAINFALL_START, rainfall

    history = rainfall()
    source_dir = resources.files("tether.example") / "rainfall"
    names = (CONFIG_FILE, "train.py", "rainfall.csv")
    for name in names:
        if (directory / name).exists() and not force:
            raise ConfigError(f"{directory / name}: already exists; pass --force to "
                              "overwrite it")
    _make_folder(directory)
    for name in names[:2]:
        with resources.as_file(source_dir / name) as source:
            shutil.copyfile(source, directory / name)
    history.to_csv(directory / "rainfall.csv", index=False)
    console.print(f"wrote {directory / CONFIG_FILE}, {directory / 'train.py'} and "
                  f"{directory / 'rainfall.csv'} ({len(history):,} days from {RAINFALL_START})",
                  soft_wrap=True)
    console.print(f"next: {_cd(directory)}[bold]tether replay --data rainfall.csv --target "
                  f"rain --rate 1/d --start {RAINFALL_START} --initial 3y --label-delay 1d "
                  "--compare static,periodic:1y --html replay.html[/bold]", soft_wrap=True)


def retrain(
    ctx: typer.Context,
    reason: str = typer.Option("manual", "--reason", help="Why; kept with the version."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a candidate version; prints RUN_ID and MODEL_VERSION, writes $GITHUB_OUTPUT."""
    from tether import lifecycle

    project = project_of(ctx)
    with progress_bar() as bar:
        task = bar.add_task(f"training {project.model_name} ({project.policy.trainer})",
                            total=None)

        def advance(description: str, completed: int, total: int | None) -> None:
            bar.update(task, description=description, completed=completed, total=total)

        result = lifecycle.train(project, reason=reason, progress=advance)
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a") as handle:
            handle.write(f"run_id={result.run_id}\nmodel_version={result.version}\n")

    def render() -> None:
        console.print(f"RUN_ID: {result.run_id}")
        console.print(f"MODEL_VERSION: {result.version}")
        figures = ", ".join(f"{k.removeprefix('holdout_')} {v:.4f}"
                            for k, v in result.metrics.items())
        err_console.print(f"version {result.version} registered as candidate "
                          f"({result.rows['train']} training rows, {result.seconds:.1f} s): "
                          f"{figures}")
        federated = result.details.get("federated")
        if federated:
            dropped = "; ".join(f"{site} dropped ({why})"
                                for site, why in sorted(federated["dropped"].items()))
            err_console.print(f"federated: {len(federated['sites'])} sites "
                              f"({', '.join(federated['sites'])}), {federated['rounds']} "
                              f"rounds, Flower run {federated['flower_run_id']}"
                              + (f"; {dropped}" if dropped else ""), soft_wrap=True)

    emit(result.as_dict(), as_json, render)


def adopt(
    ctx: typer.Context,
    uri: str = typer.Argument(..., metavar="MODEL_URI",
                              help="models:/NAME/VERSION, models:/NAME@ALIAS or "
                                   "runs:/RUN_ID/PATH, as MLflow spells them."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a model registered by plain MLflow: compute its profile, holdout and
    calibration from the project's reference data, so gate, monitor and the controller
    work on it."""
    from tether.adopt import adopt as adopt_model

    project = project_of(ctx)
    with err_console.status(f"adopting {uri}"):
        result = adopt_model(project, uri)

    def render() -> None:
        how = "registered as version" if result.created else "is version"
        console.print(f"{uri} {how} {result.version} of {project.model_name}")
        if result.recorded:
            console.print(f"recorded from the reference data: {', '.join(result.recorded)}")
        for name, why in result.missing.items():
            console.print(f"no {name}: {why}")
        if result.metrics:
            console.print("holdout: " + ", ".join(
                f"{k.removeprefix('holdout_')} {v:.4f}" for k, v in result.metrics.items()))
        for note in result.notes:
            err_console.print(note)
        console.print("next: [bold]tether gate[/bold], [bold]tether promote --version "
                      f"{result.version}[/bold], or [bold]tether up[/bold] if it serves")

    emit(result.as_dict(), as_json, render)


def gate(
    ctx: typer.Context,
    version: int | None = typer.Option(None, "--version", help="Default: latest candidate."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Challenger vs champion on the same data; exits 1 when the challenger loses."""
    from tether import lifecycle

    project = project_of(ctx)
    with err_console.status("scoring challenger and champion"):
        verdict = lifecycle.gate(project, version)

    def render() -> None:
        numbers = verdict.numbers
        table = Table(title=f"gate: version {numbers['version']} vs champion "
                            f"{numbers['champion'] or '(none)'} on {numbers['rows']} "
                            f"{numbers['segment']} rows")
        for column in ("check", "value", "threshold", "result"):
            table.add_column(column)
        colours = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
        for check in verdict.checks:
            table.add_row(check.name, _figure(check.value), _figure(check.threshold),
                          f"[{colours[check.verdict]}]{check.verdict}[/]")
        console.print(table)
        for check in verdict.checks:
            console.print(f"  {check.message}", soft_wrap=True)
        console.print(("[green]PASS[/green] " if verdict.passed else "[red]FAIL[/red] ")
                      + verdict.summary, soft_wrap=True)

    emit(verdict.as_dict(), as_json, render)
    if not verdict.passed:
        raise typer.Exit(FAILED)


def promote(
    ctx: typer.Context,
    version: int | None = typer.Option(None, "--version",
                                       help="Default: the latest candidate that passed."),
    reason: str = typer.Option("manual promote", "--reason"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a version the champion; the old champion becomes `previous`."""
    from tether import lifecycle

    project = project_of(ctx)
    number = lifecycle.promote(project, version, reason)
    state = project.registry.state()
    emit({"champion": number, "previous": state.previous}, as_json,
         lambda: console.print(f"version {number} is champion"
                               + (f" (previous: {state.previous})" if state.previous else "")))


def rollback(
    ctx: typer.Context,
    reason: str = typer.Option(..., "--reason", help="Why; kept in the registry and the log."),
    to: int | None = typer.Option(None, "--to", help="Default: alias previous."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put the previous champion (or --to N) back; the current one is tagged rolled_back.
    During a rollout (and without --to), abort it: the champion keeps all traffic."""
    from tether import lifecycle

    project = project_of(ctx)
    if to is None and project.registry.state().rollout is not None:
        _abort(project, reason, as_json)
        return
    bad, target = lifecycle.rollback(project, reason, to)
    emit({"champion": target, "rolled_back": bad}, as_json,
         lambda: console.print(f"rolled back version {bad}; version {target} is champion"))


def _render_controller(status: ControllerStatus | None) -> None:
    from tether.control.status import ERROR_CONDITIONS, REGISTRY_CONSISTENT

    if status is None:
        console.print("controller: no pass recorded yet (`tether up` or `tether controller` "
                      "runs it)")
        return
    console.print(f"controller: last pass {_when(status.ts)} UTC by {status.owner}"
                  + (f"; next attempt in {status.retry_in:.0f} s" if status.retry_in else ""))
    table = Table()
    for column in ("condition", "status", "reason", "since (UTC)", "message"):
        table.add_column(column)
    colours = {"True": "green", "False": "red", "Unknown": "yellow"}
    for condition in status.conditions:
        shown = condition.status
        if condition.type in (*ERROR_CONDITIONS, REGISTRY_CONSISTENT) \
                or condition.status == "Unknown":
            shown = f"[{colours[condition.status]}]{condition.status}[/]"
        table.add_row(condition.type, shown, condition.reason, _when(condition.since),
                      condition.message)
    console.print(table)


def abort(
    ctx: typer.Context,
    reason: str = typer.Option(..., "--reason", help="Why; kept in the registry and the log."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Stop the running canary (or shadow): the champion takes all traffic back and the
    challenger is tagged rejected."""
    _abort(project_of(ctx), reason, as_json)


def _abort(project: Project, reason: str, as_json: bool) -> None:
    from tether import lifecycle

    number = lifecycle.abort(project, reason)
    champion = project.registry.state().champion
    emit({"aborted": number, "champion": champion}, as_json,
         lambda: console.print(f"aborted the rollout of version {number}; version "
                               f"{champion} takes all traffic"))


def _render_status(result: lifecycle.Status) -> None:
    state = result.registry
    rollout = state.rollout
    console.print(f"[bold]{state.model_name}[/bold]: champion {state.champion or '-'}, "
                  f"challenger {state.challenger or '-'}, previous {state.previous or '-'}"
                  + (f", rollout {rollout.mode} {rollout.weight:.0%} of traffic to version "
                     f"{rollout.version} (step {rollout.step})" if rollout else ""))
    table = Table()
    for column in ("version", "state", "aliases", "created", "reason"):
        table.add_column(column)
    for info in state.versions:
        table.add_row(str(info.version), info.state or "-", ", ".join(info.aliases),
                      _when(info.created_at), info.reason)
    console.print(table)
    for fix in result.repaired:
        console.print(f"[green]repaired:[/green] {fix}")
    for version, reason in sorted(result.load_failures.items()):
        console.print(f"[red]load failure:[/red] servers could not load version {version}: "
                      f"{reason}")
    for problem in result.problems:
        hint = "" if problem in result.unrepairable else " (run `tether status --repair`)"
        console.print(f"[yellow]problem:[/yellow] {problem}{hint}")


def status(
    ctx: typer.Context,
    repair: bool = typer.Option(False, "--repair",
                                help="Make tags agree with aliases; never bless a version "
                                     "unfit to serve."),
    as_json: bool = JSON_OPTION,
) -> None:
    """What is serving, what is rolling out, and every version's state."""
    from tether import lifecycle

    project = project_of(ctx)
    result = lifecycle.status(project, repair=repair)
    def render() -> None:
        _render_status(result)
        _render_controller(result.controller)

    emit(result.as_dict(), as_json, render)


def history(
    ctx: typer.Context,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the latest N."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every decision, oldest first, with its reason."""
    from tether import lifecycle

    project = project_of(ctx)
    events = lifecycle.history(project, limit)

    emit([event.as_dict() for event in events], as_json,
         lambda: console.print(events_table(events)))


def prune(
    ctx: typer.Context,
    predictions_days: float | None = typer.Option(
        None, "--predictions-days", min=0.0,
        help="Keep predictions this many days (default: retention.predictions_days)."),
    totals_days: float | None = typer.Option(
        None, "--totals-days", min=0.0,
        help="Keep the dashboard's totals this many days (default: retention.totals_days)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete what the retention policy no longer keeps (the controller does it hourly)."""
    from tether import lifecycle

    project = project_of(ctx)
    result = lifecycle.prune(project, predictions_days=predictions_days,
                             totals_days=totals_days)
    emit(result.as_dict(), as_json, lambda: console.print(
        f"deleted {result.predictions} predictions in {result.batches} batches, "
        f"{result.labels} labels, {result.totals} kept totals"))


def register(app: typer.Typer) -> None:
    for command in (init, adopt, retrain, gate, promote, rollback, abort, status, history,
                    prune):
        app.command()(command)
