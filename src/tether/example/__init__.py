"""The example projects `tether init` writes, one per task: a loan-default classifier
on generated data (binary), disease progression (regression) and iris species
(multiclass), the last two on data scikit-learn ships."""

from __future__ import annotations

from tether.scoring import Task

__all__ = ["TEMPLATES"]

# task -> folder of this package holding tether.yaml and train.py
TEMPLATES = {Task.BINARY: "project", Task.REGRESSION: "regression",
             Task.MULTICLASS: "multiclass"}
