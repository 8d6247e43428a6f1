"""Building MLflow clients and translating MLflow's errors into tether's.

```
MlflowException / requests / OSError / sqlite3   tether
RESOURCE_DOES_NOT_EXIST                      ->  ModelNotFound
unreachable, timed out, unavailable, locked  ->  RegistryUnavailable
a SQLite registry file that does not exist   ->  RegistryUnavailable (reads never create one)
  (or is empty, or is no MLflow registry)
anything else                                ->  RegistryError
```

How long a call may take is set in `environment` (MLflow's own variables, with tether's
defaults).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import UnionType
from typing import Any, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tether.errors import ModelNotFound, RegistryError, RegistryUnavailable
from tether.registry.sqlite_state import not_a_registry, sqlite_file

__all__ = ["make_client", "process_uris", "registry_error", "translate"]

T = TypeVar("T")

_UNAVAILABLE = ("connect", "timed out", "timeout", "max retries exceeded",
                "temporarily unavailable", "name or service not known",
                "unable to open database file", "database is locked")


def make_client(tracking_uri: str, registry_uri: str, *, create: bool) -> MlflowClient:
    """An MLflow client; without `create`, a SQLite registry file must exist already and
    hold a registry (MLflow would make one of a missing or empty file: a moved or mistyped
    path would read as a registry with no versions). A file that is no registry (another
    program's SQLite database, not SQLite at all) is refused even with `create`."""
    for uri in dict.fromkeys((tracking_uri, registry_uri)):
        path = sqlite_file(uri)
        if path is None:
            continue
        problem = not_a_registry(path, creating=create)
        if problem in ("does not exist", "is empty"):
            raise RegistryUnavailable(
                f"registry {uri}: the file {path} {problem}; point TETHER_TRACKING_URI "
                "at your registry, or run `tether retrain` to create it with a first version")
        if problem is not None:
            raise RegistryUnavailable(f"registry {uri}: the file {path} {problem}, not an "
                                      "MLflow registry; point TETHER_TRACKING_URI at your registry")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    except MlflowException as exc:
        raise registry_error("open the registry", exc) from exc


_PROCESS_URIS = threading.Lock()
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def process_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """MLflow's fluent API (`start_run`, `log_model`) reads one tracking and one registry
    URI per process, and `mlflow.set_tracking_uri` also exports them to the environment.
    Set for this block only, then put back as they were: nothing else in the process, and
    no child process, inherits a registry it did not ask for. One block at a time."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _PROCESS_URIS:
        environment = {name: os.environ.get(name) for name in _URI_VARIABLES}
        saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(registry_uri)
        try:
            yield
        finally:
            tracking_utils._tracking_uri, registry_utils._registry_uri = saved
            for name, value in environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def translate(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A decorator: MLflow's (and its transport's) exceptions come out as tether's,
    naming what was being done."""

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return function(*args, **kwargs)
            except (MlflowException, OSError) as exc:
                raise registry_error(what, exc) from exc
            except Exception as exc:
                # MLflow lets SQLAlchemy's errors out of a SQLite registry as they are
                if _caused_by(exc, sqlite3.Error):
                    raise registry_error(what, exc) from exc
                raise

        wrapper.__name__ = function.__name__
        wrapper.__qualname__ = function.__qualname__
        wrapper.__doc__ = function.__doc__
        return wrapper

    return decorate


def registry_error(what: str, exc: BaseException) -> RegistryError:
    code = getattr(exc, "error_code", "")
    text = str(getattr(exc, "message", "") or exc).strip()
    message = (text.splitlines() or [type(exc).__name__])[0]
    if code == "RESOURCE_DOES_NOT_EXIST":
        return ModelNotFound(f"{what}: {message}")
    lowered = message.lower()
    if code in ("TEMPORARILY_UNAVAILABLE", "ENDPOINT_NOT_FOUND") or any(
            sign in lowered for sign in _UNAVAILABLE) or _is_transport_error(exc):
        return RegistryUnavailable(f"{what}: registry unavailable: {message}")
    return RegistryError(f"{what}: {message}")


def _is_transport_error(exc: BaseException) -> bool:
    import requests

    return _caused_by(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
                      | ConnectionError | TimeoutError)


def _caused_by(exc: BaseException, kind: type | UnionType) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
