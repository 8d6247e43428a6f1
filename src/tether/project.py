"""A loaded project: its policy, its registry and its store, opened once."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.config import Config, Policy, Settings, folder_config, load_config
from tether.registry import Evidence, RegistryState
from tether.store import Event, Store

if TYPE_CHECKING:
    from tether.registry import Registry

__all__ = ["Project"]


@dataclass
class Project:
    config: Config
    # what "now" is for everything recorded through this project (a replay sets its own)
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    @classmethod
    def open(cls, path: Path | str | None = None) -> Project:
        return cls(load_config(path))

    @classmethod
    def for_model_folder(cls, model_dir: Path | str, model_name: str) -> Project:
        """A project that only serves one MLflow model folder, with no policy file."""
        return cls(folder_config(model_dir, model_name))

    @property
    def policy(self) -> Policy:
        return self.config.policy

    @property
    def settings(self) -> Settings:
        return self.config.settings

    @property
    def model_name(self) -> str:
        return self.policy.model.name

    @cached_property
    def registry(self) -> Registry:
        """The model's registry; its transitions run under the store's registry lease and
        its repairs know which versions servers could not load."""
        from tether.registry import Registry  # MLflow: imported by what uses it

        self.settings.home.mkdir(parents=True, exist_ok=True)
        return Registry(self.model_name, self.settings.tracking_uri, self.settings.registry_uri,
                        artifact_root=self.settings.artifact_root, guard=self._registry_lease,
                        evidence=self._server_reports)

    def registry_state(self) -> RegistryState:
        """What `registry.state()` reads; a SQLite registry is read without starting
        MLflow (`tether.registry.sqlite_state`)."""
        from tether.registry.sqlite_state import read_local_state

        read = read_local_state(self.settings.registry_uri, self.model_name)
        return read if read is not None else self.registry.mlflow_state()

    def _registry_lease(self, what: str, expected: RegistryState | None,
                        ) -> AbstractContextManager[RegistryState]:
        from tether.lifecycle import transaction  # lifecycle builds on Project

        return transaction(self, what, expected)

    def _server_reports(self) -> Evidence:
        from tether.lifecycle import load_failures

        return Evidence(unloadable=load_failures(self))

    @cached_property
    def store(self) -> Store:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        return Store(self.settings.store_url, clock=self.clock)

    def record(self, kind: str, reason: str = "", version: int | None = None,
               data: Mapping[str, Any] | None = None, ts: float | None = None) -> Event:
        """Write one event to the log, with the numbers behind it, at `ts` (default: the
        project's clock)."""
        return self.store.record_event(Event(model_name=self.model_name, kind=kind,
                                             reason=reason, version=version,
                                             data=dict(data or {}),
                                             ts=self.clock() if ts is None else ts))
