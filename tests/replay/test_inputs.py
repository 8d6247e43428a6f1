"""What `tether replay` refuses: each as one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.replay.datasets import abrupt_change

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import yaml

    from tests.replay.test_replay import POLICY, TRAINER

    (tmp_path / "tether.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    (tmp_path / "train.py").write_text(TRAINER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(folder: Path, frame: pd.DataFrame, *options: str) -> str:
    frame.to_csv(folder / "history.csv", index=False)
    result = runner.invoke(app, ["replay", "--data", "history.csv", "--target", "target",
                                 *options])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def dated(frame: pd.DataFrame, days: np.ndarray) -> pd.DataFrame:
    return frame.assign(day=pd.Timestamp("2021-01-01") + pd.to_timedelta(days, unit="D"))


def test_no_time_column_and_no_rate(project: Path) -> None:
    message = refused(project, abrupt_change(n=200))
    assert message.startswith("error: history.csv: no time: give --time-column COL")


def test_times_out_of_order(project: Path) -> None:
    days = np.arange(200.0)
    days[[50, 51]] = days[[51, 50]]
    message = refused(project, dated(abrupt_change(n=200), days), "--time-column", "day")
    assert "times are not in order: row 51 (2021-02-20 00:00) comes before row 50" in message
    assert "sort the history by day" in message


def test_repeated_times(project: Path) -> None:
    days = np.arange(200.0)
    days[120] = days[119]
    message = refused(project, dated(abrupt_change(n=200), days), "--time-column", "day")
    assert "times repeat: rows 119 and 120 are both at 2021-04-30 00:00" in message


def test_a_target_with_missing_values(project: Path) -> None:
    frame = abrupt_change(n=200).astype({"target": float})
    frame.loc[[30, 77], "target"] = np.nan
    message = refused(project, frame, "--rate", "1/d")
    assert "target 'target' is missing in 2 row(s) (first: row 30)" in message


def test_a_label_delay_longer_than_the_history(project: Path) -> None:
    message = refused(project, abrupt_change(n=200), "--rate", "1/d", "--initial", "50",
                      "--label-delay", "1y")
    assert "--label-delay 1y is longer than the replayed history (149d): no label would " \
           "arrive" in message


@pytest.mark.parametrize(("options", "expected"), [
    (("--rate", "fast"), "--rate 'fast': expected a number and a unit"),
    (("--rate", "1/d", "--compare", "static,weekly"), "--compare 'weekly': expected static"),
    (("--rate", "1/d", "--initial", "199"), "leaves nothing to replay"),
    (("--time-column", "when"), "no time column 'when'"),
    (("--rate", "1/d", "--window", "0d"), "--window 0d: a window must be longer than zero"),
    (("--rate", "1/d", "--window", "1s"), "into more than 10,000 windows"),
    (("--rate", "1/d", "--html", "/nonexistent/dir/r.html"),
     "--html /nonexistent/dir/r.html: the folder /nonexistent/dir does not exist"),
])
def test_options_that_cannot_be_replayed(project: Path, options: tuple[str, ...],
                                         expected: str) -> None:
    assert expected in refused(project, abrupt_change(n=200), *options)
