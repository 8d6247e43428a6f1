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


def test_requirements_are_inferred_once_per_kind_of_model_and_reused(
        logging_trainer: Project) -> None:
    """MLflow infers pip requirements by loading the model in a new interpreter; the
    second version of the same trainer reuses the first's, and both say the same."""
    from mlflow.pyfunc import get_model_dependencies

    from tether.registry import runs

    runs._requirements.clear()
    first = lifecycle.train(logging_trainer, reason="first")
    assert len(runs._requirements) == 1
    [(key, inferred)] = runs._requirements.items()
    assert key[0] == "sklearn" and "sklearn.linear_model._logistic" in key
    assert any(line.startswith("scikit-learn") for line in inferred)
    second = lifecycle.train(logging_trainer, reason="second")
    assert len(runs._requirements) == 1

    def requirements(version: int) -> list[str]:
        uri = f"models:/{logging_trainer.model_name}/{version}"
        path = get_model_dependencies(uri)
        return Path(path).read_text().splitlines()

    registry = logging_trainer.registry
    with runs.process_uris(registry.tracking_uri, registry.registry_uri):
        assert requirements(second.version) == requirements(first.version)
