"""Every PromQL expression tether ships (alert and recording rules, Grafana panels,
annotations and variables) names only metrics, and labels, from the contract in
`tether.metric_names`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.metric_names import METRICS, exported_series

promql = pytest.importorskip("promql_parser", reason="promql-parser (the dev extra) parses PromQL")

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules" / "tether.rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "tether.json"

SERIES = {series: name for name in METRICS for series in exported_series(name)}
# Labels Prometheus adds at scrape time, and the bucket label of histograms.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "component", "le"}
# Grafana's built-in range variables, replaced by a duration so the expression parses.
GRAFANA_RANGES = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
# Series Prometheus itself records for every target it scrapes.
SCRAPE_SERIES = {"up"}
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def recording_rules() -> dict[str, set[str]]:
    """Recorded series and the labels they keep (from their `by` clause)."""
    recorded: dict[str, set[str]] = {}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                labels: set[str] = set()

                def collect(node: Any, labels: set[str] = labels) -> bool:
                    if isinstance(node, promql.AggregateExpr) and node.modifier is not None:
                        labels.update(node.modifier.labels)
                    return True

                promql.walk(promql.parse(rule["expr"]), collect)
                recorded[rule["record"]] = labels - {"le"}
    return recorded


def rule_expressions() -> list[tuple[str, str]]:
    return [(rule.get("alert") or rule["record"], rule["expr"])
            for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for note in board["annotations"]["list"]:
        if "expr" in note:
            found.append((f"annotation {note['name']!r}", note["expr"]))
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            match = LABEL_VALUES.match(query)
            assert match, f"variable {variable['name']}: unsupported query {query!r}"
            found.append((f"variable {variable['name']!r}", match["selector"]))
    return found


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names it matches or groups on) for every selector in `expr`."""
    tree = promql.parse(GRAFANA_RANGES.sub("5m", expr))
    found: list[tuple[str, set[str]]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql.VectorSelector):
            names = {m.name for m in node.matchers.matchers}
            found.append((node.name or "", names))
        return True

    promql.walk(tree, visit)
    return found


def check(source: str, expr: str, recorded: dict[str, set[str]]) -> list[str]:
    problems = []
    for name, labels in selectors(expr):
        if name in recorded:
            allowed = recorded[name] | TARGET_LABELS
        elif name in SERIES:
            allowed = set(METRICS[SERIES[name]].labels) | TARGET_LABELS
        elif name in SCRAPE_SERIES:
            allowed = TARGET_LABELS
        else:
            problems.append(f"{source}: {name!r} is not a metric tether exports")
            continue
        problems += [f"{source}: {name} has no label {label!r}"
                     for label in sorted(labels - allowed)]
    return problems


EXPRESSIONS = rule_expressions() + dashboard_expressions()


def test_every_shipped_expression_parses_and_uses_the_contract() -> None:
    recorded = recording_rules()
    problems = [p for source, expr in EXPRESSIONS for p in check(source, expr, recorded)]
    assert problems == []


def test_every_panel_queries_something() -> None:
    board = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


def test_the_check_rejects_unknown_metrics_and_labels() -> None:
    recorded = recording_rules()
    assert check("x", 'rate(tether_predictions_total{route="canary"}[5m])', recorded) == []
    assert check("x", "rate(tether_requests_total[5m])", recorded) == [
        "x: 'tether_requests_total' is not a metric tether exports"]
    assert check("x", 'tether_drift_share_ratio{feature="age"}', recorded) == [
        "x: tether_drift_share_ratio has no label 'feature'"]
    # a histogram is queried through its series, never by its bare name
    assert check("x", "tether_predict_latency_seconds", recorded) != []
    assert check("x", "tether_predict_latency_seconds_bucket", recorded) == []
    # Prometheus's own `up` carries the target's labels only
    assert check("x", 'up{instance="a"} == 0', recorded) == []
    assert check("x", 'up{model="m"}', recorded) == ["x: up has no label 'model'"]


def test_dashboard_covers_what_the_issue_asks_for() -> None:
    used = {name for _, expr in dashboard_expressions() for name, _ in selectors(expr)}
    wanted = {
        "tether_predictions_total", "tether_predict_latency_seconds_bucket",
        "tether_live_metric", "tether_estimated_metric", "tether_label_coverage_ratio",
        "tether_drift_share_ratio", "tether_feature_drift_score",
        "tether_rollout_weight_ratio", "tether_promotions_total", "tether_rollbacks_total",
    }
    assert wanted <= used
    board = json.loads(DASHBOARD.read_text())
    notes = {n["name"]: n["expr"] for n in board["annotations"]["list"] if "expr" in n}
    assert "tether_promotions_total" in notes["Promotions"]
    assert "tether_rollbacks_total" in notes["Rollbacks"]


def test_dashboard_panels_do_not_overlap() -> None:
    board = json.loads(DASHBOARD.read_text())
    cells: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
