"""The demo: train v1, serve it, let the world drift, and watch the loop close by itself.

1. v1 is trained, gated and promoted; server and controller start in this process.
2. Calm traffic with delayed labels.
3. The world drifts (applicants change and so does what makes them default): the
   controller sees it, retrains v2 on recent labeled traffic, gates it against v1, walks
   it through the canary steps and promotes it.
4. A bad release, v3, is promoted by hand, skipping the canary: probation sees it is
   worse than v2 on live traffic and rolls it back.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tether import lifecycle
from tether.config import load_config
from tether.errors import TetherError
from tether.events import EventKind
from tether.net import bound_socket
from tether.project import Project
from tether.store import Event

__all__ = ["DEMO_POLICY", "DEMO_SETTINGS", "DemoFailed", "DemoResult", "open_demo_project",
           "run_demo"]

EXAMPLE = Path(__file__).resolve().parents[1] / "example" / "project"

DEMO_POLICY: dict[str, Any] = {
    "data.params": {"n": 4000, "seed": 1},
    "data.recent_labeled_rows": 4000,
    "trainer_params": {"max_iter": 100, "learning_rate": 0.1},
    "monitoring.window_size": 800,
    "monitoring.min_labels": 100,
    "monitoring.interval_seconds": 0.5,
    "monitoring.drift_share_threshold": 0.3,
    "triggers.drift_consecutive": 4,
    "triggers.metric_floor": None,
    "triggers.metric_drop": 0.05,
    "triggers.on_change_detected": False,
    "triggers.cooldown_seconds": 600,
    "triggers.max_retrains_per_day": 4,
    "rollout.steps": [0.2, 0.5],
    "rollout.min_predictions": 200,
    "rollout.min_labels": 100,
    "rollout.step_timeout_seconds": 90,
    "rollout.max_metric_drop": 0.05,
    "rollback.probation_seconds": 120,
    "rollback.probation_min_predictions": 200,
    "rollback.max_metric_drop": 0.03,
}
# Settings the demo needs unless the environment says otherwise: the server follows the
# registry every second, so a promotion by hand reaches traffic within the demo's pace.
DEMO_SETTINGS: dict[str, str] = {"TETHER_POLL_SECONDS": "1"}


@dataclass
class DemoResult:
    folder: Path
    events: list[Event]
    report: Path | None
    seconds: float
    rows: int
    labels: int
    failed_requests: int
    phases: list[tuple[str, float]] = field(default_factory=list)

    @property
    def champion_history(self) -> list[tuple[str, int | None]]:
        return [(e.kind, e.version) for e in self.events
                if e.kind in (EventKind.PROMOTED, EventKind.ROLLED_BACK,
                              EventKind.ROLLOUT_ABORTED)]


class DemoFailed(TetherError):
    """The demo stopped before its end (a timeout, a step that did not happen); `result`
    holds the timeline so far and the report written from it."""

    def __init__(self, message: str, result: DemoResult) -> None:
        super().__init__(message)
        self.result = result


def write_demo_project(folder: Path) -> Path:
    """The example project with the demo's quick policy, in a fresh folder."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    policy = yaml.safe_load((EXAMPLE / "tether.yaml").read_text())
    for dotted, value in DEMO_POLICY.items():
        node = policy
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    (folder / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    shutil.copyfile(EXAMPLE / "train.py", folder / "train.py")
    return folder / "tether.yaml"


def open_demo_project(folder: Path, environ: Mapping[str, str] | None = None) -> Project:
    """The demo project, written afresh to `folder`, with its settings read from `environ`
    (default: the process environment) over `DEMO_SETTINGS`.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "demo"
    >>> open_demo_project(folder, environ={}).settings.poll_seconds
    1.0
    >>> open_demo_project(folder, environ={"TETHER_POLL_SECONDS": "5"}).settings.poll_seconds
    5.0
    """
    env = os.environ if environ is None else environ
    return Project(load_config(write_demo_project(folder), environ={**DEMO_SETTINGS, **env}))


class Stage:
    """Reports what the demo is doing to whoever displays it, and waits, showing the
    registry and the traffic so far, for what each phase waits for."""

    def __init__(self, show: Callable[[str, dict[str, Any]], None]) -> None:
        self.show = show
        self.phases: list[tuple[str, float]] = []
        self.started = time.monotonic()
        self._project: Project | None = None
        self._traffic: Any = None
        self._deadline = float("inf")

    def enter(self, name: str) -> None:
        self.phases.append((name, time.monotonic() - self.started))
        self.show(name, {})

    def follow(self, project: Project, traffic: Any, deadline: float) -> None:
        """From now on, status shows `project`'s registry and `traffic.counters`; `wait`
        gives up at `deadline` (time.monotonic())."""
        self._project, self._traffic, self._deadline = project, traffic, deadline

    def status(self) -> dict[str, Any]:
        if self._project is None:
            return {}
        state = self._project.registry.state()
        last = self._project.store.events(self._project.model_name, limit=1)
        return {"champion": state.champion, "rollout": state.rollout,
                "rows": self._traffic.counters.rows, "labels": self._traffic.counters.labels,
                "last_event": f"{last[0].kind}: {last[0].reason}" if last else ""}

    def wait(self, phase: str, done: Callable[[], bool]) -> None:
        """Until `done()`; raises TetherError past the deadline."""
        while not done():
            if time.monotonic() > self._deadline:
                raise TetherError(f"demo: timed out during {phase!r}")
            self.show(phase, self.status())
            time.sleep(0.5)


def run_demo(folder: Path, *, show: Callable[[str, dict[str, Any]], None] | None = None,
             report: bool = True, timeout: float = 150.0) -> DemoResult:
    """Run the whole loop; `show(phase, status)` is called as it goes. Raises DemoFailed,
    with the timeline so far and its report, when a step does not happen within
    `timeout` seconds of the start (or fails)."""
    import uvicorn

    from tether import apps
    from tether.demo.traffic import Replayer

    stage = Stage(show or (lambda phase, status: None))
    started = time.monotonic()
    project = open_demo_project(folder)
    stage.enter("training v1")
    lifecycle.train(project, reason="demo: initial model")
    lifecycle.gate(project, 1)
    lifecycle.promote(project, 1, "demo: first champion")

    stage.enter("starting server and controller")
    process = apps.up(project, interval=project.policy.monitoring.interval_seconds, lock_ttl=5)
    sock = bound_socket()
    server = uvicorn.Server(uvicorn.Config(process.app, log_level="error", access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    replayer = Replayer(base_url)
    stage.follow(project, replayer, started + timeout)
    failure: TetherError | None = None
    try:
        stage.wait("starting server and controller",
                   lambda: not thread.is_alive() or server.started)
        if not server.started:
            raise TetherError("demo: the server did not start")
        replayer.start()
        stage.enter("calm traffic")
        stage.wait("calm traffic", lambda: replayer.counters.labels >= 3000)

        stage.enter("the world drifts")
        replayer.world.shift, replayer.world.concept = 0.6, 1.0
        stage.wait("the world drifts: detect, retrain, gate, canary",
                   lambda: project.registry.state().champion != 1 or failed(project))
        if project.registry.state().champion == 1:
            raise TetherError("demo: the retrained model did not make it through the canary: "
                              + _last_reason(project))

        stage.enter("a bad release is promoted by hand")
        sabotaged = Project(project.config.model_copy(update={
            "policy": project.policy.model_copy(update={
                "trainer": "tether.demo.sabotage:train"})}))
        bad = lifecycle.train(sabotaged, reason="demo: hot fix, labels flipped by mistake")
        lifecycle.promote(project, bad.version, "demo: promoted by hand, skipping the canary")
        push = process.controller.push if process.controller is not None else None
        if push is not None:
            push()
        stage.wait("probation watches the new champion",
                   lambda: project.registry.state().champion != bad.version)
        stage.enter("done")
    except TetherError as exc:
        failure = exc  # the timeline and report so far still get written
    finally:
        replayer.stop()
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()

    events = project.store.events(project.model_name)
    path = None
    if report:
        from tether.demo.report import write_report

        stage.show("writing the report", stage.status())
        path = write_report(project, folder / "report.html")
    result = DemoResult(folder=folder, events=events, report=path,
                        seconds=time.monotonic() - started, rows=replayer.counters.rows,
                        labels=replayer.counters.labels,
                        failed_requests=replayer.counters.failed_requests,
                        phases=stage.phases)
    if failure is not None:
        raise DemoFailed(str(failure), result) from failure
    return result


def failed(project: Project) -> bool:
    """Whether a rollout was aborted, or a gate or a retrain failed."""
    return bool(project.store.events(project.model_name, kinds=[
        EventKind.ROLLOUT_ABORTED, EventKind.GATE_FAILED, EventKind.RETRAIN_FAILED]))


def _last_reason(project: Project) -> str:
    last = project.store.events(project.model_name, limit=1)
    return f"{last[0].kind}: {last[0].reason}" if last else "no events"
