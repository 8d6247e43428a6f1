"""`tether demo` as a CI log sees it: plain progress lines, and when it runs out of time
the timeline and report so far, an error line and a non-zero exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app


def test_a_demo_out_of_time_still_writes_its_timeline_and_report(tmp_path: Path) -> None:
    # 10 s cannot hold training, a server start and a drift: it stops at the first wait
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path / "d"), "--timeout",
                                      "10"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0].endswith("training v1")  # one plain line per phase: not a terminal
    assert any(line.endswith("writing the report") for line in lines)
    assert lines[-1].startswith("error: demo: timed out during")
    assert "timeline" in result.stdout and "promoted" in result.stdout
    assert (tmp_path / "d" / "report.html").is_file()


def test_a_demo_out_of_time_under_json_says_so_in_the_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path / "d"), "--timeout",
                                      "10", "--no-report", "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["error"].startswith("demo: timed out during")
    assert [e["kind"] for e in document["events"]][:3] == ["trained", "gate_passed",
                                                            "promoted"]
    assert document["report"] is None and "training v1" not in result.stderr



def test_the_closing_hint_runs_tether_as_this_shell_can(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`make demo` runs the virtualenv's tether; the shell's PATH may not have it."""
    from tether.cli.demo import _tether_command

    program = tmp_path / "venv" / "bin" / "tether"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(program), "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert _tether_command() == str(program)
    monkeypatch.setenv("PATH", str(program.parent))
    assert _tether_command() == "tether"
