"""The Dockerfile and the compose stack: what can be checked without a Docker engine.
The Dockerfile's commands are the ones the README and the chart use, its healthcheck
works against a real HTTP server, and the compose file is valid and names only the
images and ports the README describes."""

from __future__ import annotations

import http.server
import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "deploy" / "docker-compose.yml"
README = (REPO / "README.md").read_text()
VALUES = yaml.safe_load((REPO / "deploy" / "helm" / "tether" / "values.yaml").read_text())
CHART = yaml.safe_load((REPO / "deploy" / "helm" / "tether" / "Chart.yaml").read_text())
CONTRACT_COMMANDS = {"serve", "controller", "up"}


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def last(keyword: str) -> str:
    return [rest for k, rest in instructions() if k == keyword][-1]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    # a line ending in a backslash continues on the next, as in a shell
    return [shlex.split(line) for block in blocks
            for line in re.sub(r"\\\n\s*", " ", block).splitlines() if line]


def test_image_is_slim_and_runs_as_the_charts_non_root_user() -> None:
    bases = {rest.split()[0] for k, rest in instructions() if k == "FROM"}
    # one base for both stages (the venv is copied between them), slim unless chosen
    assert bases == {"${BASE_IMAGE}"}
    (default,) = [rest.split("=", 1)[1] for k, rest in instructions()
                  if k == "ARG" and rest.startswith("BASE_IMAGE=")]
    assert default.endswith("-slim")
    user = last("USER").split(":")[0]
    assert user.isdigit() and int(user) != 0
    assert int(user) == VALUES["securityContext"]["runAsUser"]


def test_entry_point_is_tether_serve_on_the_exposed_port() -> None:
    entry = json.loads(last("ENTRYPOINT"))
    command = json.loads(last("CMD"))
    assert entry == ["tether"] and command[0] == "serve"
    port = command[command.index("--port") + 1]
    assert last("EXPOSE") == port == str(VALUES["server"]["port"])
    assert command[command.index("--host") + 1] == "0.0.0.0"


def test_installed_extras_exist() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    (install,) = [rest for k, rest in instructions() if k == "RUN" and "pip install" in rest
                  and "[" in rest]
    wanted = re.search(r"\.\[([\w,]+)\]", install)
    assert wanted and set(wanted.group(1).split(",")) <= set(extras)
    for keyword, rest in instructions():
        if keyword == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert (REPO / source).exists(), source


def test_readme_builds_and_runs_the_image_the_chart_and_compose_use() -> None:
    commands = readme_commands()
    (build,) = [c for c in commands if c[:2] == ["docker", "build"]]
    tag = build[build.index("-t") + 1]
    assert build[-1] == "."
    assert tag == f"{VALUES['image']['repository']}:{CHART['appVersion']}"
    (run,) = [c for c in commands if c[:2] == ["docker", "run"]]
    assert run[-1] == tag
    assert run[run.index("-p") + 1] == f"{last('EXPOSE')}:{last('EXPOSE')}"
    mount = run[run.index("-v") + 1]
    assert mount.endswith(":" + last("WORKDIR"))
    for name in ("tether", "mlflow"):
        assert compose()["services"][name]["image"] == tag


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[type[_Health], int]]:
    handler = type("Health", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, server.server_address[1]
    finally:
        server.shutdown()


def test_healthcheck_passes_on_200_and_fails_otherwise(health_server) -> None:
    handler, port = health_server
    check = json.loads(last("HEALTHCHECK").split("CMD", 1)[1])
    assert check[0] == "python"
    assert "http://127.0.0.1:8000/health" in check[-1]
    probe = [sys.executable, *check[1:-1],
             check[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")]
    assert subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    handler.status = 503
    assert subprocess.run(probe, capture_output=True, timeout=30).returncode != 0


def test_compose_file_is_valid(which) -> None:
    result = subprocess.run([which("docker-compose"), "-f", str(COMPOSE), "config", "-q"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_names_only_images_and_ports_the_readme_describes() -> None:
    services = compose()["services"]
    assert set(services) == {"tether", "mlflow", "postgres", "prometheus", "alertmanager",
                             "grafana"}
    rows = {line.split("|")[1].strip(): line for line in README.splitlines()
            if line.startswith("| ") and line.count("|") == 5}
    for name, service in services.items():
        assert name in rows, f"README's table has no row for {name}"
        assert f"`{service['image']}`" in rows[name]
        for mapping in service.get("ports", []):
            host, container = str(mapping).split(":")
            assert host == container and f"| {host} |" in rows[name]
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"


def test_compose_wires_the_services_to_each_other() -> None:
    services = compose()["services"]
    tether = services["tether"]
    assert tether["command"][0] in CONTRACT_COMMANDS
    port = tether["command"][tether["command"].index("--port") + 1]
    assert f"{port}:{port}" in tether["ports"]
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}
    assert f"tether:{port}" in targets
    (alertmanagers,) = prometheus["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    alertmanager = yaml.safe_load(
        (REPO / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    hook = alertmanager["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == f"http://tether:{port}/hooks/alertmanager"
    # the token Alertmanager sends is the one tether expects by default
    token_file = hook["http_config"]["authorization"]["credentials_file"]
    (mount,) = [v for v in services["alertmanager"]["volumes"] if v.endswith(token_file + ":ro")]
    token = (COMPOSE.parent / mount.split(":")[0]).read_text().strip()
    assert f"${{TETHER_ALERTMANAGER_TOKEN:-{token}}}" == tether["environment"][
        "TETHER_ALERTMANAGER_TOKEN"]
    assert tether["environment"]["TETHER_TRACKING_URI"] == "http://mlflow:5000"
    mlflow = services["mlflow"]["command"]
    assert mlflow[mlflow.index("--port") + 1] == "5000"
    assert "mlflow:5000" in mlflow[mlflow.index("--allowed-hosts") + 1].split(",")
    assert mlflow[mlflow.index("--backend-store-uri") + 1].startswith("postgresql+psycopg://")
    init_sql = (REPO / "deploy" / "postgres" / "init.sql").read_text()
    assert mlflow[mlflow.index("--backend-store-uri") + 1].rsplit("/", 1)[1] in init_sql


def test_flower_image_runs_the_pinned_flower_as_the_charts_user() -> None:
    """deploy/flower/Dockerfile: the SuperLink and SuperNode image the chart names."""
    text = (REPO / "deploy" / "flower" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, flags=re.M)
    assert re.search(r"^USER 10001:10001$", text, flags=re.M)
    assert VALUES["securityContext"]["runAsUser"] == 10001
    requirements = (REPO / "deploy" / "flower" / "requirements.txt").read_text()
    pinned = re.search(r"^flwr==([\d.]+)$", requirements, flags=re.M)
    assert pinned and pinned.group(1) == VALUES["flower"]["image"]["tag"]
    # the tether image's optional Flower environment: the same pins, where the chart
    # looks for `flwr`
    optional = re.search(r'/opt/flower/bin/pip install ((?:"[^"]+" ?)+)', DOCKERFILE.read_text())
    assert optional is not None
    pins = {line.strip() for line in requirements.splitlines()
            if line.strip() and not line.startswith("#")}
    assert set(re.findall(r'"([^"]+)"', optional.group(1))) == pins
    assert VALUES["flower"]["bin"] == "/opt/flower/bin"
