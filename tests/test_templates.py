"""`tether init --task T` writes a policy valid for T; a policy copied from another task
is refused at the exact field; regression and multiclass projects train and pass the
gate with metrics read in their own direction (real MLflow registry)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli import empty_project, tether
from tether.config import load_config
from tether.errors import ConfigError
from tether.example import TEMPLATES
from tether.scoring import Task, metric


@pytest.fixture
def folder(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return empty_project(tmp_path, mlflow_template, monkeypatch)


@pytest.mark.parametrize("task", list(Task))
def test_init_writes_a_policy_valid_for_its_task(tmp_path: Path, task: Task) -> None:
    tether("init", str(tmp_path), "--task", task.value)
    policy = load_config(tmp_path / "tether.yaml", environ={}).policy
    assert policy.model.task is task
    primary = metric(task, policy.metric.primary)
    for name in policy.gate.floors:
        metric(task, name)  # every floor is a metric of the task
    if policy.triggers.metric_floor is not None:
        assert primary.lowest <= policy.triggers.metric_floor <= primary.highest
    assert TEMPLATES[task] in {"project", "regression", "multiclass"}


def test_a_classification_policy_under_regression_is_refused_at_the_field(
        tmp_path: Path) -> None:
    tether("init", str(tmp_path))
    raw = yaml.safe_load((tmp_path / "tether.yaml").read_text())
    raw["model"]["task"] = "regression"
    raw["metric"] = {"primary": "rmse"}
    (tmp_path / "tether.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "tether.yaml", environ={})
    assert str(caught.value).endswith(
        "gate.floors.roc_auc: 'roc_auc' is not a metric of regression; allowed: rmse, mae, r2")
    raw["gate"]["floors"] = {"r2": 1.5}
    (tmp_path / "tether.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match=r"gate\.floors\.r2: r2 takes values in "
                                          r"\[-inf, 1\], so a floor of 1\.5 is meaningless"):
        load_config(tmp_path / "tether.yaml", environ={})
    raw["gate"]["floors"] = {}
    raw["rollout"]["max_metric_drop"] = 0.02  # in rmse units: strict, but meaningful
    (tmp_path / "tether.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    policy = load_config(tmp_path / "tether.yaml", environ={}).policy
    assert policy.triggers.metric_floor == 0.7  # a ceiling of rmse 0.7: meaningful
    assert metric(Task.REGRESSION, "rmse").against(58.0, 0.7) == \
        "rmse 58 worse than ceiling 0.7"


@pytest.mark.parametrize(("task", "expected"), [
    (Task.REGRESSION, {"rmse", "mae", "r2"}),
    (Task.MULTICLASS, {"accuracy", "f1_macro", "f1_weighted", "precision_macro",
                       "recall_macro", "roc_auc_ovr", "log_loss"}),
])
def test_a_project_of_each_task_trains_and_is_gated_in_its_direction(
        folder: Path, task: Task, expected: set[str]) -> None:
    tether("init", ".", "--task", task.value)
    tether("retrain")
    first = json.loads(tether("gate", "--json"))
    assert first["passed"] is True, first["message"]
    scores = first["scores"]["challenger"]
    assert expected <= {name for name, value in scores.items() if value is not None}
    assert first["metric"]["direction"] == metric(task, first["metric"]["primary"]) \
        .direction.value
    tether("promote", "--version", "1")
    tether("retrain", "--reason", "again")
    second = json.loads(tether("gate", "--json"))
    check = next(c for c in second["checks"] if c["name"].startswith("beats_champion"))
    primary = second["metric"]["primary"]
    champion, challenger = second["scores"]["champion"][primary], \
        second["scores"]["challenger"][primary]
    gain = metric(task, primary).improvement(challenger, champion)
    assert check["value"] == pytest.approx(gain)
    assert check["message"].startswith(f"{primary} ")
    assert ("better" in check["message"]) == (gain > 0)


def test_each_example_registers_a_model_of_its_own_name() -> None:
    """Two examples tried against one MLflow registry (MLFLOW_TRACKING_URI set) must not
    add versions to the same registered model: iris answers 0, 1, 2, iris-species names
    the classes."""
    import tether.example
    from tether.example import EXAMPLES, FEDERATED, RAINFALL

    root = Path(tether.example.__file__).parent
    folders = {**{name: e.folder for name, e in EXAMPLES.items()},
               FEDERATED: FEDERATED, RAINFALL: RAINFALL}
    names = {example: yaml.safe_load((root / folder / "tether.yaml").read_text())["model"]
             ["name"] for example, folder in folders.items()}
    assert len(set(names.values())) == len(names), names
    assert names["iris"] == "iris"
