"""What the CLI says when it refuses: one line on stderr naming what was wrong and how
to fix it, the documented exit code, and the JSON error document under --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.example import EXAMPLE_NAMES

runner = CliRunner()


def refused(*args: str, code: int) -> tuple[str, str]:
    """(the one stderr line, stdout) of `tether ARGS`, which must exit with `code`."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0], result.stdout


@pytest.mark.parametrize(("args", "words"), [
    (("rollback", "--to", "abc", "--reason", "x"),
     ("'--to'", "valid integer", "tether rollback --help")),
    (("up", "--port", "70000"), ("'--port'", "less than or equal to 65535")),
    (("up", "--interval", "0"), ("'--interval'", "greater than or equal to 0.05")),
    (("history", "--limit", "-3"), ("'--limit'", "greater than or equal to 1")),
    (("init", "x", "--task", "clustering"), ("'--task'", "binary_classification")),
    (("rollback", "--to", "3"), ("Missing option '--reason'",)),
    (("status", "--nope"), ("No such option: --nope", "tether status --help")),
    (("--nope",), ("No such option: --nope", "tether --help")),
])
def test_usage_errors_are_one_line_with_exit_2(args: tuple[str, ...],
                                               words: tuple[str, ...]) -> None:
    line, stdout = refused(*args, code=2)
    assert all(word in line for word in words), line
    assert stdout == ""
    line, stdout = refused(*args, "--json", code=2)
    error = json.loads(stdout)["error"]
    assert error == {"message": line.removeprefix("error: "), "type": "UsageError",
                     "exit_code": 2}


def test_no_arguments_still_prints_the_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage: " in result.output and "COMMAND" in result.output
    assert "error:" not in result.output


def test_init_into_a_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    for target in ("afile", "afile/sub"):
        line, _ = refused("init", target, code=2)
        assert line == ("error: afile: is a file, not a folder; pass `tether init` a new or "
                        "existing folder")
    assert (tmp_path / "afile").read_text() == ""


def test_an_unknown_example_lists_every_example(tmp_path: Path) -> None:
    line, _ = refused("init", str(tmp_path / "x"), "--example", "nosuch", code=2)
    assert line.endswith("choose one of " + ", ".join(EXAMPLE_NAMES))
    assert "rainfall" in EXAMPLE_NAMES and "federated" in EXAMPLE_NAMES
    line, _ = refused("init", str(tmp_path / "x"), "--example", "rainfall", "--task",
                      "regression", code=2)
    assert "rainfall is a binary classifier" in line


def test_init_hints_cd_when_the_project_is_elsewhere(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "my-model"])
    assert result.exit_code == 0, result.output
    assert "next: cd my-model && tether retrain" in result.stdout
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert "next: tether retrain" in result.stdout and "cd " not in result.stdout


def test_monitor_an_unknown_version_names_the_known_ones(project_dir: Path) -> None:
    line, _ = refused("monitor", "--version", "99", code=4)
    assert line == ("error: model 'loan-default' has no version 99; known versions: none yet "
                    "(run `tether retrain`)")
    _, stdout = refused("monitor", "--version", "99", "--json", code=4)
    assert json.loads(stdout)["error"]["type"] == "VersionNotFound"


def test_the_readme_names_every_command_without_json() -> None:
    import re

    import typer

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    sentence = readme[readme.index("takes `--json`: all but"):readme.index("Errors are one")]
    named = set(re.findall(r"`([a-z]+)`", sentence))
    group = typer.main.get_command(app)
    without = {name for name, command in group.commands.items()  # type: ignore[attr-defined]
               if not command.hidden
               and not any("--json" in option.opts for option in command.params)}
    assert without == named == {"init", "up", "serve", "controller", "dashboard"}, without


def test_the_command_list_wraps_each_summary_as_one_paragraph(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # what Rich reads; every summary fits one line
    listing = runner.invoke(app, ["--help"]).output
    assert ("Scaffold tether.yaml and a trainer from an example (default: the loan-default "
            "classifier).") in listing
    assert ("Replay the history through the real server, labels and controller in simulated "
            "time, with the project's policy and the baselines side by side.") in listing
    # the command's own page keeps its whole text
    page = runner.invoke(app, ["rollback", "--help"]).output
    assert "During a rollout (and without --to), abort it" in page
