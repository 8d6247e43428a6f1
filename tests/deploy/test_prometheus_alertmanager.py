"""Prometheus configs and rules pass promtool (syntax, and unit tests that fire every
alert); Alertmanager's config passes amtool and routes each action to tether."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTMANAGER = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
RULES = PROMETHEUS / "rules" / "tether.rules.yml"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd)


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-kubernetes.yml"])
def test_promtool_accepts_the_scrape_configs(which, config: str) -> None:
    result = run(which("promtool"), "check", "config", str(PROMETHEUS / config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_accepts_the_rules(which) -> None:
    result = run(which("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in yaml.safe_load(RULES.read_text())['groups'])}" \
        " rules found" in result.stdout


def test_promtool_unit_tests_fire_every_alert(which) -> None:
    tests = sorted((PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    result = run(which("promtool"), "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set()
    for path in tests:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check["exp_alerts"]:
                    tested.add(check["alertname"])
    assert tested == set(alerts()), "every alert has a unit test in which it fires"


def test_promtool_unit_tests_catch_a_wrong_threshold(which, tmp_path: Path) -> None:
    """The unit tests pin behaviour: moving the canary error threshold breaks them."""
    rules = RULES.read_text().replace(
        'tether:route_error_ratio:rate5m{route="canary"} > 0.01',
        'tether:route_error_ratio:rate5m{route="canary"} > 0.10')
    assert rules != RULES.read_text()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "tether.rules.yml").write_text(rules)
    (tmp_path / "tests").mkdir()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        (tmp_path / "tests" / path.name).write_text(path.read_text())
    result = run(which("promtool"), "test", "rules",
                 *map(str, sorted((tmp_path / "tests").glob("*.yml"))))
    assert result.returncode != 0
    assert "TetherCanaryErrorRateHigh" in result.stdout + result.stderr


def test_actions_are_only_retrain_or_rollback() -> None:
    actions = {name: rule["labels"].get("action") for name, rule in alerts().items()}
    assert set(actions.values()) <= {"retrain", "rollback", None}
    assert actions["TetherModelMetricBelowFloor"] == "retrain"
    assert actions["TetherDriftShareHigh"] == "retrain"
    assert actions["TetherCanaryErrorRateHigh"] == "rollback"
    assert actions["TetherCanaryLatencyHigh"] == "rollback"
    # these need a person, not a retrain
    assert actions["TetherServingVersionMismatch"] is None
    assert actions["TetherNoLabelsArriving"] is None


def test_chart_prometheus_rule_carries_the_same_rules(render_chart, find, which,
                                                      tmp_path: Path) -> None:
    docs = render_chart({"mlflow": {"trackingUri": "http://mlflow:5000"},
                         "prometheusRule": {"enabled": True}})
    spec = find(docs, "PrometheusRule")["spec"]
    assert spec == yaml.safe_load(RULES.read_text())
    rendered = tmp_path / "rendered.rules.yml"
    rendered.write_text(yaml.safe_dump(spec))
    result = run(which("promtool"), "check", "rules", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_the_alertmanager_config(which) -> None:
    result = run(which("amtool"), "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("labels", "receiver"), [
    (["action=retrain", "model=loan-default", "severity=warning"], "tether"),
    (["action=rollback", "model=loan-default", "severity=critical"], "tether"),
    (["alertname=TetherNoLabelsArriving", "model=loan-default", "severity=warning"], "people"),
    (["action=promote", "model=loan-default"], "people"),
])
def test_alertmanager_routes_actions_to_tether(which, labels: list[str], receiver: str) -> None:
    result = run(which("amtool"), "config", "routes", "test",
                 f"--config.file={ALERTMANAGER}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]


def test_alertmanager_posts_to_the_hook_with_a_bearer_token() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    (receiver,) = [r for r in config["receivers"] if r["name"] == "tether"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"].endswith("/hooks/alertmanager")
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    for route in config["route"]["routes"]:
        assert route["group_by"][0] == "action"
