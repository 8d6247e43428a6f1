"""Retraining outside the pass: one worker thread trains and gates, the loop goes on.

The controller hands it an admitted trigger and carries on with its passes (a canary
step, a rollback, a probation never wait for a training run). Training and the gate
record their own events (`trained`, `gate_passed`/`gate_failed`, `retrain_failed`) and
tag the candidate in the registry; the next pass observes the gated candidate there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from tether import lifecycle
from tether.control.clock import Clock
from tether.control.observe import RetrainJob
from tether.control.triggers import Trigger
from tether.errors import TetherError
from tether.project import Project

__all__ = ["RetrainWorker", "train_and_gate"]

log = logging.getLogger("tether.controller")

Retrain = Callable[[Trigger], tuple[int, bool]]


def train_and_gate(project: Project) -> Retrain:
    """Train a candidate for the trigger, then gate it: (version, gate passed)."""

    def run(trigger: Trigger) -> tuple[int, bool]:
        result = lifecycle.train(project, reason=f"{trigger.kind.value}: {trigger.reason}")
        verdict = lifecycle.gate(project, result.version)
        return result.version, verdict.passed

    return run


class RetrainWorker:
    """Runs one retrain at a time in a thread; `running` and `last` say how it goes."""

    def __init__(self, retrain: Retrain, clock: Clock) -> None:
        self._retrain = retrain
        self._clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running: RetrainJob | None = None
        self._last: RetrainJob | None = None

    @property
    def running(self) -> RetrainJob | None:
        with self._lock:
            return self._running

    @property
    def last(self) -> RetrainJob | None:
        """The last retrain this worker finished (or failed)."""
        with self._lock:
            return self._last

    def start(self, trigger: Trigger) -> RetrainJob:
        with self._lock:
            if self._running is not None:
                raise RuntimeError("a retrain is already running")
            job = RetrainJob(trigger=trigger, started=self._clock())
            self._running = job
            self._thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                            name="tether-retrain")
            self._thread.start()
        return job

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the running retrain; True when none runs any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.running is None

    def _run(self, job: RetrainJob) -> None:
        try:
            version, passed = self._retrain(job.trigger)
            done = replace(job, finished=self._clock(), version=version, gate_passed=passed)
        except TetherError as exc:
            log.warning("retrain failed: %s", exc)
            done = replace(job, finished=self._clock(), error=str(exc))
        except Exception as exc:  # a broken trainer must not kill the worker silently
            log.exception("retrain failed unexpectedly")
            done = replace(job, finished=self._clock(),
                           error=f"unexpected {type(exc).__name__}: {exc}")
        with self._lock:
            self._running = None
            self._last = done
