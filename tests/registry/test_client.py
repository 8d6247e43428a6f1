"""Opening the registry: a missing SQLite file is an error, never a new empty registry;
an unreachable or silent MLflow server fails within seconds as RegistryUnavailable."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.errors import RegistryUnavailable
from tether.net import free_port
from tether.registry import Registry
from tether.registry.environment import HTTP_DEFAULTS, use_defaults


def test_reads_of_a_missing_sqlite_registry_name_the_file_and_create_nothing(
        tmp_path: Path) -> None:
    path = tmp_path / "gone" / "mlflow.db"
    registry = Registry("m", f"sqlite:///{path}")
    with pytest.raises(RegistryUnavailable, match=f"the file {path} does not exist"):
        registry.state()
    assert not path.exists() and not path.parent.exists()
    registry.create()  # what `tether init` and `tether retrain` do
    assert path.is_file() and registry.state().versions == ()


def test_mlflow_variables_a_user_set_win_over_tethers_defaults() -> None:
    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    use_defaults(environ)
    assert environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    assert environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == HTTP_DEFAULTS[
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES"]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_silent_registry_is_unavailable_after_the_timeout_not_minutes_later(
        silent_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="registry unavailable"):
        Registry("m", silent_server).state()
    # two attempts of 1 s; MLflow's own defaults would wait 120 s per attempt, 8 attempts
    assert time.monotonic() - started < 60


def test_a_refused_connection_is_unavailable_with_tethers_defaults() -> None:
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="registry unavailable"):
        Registry("m", f"http://127.0.0.1:{free_port()}").state()
    assert time.monotonic() - started < 60  # about 2 s; MLflow's defaults: minutes
