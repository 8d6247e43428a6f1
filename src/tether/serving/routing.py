"""Which loaded version answers a request: the champion, or the canary by weight.

A request goes to the canary when the hash of its (first) prediction id falls below
the canary weight, so the split follows the weight over many ids and the same id is
always routed the same way, in every replica.

>>> canary_point("abc") == canary_point("abc")
True
>>> 0.0 <= canary_point("abc") < 1.0
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from tether.serving.slots import Slot

__all__ = ["CANARY", "CHAMPION", "SHADOW", "RoutingTable", "canary_point"]

CHAMPION = "champion"
CANARY = "canary"
SHADOW = "shadow"

_SCALE = float(2**64)


def canary_point(key: str) -> float:
    """A stable position of `key` in [0, 1)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """What is served; replaced as a whole (one reference swap), never edited."""

    champion: Slot | None = None
    challenger: Slot | None = None
    mode: str | None = None  # canary or shadow, when there is a challenger
    weight: float = 0.0

    def choose(self, key: str) -> tuple[Slot, str]:
        champion = self.champion
        assert champion is not None
        if (self.mode == CANARY and self.challenger is not None and self.weight > 0
                and canary_point(key) < self.weight):
            return self.challenger, CANARY
        return champion, CHAMPION

    @property
    def shadow(self) -> Slot | None:
        return self.challenger if self.mode == SHADOW else None

    def describe(self) -> list[dict[str, Any]]:
        served = []
        if self.champion is not None:
            served.append({"version": self.champion.version, "route": CHAMPION,
                           "weight": 1.0 - (self.weight if self.mode == CANARY else 0.0)})
        if self.challenger is not None and self.mode is not None:
            served.append({"version": self.challenger.version, "route": self.mode,
                           "weight": self.weight if self.mode == CANARY else 0.0})
        return served
