"""Shared fixtures: a real MLflow registry (SQLite in a temp dir) and a real store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# tether honours these when its own are unset: a developer's MLflow must not be the tests'
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_REGISTRY_URI", None)

from tether.project import Project
from tether.store import Store, metadata

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL")
EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "tether" / "example" / "project"
SMALL_DATA = {"n": 2000, "seed": 1}


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its schema migrated once; tests get copies."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow-template")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return folder / "mlflow.db"


def write_project(folder: Path, **overrides: object) -> Path:
    """The example project in `folder`, on a smaller data set, with policy overrides."""
    policy = yaml.safe_load((EXAMPLE / "tether.yaml").read_text())
    policy["data"]["params"] = dict(SMALL_DATA)
    policy["trainer_params"] = {"max_iter": 60}
    # Tests share two cores with other work: latency budgets are tested on their own.
    policy["gate"]["max_latency_ms"] = 2000
    for dotted, value in overrides.items():
        node = policy
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    shutil.copyfile(EXAMPLE / "train.py", folder / "train.py")
    return folder / "tether.yaml"


@pytest.fixture
def project_dir(tmp_path: Path, mlflow_template: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An example project in a temp folder with its own registry and store."""
    folder = tmp_path / "project"
    write_project(folder)
    home = folder / ".tether"
    home.mkdir()
    shutil.copyfile(mlflow_template, home / "mlflow.db")
    for name in list(os.environ):
        if name.startswith("TETHER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(folder)
    yield folder


@pytest.fixture
def project(project_dir: Path) -> Project:
    return Project.open(project_dir / "tether.yaml")


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Path:
    """A registry and store holding two trained candidates (v1, v2), trained once.

    Tests copy its databases; the model artifacts stay in this folder for the session,
    which is where the copied registry's versions point.
    """
    folder = tmp_path_factory.mktemp("trained") / "project"
    write_project(folder)
    (folder / ".tether").mkdir()
    shutil.copyfile(mlflow_template, folder / ".tether" / "mlflow.db")
    from tether.training import retrain

    project = Project.open(folder / "tether.yaml")
    retrain(project)
    retrain(project)
    project.store.close()
    return folder / ".tether"


@contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """`count` CPU-bound neighbour processes for the duration of the block."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait(timeout=30)


def use_trained(project_dir: Path, template: Path) -> None:
    """Give `project_dir` the template's registry and store: versions 1 and 2, candidates."""
    for name in ("mlflow.db", "store.db"):
        shutil.copyfile(template / name, project_dir / ".tether" / name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store on SQLite, and on PostgreSQL 15 when `.ci/run` started one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        if not POSTGRES_URL:
            pytest.skip("TETHER_TEST_POSTGRES_URL is not set (.ci/run starts PostgreSQL 15)")
        url = POSTGRES_URL
        metadata.drop_all(sa.create_engine(url))
    opened = Store(url)
    yield opened
    opened.close()
