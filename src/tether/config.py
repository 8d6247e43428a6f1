"""The policy file `tether.yaml` and the environment, loaded once into typed settings.

A bad file gives one readable line naming the file, the field and what is allowed:

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "tether.yaml").write_text("model: {name: m}\\ntrainer: train:train\\n"
...     "data: {reference: d.csv}\\nmetric: {primary: f1, direction: upwards}\\n")
>>> try:
...     load_config(folder / "tether.yaml", environ={})
... except ConfigError as exc:
...     print(str(exc).split(": ", 1)[1])
metric.direction: Input should be 'maximize' or 'minimize' (got 'upwards')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tether.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "DataSource",
    "Direction",
    "GatePolicy",
    "MetricPolicy",
    "MonitoringPolicy",
    "Policy",
    "RollbackPolicy",
    "RolloutPolicy",
    "ServingPolicy",
    "Settings",
    "Task",
    "TriggerPolicy",
    "load_config",
]

CONFIG_FILE = "tether.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Task(StrEnum):
    BINARY = "binary_classification"
    REGRESSION = "regression"


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")


class ModelSection(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    task: Task = Task.BINARY
    target: str = "target"


class DataSource(_Strict):
    """Where the training/reference data comes from: a CSV/Parquet file or a generator."""

    reference: str | None = None
    generator: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    holdout_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    seed: int = 0
    recent_labeled_rows: int = Field(default=5000, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.reference is None) == (self.generator is None):
            raise ValueError("give exactly one of data.reference (a file) or data.generator")
        return self


class MetricPolicy(_Strict):
    primary: str = "roc_auc"
    direction: Direction = Direction.MAXIMIZE


class GatePolicy(_Strict):
    min_delta: float = 0.0
    floors: dict[str, float] = Field(default_factory=dict)
    max_latency_ms: float = Field(default=50.0, gt=0)
    latency_batch_rows: int = Field(default=1, ge=1)


class MonitoringPolicy(_Strict):
    window_size: int = Field(default=1000, ge=10)
    window_seconds: float | None = Field(default=None, gt=0)
    drift_alpha: float = Field(default=0.05, gt=0, lt=1)
    drift_share_threshold: float = Field(default=0.5, gt=0, le=1)
    psi_threshold: float = Field(default=0.2, gt=0)
    min_labels: int = Field(default=100, ge=1)
    interval_seconds: float = Field(default=10.0, gt=0)


class TriggerPolicy(_Strict):
    schedule: str | None = None
    drift_consecutive: int = Field(default=3, ge=1)
    metric_floor: float | None = None
    metric_drop: float | None = Field(default=None, gt=0)
    on_change_detected: bool = True
    cooldown_seconds: float = Field(default=600.0, ge=0)
    max_retrains_per_day: int = Field(default=6, ge=0)
    github_repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

    @field_validator("schedule")
    @classmethod
    def _cron_is_valid(cls, schedule: str | None) -> str | None:
        from croniter import croniter

        if schedule is not None and not croniter.is_valid(schedule):
            raise ValueError(f"{schedule!r} is not a cron expression (e.g. '0 3 * * 1')")
        return schedule


class RolloutPolicy(_Strict):
    shadow: bool = False
    shadow_min_predictions: int = Field(default=200, ge=1)
    steps: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5])
    min_predictions: int = Field(default=200, ge=1)
    min_labels: int = Field(default=50, ge=0)
    step_timeout_seconds: float = Field(default=600.0, gt=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p99_latency_ms: float = Field(default=200.0, gt=0)
    max_metric_drop: float = Field(default=0.02, ge=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @field_validator("steps")
    @classmethod
    def _steps_are_increasing_fractions(cls, steps: list[float]) -> list[float]:
        if any(not 0 < weight <= 1 for weight in steps):
            raise ValueError("every rollout step is a traffic fraction in (0, 1]")
        if steps != sorted(steps):
            raise ValueError("rollout steps must increase")
        return steps


class RollbackPolicy(_Strict):
    probation_seconds: float = Field(default=600.0, ge=0)
    probation_min_predictions: int = Field(default=200, ge=1)
    max_metric_drop: float = Field(default=0.02, ge=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)


class ServingPolicy(_Strict):
    """Limits and batching of the model server (`tether serve`)."""

    max_batch_rows: int = Field(default=4096, ge=1)
    max_wait_ms: float = Field(default=0.0, ge=0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=10_000, ge=1)
    log_queue_rows: int = Field(default=200_000, ge=1)
    log_batch_rows: int = Field(default=20_000, ge=1)
    log_flush_seconds: float = Field(default=0.25, gt=0)


class RetentionPolicy(_Strict):
    """How long the store keeps what it logs; null keeps it forever."""

    predictions_days: float | None = Field(default=30.0, gt=0)
    totals_days: float | None = Field(default=400.0, gt=0)
    prune_interval_seconds: float = Field(default=3600.0, gt=0)


class Policy(_Strict):
    """Everything `tether.yaml` says."""

    model: ModelSection
    trainer: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    trainer_params: dict[str, Any] = Field(default_factory=dict)
    data: DataSource
    metric: MetricPolicy = Field(default_factory=MetricPolicy)
    gate: GatePolicy = Field(default_factory=GatePolicy)
    monitoring: MonitoringPolicy = Field(default_factory=MonitoringPolicy)
    triggers: TriggerPolicy = Field(default_factory=TriggerPolicy)
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy)
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    serving: ServingPolicy = Field(default_factory=ServingPolicy)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> Self:
        allowed = CLASSIFICATION_METRICS if self.model.task is Task.BINARY else REGRESSION_METRICS
        for name in (self.metric.primary, *self.gate.floors):
            if name not in allowed:
                raise ValueError(
                    f"metric {name!r} does not fit task {self.model.task.value}; "
                    f"allowed: {', '.join(allowed)}"
                )
        return self


class Settings(_Strict):
    """Where things live, from the environment; defaults are the embedded layout."""

    project_dir: Path
    home: Path
    tracking_uri: str
    registry_uri: str
    store_url: str
    artifact_root: str
    admin_token: str | None = None
    github_webhook_secret: str | None = None
    alertmanager_token: str | None = None
    poll_seconds: float = 2.0

    @classmethod
    def from_env(cls, project_dir: Path, environ: Mapping[str, str]) -> Settings:
        home = Path(environ.get("TETHER_HOME") or project_dir / ".tether").resolve()
        tracking = environ.get("TETHER_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
        try:
            poll = float(environ.get("TETHER_POLL_SECONDS", "2"))
        except ValueError as exc:
            raise ConfigError(
                f"TETHER_POLL_SECONDS: expected seconds as a number, got "
                f"{environ['TETHER_POLL_SECONDS']!r}"
            ) from exc
        return cls(
            project_dir=project_dir,
            home=home,
            tracking_uri=tracking,
            registry_uri=environ.get("TETHER_REGISTRY_URI") or tracking,
            store_url=environ.get("TETHER_STORE_URL") or f"sqlite:///{home / 'store.db'}",
            artifact_root=environ.get("TETHER_ARTIFACT_ROOT") or (home / "artifacts").as_uri(),
            admin_token=environ.get("TETHER_ADMIN_TOKEN") or None,
            github_webhook_secret=environ.get("TETHER_GITHUB_WEBHOOK_SECRET") or None,
            alertmanager_token=environ.get("TETHER_ALERTMANAGER_TOKEN") or None,
            poll_seconds=poll,
        )


class Config(BaseModel):
    """A loaded project: its policy, its settings and the file they came from."""

    model_config = ConfigDict(frozen=True)

    path: Path
    policy: Policy
    settings: Settings


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{where}: required field is missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field (check the spelling)"
    if "input" in error and not isinstance(error["input"], dict | list):
        return f"{where}: {message} (got {error['input']!r})"
    return f"{where}: {message}"


def parse_policy(raw: Any, source: str) -> Policy:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc.errors()[0])}") from exc


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load `tether.yaml` (or `$TETHER_CONFIG`) and the `TETHER_*` environment."""
    env = os.environ if environ is None else environ
    config_path = Path(path or env.get("TETHER_CONFIG") or CONFIG_FILE)
    if config_path.is_dir():
        config_path = config_path / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(
            f"{config_path}: no policy file here; run `tether init` or pass --config PATH"
        )
    try:
        raw = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{config_path}:{where} is not valid YAML") from exc
    policy = parse_policy(raw, str(config_path))
    project_dir = config_path.resolve().parent
    return Config(path=config_path, policy=policy, settings=Settings.from_env(project_dir, env))

