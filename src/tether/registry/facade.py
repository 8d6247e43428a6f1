"""The Registry: tether's view of one registered model in MLflow, over the package's parts.

Reads build a `RegistryState`; every change is a plan of writes from `transitions` (or a
repair from `invariants`) that `execute` performs in order. This package knows no
database: a project gives its Registry a `guard`, the store's registry lease (see
`tether.lifecycle.transaction`), and every transition plans on the state read under it.
`tether.lifecycle` also records each transition's event in the same lease: it is what the
CLI, the dashboard and the controller call.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from tether.errors import ReferenceMissing, VersionNotFound
from tether.registry import transitions
from tether.registry.adoption import REFERENCE_RUN_TAG, log_reference, parse_uri, take_version
from tether.registry.client import make_client, translate
from tether.registry.invariants import NO_EVIDENCE, Evidence, plan_repair
from tether.registry.models import LoadedModel, load_model_dir
from tether.registry.runs import TrainingRun, open_run
from tether.registry.sqlite_state import read_local_state, sqlite_file
from tether.registry.state import (
    CHAMPION,
    GATE_TAG,
    REASON_TAG,
    REFERENCE_DIR,
    ROLLOUT_TAG,
    STATE_TAG,
    RegistryState,
    RolloutSpec,
    State,
    VersionInfo,
)
from tether.registry.transitions import (
    DeleteAlias,
    DeleteRollout,
    SetAlias,
    SetRollout,
    SetState,
    Write,
)

__all__ = ["Guard", "Registry"]

# (what is being done, the state the caller decided on) -> the state to plan on, held
Guard = Callable[[str, RegistryState | None], AbstractContextManager[RegistryState]]


class Registry:
    """One registered model: its state, its transitions, its training runs and models.

    Raises RegistryUnavailable when MLflow cannot be reached (or a SQLite registry file
    is missing), ModelNotFound / VersionNotFound, InvalidTransition, NothingToRollBack,
    RegistryConflict (a write planned on a state that has changed since), RegistryError.
    """

    def __init__(self, model_name: str, tracking_uri: str, registry_uri: str | None = None,
                 artifact_root: str | None = None, *, guard: Guard | None = None,
                 evidence: Callable[[], Evidence] | None = None) -> None:
        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifact_root = artifact_root
        # what a project wires from its store: the lease every transition runs under
        # (yielding the state read under it, checked against the expected one), and what
        # servers reported about versions
        self.guard = guard
        self.evidence = evidence

    @cached_property
    def client(self) -> MlflowClient:
        """MLflow's client; opening it never creates a registry (see `create`)."""
        return make_client(self.tracking_uri, self.registry_uri, create=False)

    @property
    def local_file(self) -> Path | None:
        """The SQLite file the registry lives in, when it is one."""
        return sqlite_file(self.registry_uri)

    def create(self) -> None:
        """Create the registry (a SQLite file) and the registered model if missing: what
        `tether init`, `tether retrain` and the demo may do, and nothing else."""
        self.__dict__["client"] = make_client(self.tracking_uri, self.registry_uri,
                                              create=True)
        self._ensure_registered_model()

    # reading -----------------------------------------------------------------------

    @translate("read registry state")
    def state(self) -> RegistryState:
        """The registered model's aliases, rollout and versions; a SQLite registry is read
        without MLflow's client where `sqlite_state` applies (the same state, sooner)."""
        read = read_local_state(self.registry_uri, self.model_name)
        return read if read is not None else self.mlflow_state()

    @translate("read registry state")
    def mlflow_state(self) -> RegistryState:
        """The state as MLflow's client reads it."""
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return RegistryState(self.model_name, None, None, None, None, ())
            raise
        aliases = {alias: int(version) for alias, version in (model.aliases or {}).items()}
        return RegistryState.from_registry(self.model_name, aliases, model.tags or {},
                                           self._versions(aliases))

    def _versions(self, aliases: Mapping[str, int]) -> list[VersionInfo]:
        found: list[ModelVersion] = []
        token: str | None = None
        while True:  # one page holds at most 10,000 versions, the most recently updated
            page = self.client.search_model_versions(f"name='{self.model_name}'",
                                                     page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        by_version: dict[int, list[str]] = {}
        for alias, number in aliases.items():
            by_version.setdefault(number, []).append(alias)
        return [VersionInfo.from_registry(int(mv.version), mv.run_id, mv.creation_timestamp,
                                          mv.tags or {}, by_version.get(int(mv.version), []))
                for mv in found]

    def version(self, number: int) -> VersionInfo:
        """One version's information; VersionNotFound names the known ones."""
        state = self.state()
        info = state.version(number)
        if info is None:
            known = [v.version for v in state.versions]
            raise VersionNotFound(
                f"model {self.model_name!r} has no version {number}; known versions: "
                f"{known or 'none yet (run `tether retrain`)'}")
        return info

    # transitions -------------------------------------------------------------------

    def promote(self, number: int, reason: str, *, expected: RegistryState | None = None,
                current: RegistryState | None = None) -> int | None:
        """Make `number` the champion; the old one becomes `previous`. Returns the old one.

        With `expected`, a routing that moved since raises RegistryConflict. `current` is
        the state to plan on when no guard is set (read when not given).
        """
        with self._planned(f"promoting version {number}", expected, current) as state:
            self.execute(transitions.promote(state, number, reason))
            return state.champion

    def rollback(self, reason: str, to: int | None = None,
                 on_switch: Callable[[int], None] | None = None,
                 current: RegistryState | None = None, *,
                 expected: RegistryState | None = None) -> tuple[int, int]:
        """Put `to` (default: alias previous) back as champion. Returns (from, to).

        `on_switch(to)` runs right after the champion alias moves (the commit point), before
        the tags are written, so a server in the same process can swap at once.
        """
        with self._planned("rolling back", expected, current) as state:
            bad, target, writes = transitions.rollback(state, reason, to)
            self.execute(writes, on_switch=on_switch)
            return bad, target

    def start_rollout(self, spec: RolloutSpec, reason: str, *,
                      expected: RegistryState | None = None,
                      current: RegistryState | None = None) -> None:
        """Route traffic to a challenger: its state, the alias, then the routing tag."""
        with self._planned(f"starting the rollout of version {spec.version}", expected,
                           current) as state:
            self.execute(transitions.start_rollout(state, spec, reason))

    def update_rollout(self, spec: RolloutSpec, reason: str, *,
                       expected: RegistryState | None = None,
                       current: RegistryState | None = None) -> None:
        """Move the running rollout to `spec` (a step, or from shadow to canary)."""
        with self._planned(f"updating the rollout of version {spec.version}", expected,
                           current) as state:
            self.execute(transitions.update_rollout(state, spec, reason))

    def stop_rollout(self, state: State, reason: str, *,
                     expected: RegistryState | None = None,
                     current: RegistryState | None = None) -> int | None:
        """Take all traffic back from the challenger: routing tag first, then the alias.
        Returns the challenger (None when nothing was rolling out)."""
        with self._planned("stopping the rollout", expected, current) as now:
            number, writes = transitions.stop_rollout(now, state, reason)
            self.execute(writes)
            return number

    def repair(self, evidence: Evidence | None = None, *,
               current: RegistryState | None = None) -> list[str]:
        """Fix what `find_problems` names (see `invariants`), by what servers reported
        (`evidence`, default: the evidence source); returns what was done."""
        with self._planned("repairing", None, current) as state:
            if evidence is None:
                evidence = self.evidence() if self.evidence is not None else NO_EVIDENCE
            plan = plan_repair(state, evidence)
            self.execute(plan.writes)
            return plan.repaired

    def _planned(self, what: str, expected: RegistryState | None,
                 current: RegistryState | None) -> AbstractContextManager[RegistryState]:
        """The state to plan a transition on: under the guard when there is one (it holds
        the lease and reads the registry), else `current` or a fresh read."""
        if self.guard is not None:
            return self.guard(what, expected)
        state = current if current is not None else self.state()
        transitions.check_expected(expected, state, what)
        return nullcontext(state)

    @translate("write the registry")
    def execute(self, writes: Sequence[Write],
                on_switch: Callable[[int], None] | None = None) -> None:
        """Perform `writes` in order; `on_switch(version)` runs right after the champion
        alias moves."""
        client, name = self.client, self.model_name
        for write in writes:
            match write:
                case SetAlias(alias, version):
                    client.set_registered_model_alias(name, alias, str(version))
                    if alias == CHAMPION and on_switch is not None:
                        on_switch(version)
                case DeleteAlias(alias):
                    _missing_is_fine(client.delete_registered_model_alias, name, alias)
                case SetState(version, state, reason):
                    client.set_model_version_tag(name, str(version), STATE_TAG, state.value)
                    client.set_model_version_tag(name, str(version), REASON_TAG, reason)
                case SetRollout(spec):
                    client.set_registered_model_tag(name, ROLLOUT_TAG, spec.to_json())
                case DeleteRollout():
                    _missing_is_fine(client.delete_registered_model_tag, name, ROLLOUT_TAG)

    # tags a gate writes ------------------------------------------------------------

    def set_state(self, number: int, state: State, reason: str) -> None:
        self.execute([SetState(number, state, reason)])

    @translate("record gate verdict")
    def set_gate(self, number: int, verdict: Mapping[str, Any]) -> None:
        self.client.set_model_version_tag(self.model_name, str(number), GATE_TAG,
                                          json.dumps(verdict, sort_keys=True, default=str))

    # training runs -----------------------------------------------------------------

    @contextmanager
    def training_run(self, *, params: Mapping[str, Any] | None = None,
                     run_name: str | None = None) -> Iterator[TrainingRun]:
        """An MLflow run open for the block (creating the registry on first use): log
        into it while training, end with `run.register(...)`. A block that raises marks
        the run FAILED and registers nothing."""
        experiment_id = self._prepare_run()
        with open_run(self.client, self.model_name, experiment_id,
                      uris=(self.tracking_uri, self.registry_uri), run_name=run_name) as run:
            if params:
                run.log_params(params)
            yield run

    @translate("open a training run")
    def _prepare_run(self) -> str:
        self.create()
        return self._experiment()

    def log_candidate(self, model: Any, *, features: pd.DataFrame, params: Mapping[str, Any],
                      metrics: Mapping[str, float], artifacts: Mapping[str, pd.DataFrame],
                      files: Mapping[str, str], reason: str) -> tuple[str, int]:
        """One finished run: params, metrics, model, reference artifacts and a new version
        tagged candidate. Returns (run_id, version)."""
        with self.training_run(params=params) as run:
            version = run.register(model, features=features, metrics=metrics,
                                   artifacts=artifacts, files=files, reason=reason)
        return run.run_id, version

    def _experiment(self) -> str:
        name = f"tether/{self.model_name}"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException:  # another process created it meanwhile
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
            try:
                self.client.create_registered_model(self.model_name)
            except MlflowException as again:
                if getattr(again, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise

    # artifacts and models ----------------------------------------------------------

    def model_uri(self, number: int) -> str:
        return f"models:/{self.model_name}/{number}"

    @translate("download reference data")
    def reference_artifact(self, number: int, name: str) -> Path:
        """A local path to a reference artifact logged with the version's training run
        (or, for an adopted version, the run `tether adopt` logged them to). Raises
        ReferenceMissing when the version has none of that name."""
        try:
            version = self.client.get_model_version(self.model_name, str(number))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                self.version(number)  # raises VersionNotFound naming the known versions
            raise
        run_id = (version.tags or {}).get(REFERENCE_RUN_TAG) or version.run_id
        if not run_id:
            raise ReferenceMissing(f"version {number} has no training run to read {name} "
                                   f"from; `tether adopt models:/{self.model_name}/{number}` "
                                   "computes it from data.reference")
        target = Path(tempfile.mkdtemp(prefix="tether-ref-"))
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{REFERENCE_DIR}/{name}",
                dst_path=str(target), tracking_uri=self.tracking_uri)
        except (MlflowException, OSError) as exc:
            if not self._run_exists(run_id) or not self._has_artifact(run_id, name):
                raise ReferenceMissing(
                    f"version {number} was not trained by tether and has no {name}; "
                    f"`tether adopt models:/{self.model_name}/{number}` computes it from "
                    "data.reference") from exc
            raise
        return Path(local)

    def _run_exists(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
        except MlflowException:
            return False
        return True

    def _has_artifact(self, run_id: str, name: str) -> bool:
        listed = self.client.list_artifacts(run_id, REFERENCE_DIR)
        return any(Path(item.path).name == name for item in listed)

    # adopting a version tether did not train -----------------------------------------

    @translate("adopt a model")
    def adopt(self, uri: str) -> tuple[int, bool]:
        """The project's version for a model logged by plain MLflow (`models:/NAME/N`,
        `models:/NAME@ALIAS`, `runs:/RUN_ID/PATH`): (number, whether it is new). A new
        version is tagged candidate. Raises ConfigError for another kind of URI,
        ModelNotFound when it names nothing."""
        self.create()
        return take_version(self.client, self.model_name, parse_uri(uri),
                            (self.tracking_uri, self.registry_uri),
                            {STATE_TAG: State.CANDIDATE.value})

    @translate("withdraw an adopted version")
    def withdraw(self, number: int) -> None:
        """Delete version `number`, which `adopt` registered moments ago and which could
        not be completed: nothing else has seen it yet."""
        self.client.delete_model_version(self.model_name, str(number))

    @translate("record the reference of an adopted version")
    def log_reference(self, number: int, artifacts: Mapping[str, pd.DataFrame],
                      files: Mapping[str, str]) -> str:
        """Reference artifacts (`reference/`) for version `number` in a run of their own;
        `reference_artifact` reads them from then on. Returns the run's id."""
        return log_reference(self.client, self._prepare_run(), self.model_name, number,
                             artifacts, files)

    def reference_frame(self, number: int, name: str = "reference") -> pd.DataFrame:
        return pd.read_parquet(self.reference_artifact(number, f"{name}.parquet"))

    @translate("load model")
    def load_model(self, number: int) -> LoadedModel:
        """Load a version for predicting; sklearn models natively, others through pyfunc."""
        self.version(number)
        # the version's own artifact location: models:/ URIs resolve through MLflow's
        # process-wide registry URI, which tether never sets for long
        source = self.client.get_model_version_download_uri(self.model_name, str(number))
        local = mlflow.artifacts.download_artifacts(artifact_uri=source,
                                                    tracking_uri=self.tracking_uri)
        return load_model_dir(local, name=self.model_name, version=number)


def _missing_is_fine(delete: Callable[[str, str], Any], name: str, key: str) -> None:
    """Delete an alias or tag that may already be gone (a crash after the delete)."""
    try:
        delete(name, key)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise
