"""`tether replay` from the command line on a multiclass history: the JSON document and
the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tether.cli import app
from tether.replay.datasets import shifted

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "tether" / "example" / "multiclass"


@pytest.fixture
def wine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    policy = yaml.safe_load((EXAMPLE / "tether.yaml").read_text())
    policy["model"]["name"] = "wine"
    # the first 60 days hold two of the three classes: no floor a first model could meet
    policy["gate"].update({"max_latency_ms": 5000, "max_latency_ratio": 100, "floors": {}})
    policy["monitoring"].update({"window_size": 60, "min_labels": 20,
                                 "interval_seconds": 7 * 86400})
    (tmp_path / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    (tmp_path / "train.py").write_text((EXAMPLE / "train.py").read_text())
    shifted("wine", seed=1).to_csv(tmp_path / "wine.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_multiclass_replay_prints_the_document_and_writes_the_report(wine: Path) -> None:
    result = CliRunner().invoke(app, [
        "replay", "--data", "wine.csv", "--target", "target", "--rate", "1/d",
        "--initial", "60", "--compare", "static", "--window", "30d", "--json",
        "--html", "report.html"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout[result.stdout.index("{"):])
    assert document["schema"] == "tether.replay/1"
    assert document["data"]["task"] == "multiclass_classification"
    assert (document["data"]["rows"], document["data"]["replayed_rows"]) == (178, 118)
    assert document["metric"]["name"] == "f1_macro"
    assert len(document["windows"]) == 4  # 118 days in windows of 30 days
    for policy in document["policies"]:
        assert policy["labels_sent"] == 118  # no delay: every label arrives
        assert sum(w["rows"] for w in policy["windows"]) == 118
        assert all(0.0 <= w["metric"] <= 1.0 for w in policy["windows"])
        assert policy["decisions"][:3] == [
            {**policy["decisions"][0], "kind": "trained", "version": 1},
            {**policy["decisions"][1], "kind": "gate_passed", "version": 1},
            {**policy["decisions"][2], "kind": "promoted", "version": 1}]
    report = (wine / "report.html").read_text()
    assert report.count("<img src='data:image/png;base64,") == 1
    assert "static: timeline" in report and "policy: timeline" in report
    assert "http" not in report  # nothing fetched


def test_decision_reasons_are_wrapped_whole_never_cut() -> None:
    import re

    from rich.console import Console

    from tether.cli.replay import decisions_table

    reason = ("gate passed: f1_macro 0.8123 vs champion 0.7981 (+0.0142 >= min_improvement "
              "0.0050); latency p95 1.31 ms vs 1.28 ms, ratio 1.02 <= 1.50; drift share 0.05 "
              "unchanged (median of 3 checks)")
    decisions = [{"ts": 0.0, "kind": "gate_passed", "version": 3, "reason": reason},
                 {"ts": 0.0, "kind": "trigger_skipped", "version": None, "reason": "busy"}]
    for width in (80, 100, 160):
        console = Console(width=width, record=True, color_system=None)
        console.print(decisions_table(decisions))
        text = console.export_text()
        assert "busy" not in text and "1 decisions" in text
        cells = [line.split("│")[-2].strip() for line in text.splitlines()
                 if line.count("│") == 5]
        assert " ".join(cell for cell in cells if cell) .endswith(reason), text
        for number in re.findall(r"\d+\.\d+", reason):
            assert number in text.replace("\n", " "), (number, text)


def test_each_comparison_line_says_which_baseline_the_policy_beat_or_lost_to() -> None:
    from tether.cli.replay import comparisons

    def policy(name: str, mean: float | None) -> dict[str, object]:
        return {"name": name, "mean_metric": mean, "retrains": 2, "promotions": 1,
                "labels_used": 1500}

    document = {"metric": {"name": "log_loss", "bigger_is_better": False},
                "policies": [policy("policy", 0.40), policy("static", 0.45),
                             policy("periodic:1y", 0.38), policy("periodic:30d", 0.40),
                             policy("periodic:1w", None)]}
    assert [line.split("; ")[0] for line in comparisons(document)] == [
        "policy vs static: mean log_loss 0.4000 vs 0.4500 (-0.0500, better than static)",
        "policy vs periodic:1y: mean log_loss 0.4000 vs 0.3800 (+0.0200, worse than "
        "periodic:1y)",
        "policy vs periodic:30d: mean log_loss 0.4000 vs 0.4000 (+0.0000, the same as "
        "periodic:30d)"]
