"""`tether replay`: check the inputs, replay each policy, put the findings in one document."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tether.config import Config
from tether.replay.arms import Arm, parse_compare
from tether.replay.engine import ArmRun, Plan, run_arm
from tether.replay.history import (
    History,
    ReplayInputError,
    describe_seconds,
    parse_duration,
)
from tether.replay.summary import (
    SCHEMA,
    default_window,
    detected_changes,
    floor_of,
    summarize_arm,
    windows_of,
)
from tether.scoring import metric

__all__ = ["ReplayOptions", "initial_rows", "plan_replay", "replay"]

MIN_INITIAL_ROWS = 20
DEFAULT_INITIAL_SHARE = 0.1


@dataclass(frozen=True)
class ReplayOptions:
    """The options of `tether replay` that are not the history itself."""

    label_delay: str | None = None
    initial: str | None = None
    compare: str | None = None
    window: str | None = None
    workdir: Path | None = None


def initial_rows(history: History, initial: str | None) -> int:
    """Rows that train the initial model: `N` rows or the first PERIOD of the history
    (default: the first tenth)."""
    n = len(history.times)
    if initial is None:
        count = int(n * DEFAULT_INITIAL_SHARE)
    elif initial.strip().isdigit():
        count = int(initial)
    else:
        period = parse_duration(initial, "--initial")
        count = int(np.searchsorted(history.times, history.times[0] + period, side="left"))
    if count < MIN_INITIAL_ROWS:
        raise ReplayInputError(f"--initial {initial or 'default'}: {count} rows train the "
                               f"initial model; it needs at least {MIN_INITIAL_ROWS}")
    if count >= n - 1:
        raise ReplayInputError(f"--initial {initial}: {count} of the history's {n} rows train "
                               "the initial model, which leaves nothing to replay")
    return count


MAX_REPORT_WINDOWS = 10_000  # more windows than a table or a plot can show


def check_window(text: str, replayed: float) -> float:
    """Seconds in `--window`; ReplayInputError unless it cuts the replayed span (seconds)
    into between 1 and MAX_REPORT_WINDOWS windows."""
    width = parse_duration(text, "--window")
    if width <= 0:
        raise ReplayInputError(f"--window {text}: a window must be longer than zero, e.g. 30d")
    if replayed / width > MAX_REPORT_WINDOWS:
        raise ReplayInputError(f"--window {text}: cuts the replayed history "
                               f"({describe_seconds(replayed)}) into more than "
                               f"{MAX_REPORT_WINDOWS:,} windows; pass a longer one")
    return width


def plan_replay(history: History, config: Config, options: ReplayOptions,
                workdir: Path) -> Plan:
    start = initial_rows(history, options.initial)
    delay = parse_duration(options.label_delay, "--label-delay") if options.label_delay else 0.0
    replayed = float(history.times[-1] - history.times[start])
    if delay > replayed:
        raise ReplayInputError(f"--label-delay {options.label_delay} is longer than the "
                               f"replayed history ({describe_seconds(replayed)}): no label "
                               "would arrive")
    if options.window:
        check_window(options.window, replayed)
    gaps = np.diff(history.times[start:])
    typical = float(np.median(gaps)) if len(gaps) else 1.0
    # a pass per monitoring interval, but never more often than rows arrive: a replay of
    # daily rows gains nothing from passes every ten seconds of history
    interval = max(float(config.policy.monitoring.interval_seconds), typical)
    return Plan(history=history, config=config, start=start, label_delay=delay,
                interval=interval, workdir=workdir,
                mlflow_template=_mlflow_template(workdir, config.policy.model.name))


def _mlflow_template(workdir: Path, model_name: str) -> Path:
    """A new MLflow database with its schema migrated (seconds of work) and the model
    registered, copied into each policy's folder instead of migrating one per policy."""
    from tether.registry import Registry

    folder = workdir / "mlflow-template"
    folder.mkdir(parents=True, exist_ok=True)
    Registry(model_name, f"sqlite:///{folder / 'mlflow.db'}").create()
    return folder / "mlflow.db"


Progress = Callable[[str, float], None]


def replay(history: History, config: Config, options: ReplayOptions,
           progress: Progress | None = None) -> dict[str, Any]:
    """Replay the project's policy and the baselines of `options.compare` over `history`;
    the `tether.replay/1` document (see docs/replay.md).

    Raises ReplayInputError for options that cannot be replayed (before anything runs),
    TetherError for what the loop itself refuses (a trainer that fails, a bad policy).
    """
    arms = parse_compare(options.compare)
    target = config.policy.model.target
    if history.target != target:
        raise ReplayInputError(f"--target {history.target!r}: the project's model.target is "
                               f"{target!r}; they must be the same column")
    with tempfile.TemporaryDirectory(prefix="tether-replay-") as scratch:
        workdir = options.workdir or Path(scratch)
        plan = plan_replay(history, config, options, workdir)
        started = time.perf_counter()
        runs: list[ArmRun] = []
        for number, arm in enumerate(arms):
            def report(description: str, share: float, number: int = number) -> None:
                if progress is not None:
                    progress(description, (number + share) / len(arms))

            runs.append(run_arm(plan, arm, report))
        seconds = time.perf_counter() - started
    return document(plan, arms, runs, options, seconds)


def document(plan: Plan, arms: list[Arm], runs: list[ArmRun], options: ReplayOptions,
             seconds: float) -> dict[str, Any]:
    history, policy = plan.history, plan.config.policy
    first, last = float(history.times[plan.start]), float(history.times[-1])
    width = (check_window(options.window, last - first) if options.window
             else default_window(last - first))
    windows = windows_of(first, last + 1e-6, width)
    changes = detected_changes(runs[0])
    change_times = [c["ts"] for c in changes]
    primary = policy.metric.primary
    chosen = metric(policy.model.task, primary)
    # the floor and the recovery tolerance are the project's, for every arm alike
    policies = [summarize_arm(run, history, policy, windows, change_times) for run in runs]
    return {
        "schema": SCHEMA,
        "seconds": round(seconds, 3),
        "data": {"source": history.source, "target": history.target,
                 "task": policy.model.task.value, "rows": len(history.times),
                 "initial_rows": plan.start, "replayed_rows": len(history.times) - plan.start,
                 "first_ts": float(history.times[0]), "start_ts": first, "end_ts": last,
                 "label_delay_seconds": plan.label_delay,
                 "pass_interval_seconds": plan.interval},
        "metric": {"name": primary, "bigger_is_better": chosen.bigger_is_better,
                   "floor": floor_of(policy)},
        "windows": [{"start_ts": float(a), "end_ts": float(b)}
                    for a, b in zip(windows.edges[:-1], windows.edges[1:], strict=True)],
        "changes": changes,
        "policies": policies,
    }
