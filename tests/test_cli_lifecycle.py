"""The manual lifecycle from the command line, against a real MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from tether.cli import app
from tether.project import Project

runner = CliRunner()


def tether(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _registry_snapshot(project_dir: Path) -> dict[str, object]:
    project = Project.open(project_dir / "tether.yaml")
    return project.registry.state().as_dict()


def test_init_scaffolds_a_project_that_loads(tmp_path: Path) -> None:
    tether("init", str(tmp_path / "new"))
    assert Project.open(tmp_path / "new" / "tether.yaml").model_name == "loan-default"
    assert (tmp_path / "new" / "train.py").is_file()
    output = runner.invoke(app, ["init", str(tmp_path / "new")])
    assert output.exit_code == 2
    assert "already exists; pass --force" in output.output


def test_full_manual_lifecycle_ends_with_champion_one(project_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    github_output = project_dir / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))

    first = tether("retrain")
    assert "RUN_ID: " in first and "MODEL_VERSION: 1" in first.splitlines()
    run_line = next(line for line in first.splitlines() if line.startswith("RUN_ID: "))
    assert github_output.read_text() == (
        f"run_id={run_line.removeprefix('RUN_ID: ')}\nmodel_version=1\n")
    tether("gate")
    tether("promote")
    tether("retrain", "--reason", "weekly")
    tether("gate")
    tether("promote")
    tether("rollback", "--reason", "test")

    status = json.loads(tether("status", "--json"))
    assert status["champion"] == 1
    assert status["problems"] == []
    states = {v["version"]: v["state"] for v in status["versions"]}
    assert states == {1: "champion", 2: "rolled_back"}

    project = Project.open(project_dir / "tether.yaml")
    client = MlflowClient(tracking_uri=project.settings.tracking_uri)
    assert client.get_model_version_by_alias("loan-default", "champion").version in (1, "1")
    assert client.get_model_version("loan-default", "2").tags["tether.state"] == "rolled_back"
    assert client.get_model_version("loan-default", "2").tags["tether.reason"] == "test"

    events = json.loads(tether("history", "--json"))
    assert [(e["kind"], e["version"]) for e in events] == [
        ("trained", 1), ("gate_passed", 1), ("promoted", 1),
        ("trained", 2), ("gate_passed", 2), ("promoted", 2), ("rolled_back", 2)]
    assert events[3]["reason"] == "weekly"
    assert events[-1]["reason"] == "test"
    assert all(e["reason"] for e in events)
    assert events[1]["data"]["checks"][0]["name"] == "floor:roc_auc"


def test_rollback_with_nothing_to_roll_back_to_exits_non_zero(project_dir: Path) -> None:
    result = runner.invoke(app, ["rollback", "--reason", "why not"])
    assert result.exit_code == 5
    assert "no champion to roll back" in result.output
    tether("retrain")
    tether("promote", "--version", "1")
    result = runner.invoke(app, ["rollback", "--reason", "why not"])
    assert result.exit_code == 5
    assert "no previous version to roll back to" in result.output


BAD_TRAINERS = {
    "raises": ("def train(ctx):\n    raise ValueError('column income is all NaN')\n",
               "raised ValueError: column income is all NaN"),
    "no_predict": ("def train(ctx):\n    return {'weights': [1, 2]}\n",
                   "returned dict, which has no predict()"),
    "import_error": ("import not_a_real_package\n\ndef train(ctx):\n    pass\n",
                     "cannot import 'train'"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAINERS))
def test_bad_trainer_is_one_line_and_changes_nothing(project_dir: Path, case: str) -> None:
    tether("retrain")
    tether("promote", "--version", "1")
    before = _registry_snapshot(project_dir)
    source, message = BAD_TRAINERS[case]
    (project_dir / "train.py").write_text(source)
    result = runner.invoke(app, ["retrain"])
    assert result.exit_code == 3
    assert message in result.output
    assert "Traceback" not in result.output
    assert _registry_snapshot(project_dir) == before
    kinds = [e["kind"] for e in json.loads(tether("history", "--json"))]
    assert kinds[-1] == "retrain_failed"


def test_missing_data_file_and_invalid_policy(project_dir: Path) -> None:
    policy = (project_dir / "tether.yaml").read_text()
    (project_dir / "tether.yaml").write_text(
        policy.replace("generator: tether.example.loans:generate", "reference: data/loans.csv"))
    result = runner.invoke(app, ["retrain"])
    assert result.exit_code == 2
    assert "data/loans.csv: no such data file" in result.output
    (project_dir / "tether.yaml").write_text(policy.replace("task: binary_classification",
                                                            "task: ranking"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert "model.task: Input should be" in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_unknown_version_and_rejected_version(project_dir: Path) -> None:
    tether("retrain")
    result = runner.invoke(app, ["promote", "--version", "7"])
    assert result.exit_code == 4
    assert "has no version 7; known versions: [1]" in result.output
    tether("promote", "--version", "1")
    # a trainer that cannot beat the champion is rejected by the gate
    (project_dir / "train.py").write_text(
        "from sklearn.dummy import DummyClassifier\n\n"
        "def train(ctx):\n    return DummyClassifier(strategy='prior').fit(ctx.X, ctx.y)\n")
    tether("retrain")
    gate = runner.invoke(app, ["gate", "--json"])
    assert gate.exit_code == 1
    verdict = json.loads(gate.output)
    assert verdict["passed"] is False
    failed = {check["name"] for check in verdict["checks"] if not check["passed"]}
    assert {"floor:roc_auc", "beats_champion:roc_auc"} <= failed
    before = _registry_snapshot(project_dir)
    result = runner.invoke(app, ["promote", "--version", "2"])
    assert result.exit_code == 5
    assert "version 2 was rejected" in result.output
    assert _registry_snapshot(project_dir) == before


def test_debug_shows_the_traceback(project_dir: Path) -> None:
    result = runner.invoke(app, ["--debug", "promote", "--version", "3"])
    assert result.exit_code != 0
    assert result.exception is not None


def test_latency_budget_rejects_a_slow_model(tmp_path: Path, mlflow_template: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import write_project

    folder = tmp_path / "slow"
    write_project(folder, **{"gate.max_latency_ms": 0.001})
    monkeypatch.chdir(folder)
    tether("retrain")
    verdict = json.loads(tether("gate", "--json", code=1))
    latency = next(check for check in verdict["checks"] if check["name"] == "latency_ceiling")
    assert latency["passed"] is False
    assert latency["value"] > 0.001
    assert verdict["latency"]["challenger"]["calls"] >= 5


def test_a_running_canary_is_aborted_by_abort_or_rollback(project_dir: Path,
                                                          trained_template: Path) -> None:
    from tests.conftest import use_trained
    from tether import lifecycle
    from tether.registry import RolloutSpec, State

    use_trained(project_dir, trained_template)
    project = Project.open(project_dir / "tether.yaml")
    lifecycle.promote(project, 1, "first champion")
    for reason in ("abort", "rollback"):
        lifecycle.start_rollout(project, RolloutSpec(version=2, mode="canary", weight=0.2,
                                                     step=0, started_at=0.0), "test")
        if reason == "abort":
            answer = json.loads(tether("abort", "--reason", "by hand", "--json"))
        else:  # rollback during a rollout stops the rollout, the champion stays
            answer = json.loads(tether("rollback", "--reason", "by hand", "--json"))
        assert answer == {"aborted": 2, "champion": 1}
        state = project.registry.state()
        assert (state.champion, state.challenger, state.rollout) == (1, None, None)
        assert state.version(2).state == "rejected"
        assert [e.kind for e in lifecycle.history(project)][-1] == "rollout_aborted"
        project.registry.set_state(2, State.CANDIDATE, "again")
    nothing = runner.invoke(app, ["abort", "--reason", "x", "--json"])
    assert nothing.exit_code == 5
    assert json.loads(nothing.stdout)["error"]["type"] == "InvalidTransition"
    assert "nothing is rolling out" in nothing.stdout


def test_debug_after_the_subcommand_and_flags_without_a_type(project_dir: Path) -> None:
    assert runner.invoke(app, ["status", "--debug"]).exit_code == 0
    helped = runner.invoke(app, ["status", "--help"], terminal_width=100).output
    assert "--json" in helped and "<bool>" not in helped
    with pytest.raises(Exception, match="no version 9"):  # --debug: the traceback
        runner.invoke(app, ["promote", "--version", "9", "--debug"], catch_exceptions=False)


def test_promote_while_the_passed_candidate_rolls_out_names_the_rollout(
        project_dir: Path, trained_template: Path) -> None:
    """Under `tether up` the controller starts the canary of a gated candidate itself, so
    a `tether promote` right after `tether gate` finds no candidate waiting."""
    from tests.conftest import use_trained
    from tether import lifecycle
    from tether.registry import RolloutSpec

    use_trained(project_dir, trained_template)
    project = Project.open(project_dir / "tether.yaml")
    lifecycle.promote(project, 1, "first champion")
    project.registry.set_gate(2, {"passed": True})
    lifecycle.start_rollout(project, RolloutSpec(version=2, mode="canary", weight=0.05,
                                                 step=0, started_at=0.0), "gate passed")
    refused = runner.invoke(app, ["promote"])
    assert refused.exit_code == 4, refused.output
    assert "version 2 is rolling out (canary 5% to version 2 (step 0))" in refused.output
    assert "tether promote --version 2" in refused.output
    assert "run `tether gate`" not in refused.output
    assert project.registry.state().champion == 1
    tether("promote", "--version", "2")
    state = project.registry.state()
    assert (state.champion, state.previous, state.rollout) == (2, 1, None)
