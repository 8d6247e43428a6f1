"""`tether adopt MODEL_URI`: run a model that plain MLflow logged and registered.

The model version is taken into the project's registered model (see
`tether.registry.adoption`). From the project's reference data (`data.reference` or
`data.generator`) tether computes what it computes for a version it trains: the holdout
scored by the model (what `tether gate` compares on), the training profile (what drift is
measured against) and the calibration (what label-free estimates need). The split is
the one every retrain makes, so an adopted champion and the next challenger are judged
on the same holdout rows. The adopted model may have been trained on some of those rows:
its holdout figures are then optimistic, and the result says so.

Without reference data nothing is computed, and each command degrades: the server
serves, monitoring shows live metrics without drift or estimates, the gate compares on
the labels that arrived since, each saying why in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tether.classes import model_classes
from tether.errors import DataError, ModelNotFound, TetherError
from tether.events import EventKind
from tether.monitoring.reference import CALIBRATION_ERROR, PROFILE_FILE
from tether.project import Project
from tether.training import (
    MAX_REFERENCE_ROWS,
    SEGMENT,
    load_reference,
    score_reference,
    split_reference,
)

__all__ = ["Adopted", "adopt"]


@dataclass(frozen=True)
class Adopted:
    """What `adopt` did: the version, whether it is new, what it recorded and what it
    could not (each with its reason)."""

    version: int
    created: bool
    recorded: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "created": self.created, "recorded": self.recorded,
                "missing": self.missing, "metrics": self.metrics, "notes": self.notes}


def adopt(project: Project, uri: str) -> Adopted:
    """Take the model at `uri` into the project and record its reference artifacts.
    Raises ConfigError for a URI of another form, ModelNotFound when it names nothing,
    DataError when the model cannot predict the reference data's features; a version
    registered by this call is then withdrawn again, so a failed adopt leaves nothing."""
    try:
        number, created = project.registry.adopt(uri)
    except ModelNotFound as exc:
        from tether.serving.health import redact

        where = redact(project.settings.registry_uri)
        raise ModelNotFound(
            f"{exc}, in the project's registry {where}; adopt takes a model from this "
            f"registry (nothing is copied): log it there (MLFLOW_TRACKING_URI={where}), or "
            "point the project at the registry that holds it (TETHER_TRACKING_URI, or "
            "MLFLOW_TRACKING_URI when that is unset)") from exc
    try:
        return _complete(project, uri, number, created)
    except Exception as exc:
        if not created:
            raise
        try:
            project.registry.withdraw(number)
        except TetherError:
            raise exc from None
        if isinstance(exc, TetherError):
            raise type(exc)(f"{exc}; version {number} was withdrawn again, nothing was "
                            "registered") from exc
        raise


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" ... ({len(names)} in all)" if len(names) > 5 else "")


def _complete(project: Project, uri: str, number: int, created: bool) -> Adopted:
    """Record the reference artifacts of the version `adopt` took."""
    policy = project.policy
    target = policy.model.target
    try:
        reference = load_reference(project)
    except DataError as exc:
        absent = {name: f"no reference data ({exc})"
                  for name in ("profile", "holdout", "calibration")}
        project.record(EventKind.ADOPTED, f"adopted {uri} without reference data", version=number,
                       data={"uri": uri, "missing": absent})
        return Adopted(number, created, missing=absent)
    model = project.registry.load_model(number)
    features = [c for c in reference.columns if c != target]
    if model.columns:  # the model's signature says which columns it takes
        wanted = [c.name for c in model.columns]
        unknown = [c for c in wanted if c not in reference.columns]
        if unknown:
            unused = [c for c in features if c not in wanted]
            source = (f"data.reference {policy.data.reference}" if policy.data.reference
                      else f"data.generator {policy.data.generator}")
            raise DataError(
                f"the model takes column(s) {_some(unknown)} that the reference data "
                f"does not have ({source})"
                + (f"; the reference data has {_some(unused)} instead" if unused else "")
                + ": log the model with the reference data's column names")
        features = wanted
    train_rows, holdout = split_reference(project, reference)
    # a classifier without `classes_` (a pyfunc): its classes are the target's, in the
    # order sklearn gives them; the profile records them for serving and feedback
    classes = (sorted(reference[target].dropna().unique().tolist(), key=_class_order)
               if policy.model.task.classification and model_classes(model) is None
               else None)
    try:
        metrics, scored, profile = score_reference(
            model, train_rows, holdout.assign(**{SEGMENT: "holdout"}), features=features,
            target=target, task=policy.model.task, classes=classes)
    except TetherError as exc:
        raise DataError(f"the adopted model cannot predict the reference data: {exc}") \
            from exc
    snapshot = train_rows.sample(n=min(len(train_rows), MAX_REFERENCE_ROWS),
                                 random_state=policy.data.seed)
    project.registry.log_reference(
        number, artifacts={"reference": snapshot.reset_index(drop=True), "holdout": scored},
        files={"training.json": json.dumps({"features": features, "target": target,
                                            "task": policy.model.task.value,
                                            "adopted_from": uri,
                                            "rows": {"train": len(train_rows),
                                                     "holdout": len(holdout)}}),
               PROFILE_FILE: json.dumps(profile.as_dict())})
    recorded = ["profile", "holdout"]
    missing: dict[str, str] = {}
    if policy.model.task.classification:
        why = profile.meta.get(CALIBRATION_ERROR)
        if why:
            missing["calibration"] = str(why)
        else:
            recorded.append("calibration")
    notes = [f"holdout: {len(holdout)} rows of the reference data, split as every retrain "
             "splits it; if the model was trained on them, its holdout figures are "
             "optimistic"]
    project.record(EventKind.ADOPTED, f"adopted {uri}", version=number,
                   data={"uri": uri, "recorded": recorded, "missing": missing,
                         "metrics": metrics})
    return Adopted(number, created, recorded, missing, metrics, notes)


def _class_order(value: Any) -> tuple[int, Any]:
    """Numbers before text, each in its own order (sklearn sorts one type only)."""
    return (0, value) if isinstance(value, int | float) else (1, str(value))
