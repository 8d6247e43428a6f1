"""What must hold in the registry, in one table that both names problems and plans their
repair: pure, no MLflow.

Each invariant looks at the state (and what servers reported, `Evidence`) and returns
its problems, each with the writes that fix it. `find_problems` is what `tether status`
shows; `plan_repair` applies fixes one problem at a time on a simulated state until
none is left, which is what `tether status --repair` and the controller write.

Repair never blesses a version unfit to serve: when alias `champion` names a version
that never passed a gate, was rejected or rolled back, or that servers could not load,
the alias goes back to the last good champion instead.

>>> v = lambda n, s, gate=None: VersionInfo(n, s, "", None, 0.0, (), gate, {})
>>> moved = RegistryState("m", champion=2, challenger=None, previous=None, rollout=None,
...                       versions=(v(1, "champion"), v(2, "candidate")))
>>> [p.message for p in find_problems(moved)]  # doctest: +NORMALIZE_WHITESPACE
['alias champion -> 2 but its state is candidate (it never passed a gate)',
 'version 1 is tagged champion but alias champion -> 2']
>>> plan = plan_repair(moved)
>>> plan.repaired  # doctest: +NORMALIZE_WHITESPACE
['alias champion back on version 1, the last good champion; version 2 tagged rolled_back
  (it never passed a gate)']
>>> apply(moved, plan.writes).champion, plan.left
(1, [])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tether.registry.state import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    RegistryState,
    State,
    VersionInfo,
)
from tether.registry.transitions import (
    DeleteAlias,
    DeleteRollout,
    SetAlias,
    SetState,
    Write,
    apply,
)

__all__ = ["INVARIANTS", "Evidence", "Invariant", "Problem", "Repair", "find_problems",
           "plan_repair", "unfit"]

# states of a version that served, or passed its gate and rolled out
_PROVEN = (State.CHAMPION, State.RETIRED, State.SHADOW, State.CANARY)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the servers reported that the registry does not hold: versions they could
    not load, with the last reason (from `model_load_failed` events)."""

    unloadable: Mapping[int, str] = field(default_factory=dict)


NO_EVIDENCE = Evidence()


@dataclass(frozen=True, slots=True)
class Problem:
    invariant: str
    message: str
    fixes: tuple[Write, ...]  # empty: repair cannot fix it; a person must decide
    repaired: str = ""  # what repair says once the fixes are written


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    rule: str
    check: Callable[[RegistryState, Evidence], list[Problem]]


@dataclass(frozen=True, slots=True)
class Repair:
    writes: list[Write]
    repaired: list[str]
    left: list[Problem]  # problems no write fixes


def unfit(info: VersionInfo, evidence: Evidence = NO_EVIDENCE) -> str | None:
    """Why `info` must not be made champion by a repair, or None when it may: it served
    before or passed its gate, and no server failed to load it."""
    reasons = []
    if info.state in (State.REJECTED, State.ROLLED_BACK):
        reasons.append(f"it was {info.state}")
    elif info.state not in _PROVEN and not info.passed_gate:
        reasons.append("it never passed a gate")
    if info.version in evidence.unloadable:
        reasons.append(f"servers could not load it ({evidence.unloadable[info.version]})")
    return " and ".join(reasons) or None


def _tagged_champions(state: RegistryState) -> list[VersionInfo]:
    return [v for v in state.versions if v.state == State.CHAMPION]


def _last_good(state: RegistryState, evidence: Evidence, *, besides: int) -> int | None:
    """The version to serve instead of `besides`: the newest one still tagged champion,
    else alias previous, if fit."""
    tagged = sorted(_tagged_champions(state), key=lambda v: v.version, reverse=True)
    previous = state.version(state.previous) if state.previous is not None else None
    for info in [*tagged, previous]:
        if info is not None and info.version != besides and unfit(info, evidence) is None:
            return info.version
    return None


def _champion_alias_is_blessed(state: RegistryState, evidence: Evidence) -> list[Problem]:
    number = state.champion
    if number is None:
        return []
    info = state.version(number)
    if info is not None and info.state == State.CHAMPION:
        return []  # even one servers cannot load: that is for a rollback to decide
    why = unfit(info, evidence) if info is not None else "no such version exists"
    state_text = (info.state or "untagged") if info is not None else "unknown"
    message = f"alias champion -> {number} but its state is {state_text}"
    if why is None:
        assert info is not None
        return [Problem("champion-alias-is-blessed", message,
                        (SetState(number, State.CHAMPION, info.reason or "champion alias"),),
                        f"version {number} tagged champion")]
    message += f" ({why})"
    target = _last_good(state, evidence, besides=number)
    if target is None:
        return [Problem("champion-alias-is-blessed",
                        message + "; no version fit to serve is left to restore: promote one "
                        "with `tether promote --version N`", ())]
    fixes: list[Write] = [SetAlias(CHAMPION, target)]
    restored = state.version(target)
    if restored is not None and restored.state != State.CHAMPION:
        fixes.append(SetState(target, State.CHAMPION, f"restored: version {number} {why}"))
    said = f"alias champion back on version {target}, the last good champion"
    if info is not None and info.state in (State.REJECTED, State.ROLLED_BACK):
        said += f" (version {number}: {why})"
    elif info is not None:
        fixes.append(SetState(number, State.ROLLED_BACK,
                              f"alias champion was moved to it, but {why}"))
        said += f"; version {number} tagged rolled_back ({why})"
    if state.previous == target:
        fixes.append(DeleteAlias(PREVIOUS))
    return [Problem("champion-alias-is-blessed", message, tuple(fixes), said)]


def _champion_tags_have_the_alias(state: RegistryState, evidence: Evidence) -> list[Problem]:
    tagged = [v.version for v in _tagged_champions(state)]
    if state.champion is None:
        if not tagged:
            return []
        message = f"no champion alias, but version(s) {tagged} are tagged champion"
        fit = [v.version for v in _tagged_champions(state) if unfit(v, evidence) is None]
        if not fit:
            return [Problem("champion-tags-have-the-alias",
                            message + "; none is fit to serve", ())]
        return [Problem("champion-tags-have-the-alias", message,
                        (SetAlias(CHAMPION, max(fit)),), f"alias champion set to {max(fit)}")]
    return [Problem("champion-tags-have-the-alias",
                    f"version {number} is tagged champion but alias champion -> "
                    f"{state.champion}",
                    (SetState(number, State.RETIRED, f"replaced by version {state.champion}"),),
                    f"version {number} tagged retired")
            for number in tagged if number != state.champion]


def _interrupted(state: RegistryState) -> tuple[Write, ...]:
    """Clear the challenger alias and the rollout (a version left tagged shadow or canary
    is the next invariant's)."""
    fixes: list[Write] = []
    if state.rollout is not None:
        fixes.append(DeleteRollout())
    if state.challenger is not None:
        fixes.append(DeleteAlias(CHALLENGER))
    return tuple(fixes)


_CLEARED = "challenger alias and rollout cleared"


def _challenger_is_routed(state: RegistryState, _: Evidence) -> list[Problem]:
    if state.challenger is None or (state.rollout is not None
                                    and state.rollout.version == state.challenger):
        return []
    return [Problem("challenger-is-routed",
                    f"alias challenger -> {state.challenger} but no rollout routes to it",
                    _interrupted(state), _CLEARED)]


def _rollout_has_the_challenger(state: RegistryState, _: Evidence) -> list[Problem]:
    rollout = state.rollout
    if rollout is None or state.challenger == rollout.version:
        return []
    return [Problem("rollout-has-the-challenger",
                    f"rollout routes to {rollout.version} but alias challenger -> "
                    f"{state.challenger}",
                    _interrupted(state), _CLEARED)]


def _rollout_is_not_the_champion(state: RegistryState, _: Evidence) -> list[Problem]:
    if state.rollout is None or state.rollout.version != state.champion:
        return []
    return [Problem("rollout-is-not-the-champion",
                    f"rollout routes to the champion {state.champion}",
                    _interrupted(state), _CLEARED)]


def _rollout_states_are_routed(state: RegistryState, _: Evidence) -> list[Problem]:
    routed = state.rollout.version if state.rollout is not None else None
    return [Problem("rollout-states-are-routed",
                    f"version {info.version} is tagged {info.state} but no rollout routes to it",
                    (SetState(info.version, State.CANDIDATE, "rollout interrupted"),),
                    f"version {info.version} tagged candidate")
            for info in state.versions
            if info.state in (State.SHADOW, State.CANARY) and info.version != routed]


def _previous_is_not_the_champion(state: RegistryState, _: Evidence) -> list[Problem]:
    if state.previous is None or state.previous != state.champion:
        return []
    return [Problem("previous-is-not-the-champion",
                    f"alias previous -> {state.previous}, the champion itself",
                    (DeleteAlias(PREVIOUS),), "alias previous removed (it named the champion)")]


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("champion-alias-is-blessed",
              "alias champion names a version tagged champion; a version unfit to serve is "
              "never tagged champion by a repair: the last good champion comes back",
              _champion_alias_is_blessed),
    Invariant("champion-tags-have-the-alias",
              "only the version alias champion names is tagged champion",
              _champion_tags_have_the_alias),
    Invariant("challenger-is-routed",
              "alias challenger names the version the rollout routes to",
              _challenger_is_routed),
    Invariant("rollout-has-the-challenger",
              "a rollout routes to the version alias challenger names",
              _rollout_has_the_challenger),
    Invariant("rollout-is-not-the-champion", "a rollout never routes to the champion",
              _rollout_is_not_the_champion),
    Invariant("rollout-states-are-routed",
              "a version tagged shadow or canary is the one the rollout routes to",
              _rollout_states_are_routed),
    Invariant("previous-is-not-the-champion", "alias previous never names the champion",
              _previous_is_not_the_champion),
)


def find_problems(state: RegistryState, evidence: Evidence = NO_EVIDENCE) -> list[Problem]:
    """Every invariant's problems, in the table's order."""
    return [problem for invariant in INVARIANTS for problem in invariant.check(state, evidence)]


def plan_repair(state: RegistryState, evidence: Evidence = NO_EVIDENCE) -> Repair:
    """The writes that fix every fixable problem: the first problem's fixes, played on
    the state, then the next problem of the new state, and so on."""
    writes: list[Write] = []
    repaired: list[str] = []
    for _ in range(4 * len(INVARIANTS)):  # each fix clears a problem; bounded regardless
        problem = next((p for p in find_problems(state, evidence) if p.fixes), None)
        if problem is None:
            break
        writes += problem.fixes
        repaired.append(problem.repaired)
        state = apply(state, problem.fixes)
    return Repair(writes=writes, repaired=repaired, left=find_problems(state, evidence))
