"""The one metric table: every metric agrees with sklearn, with itself across sources
(rows, counts, histograms), with sklearn's scorers on its direction, and is undefined
exactly where the data does not define it."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from tether.scoring import (
    METRICS,
    Confusion,
    ConfusionMatrix,
    ErrorSums,
    Metric,
    Source,
    Task,
    Undefined,
    evaluate,
    metric,
    metrics_of,
)

ALL = [m for task in Task for m in metrics_of(task)]
SCORER = {"log_loss": "neg_log_loss", "rmse": "neg_root_mean_squared_error",
          "mae": "neg_mean_absolute_error"}
CLASSES = ["setosa", "versicolor", "virginica"]


def rows(task: Task, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    if task is Task.REGRESSION:
        truth = rng.normal(50, 10, n)
        return truth, truth + rng.normal(0, 5, n), None
    if task is Task.BINARY:
        score = rng.random(n)
        truth = (rng.random(n) < score).astype(float)
        return truth, (score >= 0.5).astype(float), score
    proba = rng.dirichlet([1, 1, 1], n)
    truth = np.array([CLASSES[rng.choice(3, p=p)] for p in proba])
    return truth, np.array(CLASSES)[proba.argmax(axis=1)], proba


def sklearn_value(m: Metric, truth: np.ndarray, pred: np.ndarray,
                  score: np.ndarray | None) -> float:
    name = m.name
    if m.task is Task.REGRESSION:
        return {"rmse": lambda: math.sqrt(skm.mean_squared_error(truth, pred)),
                "mae": lambda: skm.mean_absolute_error(truth, pred),
                "r2": lambda: skm.r2_score(truth, pred)}[name]()
    if name == "accuracy":
        return skm.accuracy_score(truth, pred)
    if name == "roc_auc":
        return skm.roc_auc_score(truth, score)
    if name == "roc_auc_ovr":
        return skm.roc_auc_score(truth, score, multi_class="ovr", labels=CLASSES)
    if name == "log_loss":
        return skm.log_loss(truth, score, labels=CLASSES if m.task is Task.MULTICLASS
                            else [0, 1])
    figure, _, average = name.partition("_")
    function = {"precision": skm.precision_score, "recall": skm.recall_score,
                "f1": skm.f1_score}[figure]
    return function(truth, pred, average=average or "binary", zero_division=np.nan)


@pytest.mark.parametrize("m", ALL, ids=repr)
def test_every_metric_agrees_with_sklearn_and_its_range(m: Metric) -> None:
    for seed in range(3):
        truth, pred, score = rows(m.task, 400, seed)
        value = m.from_rows(truth, pred, score, classes=CLASSES)
        assert value == pytest.approx(sklearn_value(m, truth, pred, score), rel=1e-9)
        assert m.lowest <= value <= m.highest


@pytest.mark.parametrize("m", ALL, ids=repr)
def test_direction_agrees_with_sklearn_scorers(m: Metric) -> None:
    scorer = skm.get_scorer(SCORER.get(m.name, m.name))
    assert m.bigger_is_better is (scorer._sign > 0)
    assert m.improvement(2.0, 1.0) > 0 if m.bigger_is_better else m.improvement(1.0, 2.0) > 0


@pytest.mark.parametrize("m", [m for m in ALL if Source.COUNTS in m.sources], ids=repr)
def test_counts_give_what_rows_give(m: Metric) -> None:
    truth, pred, score = rows(m.task, 500, 4)
    counts = {Task.BINARY: lambda: Confusion.of_labels(truth, pred),
              Task.MULTICLASS: lambda: ConfusionMatrix.of_labels(truth, pred, CLASSES),
              Task.REGRESSION: lambda: ErrorSums.of_labels(truth, pred)}[m.task]()
    assert m.from_counts(counts) == pytest.approx(m.from_rows(truth, pred, score,
                                                              classes=CLASSES))


def test_roc_auc_from_a_histogram_is_within_the_ties_of_the_exact_value() -> None:
    truth, _, score = rows(Task.BINARY, 5000, 5)
    assert score is not None
    bins = np.minimum((score * 100).astype(int), 99)
    positives = {int(b): float(np.sum((bins == b) & (truth == 1))) for b in np.unique(bins)}
    negatives = {int(b): float(np.sum((bins == b) & (truth == 0))) for b in np.unique(bins)}
    auc = metric(Task.BINARY, "roc_auc")
    assert auc.from_histogram(positives, negatives) == pytest.approx(
        skm.roc_auc_score(truth, score), abs=0.005)
    with pytest.raises(Undefined, match="one class only"):
        auc.from_histogram(positives, {})


UNDEFINED = [
    (Task.BINARY, "recall", [0, 0, 0, 0], [1, 0, 1, 0], None, "no positive labels"),
    (Task.BINARY, "precision", [1, 0, 1, 0], [0, 0, 0, 0], None, "no predicted positives"),
    (Task.BINARY, "f1", [0, 0, 0], [0, 0, 0], None, "no positive labels and no predicted"),
    (Task.BINARY, "accuracy", [], [], None, "no labeled rows"),
    (Task.BINARY, "roc_auc", [1, 1, 1], [1, 1, 0], [0.9, 0.8, 0.3], "one class only (all 1)"),
    (Task.BINARY, "roc_auc", [1, 0, 1], [1, 0, 0], None, "needs predicted probabilities"),
    (Task.BINARY, "log_loss", [], [], [], "no labeled rows"),
    (Task.REGRESSION, "r2", [3.0, 3.0, 3.0], [1.0, 2.0, 3.0], None, "do not vary"),
    (Task.REGRESSION, "r2", [3.0], [1.0], None, "needs at least 2"),
    (Task.REGRESSION, "rmse", [], [], None, "no labeled rows"),
    (Task.MULTICLASS, "roc_auc_ovr", ["setosa", "versicolor"], ["setosa", "setosa"],
     [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1]], "['virginica'] have no labeled row"),
    (Task.MULTICLASS, "log_loss", ["daisy"], ["setosa"], [[0.8, 0.1, 0.1]],
     "['daisy'] are not classes of the model"),
    (Task.MULTICLASS, "precision_macro", [], [], None, "no labeled rows"),
]


@pytest.mark.parametrize(("task", "name", "truth", "pred", "score", "reason"), UNDEFINED)
def test_undefined_is_a_property_of_the_metric(task: Task, name: str, truth: list,
                                               pred: list, score: list | None,
                                               reason: str) -> None:
    chosen = metric(task, name)
    args = (np.asarray(truth), np.asarray(pred),
            None if score is None else np.asarray(score, dtype=float))
    with pytest.raises(Undefined, match=reason.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        chosen.from_rows(*args, classes=CLASSES)
    found = evaluate(task, *args, classes=CLASSES, names=[name])
    assert found[name] is None and reason in found.reasons[name]
    json.dumps(found)  # null, never NaN, in JSON


def test_multiclass_averages_leave_out_classes_that_do_not_define_them() -> None:
    """As sklearn does with zero_division=np.nan: a class never predicted has no
    precision, and the macro average is over the classes that have one."""
    truth = np.array(["a", "a", "b", "b", "c"])
    pred = np.array(["a", "b", "b", "b", "b"])
    for average in ("macro", "weighted"):
        for figure, function in (("precision", skm.precision_score),
                                 ("recall", skm.recall_score), ("f1", skm.f1_score)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = function(truth, pred, average=average, zero_division=np.nan)
            assert metric(Task.MULTICLASS, f"{figure}_{average}").from_rows(
                truth, pred, classes=["a", "b", "c", "d"]) == pytest.approx(expected)


def test_the_table_names_each_metric_once_per_task_with_a_description() -> None:
    for task, table in METRICS.items():
        assert all(m.task is task and m.name == name and m.description
                   for name, m in table.items())
    assert metric("multiclass_classification", "f1_macro").name == "f1_macro"
    with pytest.raises(ValueError, match="'rmse' is not a metric of binary_classification"):
        metric("binary_classification", "rmse")


def test_messages_speak_in_the_metric_direction() -> None:
    rmse, auc = metric(Task.REGRESSION, "rmse"), metric(Task.BINARY, "roc_auc")
    assert rmse.change(56.1, 54.2) == "rmse 56.1 -> 54.2, 1.9 better"
    assert rmse.change(54.2, 56.1) == "rmse 54.2 -> 56.1, 1.9 worse"
    assert auc.change(0.8, 0.81) == "roc_auc 0.8000 -> 0.8100, 0.0100 better"
    assert rmse.against(58.0, 0.7) == "rmse 58 worse than ceiling 0.7"
    assert auc.against(0.75, 0.7) == "roc_auc 0.7500 above floor 0.7000"
    assert rmse.worse(58.0, 0.7) and not auc.worse(0.75, 0.7)


def test_docs_list_every_metric_with_its_direction() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    rows = [line.split("|")[1:5] for line in page.splitlines()
            if line.startswith("| binary_") or line.startswith("| multiclass_")
            or line.startswith("| regression |")]
    listed = {(task.strip(), name.strip(" `"), direction.strip())
              for task, names, direction, _ in rows for name in names.split(",")}
    assert listed == {(m.task.value, m.name, m.direction.value) for m in ALL}
