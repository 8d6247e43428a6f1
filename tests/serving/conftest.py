"""Serving fixtures: breast-cancer models registered in a real MLflow registry, apps on
the ASGI transport, and real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvicorn
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from starlette.applications import Starlette

from tests.conftest import write_project
from tether.config import load_config
from tether.net import free_port
from tether.project import Project

BREAK_ENV = "TETHER_TEST_BREAK_MODEL"
BIG = 1e6  # a "mean radius" this large makes a fragile model raise


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return features, target


def fit_lr(cancer: tuple[pd.DataFrame, pd.Series], c: float = 1.0) -> Pipeline:
    features, target = cancer
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(
        features, target)


def fragile(model: Pipeline) -> Pipeline:
    """A model that raises on rows with a huge mean radius, and on everything while the
    environment variable BREAK_ENV is set (checked at predict time, so a version can be
    registered healthy and fail its warm-up later)."""

    def guard(frame: Any) -> Any:
        if os.environ.get("TETHER_TEST_BREAK_MODEL") == "1":
            raise RuntimeError("model broken on purpose")
        if (frame["mean radius"] > 1e5).any():
            raise ValueError("mean radius out of range")
        return frame

    return Pipeline([("guard", FunctionTransformer(guard)), *model.steps])


def register(project: Project, model: Any, features: pd.DataFrame) -> int:
    _, version = project.registry.log_candidate(
        model, features=features, params={}, metrics={}, artifacts={}, files={},
        reason="test")
    return version


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path,
               cancer: tuple[pd.DataFrame, pd.Series]) -> tuple[Path, dict[str, int]]:
    """A registry with three versions, built once: two healthy LRs and a fragile one.

    Tests copy its databases; the artifacts stay where they are, read-only."""
    folder = tmp_path_factory.mktemp("serving-registry")
    write_project(folder)
    (folder / ".tether").mkdir()
    shutil.copyfile(mlflow_template, folder / ".tether" / "mlflow.db")
    template = Project(load_config(folder / "tether.yaml", environ={}))
    features, _ = cancer
    numbers = {
        "a": register(template, fit_lr(cancer, 1.0), features),
        "b": register(template, fit_lr(cancer, 0.05), features),
        "fragile": register(template, fragile(fit_lr(cancer)), features),
    }
    return folder / ".tether" / "mlflow.db", numbers


@pytest.fixture
def versions(project_dir: Path, registered: tuple[Path, dict[str, int]]) -> dict[str, int]:
    """The three registered versions in this test's registry; `a` is champion."""
    database, numbers = registered
    shutil.copyfile(database, project_dir / ".tether" / "mlflow.db")
    Project.open(project_dir / "tether.yaml").registry.promote(numbers["a"], "test")
    return numbers


@pytest.fixture
def project(project_dir: Path, versions: dict[str, int]) -> Project:
    return Project.open(project_dir / "tether.yaml")


@pytest.fixture
def empty_project(project_dir: Path) -> Project:
    return Project.open(project_dir / "tether.yaml")


def records(features: pd.DataFrame, n: int, start: int = 0) -> list[dict[str, float]]:
    return features.iloc[start:start + n].to_dict("records")  # type: ignore[return-value]


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a thread of this process."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)

    def __exit__(self, *_: object) -> None:
        self.stop()


@pytest.fixture
def live() -> Callable[[Starlette], LiveServer]:
    return LiveServer


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def saved_model(folder: Path, model: Any, features: pd.DataFrame) -> Path:
    """An MLflow model folder, as `mlflow artifacts download` leaves it."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    path = folder / "model"
    mlflow.sklearn.save_model(model, str(path), serialization_format="cloudpickle",
                              signature=infer_signature(features, model.predict(features)),
                              input_example=features.head(3))
    return path


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
