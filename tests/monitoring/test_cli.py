"""tether drift / backtest / monitor, end to end through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from tests.conftest import use_trained
from tether.cli import app
from tether.example.loans import generate
from tether.project import Project

NUMERIC = ["income", "loan_amount", "credit_score", "age", "employment_years",
           "debt_to_income", "late_payments"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def files(tmp_path: Path) -> Path:
    generate(3000, seed=1).to_csv(tmp_path / "ref.csv", index=False)
    generate(800, seed=2).to_parquet(tmp_path / "same.parquet")
    generate(800, seed=3, shift=0.7).to_csv(tmp_path / "shifted.csv", index=False)
    return tmp_path


def test_drift_json_exit_codes_and_html(files: Path) -> None:
    code, out, _ = run("drift", "--reference", str(files / "ref.csv"),
                       "--current", str(files / "same.parquet"), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["drifted"] is False and report["enough_data"] is True
    assert {f["name"] for f in report["features"]} >= set(NUMERIC)
    code, out, _ = run("drift", "--reference", str(files / "ref.csv"),
                       "--current", str(files / "shifted.csv"),
                       "--html", str(files / "report.html"), "--json")
    assert code == 1
    report = json.loads(out)
    drifted = [f["name"] for f in report["features"] if f["drifted"]]
    assert report["drifted"] is True and len(drifted) >= 3
    page = (files / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(drifted)
    assert "<script" not in page and "https://" not in page


def test_drift_on_an_80_column_terminal_shows_every_column_name_whole(
        files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run("drift", "--reference", str(files / "ref.csv"),
                       "--current", str(files / "shifted.csv"), "--target", "default")
    assert code == 1
    assert "…" not in out, out
    cells = "".join(line.split("│")[1].strip() for line in out.splitlines()
                    if line.count("│") == 8)
    for name in [*NUMERIC, "home_ownership", "purpose"]:
        assert name in cells, out


def test_drift_leaves_out_excluded_columns_and_the_target(files: Path) -> None:
    reference = generate(3000, seed=1).assign(row_id=np.arange(3000))
    current = generate(800, seed=2).assign(row_id=np.arange(10_000, 10_800))
    reference.to_csv(files / "ref_ids.csv", index=False)
    current.to_csv(files / "cur_ids.csv", index=False)
    args = ("drift", "--reference", str(files / "ref_ids.csv"),
            "--current", str(files / "cur_ids.csv"), "--json")
    code, out, _ = run(*args)
    names = {f["name"]: f["drifted"] for f in json.loads(out)["features"]}
    assert names["row_id"] is True and "default" in names  # an id always "drifts"
    code, out, _ = run(*args, "--exclude", "row_id", "--target", "default")
    assert code == 0
    names = {f["name"]: f["drifted"] for f in json.loads(out)["features"]}
    assert "row_id" not in names and "default" not in names and set(NUMERIC) <= set(names)
    code, _, err = run(*args, "--exclude", "nope")
    assert code == 2 and "no column 'nope'" in err


@pytest.mark.parametrize(("current", "message"), [
    ("missing.csv", "no such data file"),
    ("empty.csv", "the file is empty"),
    ("folder.csv", "is a folder, not a data file"),
    ("header_only.csv", "has no rows"),
    ("other_schema.csv", "no column in common"),
])
def test_drift_bad_files_give_one_line_and_exit_2(files: Path, current: str,
                                                  message: str) -> None:
    (files / "empty.csv").write_text("")
    (files / "folder.csv").mkdir()
    (files / "header_only.csv").write_text("income,age\n")
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(files / "other_schema.csv", index=False)
    code, out, err = run("drift", "--reference", str(files / "ref.csv"),
                         "--current", str(files / current))
    assert code == 2 and message in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_drift_with_a_partly_different_schema_names_the_columns(files: Path) -> None:
    frame = generate(800, seed=4).drop(columns=["age"]).assign(new_column=1.0)
    frame["income"] = frame["income"].astype(object)
    frame.loc[:5, "income"] = "unknown"
    frame.to_csv(files / "partial.csv", index=False)
    code, out, _ = run("drift", "--reference", str(files / "ref.csv"),
                       "--current", str(files / "partial.csv"), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["missing_columns"] == ["age"] and report["extra_columns"] == ["new_column"]
    income = next(f for f in report["features"] if f["name"] == "income")
    assert income["drifted"] is True and "type mismatch" in income["reason"]
    code, _, err = run("drift", "--reference", str(files / "ref.csv"),
                       "--current", str(files / "partial.csv"), "--method", "nonsense")
    assert code == 2 and "--method" in err


def test_drift_counts_a_column_turned_non_numeric(files: Path) -> None:
    frame = generate(800, seed=5)
    frame["age"] = "old"
    frame.to_csv(files / "age_as_text.csv", index=False)
    code, out, _ = run("drift", "--reference", str(files / "ref.csv"),
                       "--current", str(files / "age_as_text.csv"), "--json",
                       "--share", "0.01")
    report = json.loads(out)
    age = next(f for f in report["features"] if f["name"] == "age")
    assert age["drifted"] is True and "type mismatch" in age["reason"]
    assert code == 1 and report["drifted"] is True and report["share_drifted"] > 0
    code, out, _ = run("drift", "--reference", str(files / "ref.csv"),
                       "--current", str(files / "age_as_text.csv"), "--share", "0.01")
    assert code == 1 and "DRIFT" in out
    # the table says why, as no score can (the row's cells wrap at 80 columns)
    cells = " ".join(line.split("│")[-2].strip() for line in out.splitlines()
                     if line.count("│") > 2)
    assert "drift: type mismatch: the reference is numeric" in cells


def scored(frame: pd.DataFrame, model: LogisticRegression) -> pd.DataFrame:
    proba = model.predict_proba(frame[NUMERIC])[:, 1]
    return frame.assign(proba=proba, pred=(proba >= 0.5).astype(int))


def test_backtest_reports_chunks_estimates_drift_and_alarm_rows(files: Path) -> None:
    train = generate(4000, seed=5)
    model = LogisticRegression(max_iter=2000).fit(train[NUMERIC], train["default"])
    scored(generate(4000, seed=6), model).to_csv(files / "reference.csv", index=False)
    history = pd.concat([scored(generate(3000, seed=7), model),
                         scored(generate(3000, seed=8, concept=1.0, shift=0.4), model)])
    history.to_parquet(files / "history.parquet")
    code, out, _ = run("backtest", "--reference", str(files / "reference.csv"),
                       "--analysis", str(files / "history.parquet"), "--target", "default",
                       "--proba", "proba", "--pred", "pred", "--chunk-size", "1000",
                       "--json", "--html", str(files / "bt.html"))
    assert code == 0
    result = json.loads(out)
    assert result["format"] == "tether.backtest/1" and result["task"] == "binary_classification"
    assert [c["start_row"] for c in result["chunks"]] == list(range(0, 6000, 1000))
    first = result["chunks"][0]
    assert set(first) >= {"index", "start_row", "end_row", "rows", "labels", "realized",
                          "estimated", "drift", "alarms"}
    assert abs(first["estimated"]["accuracy"] - first["realized"]["accuracy"]) < 0.04
    assert not any(c["drift"]["drifted"] for c in result["chunks"][:3])
    assert all(c["drift"]["drifted"] for c in result["chunks"][3:])
    errors = [a for a in result["alarms"] if a["stream"] == "error"]
    assert errors and 3000 <= errors[0]["row"] < 4000 and errors[0]["chunk"] == 3
    assert (files / "bt.html").read_text().count("data:image/png") == 1


def test_backtest_as_text_names_the_metric_and_counts_alarms_in_words(
        files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    train = generate(4000, seed=5)
    model = LogisticRegression(max_iter=2000).fit(train[NUMERIC], train["default"])
    scored(generate(2000, seed=6), model).to_csv(files / "reference.csv", index=False)
    scored(generate(2000, seed=8, concept=1.0, shift=0.4), model).to_csv(
        files / "history.csv", index=False)
    code, out, _ = run("backtest", "--reference", str(files / "reference.csv"),
                       "--analysis", str(files / "history.csv"), "--target", "default",
                       "--proba", "proba", "--pred", "pred")
    assert code == 0, out
    assert "realized accuracy" in out and "estimated accuracy" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("2 chunk(s), 2 drifted; alarms: error "), summary
    assert "{" not in summary and ", estimate " in summary


def test_backtest_bad_input(files: Path) -> None:
    code, _, err = run("backtest", "--reference", str(files / "ref.csv"),
                       "--analysis", str(files / "same.parquet"), "--target", "nope")
    assert code == 2 and "'nope' is in neither file" in err
    frame = generate(500, seed=9).assign(p="high")
    frame.to_csv(files / "textproba.csv", index=False)
    code, _, err = run("backtest", "--reference", str(files / "textproba.csv"),
                       "--analysis", str(files / "textproba.csv"), "--proba", "p")
    assert code == 2 and "non-numeric" in err
    code, _, err = run("backtest", "--reference", str(files / "ref.csv"),
                       "--analysis", str(files / "same.parquet"), "--model", "/nowhere")
    assert code == 2 and "not a folder" in err


def test_monitor_command_on_a_project(project: Project, project_dir: Path,
                                     trained_template: Path) -> None:
    from tether.store import PredictionRecord

    use_trained(project_dir, trained_template)
    code, _, err = run("--config", str(project.config.path), "monitor")
    assert code == 2 and "no champion" in err
    version = 1
    project.registry.promote(version, "test")
    data = generate(300, seed=10)
    features = data.drop(columns="default")
    model = project.registry.load_model(version)
    assert model.predict_proba is not None
    scores = model.predict_proba(features)[:, 1]
    project.store.log_predictions([
        PredictionRecord(id=f"m{i}", model_name=project.model_name, model_version=version,
                         route="champion", features=row, prediction=float(scores[i] >= 0.5),
                         score=float(scores[i]), latency_ms=2.0, ts=100.0 + i)
        for i, row in enumerate(features.to_dict("records"))])
    project.store.add_feedback([(f"m{i}", float(y)) for i, y in enumerate(data["default"][:150])])
    code, out, _ = run("--config", str(project.config.path), "monitor", "--json")
    assert code == 0
    snap = json.loads(out)
    assert snap["version"] == version and snap["n_predictions"] == 300
    assert snap["n_labels"] == 150 and snap["label_coverage"] == 0.5
    assert snap["live"]["accuracy"]["n"] == 150 and snap["enough_data"]["drift"] is True
    code, out, _ = run("--config", str(project.config.path), "monitor", "--route", "canary")
    assert code == 0 and "0 prediction(s)" in out and "not enough data" in out
    assert np.isfinite(snap["estimated"]["accuracy"])


def test_backtest_with_a_registered_model_fills_proba_and_pred(
        project: Project, project_dir: Path, trained_template: Path, tmp_path: Path) -> None:
    use_trained(project_dir, trained_template)
    version = 2
    generate(2000, seed=11).to_csv(tmp_path / "reference.csv", index=False)
    generate(2000, seed=12, shift=0.9).to_csv(tmp_path / "analysis.csv", index=False)
    code, out, err = run("--config", str(project.config.path), "backtest",
                         "--reference", str(tmp_path / "reference.csv"),
                         "--analysis", str(tmp_path / "analysis.csv"), "--target", "default",
                         "--model", f"models:/{project.model_name}/{version}",
                         "--chunk-size", "1000", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["columns"]["features"] == [*NUMERIC, "home_ownership", "purpose"]
    for chunk in result["chunks"]:
        assert chunk["labels"] == 1000 and 0.5 < chunk["realized"]["accuracy"] < 1
        assert abs(chunk["estimated"]["accuracy"] - chunk["realized"]["accuracy"]) < 0.1
        assert chunk["drift"]["drifted"] is True and chunk["drift"]["prediction_drift"]


def test_backtest_regression_uses_residuals(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    x = rng.normal(size=6000)
    y = 2 * x + rng.normal(scale=0.5, size=6000)
    pred = 2 * x
    pred[4000:] += 1.5  # the model goes wrong at row 4000
    frame = pd.DataFrame({"x": x, "y": y, "pred": pred})
    frame.iloc[:2000].to_csv(tmp_path / "reference.csv", index=False)
    frame.iloc[2000:].to_csv(tmp_path / "analysis.csv", index=False)
    code, out, err = run("backtest", "--reference", str(tmp_path / "reference.csv"),
                         "--analysis", str(tmp_path / "analysis.csv"), "--target", "y",
                         "--pred", "pred", "--chunk-size", "1000", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["task"] == "regression" and result["chunks"][0]["estimated"] == {}
    assert result["chunks"][0]["realized"]["rmse"] == pytest.approx(0.5, abs=0.05)
    assert result["chunks"][3]["realized"]["rmse"] > 1.4
    alarms = [a["row"] for a in result["alarms"] if a["stream"] == "error"]
    assert alarms and 2000 <= alarms[0] < 2300
    assert result["columns"]["features"] == ["x"]


@pytest.mark.parametrize("command", ["drift", "backtest"])
def test_an_unwritable_report_is_refused_before_any_work(files: Path, command: str) -> None:
    second = "--current" if command == "drift" else "--analysis"
    for html, words in ((files / "no" / "such" / "r.html", "does not exist"),
                        (files, "is a folder")):
        # the data files do not exist either: the report path is checked first
        code, out, err = run(command, "--reference", str(files / "absent.csv"), second,
                             str(files / "absent.csv"), "--html", str(html), "--json")
        assert code == 2 and "--html" in err and words in err
        assert len(err.strip().splitlines()) == 1
        assert json.loads(out)["error"]["exit_code"] == 2


def test_backtest_of_a_registry_model_outside_a_project_says_what_it_needs(
        files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(files)
    monkeypatch.delenv("TETHER_CONFIG", raising=False)
    code, _, err = run("backtest", "--reference", "ref.csv", "--analysis", "shifted.csv",
                       "--target", "default", "--model", "models:/loans/1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--model models:/loans/1: a models:/ URI is read from the project's registry" in err
    assert "or give --model a local MLflow model folder" in err


def test_backtest_of_yes_no_labels_matches_the_same_labels_as_0_1(files: Path) -> None:
    train = generate(4000, seed=5)
    model = LogisticRegression(max_iter=2000).fit(train[NUMERIC], train["default"])
    results = {}
    for spelling in ("numbers", "words"):
        reference, history = scored(generate(3000, seed=6), model), \
            scored(generate(3000, seed=7, concept=1.0), model)
        if spelling == "words":  # "yes": the loan defaulted (the positive class)
            for frame in (reference, history):
                for column in ("default", "pred"):
                    frame[column] = np.where(frame[column] == 1, "yes", "no")
        reference.to_csv(files / f"{spelling}-ref.csv", index=False)
        history.to_csv(files / f"{spelling}-history.csv", index=False)
        code, out, err = run("backtest", "--reference", str(files / f"{spelling}-ref.csv"),
                             "--analysis", str(files / f"{spelling}-history.csv"),
                             "--target", "default", "--proba", "proba", "--pred", "pred",
                             "--chunk-size", "1000", "--json")
        assert code == 0, err
        results[spelling] = json.loads(out)
    numbers, words = results["numbers"], results["words"]
    assert words["task"] == "binary_classification"
    assert [c["realized"] for c in words["chunks"]] == [c["realized"] for c in numbers["chunks"]]
    assert words["chunks"][0]["realized"]["recall"] is not None
    assert [c["estimated"] for c in words["chunks"]] == [c["estimated"] for c in numbers["chunks"]]
    assert words["alarms"] == numbers["alarms"]
    three = generate(300, seed=9).assign(default=lambda f: np.array(["a", "b", "c"])[
        np.arange(len(f)) % 3])
    three.to_csv(files / "three.csv", index=False)
    code, _, err = run("backtest", "--reference", str(files / "three.csv"),
                       "--analysis", str(files / "three.csv"), "--target", "default")
    assert code == 2 and "3 distinct values" in err


def test_backtest_takes_the_projects_model_by_version_or_alias_and_no_other(
        project: Project, project_dir: Path, trained_template: Path, files: Path) -> None:
    use_trained(project_dir, trained_template)
    project.registry.promote(1, "test")
    generate(600, seed=11).to_csv(files / "reference.csv", index=False)
    generate(600, seed=12).to_csv(files / "history.csv", index=False)
    common = ["--config", str(project.config.path), "backtest", "--reference",
              str(files / "reference.csv"), "--analysis", str(files / "history.csv"),
              "--target", "default", "--chunk-size", "300", "--json"]
    answers = {}
    for uri in ("models:/loan-default/1", "models:/loan-default@champion"):
        code, out, err = run(*common, "--model", uri)
        assert code == 0, err
        answers[uri] = json.loads(out)["chunks"]
    assert answers["models:/loan-default/1"] == answers["models:/loan-default@champion"]
    assert answers["models:/loan-default/1"][0]["realized"]["accuracy"] > 0.6
    code, _, err = run(*common, "--model", "models:/other-model/1")
    assert code == 2 and "holds model 'loan-default', not 'other-model'" in err
    code, _, err = run(*common, "--model", "models:/loan-default@staging")
    assert code == 2 and "no version of 'loan-default' has alias 'staging'" in err
    assert "its aliases: champion" in err
    code, _, err = run(*common, "--model", "models:/loan-default")
    assert code == 2 and "expected models:/NAME/VERSION or models:/NAME@ALIAS" in err
