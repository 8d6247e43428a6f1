"""The policy file `tether.yaml` and the environment, loaded once into typed settings.

A bad file gives one readable line naming the file, the field and what is allowed.
Every metric-valued field is checked against the task and the metric's direction and
range (`tether.scoring`), and an error names the exact field:

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> def first_error(text):
...     _ = (folder / "tether.yaml").write_text(
...         "model: {name: m, task: regression}\\ntrainer: train:train\\n"
...         "data: {reference: d.csv}\\n" + text)
...     try:
...         load_config(folder / "tether.yaml", environ={})
...     except ConfigError as exc:
...         return str(exc).split(": ", 1)[1]
>>> first_error("metric: {primary: rmse, direction: upwards}")
"metric.direction: Input should be 'maximize' or 'minimize' (got 'upwards')"
>>> first_error("gate: {floors: {roc_auc: 0.7}}")
"gate.floors.roc_auc: 'roc_auc' is not a metric of regression; allowed: rmse, mae, r2"
>>> print(first_error("metric: {primary: rmse, direction: maximize}"))  # doctest: +ELLIPSIS
metric.direction: rmse is minimized (lower is better); remove metric.direction or set it to ...
"""

from __future__ import annotations

import math
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
from tether.scoring import DEFAULT_PRIMARY, Direction, Metric, Task, metric

__all__ = [
    "CONFIG_FILE",
    "DataSource",
    "Direction",
    "Durability",
    "FederatedPolicy",
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
    "folder_config",
    "load_config",
    "policy_path",
]

CONFIG_FILE = "tether.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _FieldError(ValueError):
    """A rule that spans sections, raised with the path of the field that breaks it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


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
    """The metric every decision compares by. Its direction comes from the metric
    (`tether.scoring`); `direction`, when given, must agree with it."""

    primary: str = DEFAULT_PRIMARY[Task.BINARY]
    direction: Direction | None = None


class GatePolicy(_Strict):
    """`floors`: worst acceptable value per metric (a ceiling for metrics where lower is
    better). Latency: the challenger is timed against the champion on the same rows, as
    CPU time per call of `latency_batch_rows` rows (`tether.latency`)."""

    min_delta: float = 0.0
    floors: dict[str, float] = Field(default_factory=dict)
    max_latency_ratio: float = Field(default=2.0, ge=1.0)
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
    """Canary steps and what each one must show. Latency: `max_latency_ratio` bounds the
    challenger's model CPU time per call over the champion's in the same window,
    compared batch size by batch size (`tether.latency.compare_cpu_per_call`; a
    difference under 1 ms never fails), so a loaded machine does not move it;
    `max_p99_latency_ms` is a ceiling on served wall-clock p99 that fails the challenger
    only while the champion stays under it."""

    shadow: bool = False
    shadow_min_predictions: int = Field(default=200, ge=1)
    steps: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5])
    min_predictions: int = Field(default=200, ge=1)
    min_labels: int = Field(default=50, ge=0)
    step_timeout_seconds: float = Field(default=600.0, gt=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_ratio: float = Field(default=2.0, ge=1.0)
    max_p99_latency_ms: float = Field(default=1000.0, gt=0)
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


class Durability(StrEnum):
    """When a prediction is written to the store, relative to its answer.

    BATCHED answers first and writes within `log_flush_seconds`: a crash of the process
    loses what was not yet written. ACKED answers only once the prediction is committed
    (group commit): what was answered survives a crash of the server process. IDS, the
    default, is ACKED for the predictions a label can reach (answers that carry
    prediction ids: `/predict`) and BATCHED for the others (MLflow's `/invocations`
    returns no ids, so no label can ever count on those rows; a crash can cost the drift
    and traffic windows the last `log_flush_seconds` of them, never a label).
    """

    BATCHED = "batched"
    IDS = "ids"
    ACKED = "acked"


class ServingPolicy(_Strict):
    """Limits, batching, durability and timeouts of the model server (`tether serve`)."""

    max_batch_rows: int = Field(default=4096, ge=1)
    # the longest a batch waits for requests it expects (`tether.serving.batching`); a
    # lone client never waits
    max_wait_ms: float = Field(default=2.0, ge=0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=10_000, ge=1)
    log_queue_rows: int = Field(default=200_000, ge=1)
    log_batch_rows: int = Field(default=20_000, ge=1)
    log_flush_seconds: float = Field(default=0.25, gt=0)
    durability: Durability = Durability.IDS
    # threads one model call may use (OpenMP, BLAS); null leaves the libraries' defaults
    model_threads: int | None = Field(default=1, ge=1)
    # longer than the idle timeouts of the load balancers in front (AWS ALB and nginx 60 s,
    # Google Cloud's 600 s), so the server never closes a connection a client reuses
    keep_alive_seconds: int = Field(default=620, ge=1)
    registry_timeout_seconds: float = Field(default=5.0, gt=0)
    reload_wait_seconds: float = Field(default=10.0, gt=0)
    log_features: bool = False


class RetentionPolicy(_Strict):
    """How long the store keeps what it logs; null keeps it forever."""

    predictions_days: float | None = Field(default=30.0, gt=0)
    totals_days: float | None = Field(default=400.0, gt=0)
    prune_interval_seconds: float = Field(default=3600.0, gt=0)


class FederatedPolicy(_Strict):
    """A federated trainer: the Flower app tether runs and the SuperLink it runs it on.

    Sites (their SuperNodes, and the data each one names in its node config) are
    configured where they run; tether knows them only by name.
    """

    app: str = "app"
    superlink: str = Field(default="127.0.0.1:9093", pattern=r"^[^\s:]+:\d{1,5}$")
    insecure: bool = False
    root_certificates: str | None = None
    sites: list[str] = Field(default_factory=list)
    min_sites: int = Field(default=2, ge=1)
    rounds: int = Field(default=3, ge=1)
    round_timeout_seconds: float = Field(default=120.0, gt=0)
    join_timeout_seconds: float = Field(default=60.0, gt=0)
    run_timeout_seconds: float = Field(default=3600.0, gt=0)
    report_host: str = "127.0.0.1"
    run_config: dict[str, str | int | float | bool] = Field(default_factory=dict)
    site_drift: bool = True
    summary_interval_seconds: float = Field(default=6 * 3600.0, gt=0)

    @model_validator(mode="after")
    def _enough_sites(self) -> Self:
        if self.sites and self.min_sites > len(self.sites):
            raise ValueError(f"min_sites {self.min_sites} is more than the "
                             f"{len(self.sites)} site(s) listed in federated.sites")
        if not self.insecure and self.root_certificates is None:
            raise ValueError("a TLS SuperLink needs federated.root_certificates (a CA bundle); "
                             "set federated.insecure: true only on a trusted network")
        return self


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
    federated: FederatedPolicy | None = None

    @model_validator(mode="before")
    @classmethod
    def _primary_of_task(cls, raw: Any) -> Any:
        """Without `metric.primary`, the task's usual metric (rmse for regression)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
            return raw
        section = raw.get("metric") or {}
        if not isinstance(section, dict) or "primary" in section:
            return raw
        try:
            task = Task(raw["model"].get("task", Task.BINARY))
        except ValueError:
            return raw  # the field's own validation names the bad task
        return {**raw, "metric": {**section, "primary": DEFAULT_PRIMARY[task]}}

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> Self:
        for path, message in metric_problems(self):
            raise _FieldError(path, message)
        return self


def metric_problems(policy: Policy) -> list[tuple[str, str]]:
    """Every metric-valued field checked against the task and the metric's direction and
    range: (field path, what is wrong), in file order."""
    task = policy.model.task
    problems: list[tuple[str, str]] = []
    try:
        primary: Metric | None = metric(task, policy.metric.primary)
    except ValueError as exc:
        primary = None
        problems.append(("metric.primary", str(exc)))
    if primary is not None and policy.metric.direction not in (None, primary.direction):
        verb = "maximized (bigger is better)" if primary.bigger_is_better else \
            "minimized (lower is better)"
        problems.append(("metric.direction",
                         f"{primary.name} is {verb}; remove metric.direction or set it to "
                         f"{primary.direction.value}"))
    if primary is not None and policy.gate.min_delta > 0:
        # a negative min_delta is a tolerance: however large, it means "may be this much
        # worse" (-1 on roc_auc lets any candidate pass); a positive one no candidate can
        # reach is a gate that never opens
        problems += _margin("gate.min_delta", primary, policy.gate.min_delta)
    for name, limit in policy.gate.floors.items():
        try:
            problems += _limit(f"gate.floors.{name}", metric(task, name), limit)
        except ValueError as exc:
            problems.append((f"gate.floors.{name}", str(exc)))
    if primary is not None:
        if policy.triggers.metric_floor is not None:
            problems += _limit("triggers.metric_floor", primary, policy.triggers.metric_floor)
        if policy.triggers.metric_drop is not None:
            problems += _margin("triggers.metric_drop", primary, policy.triggers.metric_drop)
        problems += _margin("rollout.max_metric_drop", primary, policy.rollout.max_metric_drop)
        problems += _margin("rollback.max_metric_drop", primary,
                            policy.rollback.max_metric_drop)
    return problems


def _limit(path: str, chosen: Metric, value: float) -> list[tuple[str, str]]:
    """A worst acceptable value must be a value the metric can take."""
    if chosen.lowest <= value <= chosen.highest:
        return []
    span = f"[{_bound(chosen, chosen.lowest)}, {_bound(chosen, chosen.highest)}]"
    return [(path, f"{chosen.name} takes values in {span}, so a {chosen.limit_name} of "
                   f"{value:g} is meaningless for it ({chosen.task.value})")]


def _bound(chosen: Metric, value: float) -> str:
    return f"{value:g}" if math.isinf(value) else chosen.format(value)


def _margin(path: str, chosen: Metric, value: float) -> list[tuple[str, str]]:
    """A difference of the metric must be smaller than the metric's whole range."""
    width = chosen.highest - chosen.lowest
    if value < width:
        return []
    return [(path, f"{value:g} is the whole range of {chosen.name} "
                   f"({_bound(chosen, chosen.lowest)} to {_bound(chosen, chosen.highest)}) "
                   f"or more; differences of {chosen.name} are in its units")]


class Settings(_Strict):
    """Where things live, from the environment; defaults are the embedded layout."""

    project_dir: Path
    home: Path
    tracking_uri: str
    registry_uri: str
    store_url: str
    artifact_root: str | None
    admin_token: str | None = None
    github_webhook_secret: str | None = None
    alertmanager_token: str | None = None
    feedback_token: str | None = None
    controller_url: str | None = None
    poll_seconds: float = 2.0

    @classmethod
    def from_env(cls, project_dir: Path, environ: Mapping[str, str]) -> Settings:
        """Settings from `TETHER_*` variables. Where tether's own registry settings are
        unset, MLflow's are honoured: `TETHER_TRACKING_URI`, else `MLFLOW_TRACKING_URI`,
        else a SQLite file under `TETHER_HOME`; the registry is `TETHER_REGISTRY_URI`,
        else `MLFLOW_REGISTRY_URI` (when the tracking URI came from MLflow's variable or
        the default), else the tracking URI. Artifacts of new runs go to
        `TETHER_ARTIFACT_ROOT`, else the tracking server's own default when the tracking
        URI is a server (http, https, databricks), else `TETHER_HOME/artifacts`."""
        home = Path(environ.get("TETHER_HOME") or project_dir / ".tether").resolve()
        own = environ.get("TETHER_TRACKING_URI")
        tracking = own or environ.get("MLFLOW_TRACKING_URI") or _sqlite_uri(home / "mlflow.db")
        registry = environ.get("TETHER_REGISTRY_URI") or (
            None if own else environ.get("MLFLOW_REGISTRY_URI")) or tracking
        # a tracking server (or Databricks) has its own artifact store; a database or
        # file the client writes to directly does not
        served = tracking.startswith(("http://", "https://", "databricks"))
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
            registry_uri=registry,
            store_url=environ.get("TETHER_STORE_URL") or _sqlite_uri(home / "store.db"),
            artifact_root=environ.get("TETHER_ARTIFACT_ROOT") or (
                None if served else (home / "artifacts").as_uri()),
            admin_token=environ.get("TETHER_ADMIN_TOKEN") or None,
            github_webhook_secret=environ.get("TETHER_GITHUB_WEBHOOK_SECRET") or None,
            alertmanager_token=environ.get("TETHER_ALERTMANAGER_TOKEN") or None,
            feedback_token=environ.get("TETHER_FEEDBACK_TOKEN") or None,
            controller_url=environ.get("TETHER_CONTROLLER_URL") or None,
            poll_seconds=poll,
        )


class Config(BaseModel):
    """A loaded project: its policy, its settings and the file they came from."""

    model_config = ConfigDict(frozen=True)

    path: Path
    policy: Policy
    settings: Settings


def _describe(error: Any) -> str:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _FieldError):
        return f"{cause.path}: {cause.message}"
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


def policy_path(path: Path | str | None = None,
                environ: Mapping[str, str] | None = None) -> Path:
    """Where the policy file is looked for: `path`, else `$TETHER_CONFIG`, else
    ./tether.yaml (a folder means its tether.yaml)."""
    env = os.environ if environ is None else environ
    config_path = Path(path or env.get("TETHER_CONFIG") or CONFIG_FILE)
    return config_path / CONFIG_FILE if config_path.is_dir() else config_path


def folder_config(model_dir: Path | str, model_name: str,
                  environ: Mapping[str, str] | None = None) -> Config:
    """The settings of a server for one MLflow model folder without a policy file
    (`tether serve --model-path DIR`): the model's name and the serving defaults.

    It names no trainer and no data, so it only serves: the store and admin token come
    from the environment as for any project (./.tether unless `TETHER_HOME`).
    Raises ConfigError when `model_name` is not a valid model name.
    """
    env = os.environ if environ is None else environ
    try:
        model = ModelSection(name=model_name)
    except ValidationError as exc:
        raise ConfigError(f"model name {model_name!r}: {_describe(exc.errors()[0])}; "
                          "pass --model-name") from exc
    # built without validation: a serving-only policy has no trainer or data on purpose
    policy = Policy.model_construct(model=model, trainer="", data=DataSource.model_construct())
    folder = Path(model_dir).resolve()
    return Config(path=folder, policy=policy, settings=Settings.from_env(Path.cwd(), env))


class _PolicyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the
    last, so a second `monitoring:` section would silently reset the first one's fields."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the base class says so
                break
            if earlier is not key_node:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (first on line "
                    f"{earlier.start_mark.line + 1}); keep one", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_policy_yaml(path: Path) -> Any:
    """The YAML document in `path`; ConfigError naming the line and the problem when it is
    not UTF-8 text, not valid YAML, or gives a key twice in one mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                          f"offset {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return yaml.load(text, Loader=_PolicyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where} not valid YAML: {problem}") from None


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load `tether.yaml` (or `$TETHER_CONFIG`) and the `TETHER_*` environment."""
    env = os.environ if environ is None else environ
    config_path = policy_path(path, env)
    if not config_path.is_file():
        raise ConfigError(
            f"{config_path}: no policy file here; run `tether init` or pass --config PATH"
        )
    raw = read_policy_yaml(config_path)
    policy = parse_policy(raw, str(config_path))
    project_dir = config_path.resolve().parent
    return Config(path=config_path, policy=policy, settings=Settings.from_env(project_dir, env))


def _sqlite_uri(path: Path) -> str:
    """A `sqlite:///` URI of `path`. SQLAlchemy decodes the path, so `?`, `#` and `%` are
    encoded (a folder so named would otherwise end the path early or be decoded into
    another); nothing else is, since MLflow makes a new registry's folder from the URI as
    written.

    >>> _sqlite_uri(Path("/srv/a?b #1 100%/mlflow.db"))
    'sqlite:////srv/a%3Fb %231 100%25/mlflow.db'
    """
    text = str(path).replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    return f"sqlite:///{text}"
