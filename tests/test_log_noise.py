"""What tether's processes leave out of the log: MLflow's setup lines, its warning on
every pickled model, urllib3's line at every retry, a traceback when the reader of
stdout goes away."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tether.logs import configure_logging, reset_logging
from tether.project import Project


def tether_process(*args: str, cwd: Path, stdout: int | None = subprocess.PIPE,
                   ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", *args], cwd=cwd, text=True,
                          stdout=stdout, stderr=subprocess.PIPE, timeout=300, check=False)


def test_init_says_nothing_of_mlflow_and_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    done = tether_process("init", "p", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not MLflow's "Creating initial MLflow database tables"
    assert "created the registry" in done.stdout
    for args in (("status",), ("history", "--json"), ("up", "--help")):
        # the reader of stdout is gone before tether writes (`tether status | head -0`)
        reader = subprocess.Popen([sys.executable, "-m", "tether", *args],
                                  cwd=tmp_path / "p", stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert reader.stdout is not None
        reader.stdout.close()
        _, err = reader.communicate(timeout=300)
        assert err == "", (args, err)


def test_a_retrain_logs_no_pickle_warning(project: Project) -> None:
    from tether.training import retrain

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("mlflow.sklearn")  # MLflow's loggers do not propagate
    logger.addHandler(handler)
    try:
        retrain(project)
    finally:
        logger.removeHandler(handler)
    assert not [line for line in seen if "pickle" in line], seen


@pytest.mark.parametrize(("level", "retries_shown"), [("info", False), ("warning", False),
                                                      ("debug", True)])
def test_urllib3_retries_are_left_to_tether_below_debug(level: str,
                                                        retries_shown: bool) -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    before = logger.level
    try:
        configure_logging("text", level)
        assert logger.isEnabledFor(logging.WARNING) is retries_shown
        assert not logging.getLogger("mlflow").isEnabledFor(logging.INFO)
    finally:
        reset_logging()
        logger.setLevel(before)
