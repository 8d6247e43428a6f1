"""Loading a model version to predict with, and MLflow's own scoring of a model folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from tether.registry.client import registry_error

__all__ = ["ColumnSpec", "LoadedModel", "ScoringResponse", "load_model_dir", "mlflow_scoring",
           "mlflow_version"]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One input column of a model's signature, in tether's own terms."""

    name: str
    dtype: str  # double, float, long, integer, boolean, string, datetime, binary
    required: bool = True


@dataclass
class LoadedModel:
    """A model version ready to predict, with what serving needs to check its input."""

    name: str
    version: int
    columns: list[ColumnSpec]
    input_example: pd.DataFrame | None
    predict: Callable[[pd.DataFrame], np.ndarray]
    predict_proba: Callable[[pd.DataFrame], np.ndarray] | None
    raw: Any = None
    path: str | None = None


def load_model_dir(path: str, *, name: str, version: int,
                   pyfunc_loader: Callable[[str], Any] | None = None) -> LoadedModel:
    """Load an MLflow model folder (as `mlflow artifacts download` leaves it): sklearn
    models natively, others through pyfunc. Raises RegistryError."""
    from mlflow.models import Model

    try:
        meta = Model.load(path)
        columns = _columns(meta.signature)
        example = _input_example(meta, path)
        if "sklearn" in meta.flavors:
            from mlflow import sklearn as mlflow_sklearn  # imported where a model needs it

            estimator = mlflow_sklearn.load_model(path)
            proba = getattr(estimator, "predict_proba", None)
            return LoadedModel(name=name, version=version, columns=columns,
                               input_example=example,
                               predict=lambda frame: np.asarray(estimator.predict(frame)),
                               predict_proba=(lambda frame: np.asarray(proba(frame)))
                               if proba is not None else None,
                               raw=estimator, path=path)
        if pyfunc_loader is None:
            import mlflow.pyfunc  # 0.04 s: only when a model is loaded, not on every command

            pyfunc_loader = mlflow.pyfunc.load_model
        pyfunc = pyfunc_loader(path)
        return LoadedModel(name=name, version=version, columns=columns, input_example=example,
                           predict=lambda frame: np.asarray(pyfunc.predict(frame)),
                           predict_proba=None, raw=pyfunc, path=path)
    except MlflowException as exc:
        raise registry_error(f"load model {name} version {version}", exc) from exc


def mlflow_version() -> str:
    return str(mlflow.__version__)


@dataclass(frozen=True, slots=True)
class ScoringResponse:
    status: int
    media_type: str
    body: bytes


def mlflow_scoring(path: str) -> Callable[[bytes, str], ScoringResponse]:
    """MLflow's own scoring function for a model folder: for a body and content type,
    what `mlflow models serve` answers, errors included. Blocking: call it in a thread."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(path)
    schema = model.metadata.get_input_schema()

    def score(body: bytes, content_type: str) -> ScoringResponse:
        try:
            result = scoring_server.invocations(body, content_type, model, schema)
        except MlflowException as exc:
            return ScoringResponse(exc.get_http_status_code(), "application/json",
                                   exc.serialize_as_json().encode())
        return ScoringResponse(result.status, result.mimetype, result.response.encode())

    return score


def _columns(signature: Any) -> list[ColumnSpec]:
    if signature is None or signature.inputs is None:
        return []
    specs = []
    for column in signature.inputs.inputs:
        dtype = getattr(getattr(column, "type", None), "name", None) or str(column.type)
        specs.append(ColumnSpec(name=str(column.name), dtype=str(dtype),
                                required=bool(getattr(column, "required", True))))
    return specs


def _input_example(meta: Any, path: str) -> pd.DataFrame | None:
    try:
        example = meta.load_input_example(path)
    except Exception:  # an unreadable example only costs the warm-up row
        return None
    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, dict):
        return pd.DataFrame(example)
    return None
