"""The one module that talks to MLflow.

The registry holds all state: aliases `champion`, `challenger`, `previous`; version tags
`tether.state`, `tether.reason`, `tether.gate`; the model tag `tether.rollout`.
Writes are ordered so that a crash between two of them leaves a state that
`RegistryState.problems` names and `Registry.repair` fixes; aliases are the truth,
tags follow them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from tether.errors import (
    InvalidTransition,
    ModelNotFound,
    NothingToRollBack,
    RegistryError,
    RegistryUnavailable,
    VersionNotFound,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS",
    "ColumnSpec",
    "LoadedModel",
    "Registry",
    "RegistryState",
    "RolloutSpec",
    "ScoringResponse",
    "State",
    "VersionInfo",
    "load_model_dir",
    "mlflow_scoring",
    "mlflow_version",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
STATE_TAG = "tether.state"
REASON_TAG = "tether.reason"
GATE_TAG = "tether.gate"
ROLLOUT_TAG = "tether.rollout"
REFERENCE_DIR = "reference"

T = TypeVar("T")


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
    """The routing every server applies: which challenger, how, and with what weight."""

    version: int
    mode: Literal["shadow", "canary"]
    weight: float
    step: int = 0
    started_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RolloutSpec:
        raw = json.loads(text)
        return cls(version=int(raw["version"]), mode=raw["mode"], weight=float(raw["weight"]),
                   step=int(raw.get("step", 0)), started_at=float(raw.get("started_at", 0.0)))


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

    def version(self, number: int) -> VersionInfo | None:
        return next((v for v in self.versions if v.version == number), None)

    @property
    def problems(self) -> list[str]:
        """Inconsistencies a crash between two writes can leave; `Registry.repair` fixes them."""
        found: list[str] = []
        champions = [v.version for v in self.versions if v.state == State.CHAMPION]
        if self.champion is None and champions:
            found.append(f"no champion alias, but version(s) {champions} are tagged champion")
        for number in champions:
            if self.champion is not None and number != self.champion:
                found.append(f"version {number} is tagged champion but alias champion -> "
                             f"{self.champion}")
        if self.champion is not None:
            info = self.version(self.champion)
            if info is not None and info.state != State.CHAMPION:
                found.append(f"alias champion -> {self.champion} but its state is {info.state}")
        if self.challenger is not None and (
                self.rollout is None or self.rollout.version != self.challenger):
            found.append(f"alias challenger -> {self.challenger} but no rollout routes to it")
        if self.rollout is not None and self.challenger != self.rollout.version:
            found.append(f"rollout routes to {self.rollout.version} but alias challenger -> "
                         f"{self.challenger}")
        if self.rollout is not None and self.rollout.version == self.champion:
            found.append(f"rollout routes to the champion {self.champion}")
        if self.previous is not None and self.previous == self.champion:
            found.append(f"alias previous -> {self.previous}, the champion itself")
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


def _translate(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn MLflow's exceptions into tether's, naming what was being done."""

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return function(*args, **kwargs)
            except MlflowException as exc:
                raise _registry_error(what, exc) from exc

        wrapper.__name__ = function.__name__
        wrapper.__doc__ = function.__doc__
        return wrapper

    return decorate


def _registry_error(what: str, exc: MlflowException) -> RegistryError:
    code = getattr(exc, "error_code", "")
    message = (str(exc.message) if hasattr(exc, "message") else str(exc)).splitlines()[0]
    if code == "RESOURCE_DOES_NOT_EXIST":
        return ModelNotFound(f"{what}: {message}")
    if code in ("TEMPORARILY_UNAVAILABLE", "ENDPOINT_NOT_FOUND") or "connect" in message.lower():
        return RegistryUnavailable(f"{what}: {message}")
    return RegistryError(f"{what}: {message}")


class Registry:
    """tether's view of one registered model in MLflow."""

    def __init__(self, model_name: str, tracking_uri: str, registry_uri: str | None = None,
                 artifact_root: str | None = None) -> None:
        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifact_root = artifact_root
        _prepare_local_store(tracking_uri)
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)

    # reading -----------------------------------------------------------------------

    @_translate("read registry state")
    def state(self) -> RegistryState:
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return RegistryState(self.model_name, None, None, None, None, ())
            raise
        aliases = {alias: int(version) for alias, version in (model.aliases or {}).items()}
        rollout_text = (model.tags or {}).get(ROLLOUT_TAG)
        rollout = RolloutSpec.from_json(rollout_text) if rollout_text else None
        return RegistryState(
            model_name=self.model_name,
            champion=aliases.get(CHAMPION),
            challenger=aliases.get(CHALLENGER),
            previous=aliases.get(PREVIOUS),
            rollout=rollout,
            versions=tuple(self._versions(aliases)),
        )

    def _versions(self, aliases: Mapping[str, int]) -> list[VersionInfo]:
        found = self.client.search_model_versions(f"name='{self.model_name}'")
        by_version: dict[int, list[str]] = {}
        for alias, number in aliases.items():
            by_version.setdefault(number, []).append(alias)
        infos = [self._info(mv, by_version.get(int(mv.version), [])) for mv in found]
        return sorted(infos, key=lambda info: info.version)

    @staticmethod
    def _info(mv: Any, aliases: list[str]) -> VersionInfo:
        tags = dict(mv.tags or {})
        gate = tags.get(GATE_TAG)
        return VersionInfo(
            version=int(mv.version),
            state=tags.get(STATE_TAG),
            reason=tags.get(REASON_TAG, ""),
            run_id=mv.run_id,
            created_at=(mv.creation_timestamp or 0) / 1000.0,
            aliases=tuple(sorted(aliases)),
            gate=json.loads(gate) if gate else None,
            tags=tags,
        )

    def version(self, number: int) -> VersionInfo:
        info = self.state().version(number)
        if info is None:
            known = [v.version for v in self.state().versions]
            raise VersionNotFound(
                f"model {self.model_name!r} has no version {number}; known versions: "
                f"{known or 'none yet (run `tether retrain`)'}")
        return info

    def alias(self, alias: str) -> int | None:
        return getattr(self.state(), alias)

    # writing -----------------------------------------------------------------------

    @_translate("tag version")
    def set_state(self, number: int, state: State, reason: str) -> None:
        self.client.set_model_version_tag(self.model_name, str(number), STATE_TAG, state.value)
        self.client.set_model_version_tag(self.model_name, str(number), REASON_TAG, reason)

    @_translate("record gate verdict")
    def set_gate(self, number: int, verdict: Mapping[str, Any]) -> None:
        self.client.set_model_version_tag(self.model_name, str(number), GATE_TAG,
                                          json.dumps(verdict, sort_keys=True, default=str))

    @_translate("start challenger")
    def start_rollout(self, spec: RolloutSpec, reason: str) -> None:
        """Route traffic to a challenger: alias first, then the routing tag."""
        current = self.state()
        if current.champion == spec.version:
            raise InvalidTransition(f"version {spec.version} is already the champion")
        if current.rollout is not None and current.rollout.version != spec.version:
            raise InvalidTransition(
                f"version {current.rollout.version} is already rolling out; "
                "only one rollout at a time")
        info = self.version(spec.version)
        if info.state in (State.REJECTED, State.ROLLED_BACK):
            raise InvalidTransition(f"version {spec.version} is {info.state}; it cannot roll out")
        state = State.SHADOW if spec.mode == "shadow" else State.CANARY
        self.set_state(spec.version, state, reason)
        self.client.set_registered_model_alias(self.model_name, CHALLENGER, str(spec.version))
        self.client.set_registered_model_tag(self.model_name, ROLLOUT_TAG, spec.to_json())

    @_translate("update rollout")
    def update_rollout(self, spec: RolloutSpec, reason: str) -> None:
        current = self.state()
        if current.rollout is None or current.rollout.version != spec.version:
            raise InvalidTransition(f"version {spec.version} is not rolling out")
        state = State.SHADOW if spec.mode == "shadow" else State.CANARY
        self.client.set_registered_model_tag(self.model_name, ROLLOUT_TAG, spec.to_json())
        self.set_state(spec.version, state, reason)

    @_translate("stop challenger")
    def stop_rollout(self, state: State, reason: str) -> int | None:
        """Take all traffic back from the challenger: routing tag first, then the alias."""
        current = self.state()
        number = current.rollout.version if current.rollout else current.challenger
        if number is None:
            return None
        self._clear_challenger()
        self.set_state(number, state, reason)
        return number

    def _clear_challenger(self) -> None:
        model = self.client.get_registered_model(self.model_name)
        if ROLLOUT_TAG in (model.tags or {}):
            self.client.delete_registered_model_tag(self.model_name, ROLLOUT_TAG)
        if CHALLENGER in (model.aliases or {}):
            self.client.delete_registered_model_alias(self.model_name, CHALLENGER)

    @_translate("promote")
    def promote(self, number: int, reason: str) -> int | None:
        """Make `number` the champion; the old one becomes `previous`. Returns the old one."""
        current = self.state()
        info = self.version(number)
        if info.state == State.REJECTED:
            raise InvalidTransition(
                f"version {number} was rejected ({info.reason or 'no reason recorded'}); "
                "retrain, or fix the gate and run `tether gate` again")
        if current.champion == number:
            raise InvalidTransition(f"version {number} is already the champion")
        old = current.champion
        if old is not None:
            self.client.set_registered_model_alias(self.model_name, PREVIOUS, str(old))
        self.client.set_registered_model_alias(self.model_name, CHAMPION, str(number))
        self.set_state(number, State.CHAMPION, reason)
        if old is not None:
            self.set_state(old, State.RETIRED, f"replaced by version {number}")
        if current.challenger is not None or current.rollout is not None:
            self._clear_challenger()
        return old

    @_translate("roll back")
    def rollback(self, reason: str, to: int | None = None,
                 on_switch: Callable[[int], None] | None = None,
                 current: RegistryState | None = None) -> tuple[int, int]:
        """Put `to` (default: alias previous) back as champion. Returns (from, to).

        `on_switch(to)` runs right after the champion alias moves (the commit point), before
        the tags are written, so a server in the same process can swap at once. `current`
        is the state the decision was taken on (read again when not given).
        """
        current = current if current is not None else self.state()
        if current.champion is None:
            raise NothingToRollBack("nothing is serving yet: there is no champion to roll back")
        target = to if to is not None else current.previous
        if target is None:
            raise NothingToRollBack(
                f"version {current.champion} is champion and there is no previous version to "
                "roll back to; pass --to VERSION to choose one")
        if target == current.champion:
            raise NothingToRollBack(f"version {target} is already the champion")
        info = current.version(target)
        if info is None:
            raise VersionNotFound(f"model {self.model_name!r} has no version {target}; known "
                                  f"versions: {[v.version for v in current.versions]}")
        if info.state == State.REJECTED:
            raise InvalidTransition(f"version {target} was rejected; it cannot become champion")
        bad = current.champion
        self.client.set_registered_model_alias(self.model_name, CHAMPION, str(target))
        if on_switch is not None:
            on_switch(target)
        self.set_state(bad, State.ROLLED_BACK, reason)
        self.set_state(target, State.CHAMPION, f"rollback from version {bad}: {reason}")
        if current.previous is not None:
            self.client.delete_registered_model_alias(self.model_name, PREVIOUS)
        if current.challenger is not None or current.rollout is not None:
            self._clear_challenger()
        return bad, target

    @_translate("repair registry")
    def repair(self) -> list[str]:
        """Make tags agree with aliases after an interrupted write; returns what was fixed."""
        current = self.state()
        fixed: list[str] = []
        champions = [v.version for v in current.versions if v.state == State.CHAMPION]
        champion = current.champion
        if champion is None and champions:
            champion = max(champions)
            self.client.set_registered_model_alias(self.model_name, CHAMPION, str(champion))
            fixed.append(f"alias champion set to {champion}")
        for number in champions:
            if number != champion:
                self.set_state(number, State.RETIRED, f"replaced by version {champion}")
                fixed.append(f"version {number} tagged retired")
        if champion is not None:
            info = current.version(champion)
            if info is not None and info.state != State.CHAMPION:
                self.set_state(champion, State.CHAMPION, info.reason or "champion alias")
                fixed.append(f"version {champion} tagged champion")
        rollout = current.rollout
        dangling = (current.challenger is not None and (
            rollout is None or rollout.version != current.challenger)) or (
            rollout is not None and (rollout.version != current.challenger
                                     or rollout.version == champion))
        if dangling:
            stopped: int | None = current.challenger
            if stopped is None and rollout is not None:
                stopped = rollout.version
            self._clear_challenger()
            fixed.append("challenger alias and rollout cleared")
            if stopped is not None and stopped != champion:
                self.set_state(stopped, State.CANDIDATE, "rollout interrupted")
        if current.previous is not None and current.previous == champion:
            self.client.delete_registered_model_alias(self.model_name, PREVIOUS)
            fixed.append("alias previous removed (it named the champion)")
        return fixed

    # training runs -----------------------------------------------------------------

    @_translate("log training run")
    def log_candidate(self, model: Any, *, features: pd.DataFrame, params: Mapping[str, Any],
                      metrics: Mapping[str, float], artifacts: Mapping[str, pd.DataFrame],
                      files: Mapping[str, str], reason: str,
                      metric_history: Sequence[tuple[str, float, int | None]] = (),
                      ) -> tuple[str, int]:
        """One MLflow run: params, metrics, signature, input example, reference
        artifacts; then a new registered version tagged `candidate`. Returns (run_id, version).
        `metric_history` holds what the trainer logged during training: (name, value, step).
        """
        experiment_id = self._experiment()
        self._ensure_registered_model()
        example = features.head(5)
        output = model.predict(example)
        signature = infer_signature(example, output)
        with mlflow.start_run(experiment_id=experiment_id) as run, \
                tempfile.TemporaryDirectory() as scratch:
            mlflow.log_params({k: _param(v) for k, v in params.items()})
            mlflow.log_metrics(dict(metrics))
            steps: dict[int | None, dict[str, float]] = {}
            for name, value, step in metric_history:
                steps.setdefault(step, {})[name] = value
            for step, values in steps.items():
                mlflow.log_metrics(values, step=step)
            for name, frame in artifacts.items():
                path = Path(scratch) / f"{name}.parquet"
                frame.to_parquet(path, index=False)
                mlflow.log_artifact(str(path), artifact_path=REFERENCE_DIR)
            for name, text in files.items():
                path = Path(scratch) / name
                path.write_text(text)
                mlflow.log_artifact(str(path), artifact_path=REFERENCE_DIR)
            info = self._log_model(model, signature, example)
            run_id = run.info.run_id
        version = self.client.create_model_version(
            self.model_name, source=info.model_uri, run_id=run_id, model_id=info.model_id,
            tags={STATE_TAG: State.CANDIDATE.value, REASON_TAG: reason})
        return run_id, int(version.version)

    @staticmethod
    def _log_model(model: Any, signature: Any, example: pd.DataFrame) -> Any:
        if _is_sklearn(model):
            import mlflow.sklearn

            return mlflow.sklearn.log_model(model, name="model", signature=signature,
                                            input_example=example,
                                            serialization_format="cloudpickle")
        import mlflow.pyfunc

        return mlflow.pyfunc.log_model(name="model", python_model=_pyfunc_wrapper(model),
                                       signature=signature, input_example=example)

    def _experiment(self) -> str:
        name = f"tether/{self.model_name}"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def _ensure_registered_model(self) -> None:
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(self.model_name)

    # artifacts and models ----------------------------------------------------------

    def model_uri(self, number: int) -> str:
        return f"models:/{self.model_name}/{number}"

    @_translate("download reference data")
    def reference_artifact(self, number: int, name: str) -> Path:
        """A local path to a reference artifact logged with the version's training run."""
        info = self.version(number)
        if info.run_id is None:
            raise VersionNotFound(f"version {number} has no training run to read {name} from")
        target = Path(tempfile.mkdtemp(prefix="tether-ref-"))
        local = mlflow.artifacts.download_artifacts(
            run_id=info.run_id, artifact_path=f"{REFERENCE_DIR}/{name}", dst_path=str(target),
            tracking_uri=self.tracking_uri)
        return Path(local)

    def reference_frame(self, number: int, name: str = "reference") -> pd.DataFrame:
        return pd.read_parquet(self.reference_artifact(number, f"{name}.parquet"))

    @_translate("load model")
    def load_model(self, number: int) -> LoadedModel:
        """Load a version for predicting; sklearn models natively, others through pyfunc."""
        import mlflow.pyfunc

        self.version(number)
        uri = self.model_uri(number)
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri,
                                                    tracking_uri=self.tracking_uri)
        return load_model_dir(local, name=self.model_name, version=number,
                              pyfunc_loader=mlflow.pyfunc.load_model)


def load_model_dir(path: str, *, name: str, version: int,
                   pyfunc_loader: Callable[[str], Any] | None = None) -> LoadedModel:
    """Load an MLflow model folder (as `mlflow artifacts download` leaves it)."""
    import mlflow.pyfunc
    from mlflow.models import Model

    try:
        meta = Model.load(path)
        columns = _columns(meta.signature)
        example = _input_example(meta, path)
        if "sklearn" in meta.flavors:
            import mlflow.sklearn

            estimator = mlflow.sklearn.load_model(path)
            proba = getattr(estimator, "predict_proba", None)
            return LoadedModel(name=name, version=version, columns=columns,
                               input_example=example,
                               predict=lambda frame: np.asarray(estimator.predict(frame)),
                               predict_proba=(lambda frame: np.asarray(proba(frame)))
                               if proba is not None else None,
                               raw=estimator, path=path)
        pyfunc = (pyfunc_loader or mlflow.pyfunc.load_model)(path)
        return LoadedModel(name=name, version=version, columns=columns, input_example=example,
                           predict=lambda frame: np.asarray(pyfunc.predict(frame)),
                           predict_proba=None, raw=pyfunc, path=path)
    except MlflowException as exc:
        raise _registry_error(f"load model {name} version {version}", exc) from exc


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


def _is_sklearn(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover - sklearn is a dependency
        return False
    return isinstance(model, BaseEstimator)


def _pyfunc_wrapper(model: Any) -> Any:
    """Any object with `predict` as an MLflow pyfunc (built lazily: MLflow inspects it)."""

    class PredictWrapper(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
        def __init__(self, wrapped: Any) -> None:
            self.wrapped = wrapped

        def predict(self, context, model_input, params=None):
            # no annotations: MLflow would read them as a schema
            return self.wrapped.predict(model_input)

    return PredictWrapper(model)


def _param(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text[:500]


def _prepare_local_store(tracking_uri: str) -> None:
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's own logging for CLI output."""
    import logging

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
