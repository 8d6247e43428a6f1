"""Every change tether makes to the registry, planned as a list of writes: pure, no MLflow.

A plan is validated against the state it is made on and ordered so that a crash after
any prefix of it leaves a state the invariants name and repair fixes (aliases first
where they commit, tags after). `apply` plays writes on a state, which is how repair
plans several fixes and how tests check every crash point without a registry.

>>> v = lambda n, s: VersionInfo(n, s, "", None, 0.0, (), {"passed": True}, {})
>>> state = RegistryState("m", champion=1, challenger=None, previous=None, rollout=None,
...                       versions=(v(1, "champion"), v(2, "candidate")))
>>> writes = promote(state, 2, "better")
>>> [type(w).__name__ for w in writes]
['SetAlias', 'SetAlias', 'SetState', 'SetState']
>>> after = apply(state, writes)
>>> after.champion, after.previous, after.version(1).state, after.problems
(2, 1, 'retired', [])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tether.errors import (
    InvalidTransition,
    NothingToRollBack,
    RegistryConflict,
    VersionNotFound,
)
from tether.registry.state import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    REASON_TAG,
    STATE_TAG,
    RegistryState,
    RolloutSpec,
    State,
    VersionInfo,
)

__all__ = [
    "DeleteAlias",
    "DeleteRollout",
    "SetAlias",
    "SetRollout",
    "SetState",
    "Write",
    "apply",
    "check_expected",
    "promote",
    "rollback",
    "start_rollout",
    "stop_rollout",
    "update_rollout",
]


@dataclass(frozen=True, slots=True)
class SetAlias:
    alias: str
    version: int


@dataclass(frozen=True, slots=True)
class DeleteAlias:
    alias: str


@dataclass(frozen=True, slots=True)
class SetState:
    """The version's `tether.state` and `tether.reason` tags."""

    version: int
    state: State
    reason: str


@dataclass(frozen=True, slots=True)
class SetRollout:
    spec: RolloutSpec


@dataclass(frozen=True, slots=True)
class DeleteRollout:
    pass


Write = SetAlias | DeleteAlias | SetState | SetRollout | DeleteRollout


def check_expected(expected: RegistryState | None, current: RegistryState, what: str) -> None:
    """Raise RegistryConflict when the routing moved since `expected` was read: a writer
    that decided on an old state must not write over a newer one."""
    if expected is None:
        return
    changes = current.changes_since(expected)
    if not changes:
        return
    names = " and ".join(name for name, _, _ in changes)
    if len(changes) == 1:
        detail = f"{changes[0][1]} -> {changes[0][2]}"
    else:
        detail = ", ".join(f"{name} {old} -> {new}" for name, old, new in changes)
    raise RegistryConflict(f"{names} changed while {what} ({detail}); retry")


def promote(current: RegistryState, number: int, reason: str) -> list[Write]:
    """Make `number` the champion; the old champion becomes `previous` and retired; a
    rollout in progress ends. Raises VersionNotFound, InvalidTransition."""
    info = _known(current, number)
    if info.state == State.REJECTED:
        raise InvalidTransition(
            f"version {number} was rejected ({info.reason or 'no reason recorded'}); "
            "retrain, or fix the gate and run `tether gate` again")
    if current.champion == number:
        raise InvalidTransition(f"version {number} is already the champion")
    old = current.champion
    writes: list[Write] = []
    if old is not None:
        writes.append(SetAlias(PREVIOUS, old))
    writes += [SetAlias(CHAMPION, number), SetState(number, State.CHAMPION, reason)]
    if old is not None:
        writes.append(SetState(old, State.RETIRED, f"replaced by version {number}"))
    return writes + _end_rollout(current, keep=number,
                                 why=f"rollout stopped: version {number} was promoted")


def rollback(current: RegistryState, reason: str, to: int | None = None,
             ) -> tuple[int, int, list[Write]]:
    """Put `to` (default: alias previous) back as champion; the current one is tagged
    rolled_back. Returns (from, to, writes); the champion alias is the first write (the
    commit point). Raises NothingToRollBack, VersionNotFound, InvalidTransition."""
    if current.champion is None:
        raise NothingToRollBack("nothing is serving yet: there is no champion to roll back")
    target = to if to is not None else current.previous
    if target is None:
        raise NothingToRollBack(
            f"version {current.champion} is champion and there is no previous version to "
            "roll back to; pass --to VERSION to choose one")
    if target == current.champion:
        raise NothingToRollBack(f"version {target} is already the champion")
    info = _known(current, target)
    if info.state == State.REJECTED:
        raise InvalidTransition(f"version {target} was rejected; it cannot become champion")
    bad = current.champion
    writes: list[Write] = [
        SetAlias(CHAMPION, target),
        SetState(bad, State.ROLLED_BACK, reason),
        SetState(target, State.CHAMPION, f"rollback from version {bad}: {reason}"),
    ]
    if current.previous is not None:
        writes.append(DeleteAlias(PREVIOUS))
    return bad, target, writes + _end_rollout(
        current, keep=target, why=f"rollout stopped: version {bad} was rolled back")


def start_rollout(current: RegistryState, spec: RolloutSpec, reason: str) -> list[Write]:
    """Route traffic to a challenger: its state, then the alias, then the routing tag.
    Raises VersionNotFound, InvalidTransition."""
    if current.champion == spec.version:
        raise InvalidTransition(f"version {spec.version} is already the champion")
    if current.rollout is not None and current.rollout.version != spec.version:
        raise InvalidTransition(
            f"version {current.rollout.version} is already rolling out; "
            "only one rollout at a time")
    info = _known(current, spec.version)
    if info.state in (State.REJECTED, State.ROLLED_BACK):
        raise InvalidTransition(f"version {spec.version} is {info.state}; it cannot roll out")
    return [SetState(spec.version, _rollout_state(spec), reason),
            SetAlias(CHALLENGER, spec.version), SetRollout(spec)]


def update_rollout(current: RegistryState, spec: RolloutSpec, reason: str) -> list[Write]:
    """Change the running rollout's mode, weight or step. Raises InvalidTransition."""
    if current.rollout is None or current.rollout.version != spec.version:
        raise InvalidTransition(f"version {spec.version} is not rolling out")
    return [SetRollout(spec), SetState(spec.version, _rollout_state(spec), reason)]


def stop_rollout(current: RegistryState, state: State, reason: str,
                 ) -> tuple[int | None, list[Write]]:
    """Take all traffic back from the challenger (routing tag first, then the alias) and
    tag it `state`. Returns (the challenger or None, writes)."""
    number = current.rollout.version if current.rollout else current.challenger
    if number is None:
        return None, []
    return number, [*_clear_challenger(current), SetState(number, state, reason)]


def apply(state: RegistryState, writes: Sequence[Write]) -> RegistryState:
    """The state after `writes`, as a registry that performed them would read."""
    aliases = {name: getattr(state, name) for name in (CHAMPION, CHALLENGER, PREVIOUS)}
    tags = {v.version: (v.state, v.reason) for v in state.versions}
    rollout = state.rollout
    for write in writes:
        match write:
            case SetAlias(alias, version):
                aliases[alias] = version
            case DeleteAlias(alias):
                aliases[alias] = None
            case SetState(version, new, reason):
                tags[version] = (new.value, reason)
            case SetRollout(spec):
                rollout = spec
            case DeleteRollout():
                rollout = None
    versions = tuple(_retagged(v, tags[v.version], aliases) for v in state.versions)
    return replace(state, champion=aliases[CHAMPION], challenger=aliases[CHALLENGER],
                   previous=aliases[PREVIOUS], rollout=rollout, versions=versions)


def _retagged(info: VersionInfo, tag: tuple[str | None, str],
              aliases: dict[str, int | None]) -> VersionInfo:
    state, reason = tag
    tags = {**info.tags, REASON_TAG: reason}
    if state is not None:
        tags[STATE_TAG] = state
    named = tuple(sorted(name for name, number in aliases.items() if number == info.version))
    return replace(info, state=state, reason=reason, aliases=named, tags=tags)


def _end_rollout(current: RegistryState, *, keep: int, why: str) -> list[Write]:
    """Clear a rollout; a challenger other than `keep` goes back to candidate."""
    writes = _clear_challenger(current)
    stopped = current.rollout.version if current.rollout else current.challenger
    if stopped is not None and stopped != keep:
        writes.append(SetState(stopped, State.CANDIDATE, why))
    return writes


def _clear_challenger(current: RegistryState) -> list[Write]:
    writes: list[Write] = []
    if current.rollout is not None:
        writes.append(DeleteRollout())
    if current.challenger is not None:
        writes.append(DeleteAlias(CHALLENGER))
    return writes


def _known(current: RegistryState, number: int) -> VersionInfo:
    info = current.version(number)
    if info is None:
        known = [v.version for v in current.versions]
        raise VersionNotFound(
            f"model {current.model_name!r} has no version {number}; known versions: "
            f"{known or 'none yet (run `tether retrain`)'}")
    return info


def _rollout_state(spec: RolloutSpec) -> State:
    return State.SHADOW if spec.mode == "shadow" else State.CANARY
