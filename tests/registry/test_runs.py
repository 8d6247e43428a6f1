"""Training runs: a trainer logs into the run tether opened, while it trains; a training
that fails leaves a failed run and no version. Real MLflow registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_project
from tether import lifecycle
from tether.errors import TrainingError
from tether.project import Project

TRAINER = '''
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

NUMERIC = ["income", "loan_amount", "credit_score"]


def train(ctx):
    ctx.log_params({"rounds": 3, "sites": "a"})
    model = make_pipeline(ColumnTransformer([("numeric", SimpleImputer(), NUMERIC)]),
                          LogisticRegression(max_iter=200))
    for round in range(1, 4):
        model.fit(ctx.X, ctx.y)
        ctx.log_params({"sites": "a,b"})  # a site joined: the last value is the one kept
        ctx.log_metrics({"round_accuracy": 0.5 + round / 10, "site_a_rows": 100.0 * round},
                        step=round)
        if ctx.params.get("fail_at") == round:
            raise RuntimeError(f"site a left in round {round}")
    return model
'''


def with_trainer(project_dir: Path, **overrides: object) -> Project:
    write_project(project_dir, **overrides)
    (project_dir / "train.py").write_text(TRAINER)
    return Project.open(project_dir / "tether.yaml")


@pytest.fixture
def logging_trainer(project_dir: Path) -> Project:
    return with_trainer(project_dir)


def test_a_trainer_logs_each_round_into_the_run_that_registers_its_model(
        logging_trainer: Project) -> None:
    project = logging_trainer
    result = lifecycle.train(project, reason="three rounds")
    client = project.registry.client
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(result.run_id, "round_accuracy")
    assert [(m.step, round(m.value, 2)) for m in history] == [(1, 0.6), (2, 0.7), (3, 0.8)]
    assert [m.step for m in client.get_metric_history(result.run_id, "site_a_rows")] == [1, 2, 3]
    assert run.data.params["rounds"] == "3" and run.data.params["reason"] == "three rounds"
    assert run.data.params["sites"] == "a,b"
    assert "holdout_roc_auc" in run.data.metrics  # the final metrics, in the same run
    info = project.registry.version(result.version)
    assert info.run_id == result.run_id and info.state == "candidate"


def test_a_training_that_fails_mid_run_marks_the_run_failed_and_registers_nothing(
        project_dir: Path) -> None:
    project = with_trainer(project_dir, **{"trainer_params.fail_at": 2})
    with pytest.raises(TrainingError, match="site a left in round 2"):
        lifecycle.train(project, reason="a site leaves")
    assert project.registry.state().versions == ()
    client = project.registry.client
    experiment = client.get_experiment_by_name(f"tether/{project.model_name}")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.params["sites"] == "a,b"  # what it had logged, for whoever debugs it
    assert [m.step for m in client.get_metric_history(run.info.run_id, "round_accuracy")] == [
        1, 2]
    (event,) = project.store.events(project.model_name, kinds=["retrain_failed"])
    assert "site a left in round 2" in event.reason
