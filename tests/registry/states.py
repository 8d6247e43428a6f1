"""Registry states for pure tests: versions by state, aliases and a rollout."""

from __future__ import annotations

from collections.abc import Iterable

from tether.registry import RegistryState, RolloutSpec, VersionInfo
from tether.registry import transitions as t

GATE_PASSED: dict[str, object] = {"passed": True}
CANARY = RolloutSpec(version=3, mode="canary", weight=0.1, step=0, started_at=0.0)


def version(number: int, state: str, gate: dict[str, object] | None = GATE_PASSED,
            ) -> VersionInfo:
    return VersionInfo(number, state, "", None, 0.0, (), gate, {})


def registry(champion: int | None = 1, previous: int | None = None,
             challenger: int | None = None, rollout: RolloutSpec | None = None,
             ungated: Iterable[int] = (), **states: str) -> RegistryState:
    """`registry(2, previous=1, v1="retired", v2="champion")`; versions in `ungated`
    never passed a gate, the others did."""
    never = set(ungated)
    versions = tuple(version(int(name[1:]), state,
                             gate=None if int(name[1:]) in never else GATE_PASSED)
                     for name, state in states.items())
    base = RegistryState("m", champion=None, challenger=None, previous=None, rollout=None,
                         versions=versions)
    return t.apply(base, [t.SetAlias(alias, number) for alias, number in
                          (("champion", champion), ("previous", previous),
                           ("challenger", challenger)) if number is not None]
                   + ([t.SetRollout(rollout)] if rollout else []))
