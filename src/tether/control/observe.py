"""Observe: everything a controller pass decides on, read once into one typed snapshot.

`observe(...)` reads the registry (aliases, tags, rollout), what servers reported they
could not load (the evidence a repair goes by), the store (what each arm served since
its step began, what the champion served since its promotion, recent
retrains, the last status) and the triggers waiting in the inbox. `plan` then decides
on this snapshot alone, without I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from tether import lifecycle
from tether.classes import ClassCodes, recorded_classes
from tether.control.analysis import ArmStats
from tether.control.status import ControllerStatus
from tether.control.triggers import DAY_SECONDS, Trigger
from tether.errors import TetherError
from tether.events import EventKind
from tether.monitoring.estimation import Calibrator, estimate_performance
from tether.monitoring.monitor import Monitor, Snapshot
from tether.monitoring.multiclass_estimation import ClassCalibrators, estimate_multiclass
from tether.outputs import model_scores
from tether.project import Project
from tether.registry import Evidence, RegistryState, RolloutSpec, find_problems
from tether.scoring import Task
from tether.store import Event

__all__ = [
    "MAX_WINDOW_ROWS",
    "Estimator",
    "Observed",
    "ProbationWindow",
    "RetrainJob",
    "RolloutWindow",
    "Watcher",
    "arm_stats",
    "label_free_estimator",
    "observe",
]

log = logging.getLogger("tether.controller")

MAX_WINDOW_ROWS = 50_000
PROBATION_EVENTS = (EventKind.PROMOTED, EventKind.PROBATION_PASSED, EventKind.ROLLED_BACK)

# Label-free estimates of a version's served rows, None where undefined.
Estimator = Callable[[int, pd.DataFrame], Mapping[str, float | None]]
# A watcher that reads what it needs itself and keeps its own edges (the federated
# per-site drift, `tether.federated.sites.SiteWatcher`): its triggers fire as they come.
Watcher = Callable[[RegistryState, float], list[Trigger]]


@dataclass(frozen=True)
class RolloutWindow:
    """Both arms of a rollout since its current step began."""

    spec: RolloutSpec
    challenger: ArmStats
    champion: ArmStats


@dataclass(frozen=True)
class ProbationWindow:
    """A champion since its promotion, and the version it replaced just before it."""

    version: int
    previous: int
    started: float  # when it was promoted
    current: ArmStats
    baseline: ArmStats
    # promoted by a canary whose last step passed beside the champion it replaced (not by
    # hand): labels, not a label-free estimate, decide its probation (`plan._probation`)
    canaried: bool = False


@dataclass(frozen=True)
class RetrainJob:
    """A retrain the worker runs, or the last one it finished (`error` set if it failed)."""

    trigger: Trigger
    started: float
    finished: float | None = None
    version: int | None = None
    gate_passed: bool | None = None
    error: str | None = None


@dataclass(frozen=True)
class Observed:
    """What one pass sees. Fields a pass does not need are left empty (a registry with
    problems a repair fixes is repaired before anything else is read)."""

    registry: RegistryState
    evidence: Evidence = field(default_factory=Evidence)  # versions servers could not load
    triggers: tuple[Trigger, ...] = ()  # from hooks and people, already recorded
    retrains: tuple[float, ...] = ()  # when retrains started in the last 24 h
    last_schedule: float | None = None  # when the schedule last fired
    retraining: RetrainJob | None = None  # running now
    last_retrain: RetrainJob | None = None  # the last one this controller finished
    rollout: RolloutWindow | None = None
    probation: ProbationWindow | None = None
    champion: Snapshot | None = None  # the champion's live picture, for the watchers
    monitoring_error: str | None = None  # why there is no live picture
    previous: ControllerStatus | None = None  # the status the last pass left
    watching: bool = False  # whether this controller watches the champion at all
    watched: tuple[Trigger, ...] = ()  # what other watchers fired on this pass

    @cached_property
    def problems(self) -> tuple[str, ...]:
        """What breaks the registry's invariants and a repair fixes, given the evidence
        (empty when none: see `tether.registry.invariants`)."""
        found = find_problems(self.registry, self.evidence)
        return tuple(p.message for p in found) if any(p.fixes for p in found) else ()

    @cached_property
    def unrepairable(self) -> tuple[str, ...]:
        """Problems no repair fixes: a person decides (e.g. which version to promote)."""
        return tuple(p.message for p in find_problems(self.registry, self.evidence)
                     if not p.fixes)


def observe(project: Project, *, now: float, inbox: Sequence[Trigger] = (),
            previous: ControllerStatus | None = None, monitor: Monitor | None = None,
            retraining: RetrainJob | None = None, last_retrain: RetrainJob | None = None,
            watchers: Sequence[Watcher] = ()) -> Observed:
    """Read what the pass needs: the registry, the store, and the watchers' triggers."""
    state = project.registry.state()
    evidence = Evidence(unloadable=lifecycle.load_failures(project))
    repairing = Observed(registry=state, evidence=evidence, triggers=tuple(inbox),
                         previous=previous, retraining=retraining, last_retrain=last_retrain,
                         watching=monitor is not None)
    if repairing.problems:
        return repairing
    store, name = project.store, project.model_name
    retrains = tuple(e.ts for e in store.events(name, kinds=[EventKind.RETRAIN_STARTED],
                                                 since=now - DAY_SECONDS))
    last_schedule = None
    if project.policy.triggers.schedule:
        fired = store.events(name, kinds=[EventKind.SCHEDULE_FIRED], limit=1)
        last_schedule = fired[0].ts if fired else None
    estimator = label_free_estimator(monitor) if monitor is not None else None
    rollout = probation = champion = None
    monitoring_error = None
    if state.rollout is not None and state.champion is not None:
        rollout = _rollout_window(project, state.rollout, state.champion, estimator)
    if state.rollout is None and state.champion is not None:
        probation = _probation_window(project, state, estimator)
        if monitor is not None:
            try:
                champion = monitor.snapshot(state.champion, "champion")
            except TetherError as exc:
                monitoring_error = str(exc)
    watched: list[Trigger] = []
    for watcher in watchers:
        try:
            watched += watcher(state, now)
        except TetherError as exc:  # a watcher that cannot see this pass fires nothing
            log.warning("watcher %r: %s", watcher, exc)
    return Observed(registry=state, evidence=evidence, triggers=tuple(inbox),
                    retrains=retrains,
                    last_schedule=last_schedule, retraining=retraining,
                    last_retrain=last_retrain, rollout=rollout, probation=probation,
                    champion=champion, monitoring_error=monitoring_error, previous=previous,
                    watching=monitor is not None, watched=tuple(watched))


def _rollout_window(project: Project, spec: RolloutSpec, champion: int,
                    estimator: Estimator | None) -> RolloutWindow:
    route = "shadow" if spec.mode == "shadow" else "canary"
    return RolloutWindow(
        spec=spec,
        challenger=arm_stats(project, spec.version, route, since=spec.started_at,
                             estimator=estimator),
        champion=arm_stats(project, champion, "champion", since=spec.started_at,
                           estimator=estimator))


def _probation_window(project: Project, state: RegistryState,
                      estimator: Estimator | None) -> ProbationWindow | None:
    """Open from a promotion until probation passes or the champion is rolled back."""
    assert state.champion is not None
    if state.previous is None:
        return None
    found = project.store.events(project.model_name, kinds=list(PROBATION_EVENTS), limit=5)
    if not found or found[-1].kind != EventKind.PROMOTED or found[-1].version != state.champion:
        return None
    started = found[-1].ts
    current = arm_stats(project, state.champion, "champion", since=started,
                        estimator=estimator)
    # the old champion's last window before the promotion: the same world, recently
    baseline = arm_stats(project, state.previous, "champion", since=None, until=started,
                         estimator=estimator, limit=project.policy.monitoring.window_size)
    return ProbationWindow(version=state.champion, previous=state.previous, started=started,
                           current=current, baseline=baseline,
                           canaried=_came_through_a_canary(project, found[-1]))


def _came_through_a_canary(project: Project, promotion: Event) -> bool:
    """Whether the promotion ended a canary: the controller records the last step's
    `rollout_step` just before it, for the same version."""
    recent = project.store.events(project.model_name, limit=20, kinds=[
        EventKind.PROMOTED, EventKind.ROLLOUT_STEP, EventKind.ROLLOUT_STARTED,
        EventKind.ROLLOUT_ABORTED])
    at = next((i for i, event in enumerate(recent) if event.id == promotion.id), 0)
    return at > 0 and recent[at - 1].kind == EventKind.ROLLOUT_STEP \
        and recent[at - 1].version == promotion.version


def arm_stats(project: Project, version: int, route: str, since: float | None,
              until: float | None = None, estimator: Estimator | None = None,
              limit: int = MAX_WINDOW_ROWS) -> ArmStats:
    """Counts, errors, served latency, model CPU time per call and labeled outcomes of one
    arm since `since`."""
    window = project.store.prediction_window(project.model_name, version=version, route=route,
                                             since=since, until=until, limit=limit,
                                             features=False)
    if window.empty:
        return ArmStats(version=version, route=route, predictions=0)
    errors = window["error"].astype(bool)
    served = window[~errors]
    latency = served["latency_ms"].dropna()
    labeled = served[served["label"].notna()]
    return ArmStats(
        version=version,
        route=route,
        predictions=len(window),
        errors=int(errors.sum()),
        latency_p99_ms=float(np.percentile(latency, 99)) if len(latency) else 0.0,
        latency_p50_ms=float(np.percentile(latency, 50)) if len(latency) else 0.0,
        labels=len(labeled),
        y_true=labeled["label"].to_numpy(dtype=float),
        y_pred=labeled["prediction"].to_numpy(dtype=float),
        y_score=model_scores(labeled),
        classes=(_class_codes(project, version)
                 if project.policy.model.task is Task.MULTICLASS else None),
        estimated=_estimate(estimator, version, served),
        model_cpu_ms=served["model_cpu_ms"].to_numpy(dtype=float),
        batch_rows=served["batch_rows"].to_numpy(dtype=float),
    )


_CODES: dict[tuple[str, str, int], list[float]] = {}


def _class_codes(project: Project, version: int) -> list[float] | None:
    """The codes the store keeps for a multiclass version's classes (`tether.classes`;
    1.0, 2.0, 3.0 for classes 1, 2, 3), the probability columns' labels; None (0..k-1)
    when its profile records none. A version's classes never change: found once."""
    key = (project.registry.tracking_uri, project.model_name, version)
    found = _CODES.get(key)
    if found is None:
        classes = recorded_classes(project.registry, version)
        if classes is None:
            return None
        found = _CODES[key] = ClassCodes(classes, multiclass=True).codes
    return found


def label_free_estimator(monitor: Monitor) -> Estimator:
    """Estimated metrics of a window of served rows, from the version's calibration."""

    def estimate(version: int, served: pd.DataFrame) -> Mapping[str, float | None]:
        profile = monitor.profile(version)
        proba = model_scores(served[served["prediction"].notna()]) if not served.empty \
            else None
        if profile.class_calibration and proba is not None and proba.ndim == 2:
            return estimate_multiclass(ClassCalibrators.from_dict(profile.class_calibration),
                                       proba)  # multiclass CBPE
        if not profile.calibration or served.empty or served["score"].isna().all():
            return {}
        rows = served[served["score"].notna() & served["prediction"].notna()]
        return estimate_performance(Calibrator.from_dict(profile.calibration),
                                    rows["score"].to_numpy(float),
                                    rows["prediction"].to_numpy(float))

    return estimate


def _estimate(estimator: Estimator | None, version: int,
              served: pd.DataFrame) -> Mapping[str, float | None]:
    if estimator is None:
        return {}
    try:
        return estimator(version, served)
    except TetherError:  # no calibration for this version: the labels have to decide
        return {}
