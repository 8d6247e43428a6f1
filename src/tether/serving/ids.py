"""Prediction ids nobody can guess.

A prediction id is what `/feedback` labels by, and labels decide retrains and canaries:
knowing another client's id must take its answer, not arithmetic on one's own. Each id is
128 random bits from the OS (`os.urandom`, like `secrets.token_hex(16)`), drawn for a
whole request in one call; 32 hex characters, within the store's 56.

>>> ids = IdSource().take(3)
>>> len(ids), len(set(ids)), {len(i) for i in ids}
(3, 3, {32})
"""

from __future__ import annotations

import os

__all__ = ["FAILED_SUFFIX", "ID_BYTES", "RESERVED_SUFFIXES", "SHADOW_SUFFIX", "IdSource",
           "reserved_suffix"]

ID_BYTES = 16  # 128 random bits; a UUID4 has 122
SHADOW_SUFFIX = ":shadow"  # a shadow row's id: the request's id plus this
FAILED_SUFFIX = ":failed"  # a canary's failed attempt, when the champion then answered
RESERVED_SUFFIXES = (SHADOW_SUFFIX, FAILED_SUFFIX)


def reserved_suffix(pid: str) -> str | None:
    """The suffix of tether's own rows that `pid` ends with, if any: a client id so named
    would share its row with another request's shadow or failed attempt, and a label for
    that request would also label it."""
    return next((suffix for suffix in RESERVED_SUFFIXES if pid.endswith(suffix)), None)


class IdSource:
    """Random prediction ids, unique across processes and restarts with overwhelming
    probability (a collision among 10^12 ids has odds of about 10^-15)."""

    def take(self, n: int) -> list[str]:
        text = os.urandom(ID_BYTES * n).hex()  # one system call for the whole request
        width = 2 * ID_BYTES
        return [text[i:i + width] for i in range(0, width * n, width)]

    def key(self) -> str:
        """One fresh id: what routes a request whose rows get no ids."""
        return os.urandom(ID_BYTES).hex()
