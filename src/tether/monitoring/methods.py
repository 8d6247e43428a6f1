"""The names of the drift methods, importable without numpy (the CLI's help lists them)."""

from __future__ import annotations

__all__ = ["METHODS"]

METHODS = ("ks", "wasserstein", "psi", "jensenshannon", "chi2")
