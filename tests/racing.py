"""Writers that race: registry transitions released together, in threads or in processes,
and what must hold after any interleaving."""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether import lifecycle
from tether.errors import RegistryConflict, TetherError
from tether.project import Project
from tether.registry import GATE_TAG, STATE_TAG, RegistryState, State
from tether.registry.client import process_uris

Job = tuple[str, int | None]  # ("promote", version) or ("rollback", None)


@dataclass(frozen=True)
class Outcome:
    job: Job
    ok: bool
    detail: str


def add_gated_versions(project: Project, count: int) -> list[int]:
    """More versions that passed a gate, sharing version 1's model: promotions and
    rollbacks never load them."""
    registry = project.registry
    first = registry.client.get_model_version(project.model_name, "1")
    numbers = []
    with process_uris(registry.tracking_uri, registry.registry_uri):  # resolves models:/
        for _ in range(count):
            made = registry.client.create_model_version(
                project.model_name, source=first.source, run_id=first.run_id,
                tags={STATE_TAG: State.CANDIDATE.value,
                      GATE_TAG: json.dumps({"passed": True})})
            numbers.append(int(made.version))
    return numbers


def run_job(project: Project, job: Job) -> Outcome:
    kind, version = job
    try:
        if kind == "promote":
            assert version is not None
            lifecycle.promote(project, version, reason=f"race: promote {version}")
            return Outcome(job, True, f"promoted {version}")
        bad, target = lifecycle.rollback(project, reason="race: rollback")
        return Outcome(job, True, f"rolled back {bad} to {target}")
    except RegistryConflict as exc:
        return Outcome(job, False, f"conflict: {exc}")
    except TetherError as exc:  # e.g. nothing to roll back to once a promote came first
        return Outcome(job, False, f"{type(exc).__name__}: {exc}")


def race_in_threads(config: Path, jobs: list[Job]) -> list[Outcome]:
    """Each job in its own thread with its own project (store, registry client), warmed
    up, then released by one barrier."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[Outcome] = []

    def worker(job: Job) -> None:
        project = Project.open(config)
        project.registry.state()
        barrier.wait()
        outcomes.append(run_job(project, job))

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def _process_worker(config: str, barrier: Any, inbox: Any, outbox: Any) -> None:
    project = Project.open(config)
    project.registry.state()  # imports, connections: all before the first barrier
    while (job := inbox.get()) is not None:
        barrier.wait()
        outbox.put(run_job(project, job))


class ProcessRacers:
    """Worker processes (spawned: nothing shared but the databases) that run one job each
    per round, released together by a barrier."""

    def __init__(self, config: Path, count: int) -> None:
        context = mp.get_context("spawn")
        self.barrier = context.Barrier(count)
        self.inboxes = [context.Queue() for _ in range(count)]
        self.outbox = context.Queue()
        self.processes = [context.Process(target=_process_worker,
                                          args=(str(config), self.barrier, inbox, self.outbox))
                          for inbox in self.inboxes]
        for process in self.processes:
            process.start()

    def race(self, jobs: list[Job]) -> list[Outcome]:
        for inbox, job in zip(self.inboxes, jobs, strict=True):
            inbox.put(job)
        return [self.outbox.get(timeout=300) for _ in jobs]

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(60)
            if process.is_alive():
                process.kill()


def assert_one_story(project: Project, before: RegistryState, since_event: int) -> None:
    """After any interleaving: one version tagged champion (the alias's), `previous` the
    version that served before, no problem, and the event log telling the same story as
    the registry from `before` on."""
    state = project.registry.state()
    tagged = [v.version for v in state.versions if v.state == State.CHAMPION]
    assert tagged == [state.champion], state
    assert lifecycle.status(project).problems == []
    champion, previous = before.champion, before.previous
    for event in project.store.events(project.model_name, kinds=["promoted", "rolled_back"]):
        if event.id is None or event.id <= since_event:
            continue
        if event.kind == "promoted":
            assert event.data["previous"] == champion, (event, champion)
            champion, previous = event.version, champion
        else:
            assert event.version == champion, (event, champion)
            champion, previous = event.data["to"], None
    assert (champion, previous) == (state.champion, state.previous), state


def last_event_id(project: Project) -> int:
    events = project.store.events(project.model_name, limit=1)
    return events[-1].id if events and events[-1].id is not None else 0


Racer = Callable[[list[Job]], list[Outcome]]
