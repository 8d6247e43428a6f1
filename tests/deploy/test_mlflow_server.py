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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tether.cli import app
from tether.example.loans import generate
from tether.net import free_port, wait_http
from tether.registry import load_model_dir

POSTGRES_URL = os.environ.get("TETHER_TEST_MLFLOW_POSTGRES_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(not POSTGRES_URL, reason=(
        "TETHER_TEST_MLFLOW_POSTGRES_URL is not set: it names an empty PostgreSQL database "
        "for MLflow's backend store (.ci/run creates tether_mlflow and sets it)")),
]

BIN = Path(sys.executable).parent
BUCKET = "tether-artifacts"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1"}


def answers(status: int) -> bool:
    return status < 500


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """moto's S3-compatible server with a bucket; None when moto is not installed."""
    moto = BIN / "moto_server"
    if not moto.exists():
        yield None
        return
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(endpoint, timeout=30, process=process, log=log, ready=answers)
        boto3.client("s3", endpoint_url=endpoint, **{
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
            "region_name": "us-east-1"}).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop(process)


@pytest.fixture(scope="module")
def chart_mlflow_command(render_chart, find) -> list[str]:
    docs = render_chart({"mlflowServer": {"enabled": True}})
    (container,) = find(docs, "Deployment", "tether-mlflow")["spec"]["template"]["spec"][
        "containers"]
    return [*container["command"], *container["args"]]


def localize(command: list[str], **flags: str) -> list[str]:
    """The chart's command line with some flag values replaced for 127.0.0.1."""
    out = list(command)
    for flag, value in flags.items():
        option = "--" + flag.replace("_", "-")
        out[out.index(option) + 1] = value
    return out


@pytest.fixture(scope="module")
def mlflow_server(chart_mlflow_command: list[str], s3_endpoint: str | None,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    if s3_endpoint:
        destination = f"s3://{BUCKET}/artifacts"
        env = {**S3_ENV, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    else:
        destination = (folder / "artifacts").as_uri()
        env = {}
    command = localize(
        chart_mlflow_command, backend_store_uri=str(POSTGRES_URL), host="127.0.0.1",
        port=str(port), workers="1", artifacts_destination=destination,
        allowed_hosts=f"127.0.0.1:{port},localhost:{port}")
    command[0] = str(BIN / "mlflow")
    log = folder / "mlflow.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=folder,
            env={**os.environ, **env, "MLFLOW_DISABLE_TELEMETRY": "true",
                 "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    try:
        url = f"http://127.0.0.1:{port}"
        # a fresh database is migrated on first start (about 20 s)
        wait_http(f"{url}/health", timeout=120, process=process, log=log, ready=answers)
        yield {"url": url, "port": port, "s3": s3_endpoint, "log": log, "command": command}
    finally:
        stop(process)


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
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
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
