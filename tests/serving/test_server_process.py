"""`tether serve`, `up` and `controller` as the processes users run: idle keep-alive
connections outlive load balancers' idle timeouts, a model folder serves without a
policy file, and `--log-format json` makes every line of every process JSON."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.serving.conftest import fit_lr, records, saved_model
from tests.serving.processes import Tether
from tether.net import LOOPBACK
from tether.project import Project

pytestmark = pytest.mark.slow

UVICORN_DEFAULT_KEEP_ALIVE = 5.0


def http_request(sock: socket.socket, body: bytes) -> bytes:
    """One POST /predict on an open keep-alive connection; the raw answer ('' if the
    server had closed the connection)."""
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: tether\r\nContent-Type: application/json"
                 b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head


def test_an_idle_keep_alive_connection_is_kept_past_uvicorns_5_seconds(
        tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    """A pooled client (or a load balancer with a 60 s idle timeout) reuses a connection
    after some idle seconds: the server must not have closed it (case
    keepalive-5s-drops-pooled-posts). Also: a model folder without any policy file."""
    features, _ = cancer
    folder = saved_model(tmp_path, fit_lr(cancer), features)
    work = tmp_path / "work"
    work.mkdir()
    server = Tether(work, "--model-path", str(folder))
    body = json.dumps({"dataframe_records": records(features, 1)}).encode()
    try:
        server.wait_ready()
        with socket.create_connection((LOOPBACK, server.port), timeout=30) as sock:
            assert http_request(sock, body).startswith(b"HTTP/1.1 200")
            time.sleep(UVICORN_DEFAULT_KEEP_ALIVE + 1.5)
            again = http_request(sock, body)
        assert again.startswith(b"HTTP/1.1 200"), f"connection closed after idle: {again!r}"
        logged = httpx.get(f"{server.url}/version", timeout=10).json()
        assert logged["model"] == "model" and logged["source"].startswith("model folder")
    finally:
        server.stop()
    # the folder's predictions went to the store in the working folder's .tether
    assert (work / ".tether" / "store.db").exists()
    assert not (work / "tether.yaml").exists()


@pytest.mark.parametrize("command", ["serve", "up", "controller"])
def test_every_process_logs_json_lines_with_an_access_log(
        project: Project, versions: dict[str, int], cancer: tuple[pd.DataFrame, pd.Series],
        command: str) -> None:
    folder = project.config.path.parent
    server = Tether(folder, "--log-format", "json", command=command)
    try:
        if command == "controller":
            server.listening()
            path, answer = "/metrics", httpx.get(f"{server.url}/metrics", timeout=10)
        else:
            server.wait_ready()
            path = "/predict"
            answer = httpx.post(f"{server.url}/predict", timeout=10,
                                json={"dataframe_records": records(cancer[0], 1)})
        assert answer.status_code == 200
        time.sleep(0.5)
    finally:
        server.stop()
    lines = server.json_lines()  # every line parses as JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "tether.access"
              and line["path"] == path]
    assert access, lines
    assert access[0]["status"] == 200 and access[0]["method"] in ("GET", "POST")
    if command != "controller":
        assert (access[0]["model_version"], access[0]["route"]) == (versions["a"], "champion")
    text = server.log.read_text()
    assert "mean radius" not in text and str(cancer[0].iloc[0, 0]) not in text
