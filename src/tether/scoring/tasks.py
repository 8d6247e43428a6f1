"""What a model predicts: importable without numpy (the CLI's `init --task` lists it)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Task"]


class Task(StrEnum):
    """What a model predicts."""

    BINARY = "binary_classification"
    MULTICLASS = "multiclass_classification"
    REGRESSION = "regression"

    @property
    def classification(self) -> bool:
        return self is not Task.REGRESSION
