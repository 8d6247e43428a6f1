"""`tether demo --federated` (`make demo-federated`) builds and starts every part it
needs: run out of time, it stops at a wait with its timeline, not at an import."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app


def test_the_federated_demo_out_of_time_stops_at_a_wait_with_its_timeline(
        tmp_path: Path, flower_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_FLOWER_BIN", str(flower_bin))
    # the project, the sites, the server and the controller are built and started before
    # the first wait; 20 s then runs out while the federation trains v1
    result = CliRunner().invoke(app, ["demo", "--federated", "--dir", str(tmp_path / "d"),
                                      "--timeout", "20", "--no-report"])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1].startswith("error: demo: timed out during"), \
        result.output
