"""The CLI imports what a command uses, when it runs: an import-graph check, not a timing.

Each check is a fresh interpreter that imports or runs the command in process and then
lists which heavy packages ended up in `sys.modules`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("mlflow", "sklearn", "matplotlib", "pandas", "numpy", "scipy", "sqlalchemy", "yaml",
         "httpx", "uvicorn", "starlette", "tether.apps", "tether.control.controller",
         "tether.project", "tether.registry")

RUN = """
import json, sys
from tether.cli import app
try:
    app(sys.argv[1:], prog_name="tether")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout.write("\\n" + json.dumps({"code": code, "loaded": [
    name for name in json.loads(HEAVY) if name in sys.modules]}))
"""


def loaded_after(*argv: str, cwd: Path | None = None) -> tuple[int, list[str]]:
    code = RUN.replace("json.loads(HEAVY)", repr(list(HEAVY)))
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         cwd=cwd, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["code"], result["loaded"]


def test_importing_the_cli_imports_no_library_a_command_may_not_need() -> None:
    code = f"import sys, tether.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("argv", [["--help"], ["drift", "--help"], ["status", "--help"],
                                  ["serve", "--help"], ["init", "--help"],
                                  ["trigger", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    code, loaded = loaded_after(*argv)
    assert code == 0 and loaded == []


def test_drift_on_files_needs_no_registry_model_library_or_plots(tmp_path: Path) -> None:
    rows = "\n".join(f"{i % 7},{(i * 13) % 11}" for i in range(200))
    (tmp_path / "a.csv").write_text("x,y\n" + rows + "\n")
    (tmp_path / "b.csv").write_text("x,y\n" + rows + "\n")
    code, loaded = loaded_after("drift", "--reference", "a.csv", "--current", "b.csv",
                                "--json", cwd=tmp_path)
    assert code == 0  # same data: no drift
    assert not set(loaded) & {"mlflow", "sklearn", "matplotlib", "sqlalchemy",
                              "tether.registry", "tether.project", "tether.apps"}
    assert "numpy" in loaded  # it did compute something


def test_a_model_server_and_a_registry_read_import_no_controller_training_or_gate() -> None:
    """`tether serve` builds its app from `tether.apps`; `tether status` and `history` go
    through `tether.lifecycle`: neither loads the controller, training or the gate."""
    code = ("import sys, tether.lifecycle, tether.apps; print([m for m in "
            "('tether.control.controller', 'tether.control.plan', 'tether.training', "
            "'tether.gate', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
