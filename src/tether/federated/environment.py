"""The Flower environment: where its commands live and how tether calls them.

Flower pins older versions of packages tether's server needs (starlette, uvicorn,
protobuf, packaging), so it lives in its own virtualenv (`make flower-env` creates
`.venv-flower`). tether never imports `flwr`: it runs Flower's commands (`flwr run`,
`flwr ls`, `flwr stop`, `flower-superlink`, `flower-supernode`) from that environment.

Where: `$TETHER_FLOWER_BIN` (the folder holding `flwr`), else `.venv-flower/bin` in the
project folder or the current directory, else `flwr` on `PATH`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.config import FederatedPolicy
from tether.errors import ConfigError, TrainingError

__all__ = ["CONNECTION", "Flower", "RunStatus", "find_flower_bin", "flower_environment"]

CONNECTION = "tether"
COMMAND_TIMEOUT = 60.0
ENV_DIR = ".venv-flower"


def find_flower_bin(project_dir: Path | None = None,
                    environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding Flower's commands; ConfigError naming what was tried."""
    env = os.environ if environ is None else environ
    tried = []
    if env.get("TETHER_FLOWER_BIN"):
        folder = Path(env["TETHER_FLOWER_BIN"]).expanduser()
        if (folder / "flwr").is_file():
            return folder.resolve()
        raise ConfigError(f"TETHER_FLOWER_BIN={folder}: no `flwr` there; run `make flower-env` "
                          "or point it at the bin folder of a virtualenv with flwr installed")
    for base in (project_dir, Path.cwd()):
        if base is not None:
            candidate = base / ENV_DIR / "bin"
            tried.append(str(candidate))
            if (candidate / "flwr").is_file():
                return candidate.resolve()
    found = shutil.which("flwr", path=env.get("PATH"))
    if found:
        return Path(found).resolve().parent
    raise ConfigError("Flower is not installed: no `flwr` in TETHER_FLOWER_BIN, "
                      f"{', '.join(tried)} or PATH; run `make flower-env` (creates "
                      f"{ENV_DIR}) or set TETHER_FLOWER_BIN")


def flower_environment(bin_dir: Path, home: Path | None = None) -> dict[str, str]:
    """The environment Flower's processes run in: its bin folder first on PATH (the
    SuperLink and SuperNodes start `flower-superexec` from there), no telemetry, no update
    check, and tether's own variables left out."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TETHER_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    env.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.2")
    if home is not None:
        env["FLWR_HOME"] = str(home)
    return env


@dataclass(frozen=True)
class RunStatus:
    """A Flower run as `flwr ls` reports it."""

    run_id: int
    status: str            # pending, starting, running, finished
    details: str           # for a finished run: completed, failed, stopped
    raw: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def _toml_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


class Flower:
    """Flower's CLI against one SuperLink, with its own `FLWR_HOME` (connection `tether`)."""

    def __init__(self, bin_dir: Path, home: Path, policy: FederatedPolicy,
                 superlink: str | None = None) -> None:
        self.bin_dir = bin_dir
        self.home = home
        self.policy = policy
        self.superlink = superlink or os.environ.get("TETHER_FLOWER_SUPERLINK") \
            or policy.superlink
        home.mkdir(parents=True, exist_ok=True)
        lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]",
                 f"address = {json.dumps(self.superlink)}"]
        if policy.insecure:
            lines.append("insecure = true")
        else:
            assert policy.root_certificates is not None
            lines.append(f"root-certificates = "
                         f"{json.dumps(str(Path(policy.root_certificates).resolve()))}")
        (home / "config.toml").write_text("\n".join(lines) + "\n")

    def _call(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
        command = [str(self.bin_dir / "flwr"), *args, "--format", "json"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env=flower_environment(self.bin_dir, self.home), check=False)
        except subprocess.TimeoutExpired as exc:
            raise TrainingError(f"`flwr {args[0]}` did not answer within {timeout:g} s "
                                f"(SuperLink {self.superlink})") from exc
        output = done.stdout.strip()
        start = output.find("{")
        try:
            parsed = json.loads(output[start:]) if start >= 0 else {}
        except json.JSONDecodeError:
            parsed = {}
        if done.returncode != 0 or not parsed.get("success", False):
            reason = parsed.get("error-message") or (done.stderr or output).strip()
            reason = " ".join(reason.split())[:300] or f"exit code {done.returncode}"
            raise TrainingError(f"`flwr {args[0]}` against SuperLink {self.superlink} failed: "
                                f"{reason}")
        return parsed

    def start_run(self, app_dir: Path, run_config: Mapping[str, str | int | float | bool],
                  ) -> int:
        """`flwr run APP tether --run-config FILE`; returns the run id."""
        overrides = self.home / "run-config.toml"
        overrides.write_text("".join(f"{key} = {_toml_value(value)}\n"
                                     for key, value in run_config.items()))
        result = self._call("run", str(app_dir), CONNECTION, "--run-config", str(overrides))
        return int(result["run-id"])

    def status(self, run_id: int) -> RunStatus:
        result = self._call("ls", CONNECTION, "--run-id", str(run_id))
        runs = result.get("runs") or []
        if not runs:
            raise TrainingError(f"the SuperLink {self.superlink} does not know run {run_id}")
        run = runs[0]
        return RunStatus(run_id=run_id, status=str(run.get("status", "")),
                         details=str(run.get("status-details", "")), raw=run)

    def stop(self, run_id: int) -> None:
        # already finished, or the SuperLink is gone: nothing left to stop
        with contextlib.suppress(TrainingError):
            self._call("stop", str(run_id), CONNECTION, timeout=20.0)
