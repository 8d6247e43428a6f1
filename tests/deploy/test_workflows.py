"""The GitHub Actions workflows pass actionlint, react to the documented triggers, and
their steps, run locally as a runner would (env expressions, $GITHUB_OUTPUT, step and job
outputs), retrain, gate, promote and roll back a real registry."""

from __future__ import annotations

import json
import os
import re
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tether.cli import app
from tether.project import Project

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "deploy" / "github" / "workflows"


def load(name: str) -> dict[Any, Any]:
    spec = yaml.safe_load((WORKFLOWS / name).read_text())
    spec["on"] = spec.pop(True)  # YAML 1.1 reads the key `on` as True
    return dict(spec)


def test_actionlint_accepts_every_workflow(which) -> None:
    files = sorted(map(str, WORKFLOWS.glob("*.yml")))
    assert len(files) == 3
    result = subprocess.run([which("actionlint"), "-no-color", *files], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(which, tmp_path: Path) -> None:
    broken = (WORKFLOWS / "retrain.yml").read_text().replace(
        "needs: train-and-gate", "needs: train-and-gates")
    (tmp_path / "retrain.yml").write_text(broken)
    result = subprocess.run([which("actionlint"), "-no-color", str(tmp_path / "retrain.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "train-and-gates" in result.stdout


def test_triggers_are_the_documented_ones() -> None:
    retrain, rollback, ci = load("retrain.yml"), load("rollback.yml"), load("ci.yml")
    assert retrain["on"]["repository_dispatch"]["types"] == ["model-performance-drop"]
    assert retrain["on"]["schedule"][0]["cron"]
    assert "workflow_dispatch" in retrain["on"]
    assert rollback["on"]["repository_dispatch"]["types"] == ["performance-alert"]
    assert {"push", "pull_request"} <= set(ci["on"])
    outputs = retrain["jobs"]["train-and-gate"]["outputs"]
    assert outputs == {"run_id": "${{ steps.train.outputs.run_id }}",
                       "model_version": "${{ steps.train.outputs.model_version }}"}


def test_a_failing_gate_stops_the_deployment() -> None:
    """`tether gate` exits 1 when the challenger loses; nothing may swallow that."""
    retrain = load("retrain.yml")
    (gate,) = [s for s in retrain["jobs"]["train-and-gate"]["steps"] if s.get("id") == "gate"]
    assert gate["run"].startswith("tether gate ")
    assert "continue-on-error" not in gate and "if" not in gate
    deploy = retrain["jobs"]["deploy"]
    assert deploy["needs"] == "train-and-gate" and "if" not in deploy


def test_run_scripts_never_inline_expressions() -> None:
    """Untrusted payloads reach scripts only through env (no script injection)."""
    for path in WORKFLOWS.glob("*.yml"):
        for job in load(path.name)["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (path.name, step.get("name"))


class Runner:
    """Runs a workflow's `run:` steps locally, the way GitHub's runner feeds them."""

    def __init__(self, folder: Path, bin_dir: Path, event_name: str, event: dict[str, Any],
                 inputs: dict[str, str] | None = None) -> None:
        self.folder, self.bin_dir = folder, bin_dir
        self.context: dict[str, Any] = {
            "github": {"event_name": event_name, "event": event},
            "inputs": inputs or {}, "needs": {}, "steps": {}, "env": {},
            # the repository's secrets and variables, pointing at the test's own registry
            "secrets": {"MLFLOW_TRACKING_URI": f"sqlite:///{folder / '.tether' / 'mlflow.db'}"},
            "vars": {"TETHER_ARTIFACT_ROOT": (folder / ".tether" / "artifacts").as_uri()},
        }
        self.log: list[str] = []

    def value(self, operand: str) -> str:
        operand = operand.strip()
        if operand.startswith("'"):
            return operand.strip("'")
        node: Any = self.context
        for part in operand.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return "" if node is None else str(node)

    def evaluate(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            expr = match.group(1)
            if "==" in expr:
                left, right = expr.split("==")
                return "true" if self.value(left) == self.value(right) else "false"
            for operand in expr.split("||"):
                if found := self.value(operand):
                    return found
            return ""

        return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", one, str(text))

    def run_job(self, spec: dict[str, Any], name: str) -> bool:
        self.context["env"] = {k: self.evaluate(v) for k, v in spec.get("env", {}).items()}
        self.context["steps"] = {}
        job = spec["jobs"][name]
        for index, step in enumerate(job["steps"]):
            if "run" not in step or step["run"].startswith("python -m pip install"):
                continue  # actions and installs: tether is already on PATH here
            if "if" in step and self.evaluate("${{ " + step["if"] + " }}") != "true":
                continue
            env = {**self.context["env"],
                   **{k: self.evaluate(v) for k, v in step.get("env", {}).items()}}
            output = self.folder / f"output-{name}-{index}"
            output.touch()
            started = time.monotonic()
            result = subprocess.run(
                ["bash", "-e", "-c", step["run"]], cwd=self.folder, capture_output=True,
                text=True, timeout=180,
                env={**os.environ, **{k: v for k, v in env.items() if v},
                     "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
                     "GITHUB_OUTPUT": str(output), "GITHUB_RUN_ID": "4242",
                     "RUNNER_TEMP": str(self.folder)})
            self.log.append(f"{step.get('name')}: exit {result.returncode} "
                            f"in {time.monotonic() - started:.1f} s\n"
                            f"{result.stdout}{result.stderr}")
            if "id" in step:
                pairs = [line.split("=", 1) for line in output.read_text().splitlines() if line]
                self.context["steps"][step["id"]] = {"outputs": dict(pairs)}
            if result.returncode != 0:
                return False
        self.context["needs"][name] = {"outputs": {
            k: self.evaluate(v) for k, v in job.get("outputs", {}).items()}}
        return True

    def run_workflow(self, spec: dict[str, Any]) -> list[str]:
        """Jobs in order of `needs`; a failed job skips the jobs that need it."""
        done: list[str] = []
        for name, job in spec["jobs"].items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if all(n in done for n in needs) and self.run_job(spec, name):
                done.append(name)
        return done


def set_gate(project_dir: Path, **gate: Any) -> None:
    policy = yaml.safe_load((project_dir / "tether.yaml").read_text())
    # these tests are about the workflow, not speed: shared CI machines are slow
    policy["gate"].update({"max_latency_ms": 10_000, **gate})
    (project_dir / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


class _CliHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        request = json.loads(self.rfile.readline())
        result = CliRunner().invoke(app, request["argv"], env=request["env"])
        output = result.output
        if result.exception and not isinstance(result.exception, SystemExit):
            output += f"\n{result.exception!r}"
        self.wfile.write(json.dumps({"exit_code": result.exit_code,
                                     "output": output}).encode() + b"\n")


@pytest.fixture
def tether_bin(tmp_path: Path) -> Iterator[Path]:
    """`tether` on PATH for the workflow's bash steps: this checkout's CLI, run inside the
    test process (a fresh interpreter per step would import MLflow and open the registry
    again each time, ~10 s per step on a busy 2-core machine). The shim on PATH forwards
    argv and the step's environment over a Unix socket and exits with the CLI's code."""
    socket_path = tmp_path / "tether.sock"
    server = socketserver.UnixStreamServer(str(socket_path), _CliHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "tether"
    shim.write_text(f"""#!{sys.executable} -S
import json, os, socket, sys
env = {{k: v for k, v in os.environ.items()
       if k.startswith(("TETHER_", "GITHUB_", "MLFLOW_", "RUNNER_"))}}
with socket.socket(socket.AF_UNIX) as sock:
    sock.connect({str(socket_path)!r})
    sock.sendall(json.dumps({{"argv": sys.argv[1:], "env": env}}).encode() + b"\\n")
    reply = json.loads(sock.makefile().readline())
sys.stdout.write(reply["output"])
sys.exit(reply["exit_code"])
""")
    shim.chmod(0o755)
    try:
        yield bin_dir
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_workflows_retrain_gate_promote_and_roll_back_a_registry(project_dir: Path,
                                                                 tether_bin: Path) -> None:
    from tether.training import retrain

    set_gate(project_dir)
    project = Project.open(project_dir / "tether.yaml")
    first = retrain(project, "initial")
    project.registry.promote(first.version, "initial")

    # the shim passes the CLI's exit code and message through, as a runner would see them
    failed = subprocess.run([str(tether_bin / "tether"), "gate", "--version", "99"],
                            capture_output=True, text=True, timeout=60, cwd=project_dir)
    assert failed.returncode != 0 and "99" in failed.stdout

    # A performance-drop dispatch retrains, gates and promotes.
    dispatch = Runner(project_dir, tether_bin, "repository_dispatch", {
        "action": "model-performance-drop",
        "client_payload": {"model_name": "loan-default",
                           "trigger_reason": "live roc_auc below 0.70"}})
    assert dispatch.run_workflow(load("retrain.yml")) == ["train-and-gate", "deploy"], \
        "\n".join(dispatch.log)
    outputs = dispatch.context["needs"]["train-and-gate"]["outputs"]
    new = int(outputs["model_version"])
    assert new == first.version + 1 and outputs["run_id"]
    state = project.registry.state()
    assert (state.champion, state.previous) == (new, first.version)
    versions = {v.version: v for v in state.versions}
    assert versions[new].run_id == outputs["run_id"]
    assert "retrain workflow run 4242" in versions[new].reason

    # A performance alert rolls it back.
    alert = Runner(project_dir, tether_bin, "repository_dispatch", {
        "action": "performance-alert",
        "client_payload": {"model_name": "loan-default",
                           "trigger_reason": "canary error rate 5%"}})
    assert alert.run_workflow(load("rollback.yml")) == ["rollback"], "\n".join(alert.log)
    state = project.registry.state()
    assert state.champion == first.version
    versions = {v.version: v for v in state.versions}
    assert versions[new].state == "rolled_back"
    assert "canary error rate 5%" in versions[new].reason
    print("\n".join(line.splitlines()[0] for line in dispatch.log + alert.log))
