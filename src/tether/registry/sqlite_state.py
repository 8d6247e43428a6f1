"""A model's registry state read straight from a SQLite registry file, without MLflow.

MLflow's client takes about a second to open a SQLite registry (importing its SQLAlchemy
stores, their mappings and alembic, then checking the schema) before it reads anything;
the state is five small tables. Reading them with the standard library makes `tether
status` and every poll of a local registry quick, and it is why this reader exists.

It reads only what it was checked against, and returns None (the caller then reads
through MLflow's client) for anything else:

- a schema revision not in `KNOWN_REVISIONS` (the alembic head of the MLflow releases
  tether is tested with: an upgraded registry is read by MLflow until tether knows its
  schema; tests/registry/test_sqlite_state.py fails when the installed MLflow's head is
  missing here, and compares this reader with MLflow's client over every transition);
- MLflow workspaces configured in the environment (rows are read from the default one);
- a file that does not exist, cannot be opened read-only, or any SQLite error (MLflow's
  client raises the error tether translates, or waits out a lock as it does).

Writes always go through MLflow.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

from tether.registry.state import RegistryState, VersionInfo

__all__ = ["KNOWN_REVISIONS", "not_a_registry", "read_local_state", "read_sqlite_state",
           "sqlite_file"]

KNOWN_REVISIONS = frozenset({"dc11669786a5"})  # MLflow 3.17

# MLflow marks a deleted version with this stage until it removes the row
_DELETED_STAGE = "Deleted_Internal"
_DEFAULT_WORKSPACE = "default"
_WORKSPACE_VARIABLES = ("MLFLOW_WORKSPACE", "MLFLOW_WORKSPACE_STORE_URI")
_BUSY_TIMEOUT_S = 5.0


def sqlite_file(uri: str) -> Path | None:
    """The file a `sqlite:///...` URI names (None for other URIs and in-memory ones).

    >>> sqlite_file("sqlite:////srv/mlflow.db"), sqlite_file("sqlite:///rel/mlflow.db")
    (PosixPath('/srv/mlflow.db'), PosixPath('rel/mlflow.db'))
    >>> sqlite_file("http://mlflow:5000") is None
    True
    """
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(unquote(path))


def not_a_registry(path: Path, *, creating: bool = False) -> str | None:
    """What plainly makes the file at `path` no MLflow registry, as a phrase to follow "the
    file PATH" ("is a directory", ...), else None.

    A missing or empty file is one unless `creating` (MLflow's client makes a registry of
    it). A SQLite database without MLflow's tables is one even then: MLflow's client would
    write its schema into another program's database. A file that cannot be read now
    (locked, no permission) is left to MLflow's client to report.
    """
    if path.is_dir():
        return "is a directory"
    if not path.exists() or not path.stat().st_size:
        return None if creating else ("does not exist" if not path.exists() else "is empty")
    try:
        with _open(path, busy_timeout_s=0.0) as connection:  # locked: MLflow's to wait out
            tables = {name for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            return "is not a SQLite database"
        return None
    if tables and "alembic_version" not in tables:
        return "is a SQLite database without MLflow's tables"
    return None


def read_local_state(registry_uri: str, model_name: str) -> RegistryState | None:
    """`model_name`'s state when `registry_uri` is a SQLite file this reader applies to,
    else None."""
    path = sqlite_file(registry_uri)
    return None if path is None else read_sqlite_state(path, model_name)


def read_sqlite_state(path: Path, model_name: str) -> RegistryState | None:
    """`model_name`'s state in the registry file at `path`, read in one transaction; a
    model not registered yet has no aliases and no versions. None when this reader does
    not apply (see the module's docstring)."""
    if _workspaces() or not path.is_file():
        return None
    try:
        with _open(path) as connection:
            connection.execute("BEGIN")  # one snapshot of all five tables
            return _read(connection, model_name)
    except sqlite3.Error:
        return None


def _workspaces() -> bool:
    """Whether MLflow workspaces are set up in the environment (as MLflow reads it)."""
    enabled = os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").strip().lower() in ("true", "1")
    return enabled or any(os.environ.get(name) for name in _WORKSPACE_VARIABLES)


@contextmanager
def _open(path: Path, busy_timeout_s: float = _BUSY_TIMEOUT_S,
          ) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the file at `path` (raises sqlite3.Error)."""
    connection = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True,
                                 timeout=busy_timeout_s)
    try:
        yield connection
    finally:
        connection.close()


def _read(connection: sqlite3.Connection, name: str) -> RegistryState | None:
    revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    if revision is None or revision[0] not in KNOWN_REVISIONS:
        return None
    key = (_DEFAULT_WORKSPACE, name)
    if connection.execute("SELECT 1 FROM registered_models WHERE workspace = ? AND name = ?",
                          key).fetchone() is None:
        return RegistryState(name, None, None, None, None, ())
    aliases = {alias: int(version) for alias, version in connection.execute(
        "SELECT alias, version FROM registered_model_aliases WHERE workspace = ? AND name = ?",
        key)}
    model_tags = dict(connection.execute(
        'SELECT "key", value FROM registered_model_tags WHERE workspace = ? AND name = ?', key))
    version_tags: dict[int, dict[str, str]] = {}
    for version, tag, value in connection.execute(
            'SELECT version, "key", value FROM model_version_tags '
            "WHERE workspace = ? AND name = ?", key):
        version_tags.setdefault(int(version), {})[tag] = value
    named: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        named.setdefault(number, []).append(alias)
    versions = [
        VersionInfo.from_registry(int(version), run_id, created_ms,
                                  version_tags.get(int(version), {}), named.get(int(version), []))
        for version, run_id, created_ms in connection.execute(
            "SELECT version, run_id, creation_time FROM model_versions "
            "WHERE workspace = ? AND name = ? AND current_stage != ?",
            (*key, _DELETED_STAGE))]
    return RegistryState.from_registry(name, aliases, model_tags, versions)
