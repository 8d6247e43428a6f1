"""The scaled-out registry: a real `mlflow server` (the chart's command line) on a real
PostgreSQL with an S3-compatible artifact store (moto's server) on 127.0.0.1, and the
whole registry sequence through tether's CLI against it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tether.cli import app
from tether.example.loans import generate
from tether.registry import load_model_dir

POSTGRES_URL = os.environ.get("TETHER_TEST_MLFLOW_POSTGRES_URL")
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_URL, reason=(
        "TETHER_TEST_MLFLOW_POSTGRES_URL is not set: it names an empty PostgreSQL database "
        "for MLflow's backend store (.ci/run creates tether_mlflow and sets it)")),
]


def test_server_runs_the_chart_command_line(mlflow_server: dict[str, Any],
                                            chart_mlflow_command: list[str]) -> None:
    flags = {a for a in chart_mlflow_command if a.startswith("--")}
    assert flags >= {"--backend-store-uri", "--artifacts-destination", "--allowed-hosts"}
    assert {a for a in mlflow_server["command"] if a.startswith("--")} == flags
    assert str(POSTGRES_URL).startswith("postgresql+psycopg://")
    # DNS-rebinding protection is on: a Host header not in --allowed-hosts is refused
    refused = httpx.get(f"{mlflow_server['url']}/api/2.0/mlflow/experiments/search",
                        params={"max_results": 1}, headers={"Host": "evil.example.com"})
    assert refused.status_code in {400, 403}, refused.text


def test_registry_sequence_through_the_cli(mlflow_server: dict[str, Any], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           render_chart, find) -> None:
    for name in list(os.environ):
        if name.startswith(("TETHER_", "GITHUB_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env = {"TETHER_TRACKING_URI": mlflow_server["url"],
           "TETHER_ARTIFACT_ROOT": "mlflow-artifacts:/tether",
           "TETHER_HOME": str(tmp_path / ".tether"),
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    runner = CliRunner()

    def tether(*args: str) -> str:
        started = time.monotonic()
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        print(f"tether {' '.join(args)}: {time.monotonic() - started:.1f} s")
        assert result.exit_code == 0, f"tether {' '.join(args)}:\n{result.output}"
        return result.output

    tether("init")
    # The database outlives a run, so each run registers its own model name.
    model_name = f"loan-default-{uuid.uuid4().hex[:8]}"
    policy = yaml.safe_load((tmp_path / "tether.yaml").read_text())
    policy["model"]["name"] = model_name
    policy["data"]["params"] = {"n": 2000, "seed": 1}
    policy["trainer_params"] = {"max_iter": 60}
    policy["gate"]["max_latency_ms"] = 10_000  # this is about the registry, not speed
    (tmp_path / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))

    assert "MODEL_VERSION: 1" in tether("retrain", "--reason", "first")
    tether("gate")
    tether("promote")
    assert "MODEL_VERSION: 2" in tether("retrain", "--reason", "second")
    tether("gate")
    tether("promote")
    tether("rollback", "--reason", "v2 worse on live traffic")
    status = json.loads(tether("status", "--json"))
    assert status["model_name"] == model_name
    assert status["champion"] == 1
    states = {v["version"]: v["state"] for v in status["versions"]}
    assert states == {1: "champion", 2: "rolled_back"}

    # The artifacts went through the server's proxy into the S3 bucket.
    if mlflow_server["s3"]:
        import boto3

        s3 = boto3.client("s3", endpoint_url=mlflow_server["s3"], aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=mlflow_server["bucket"])["Contents"]]
        assert any(k.endswith("MLmodel") for k in keys)
        assert any(k.endswith("reference/holdout.parquet") for k in keys)

    # The pinned mode's init container, exactly as the chart renders it, fetches v1 ...
    docs = render_chart({"mlflow": {"trackingUri": mlflow_server["url"]},
                         "model": {"version": 1, "name": model_name}})
    init = find(docs, "Deployment", "tether-server")["spec"]["template"]["spec"][
        "initContainers"][0]
    script = init["args"][0].replace("/shared-data", str(tmp_path / "shared-data"))
    result = subprocess.run(
        [*init["command"], script], capture_output=True, text=True, timeout=120,
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server["url"],
             "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **{
                 k: v for k, v in env.items() if k.startswith("MLFLOW_")}})
    assert result.returncode == 0, result.stdout + result.stderr
    assert shlex.split(script)[-1].endswith("shared-data/model")
    # ... into a folder the server loads from MODEL_PATH.
    model = load_model_dir(str(tmp_path / "shared-data" / "model"), name=model_name, version=1)
    rows = generate(20, seed=3).drop(columns=["default"])
    assert len(model.predict(rows)) == 20
