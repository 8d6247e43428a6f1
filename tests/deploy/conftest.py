"""Fixtures for the deployment assets: paths, the rendered Helm chart, tools on PATH, and
a real `mlflow server` run with the chart's command line (PostgreSQL, moto's S3)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.net import free_port, wait_http

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "tether"


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that rejects duplicate keys (PyYAML keeps the last one silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_strict(text: str) -> list[Any]:
    """Every document in `text`, empty ones dropped; duplicate keys are an error."""
    return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]


def tool(name: str) -> str:
    """The path of a command-line tool (the venv's bin first), or skip with the reason."""
    venv_bin = Path(sys.executable).parent
    found = shutil.which(name, path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return found


Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def render_chart() -> Render:
    """Render deploy/helm/tether offline with the Helm SDK; returns the manifests."""
    helm = pytest.importorskip("helm_python",
                               reason="helm-python-sdk (the dev extra) renders the chart")
    chart = helm.Chart.load(str(CHART))

    def render(values: dict[str, Any] | None = None, *, name: str = "tether",
               namespace: str = "tether") -> list[dict[str, Any]]:
        files = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
        docs: list[dict[str, Any]] = []
        for path, text in sorted(files.items()):
            if path.endswith(".yaml"):
                docs.extend(load_strict(text))
        return docs

    return render


def _find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind
               and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, got {len(matches)}"
    return matches[0]


@pytest.fixture(scope="session")
def find() -> Callable[..., dict[str, Any]]:
    """`find(docs, kind, name=None)`: the one manifest of that kind (and name)."""
    return _find


@pytest.fixture(scope="session")
def strict_yaml() -> Callable[[str], list[Any]]:
    """`strict_yaml(text)`: all YAML documents, duplicate keys rejected."""
    return load_strict


@pytest.fixture(scope="session")
def which() -> Callable[[str], str]:
    """`which(name)`: the tool's path (venv bin first), or skip the test naming what's missing."""
    return tool


# A real MLflow server, shared by the tests that need one ----------------------------------

BIN = Path(sys.executable).parent
# read once, at import: some fixtures clear TETHER_* for the rest of the session
MLFLOW_POSTGRES_URL = os.environ.get("TETHER_TEST_MLFLOW_POSTGRES_URL")
BUCKET = "tether-artifacts"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_DEFAULT_REGION": "us-east-1"}


def _answers(status: int) -> bool:
    return status < 500


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
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
        wait_http(endpoint, timeout=30, process=process, log=log, ready=_answers)
        boto3.client("s3", endpoint_url=endpoint, **{
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
            "region_name": "us-east-1"}).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def chart_mlflow_command(render_chart: Render) -> list[str]:
    """The bundled MLflow server's command line, as the chart renders it."""
    docs = render_chart({"mlflowServer": {"enabled": True}})
    (container,) = _find(docs, "Deployment", "tether-mlflow")["spec"]["template"]["spec"][
        "containers"]
    return [*container["command"], *container["args"]]


def localize(command: list[str], **flags: str) -> list[str]:
    """The chart's command line with some flag values replaced for 127.0.0.1."""
    out = list(command)
    for flag, value in flags.items():
        option = "--" + flag.replace("_", "-")
        out[out.index(option) + 1] = value
    return out


@contextmanager
def run_mlflow_server(chart_command: list[str], s3_endpoint: str | None, folder: Path, *,
                      port: int | None = None) -> Iterator[dict[str, Any]]:
    """`mlflow server` with the chart's flags on 127.0.0.1: the backend store on the
    PostgreSQL database TETHER_TEST_MLFLOW_POSTGRES_URL names, artifacts in moto's S3
    (a local folder without moto), proxied by the server (`mlflow-artifacts:/`).

    It runs in a process group of its own (the answer's "process"), so a test can freeze
    or stop the server with its workers (`os.killpg`)."""
    postgres_url = MLFLOW_POSTGRES_URL
    if not postgres_url:
        pytest.skip("TETHER_TEST_MLFLOW_POSTGRES_URL is not set: it names a PostgreSQL "
                    "database for MLflow's backend store (.ci/run creates tether_mlflow)")
    port = port or free_port()
    if s3_endpoint:
        destination = f"s3://{BUCKET}/artifacts"
        env = {**S3_ENV, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    else:
        destination = (folder / "artifacts").as_uri()
        env = {}
    command = localize(
        chart_command, backend_store_uri=postgres_url, host="127.0.0.1",
        port=str(port), workers="1", artifacts_destination=destination,
        allowed_hosts=f"127.0.0.1:{port},localhost:{port}")
    command[0] = str(BIN / "mlflow")
    log = folder / "mlflow.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True,
            env={**os.environ, **env, "MLFLOW_DISABLE_TELEMETRY": "true",
                 "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    try:
        url = f"http://127.0.0.1:{port}"
        # a fresh database is migrated on first start (about 20 s)
        wait_http(f"{url}/health", timeout=120, process=process, log=log, ready=_answers)
        yield {"url": url, "port": port, "s3": s3_endpoint, "bucket": BUCKET, "log": log,
               "command": command, "process": process}
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in a session of its own, and its workers."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGCONT)
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def mlflow_server(chart_mlflow_command: list[str], s3_endpoint: str | None,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The MLflow server of `run_mlflow_server`, shared by the session's tests."""
    with run_mlflow_server(chart_mlflow_command, s3_endpoint,
                           tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server
