"""The `tether` command run in-process, as tests call it, and an empty project folder
with a ready MLflow registry (or one with its own data, trainer and policy)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tether.cli import app

runner = CliRunner()


def tether(*args: str, code: int = 0) -> str:
    """stdout of `tether ARGS`; fails the test unless it exits with `code`."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def tether_json(*args: str) -> Any:
    return json.loads(tether(*args, "--json"))


def empty_project(folder: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch,
                  ) -> Path:
    """`folder` as the working directory, its `.tether/mlflow.db` a copy of the migrated
    template registry, no TETHER_* variable from the caller's environment."""
    for name in list(os.environ):
        if name.startswith("TETHER_"):
            monkeypatch.delenv(name)
    (folder / ".tether").mkdir()
    shutil.copyfile(mlflow_template, folder / ".tether" / "mlflow.db")
    monkeypatch.chdir(folder)
    return folder


def data_project(folder: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch, *,
                 data: pd.DataFrame, trainer: str, policy: dict[str, Any]) -> Path:
    """`empty_project` in `folder` (made if missing) with `data` as data.csv, `trainer` as
    train.py and `policy` as tether.yaml; the policy's path."""
    folder.mkdir(parents=True, exist_ok=True)
    empty_project(folder, mlflow_template, monkeypatch)
    data.to_csv(folder / "data.csv", index=False)
    (folder / "train.py").write_text(trainer)
    path = folder / "tether.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path
