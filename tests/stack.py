"""Prometheus and Alertmanager as shipped (deploy/prometheus, deploy/alertmanager), run on
127.0.0.1 for the end-to-end tests: only the addresses, the credentials file and the time
constants (scrape every second, shorter `for:` and group waits) are rewritten."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
MISSING = ("needs Debian's prometheus and prometheus-alertmanager (.ci/run installs them)"
           if PROMETHEUS is None or ALERTMANAGER is None else None)




def prometheus_config(folder: Path, jobs: dict[str, list[str]], alertmanager_port: int,
                      alert_for: dict[str, str]) -> Path:
    """The shipped Prometheus config and rules: `jobs` (job name -> host:port targets)
    scraped every second, the alerts named in `alert_for` with that `for:`."""
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/tether.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in alert_for:
                rule["for"] = alert_for[rule["alert"]]  # the others keep their shipped `for:`
    (folder / "tether.rules.yml").write_text(yaml.safe_dump(rules))
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(folder / "tether.rules.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{alertmanager_port}"]
    config["scrape_configs"] = [
        {"job_name": job, "metrics_path": "/metrics", "scrape_timeout": "900ms",
         "static_configs": [{"targets": targets}]} for job, targets in jobs.items()]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alertmanager_config(folder: Path, hook_url: str, token: str) -> Path:
    """The shipped Alertmanager routing, its webhook pointed at `hook_url`."""
    config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    (folder / "token").write_text(token)
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = hook_url
            hook["http_config"]["authorization"]["credentials_file"] = str(folder / "token")
    for route in [config["route"], *config["route"].get("routes", [])]:
        route["group_wait"] = "0s"
        route["group_interval"] = "1s"
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_alertmanager(folder: Path, port: int, hook_url: str,
                       token: str) -> subprocess.Popen[bytes]:
    assert ALERTMANAGER is not None
    return subprocess.Popen(
        [ALERTMANAGER, f"--config.file={alertmanager_config(folder, hook_url, token)}",
         f"--storage.path={folder / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_prometheus(folder: Path, port: int, jobs: dict[str, list[str]],
                     alertmanager_port: int,
                     alert_for: dict[str, str]) -> subprocess.Popen[bytes]:
    assert PROMETHEUS is not None
    config = prometheus_config(folder, jobs, alertmanager_port, alert_for)
    return subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'prom-data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=5)
    return list(answer.json()["data"]["result"])
