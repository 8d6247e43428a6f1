"""Training runs: an MLflow run opened before training, logged into while it trains, and
ended by registering the trained model as a candidate version (or marked failed).

A trainer that reports progress (a federated round, an epoch) logs into the same run:
`run.log_metrics({"site_a_auc": 0.81}, step=3)`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from tether.errors import RegistryError
from tether.registry.client import process_uris, registry_error, translate
from tether.registry.state import REASON_TAG, REFERENCE_DIR, STATE_TAG, State

__all__ = ["TrainingRun", "open_run"]

_BATCH = 100  # MLflow takes at most 100 params (1000 metrics) per call


class TrainingRun:
    """One open training run. `log_params` and `log_metrics` may be called from any
    thread while the run is open; `register` ends it with a new candidate version."""

    def __init__(self, client: MlflowClient, model_name: str, run_id: str,
                 uris: tuple[str, str]) -> None:
        self._client = client
        self._uris = uris
        self._params: dict[str, str] = {}
        self._written: set[str] = set()
        self._lock = threading.Lock()
        self.model_name = model_name
        self.run_id = run_id
        self.version: int | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Parameters as text (JSON for non-strings, cut at 500 characters), written when
        the run is registered or ends: MLflow keeps one value per parameter, so a value
        logged again replaces the earlier one until then."""
        with self._lock:
            self._params.update((str(key), _param(value)) for key, value in params.items())

    @translate("log training parameters")
    def _write_params(self) -> None:
        with self._lock:
            items = [Param(key, value) for key, value in self._params.items()
                     if key not in self._written]
            for start in range(0, len(items), _BATCH):
                self._client.log_batch(self.run_id, params=items[start:start + _BATCH])
            self._written.update(item.key for item in items)

    @translate("log training metrics")
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Metrics at `step` (a round, an epoch; 0 when not given), timestamped now."""
        now = int(time.time() * 1000)
        items = [Metric(str(key), float(value), now, step or 0)
                 for key, value in metrics.items()]
        for start in range(0, len(items), _BATCH):
            self._client.log_batch(self.run_id, metrics=items[start:start + _BATCH])

    @translate("register the trained model")
    def register(self, model: Any, *, features: pd.DataFrame, metrics: Mapping[str, float],
                 artifacts: Mapping[str, pd.DataFrame], files: Mapping[str, str],
                 reason: str) -> int:
        """Log the final metrics, the model (signature and input example from `features`)
        and reference artifacts under `reference/`; register a version tagged candidate.
        Returns its number."""
        self._write_params()
        if metrics:
            self.log_metrics(metrics)
        example = features.head(5)
        signature = infer_signature(example, model.predict(example))
        with tempfile.TemporaryDirectory() as scratch:
            for name, frame in artifacts.items():
                path = Path(scratch) / f"{name}.parquet"
                frame.to_parquet(path, index=False)
                self._client.log_artifact(self.run_id, str(path), artifact_path=REFERENCE_DIR)
            for name, text in files.items():
                path = Path(scratch) / name
                path.write_text(text)
                self._client.log_artifact(self.run_id, str(path), artifact_path=REFERENCE_DIR)
        # registering a logged model resolves its models:/ URI through the process-wide
        # tracking URI too
        with process_uris(*self._uris):
            with mlflow.start_run(run_id=self.run_id):
                logged = _log_model(model, signature, example)
            version = self._client.create_model_version(
                self.model_name, source=logged.model_uri, run_id=self.run_id,
                model_id=logged.model_id,
                tags={STATE_TAG: State.CANDIDATE.value, REASON_TAG: reason})
        self.version = int(version.version)
        return self.version


@contextmanager
def open_run(client: MlflowClient, model_name: str, experiment_id: str, *,
             uris: tuple[str, str], run_name: str | None = None) -> Iterator[TrainingRun]:
    """A run open for the block: FINISHED when it ends, FAILED when it raises (nothing
    is registered then). `uris` are the tracking and registry URIs models are logged to."""
    try:
        run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    except MlflowException as exc:
        raise registry_error("open a training run", exc) from exc
    run = TrainingRun(client, model_name, run_id, uris)
    try:
        yield run
    except BaseException:
        # the training's own error matters more than one in recording it
        with contextlib.suppress(RegistryError):
            run._write_params()
        with contextlib.suppress(RegistryError):
            _end(client, run_id, "FAILED")
        raise
    run._write_params()
    _end(client, run_id, "FINISHED")


def _end(client: MlflowClient, run_id: str, status: str) -> None:
    try:
        client.set_terminated(run_id, status)
    except MlflowException as exc:
        raise registry_error(f"mark the training run {status.lower()}", exc) from exc


# MLflow infers a model's pip requirements by loading it in a fresh interpreter: about
# 10 s a version on a busy 2-core machine, most of a retrain. Within one process the
# answer for the same kinds of objects cannot change (the installed packages are the
# same), so it is inferred once per kind and reused: a controller or a replay retraining
# the same trainer pays it once.
_requirements: dict[tuple[str, ...], list[str]] = {}
_requirements_lock = threading.Lock()


def requirements_key(model: Any) -> tuple[str, ...]:
    """The flavour and the modules of every object a model is built from (a pipeline's
    steps included, through scikit-learn's `get_params(deep=True)`), sorted.

    >>> from sklearn.linear_model import LogisticRegression
    >>> requirements_key(LogisticRegression())
    ('sklearn', 'sklearn.linear_model._logistic')
    """
    flavour = "sklearn" if _is_sklearn(model) else "pyfunc"
    parts = {type(model).__module__}
    if _is_sklearn(model):
        parts |= {type(value).__module__ for value in model.get_params(deep=True).values()
                  if hasattr(value, "get_params")}
    return (flavour, *sorted(parts))


class _PickleNotice(logging.Filter):
    """Drops MLflow's warning on every sklearn model logged as cloudpickle (one per
    retrain, 88 in a replay). tether logs cloudpickle on purpose: the artifacts are its
    own, written and read by the project's registry; skops would refuse the trainer's
    own classes unless each were listed as trusted."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pickle or cloudpickle format" not in record.getMessage()


_PICKLE_NOTICE = _PickleNotice()


def _log_model(model: Any, signature: Any, example: pd.DataFrame) -> Any:
    logging.getLogger("mlflow.sklearn").addFilter(_PICKLE_NOTICE)
    key = requirements_key(model)
    with _requirements_lock:
        known = _requirements.get(key)
    if _is_sklearn(model):
        from mlflow import sklearn as mlflow_sklearn  # imported where a model needs it

        logged = mlflow_sklearn.log_model(model, name="model", signature=signature,
                                          input_example=example,
                                          serialization_format="cloudpickle",
                                          pip_requirements=known)
    else:
        from mlflow import pyfunc as mlflow_pyfunc

        logged = mlflow_pyfunc.log_model(name="model", python_model=_pyfunc_wrapper(model),
                                         signature=signature, input_example=example,
                                         pip_requirements=known)
    if known is None:
        # a cache that cannot be filled (any artifact store's error) only means MLflow
        # infers again next time: it never fails the version just registered
        with contextlib.suppress(Exception):
            from mlflow.artifacts import download_artifacts

            location = mlflow.get_logged_model(logged.model_id).artifact_location
            path = download_artifacts(artifact_uri=f"{location}/requirements.txt")
            lines = Path(path).read_text().splitlines()
            with _requirements_lock:
                _requirements[key] = [line.strip() for line in lines
                                      if line.strip() and not line.startswith("#")]
    return logged


def _is_sklearn(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover - sklearn is a dependency
        return False
    return isinstance(model, BaseEstimator)


def _pyfunc_wrapper(model: Any) -> Any:
    """Any object with `predict` as an MLflow pyfunc (built lazily: MLflow inspects it)."""
    from mlflow import pyfunc as mlflow_pyfunc

    class PredictWrapper(mlflow_pyfunc.PythonModel):  # type: ignore[name-defined]
        def __init__(self, wrapped: Any) -> None:
            self.wrapped = wrapped

        def predict(self, context, model_input, params=None):
            # no annotations: MLflow would read them as a schema
            return self.wrapped.predict(model_input)

    return PredictWrapper(model)


def _param(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text[:500]
