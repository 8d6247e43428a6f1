"""The registry's state as tether reads it: pure data, no MLflow.

Aliases `champion`, `challenger`, `previous`; version tags `tether.state`,
`tether.reason`, `tether.gate`; the model tag `tether.rollout`. Aliases are the truth,
tags follow them.

>>> spec = RolloutSpec(version=2, mode="canary", weight=0.1, started_at=0.0)
>>> before = RegistryState("m", champion=1, challenger=None, previous=None, rollout=None,
...                        versions=())
>>> after = RegistryState("m", champion=1, challenger=2, previous=None, rollout=spec,
...                       versions=())
>>> after.changes_since(before)
[('challenger', '-', '2'), ('rollout', '-', 'canary 10% to version 2 (step 0)')]
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from tether.errors import RegistryError

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GATE_TAG",
    "PREVIOUS",
    "REASON_TAG",
    "REFERENCE_DIR",
    "ROLLOUT_TAG",
    "STATE_TAG",
    "RegistryState",
    "RolloutSpec",
    "State",
    "VersionInfo",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
STATE_TAG = "tether.state"
REASON_TAG = "tether.reason"
GATE_TAG = "tether.gate"
ROLLOUT_TAG = "tether.rollout"
REFERENCE_DIR = "reference"


class State(StrEnum):
    CANDIDATE = "candidate"
    REJECTED = "rejected"
    SHADOW = "shadow"
    CANARY = "canary"
    CHAMPION = "champion"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    """The routing every server applies: which challenger, how, and with what weight
    (the challenger's share of traffic, 0..1; 0 in shadow mode)."""

    version: int
    mode: Literal["shadow", "canary"]
    weight: float
    step: int = 0
    started_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RolloutSpec:
        """Raises ValueError (with what was wrong) for anything `to_json` does not write."""
        raw = _json_object(text)
        try:
            mode = raw["mode"]
            if mode not in ("shadow", "canary"):
                raise ValueError(f"mode {mode!r} is neither 'shadow' nor 'canary'")
            return cls(version=int(raw["version"]), mode=mode, weight=float(raw["weight"]),
                       step=int(raw.get("step", 0)),
                       started_at=float(raw.get("started_at", 0.0)))
        except KeyError as exc:
            raise ValueError(f"no {exc}") from exc
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def describe(self) -> str:
        if self.mode == "shadow":
            return f"shadow to version {self.version}"
        return f"canary {self.weight:.0%} to version {self.version} (step {self.step})"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    state: str | None
    reason: str
    run_id: str | None
    created_at: float
    aliases: tuple[str, ...]
    gate: dict[str, Any] | None
    tags: dict[str, str]

    @property
    def passed_gate(self) -> bool:
        return bool(self.gate and self.gate.get("passed"))

    @classmethod
    def from_registry(cls, version: int, run_id: str | None, created_ms: int | None,
                      tags: Mapping[str, str], aliases: Iterable[str]) -> VersionInfo:
        """A version as the registry holds it: its creation time in milliseconds since
        the epoch, its tags and the aliases that name it."""
        gate = tags.get(GATE_TAG)
        try:
            verdict = _json_object(gate) if gate else None
        except ValueError as exc:
            raise _bad_tag(f"version {version}", GATE_TAG, gate, exc) from exc
        return cls(version=int(version), state=tags.get(STATE_TAG),
                   reason=tags.get(REASON_TAG, ""), run_id=run_id,
                   created_at=(created_ms or 0) / 1000.0, aliases=tuple(sorted(aliases)),
                   gate=verdict, tags=dict(tags))

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "state": self.state, "reason": self.reason,
                "run_id": self.run_id, "created_at": self.created_at,
                "aliases": list(self.aliases), "gate": self.gate}


@dataclass(frozen=True, slots=True)
class RegistryState:
    model_name: str
    champion: int | None
    challenger: int | None
    previous: int | None
    rollout: RolloutSpec | None
    versions: tuple[VersionInfo, ...]

    @classmethod
    def from_registry(cls, model_name: str, aliases: Mapping[str, int],
                      model_tags: Mapping[str, str], versions: Iterable[VersionInfo],
                      ) -> RegistryState:
        """The state from the registered model's aliases (alias -> version number), its
        tags and its versions (any order)."""
        rollout_text = model_tags.get(ROLLOUT_TAG)
        try:
            rollout = RolloutSpec.from_json(rollout_text) if rollout_text else None
        except ValueError as exc:
            raise _bad_tag(f"model {model_name}", ROLLOUT_TAG, rollout_text, exc) from exc
        return cls(model_name=model_name, champion=aliases.get(CHAMPION),
                   challenger=aliases.get(CHALLENGER), previous=aliases.get(PREVIOUS),
                   rollout=rollout,
                   versions=tuple(sorted(versions, key=lambda info: info.version)))

    def version(self, number: int) -> VersionInfo | None:
        return next((v for v in self.versions if v.version == number), None)

    @property
    def problems(self) -> list[str]:
        """Inconsistencies a crash between two writes (or a hand on the MLflow UI) can
        leave, as the registry alone shows them; `tether status --repair` fixes them.
        The rules are `tether.registry.invariants.INVARIANTS`."""
        from tether.registry.invariants import find_problems

        return [problem.message for problem in find_problems(self)]

    @property
    def routing(self) -> tuple[int | None, int | None, int | None, tuple[Any, ...] | None]:
        """What decides who serves: the three aliases and the rollout (without its start
        time). Two writers that read the same routing may write over each other."""
        rollout = self.rollout
        return (self.champion, self.challenger, self.previous,
                None if rollout is None else (rollout.version, rollout.mode, rollout.weight,
                                              rollout.step))

    def changes_since(self, before: RegistryState) -> list[tuple[str, str, str]]:
        """What moved in the routing between `before` and this state: (what, was, is)."""
        found = []
        for name in (CHAMPION, CHALLENGER, PREVIOUS):
            old, new = getattr(before, name), getattr(self, name)
            if old != new:
                found.append((name, _number(old), _number(new)))
        if before.routing[3] != self.routing[3]:
            found.append(("rollout", _rollout(before.rollout), _rollout(self.rollout)))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "champion": self.champion,
            "challenger": self.challenger,
            "previous": self.previous,
            "rollout": asdict(self.rollout) if self.rollout else None,
            "versions": [v.as_dict() for v in self.versions],
            "problems": self.problems,
        }


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def _rollout(spec: RolloutSpec | None) -> str:
    return "-" if spec is None else spec.describe()


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)  # JSONDecodeError is a ValueError
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


def _bad_tag(owner: str, tag: str, text: str | None, exc: ValueError) -> RegistryError:
    """A tag tether writes, edited by hand into something tether cannot read. Every read of
    the state fails with this until it is fixed: servers keep the routing they have, each
    controller pass fails and is retried, `tether status` prints this line."""
    shown = repr(text if text is None or len(text) <= 80 else text[:77] + "...")
    reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    return RegistryError(f"{owner}: the tag {tag} = {shown} cannot be read ({reason}); set it "
                         f"right or delete it (MLflow UI or client)")
