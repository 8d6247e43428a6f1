"""Registry transitions as transactions, and the manual lifecycle around them.

Every change of who serves (promote, rollback, repair, a rollout's start, step and stop),
whoever asks for it (the CLI, the dashboard, CI, the controller), is one transaction:

1. take the store's lease `registry/<model>` (short, renewed while held: a holder that
   dies frees it within `REGISTRY_LEASE_SECONDS`; a writer waits up to
   `REGISTRY_WAIT_SECONDS` for it);
2. read the registry and check its routing (aliases and rollout) is still the one the
   caller decided on: `expected`, by default the state read when the call began;
   otherwise nothing is written and RegistryConflict says what moved;
3. write the plan (`tether.registry.transitions`) and record the event with its numbers;
4. release the lease.

So of two writers at once, the second either sees the first's result or fails with a
one-line reason, and the event log lists transitions in the order they happened.

`tether.registry` knows no database; this module has both. A project's Registry runs its
transitions through `transaction` too (the project wires it in as the registry's guard),
so a transition called on `project.registry` directly takes the same lease and check;
the functions here add the event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tether.control.status import ControllerStatus
from tether.errors import InvalidTransition, RegistryConflict, TetherError, VersionNotFound
from tether.events import EventKind
from tether.project import Project
from tether.registry import Evidence, RegistryState, RolloutSpec, State, find_problems
from tether.registry.transitions import check_expected
from tether.store import FINE_TOTALS_DAYS, Event, PruneResult

if TYPE_CHECKING:
    # training and the gate (scikit-learn, the scoring catalogue) are imported by the
    # steps that run them: `tether status` and `history` only read
    from tether.training import Progress, TrainResult
    from tether.verdict import Assessment

__all__ = ["REGISTRY_LEASE_SECONDS", "REGISTRY_WAIT_SECONDS", "Status", "gate", "history",
           "load_failures", "promote", "prune", "repair", "rollback", "start_rollout",
           "status", "stop_rollout", "train", "transaction", "update_rollout"]

REGISTRY_LEASE_SECONDS = 10.0
REGISTRY_WAIT_SECONDS = 30.0
LOCK_PREFIX = "registry/"
LOAD_FAILED = EventKind.MODEL_LOAD_FAILED

_held = threading.local()


def train(project: Project, reason: str = "manual",
          progress: Progress | None = None) -> TrainResult:
    """Retrain, recording a failure in the event log before re-raising it."""
    from tether.training import retrain

    try:
        return retrain(project, reason=reason, progress=progress)
    except TetherError as exc:
        project.record(EventKind.RETRAIN_FAILED, str(exc), data={"cause": reason})
        raise


def gate(project: Project, version: int | None = None) -> Assessment:
    from tether.gate import run_gate

    return run_gate(project, version)


# transactions --------------------------------------------------------------------------

@contextmanager
def transaction(project: Project, what: str,
                expected: RegistryState | None = None) -> Iterator[RegistryState]:
    """Hold the registry lease for the block and yield the registry's state, read under
    it. Raises RegistryConflict when the routing moved since `expected`, or when another
    writer held the lease for `REGISTRY_WAIT_SECONDS`. Re-entrant within a thread: the
    Registry's own guard comes back here, and plans on the state this read."""
    name = LOCK_PREFIX + project.model_name
    held: dict[str, RegistryState | None] = getattr(_held, "leases", {})
    if name in held:
        unused = held[name]  # the outer block's read, while nothing has been written
        held[name] = None
        current = unused if unused is not None else project.registry.state()
        check_expected(expected, current, what)
        yield current
        return
    owner = f"{project.store.writer}:{threading.get_ident()} {what}"[:200]
    with project.store.lease(name, owner, ttl_seconds=REGISTRY_LEASE_SECONDS,
                             wait_seconds=REGISTRY_WAIT_SECONDS) as taken:
        if not taken:
            holder = project.store.lock_owner(name) or "another writer"
            raise RegistryConflict(
                f"the registry of {project.model_name} is busy while {what}: {holder} has "
                f"held it for over {REGISTRY_WAIT_SECONDS:g} s; retry")
        current = project.registry.state()
        check_expected(expected, current, what)
        _held.leases = {**held, name: current}
        try:
            yield current
        finally:
            _held.leases = held


def promote(project: Project, version: int | None = None, reason: str = "manual promote",
            expected: RegistryState | None = None) -> int:
    """Make `version` (default: the latest candidate that passed its gate) the champion.

    Fails with RegistryConflict when the routing moved since `expected` (default: the
    state read as the call begins), e.g. another promotion came first.
    """
    read = project.registry.state()
    number = version if version is not None else _latest_passed(read)
    decided = expected if expected is not None else read
    with transaction(project, f"promoting version {number}", decided) as current:
        old = project.registry.promote(number, reason)
        info = current.version(number)
        project.record(EventKind.PROMOTED, reason, version=number,
                       data={"previous": old, "gate": info.gate if info else None})
    return number


def _latest_passed(state: RegistryState) -> int:
    passed = [v.version for v in state.versions if v.state == State.CANDIDATE and v.passed_gate]
    if not passed and state.rollout is not None:
        # under `tether up` the controller starts the canary of a passed candidate itself
        number = state.rollout.version
        raise VersionNotFound(
            f"no candidate is waiting: version {number} is rolling out "
            f"({state.rollout.describe()}) and becomes champion when the rollout passes; "
            f"`tether promote --version {number}` promotes it now, `tether abort --reason "
            "...` stops it")
    if not passed:
        raise VersionNotFound("no candidate has passed its gate; run `tether gate`, or pass "
                              "--version N to promote a version by hand")
    return max(passed)


def rollback(project: Project, reason: str, to: int | None = None,
             numbers: dict[str, Any] | None = None,
             on_switch: Callable[[int], None] | None = None,
             current: RegistryState | None = None,
             expected: RegistryState | None = None) -> tuple[int, int]:
    """Put `to` (default: alias previous) back as champion, recording the numbers why.

    `current` (or `expected`) is the state the decision was taken on (default: the state
    read as the call begins); `on_switch(to)` runs as soon as the champion alias moves.
    """
    decided = next((s for s in (expected, current) if s is not None), None)
    if decided is None:
        decided = project.registry.state()
    with transaction(project, "rolling back", decided):
        bad, target = project.registry.rollback(reason, to=to, on_switch=on_switch)
        project.record(EventKind.ROLLED_BACK, reason, version=bad,
                       data={"to": target, **(numbers or {})})
    return bad, target


def repair(project: Project, expected: RegistryState | None = None) -> list[str]:
    """Fix what the invariants name, never blessing a version unfit to serve (see
    `tether.registry.invariants`); records what was done. Returns it."""
    with transaction(project, "repairing", expected) as current:
        evidence = Evidence(unloadable=load_failures(project))
        problems = [p.message for p in find_problems(current, evidence)]
        fixed = project.registry.repair(evidence)
        if fixed:
            project.record(EventKind.REPAIRED, "; ".join(fixed),
                           data={"problems": problems, "fixes": fixed})
    return fixed


_repair = repair  # `status` takes a flag of the same name


def start_rollout(project: Project, spec: RolloutSpec, reason: str,
                  expected: RegistryState | None = None, *,
                  data: Mapping[str, Any] | None = None) -> None:
    """Route traffic to a challenger; records `rollout_started` with `data`."""
    with transaction(project, f"starting the rollout of version {spec.version}",
                     expected) as current:
        project.registry.start_rollout(spec, reason)
        project.record(EventKind.ROLLOUT_STARTED, reason, version=spec.version,
                       data={"rollout": asdict(spec), "champion": current.champion,
                             **(data or {})})


def update_rollout(project: Project, spec: RolloutSpec, reason: str,
                   expected: RegistryState | None = None, *, message: str | None = None,
                   data: Mapping[str, Any] | None = None) -> None:
    """Move the running rollout to `spec` (its next step, or from shadow to canary);
    records `rollout_step` (reason `message`, default `reason`) with `data`."""
    with transaction(project, f"updating the rollout of version {spec.version}", expected):
        project.registry.update_rollout(spec, reason)
        project.record(EventKind.ROLLOUT_STEP, message or reason, version=spec.version,
                       data={"rollout": asdict(spec), **(data or {})})


def stop_rollout(project: Project, state: State, reason: str,
                 expected: RegistryState | None = None, *, message: str | None = None,
                 data: Mapping[str, Any] | None = None) -> int | None:
    """Take all traffic back from the challenger and tag it `state`; records
    `rollout_aborted` when something was rolling out. Returns the challenger or None."""
    with transaction(project, "stopping the rollout", expected):
        number = project.registry.stop_rollout(state, reason)
        if number is not None:
            project.record(EventKind.ROLLOUT_ABORTED, message or reason, version=number,
                           data=dict(data or {}))
    return number


def abort(project: Project, reason: str) -> int:
    """Stop the running rollout by hand: all traffic back to the champion, the challenger
    tagged rejected (the controller does not roll it out again). Returns its number;
    InvalidTransition when nothing is rolling out."""
    number = stop_rollout(project, State.REJECTED, reason)
    if number is None:
        raise InvalidTransition("nothing is rolling out; `tether rollback` puts the "
                                "previous champion back")
    return number


# reading -------------------------------------------------------------------------------

def load_failures(project: Project) -> dict[int, str]:
    """Versions a server reported it could not load, with the latest reason. A failure
    that was the registry being unreachable says nothing about the version: left out."""
    found: dict[int, str] = {}
    for event in project.store.events(project.model_name, kinds=[LOAD_FAILED]):
        reason = str(event.data.get("error") or event.reason)
        if event.version is None or reason.startswith("RegistryUnavailable"):
            continue
        found[event.version] = reason
    return found


@dataclass(frozen=True)
class Status:
    registry: RegistryState
    repaired: list[str]
    problems: list[str] = field(default_factory=list)
    load_failures: dict[int, str] = field(default_factory=dict)
    # problems no repair fixes (a person decides, e.g. which version to promote)
    unrepairable: list[str] = field(default_factory=list)
    controller: ControllerStatus | None = None  # what the controller's last pass left

    def as_dict(self) -> dict[str, Any]:
        return {**self.registry.as_dict(), "problems": self.problems,
                "load_failures": {str(v): reason for v, reason in self.load_failures.items()},
                "repaired": self.repaired,
                "controller": self.controller.as_dict() if self.controller else None}


def status(project: Project, repair: bool = False) -> Status:
    """The registry's state, its problems, the load failures servers reported for the
    versions its aliases name, and the controller's persisted status; with `repair`,
    fixed first (see `repair`)."""
    fixed = _repair(project) if repair else []
    state = project.registry_state()
    failures = load_failures(project)
    evidence = Evidence(unloadable=failures)
    named = {state.champion, state.challenger, state.previous}
    problems = find_problems(state, evidence)
    raw = project.store.load_status(project.model_name)
    return Status(registry=state, repaired=fixed, problems=[p.message for p in problems],
                  load_failures={v: r for v, r in failures.items() if v in named},
                  unrepairable=[p.message for p in problems if not p.fixes],
                  controller=ControllerStatus.from_dict(raw) if raw is not None else None)


def history(project: Project, limit: int | None = None) -> list[Event]:
    return project.store.events(project.model_name, limit=limit)


def prune(project: Project, *, predictions_days: float | None = None,
          totals_days: float | None = None, now: float | None = None) -> PruneResult:
    """Apply the retention policy (or the given days) to the store; a prune that deleted
    something is recorded with its counts."""
    retention = project.policy.retention
    predictions_days = retention.predictions_days if predictions_days is None \
        else predictions_days
    totals_days = retention.totals_days if totals_days is None else totals_days
    now = project.clock() if now is None else now
    day = 86400.0
    result = project.store.prune(
        project.model_name,
        predictions_before=None if predictions_days is None else now - predictions_days * day,
        totals_before=None if totals_days is None else now - totals_days * day,
        # only windows of a few hours read the 5-second totals
        fine_totals_before=now - FINE_TOTALS_DAYS * day)
    parts = []
    if result.batches:
        parts.append(f"{result.predictions} predictions and {result.labels} labels older "
                     f"than {predictions_days:g} days")
    if result.totals:
        minute = "kept" if totals_days is None else f"older than {totals_days:g} days"
        parts.append(f"{result.totals} kept totals (per 5 s: older than "
                     f"{FINE_TOTALS_DAYS:g} days; per minute: {minute})")
    if parts:
        project.record(EventKind.PRUNED, "deleted " + " and ".join(parts), data=result.as_dict())
    return result
