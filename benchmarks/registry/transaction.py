"""What a registry transaction costs a rollback: `lifecycle.rollback` (the lease, the
read that checks the routing, the writes, the event) against the same writes and event
without the lease and the check, as tether wrote them before, alternating in one run.

Two figures per path: from the decision (the state read) to the champion alias written,
the commit point at which an embedded server swaps; and to the end of the call (tags,
event, lease released). The demo project, SQLite registry and store.

    PYTHONPATH=src python benchmarks/registry/transaction.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tether import lifecycle
from tether.demo.run import write_demo_project
from tether.project import Project
from tether.registry import Registry, RegistryState

Rollback = Callable[[RegistryState, Callable[[int], None]], None]


def timed(rollback: Rollback, decided: RegistryState) -> tuple[float, float]:
    committed: list[float] = []
    started = time.perf_counter()
    rollback(decided, lambda _: committed.append(time.perf_counter()))
    ended = time.perf_counter()
    return (committed[0] - started) * 1000, (ended - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-transaction-"))
    try:
        write_demo_project(folder)
        project = Project.open(folder / "tether.yaml")
        lifecycle.train(project, reason="bench v1")
        lifecycle.train(project, reason="bench v2")
        lifecycle.promote(project, 1, "bench: first")
        settings = project.settings
        unguarded = Registry(project.model_name, settings.tracking_uri, settings.registry_uri)

        def with_transaction(decided: RegistryState, switch: Callable[[int], None]) -> None:
            lifecycle.rollback(project, "bench: back", to=1, on_switch=switch, current=decided)

        def without(decided: RegistryState, switch: Callable[[int], None]) -> None:
            bad, target = unguarded.rollback("bench: back", to=1, on_switch=switch,
                                             current=decided)
            project.record("rolled_back", "bench: back", version=bad, data={"to": target})

        paths: dict[str, Rollback] = {"lifecycle.rollback (transaction)": with_transaction,
                 "same writes, no lease or check (before)": without}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        for index in range(args.rounds * 2):
            name = list(paths)[index % 2]
            lifecycle.promote(project, 2, "bench: forward")
            results[name].append(timed(paths[name], project.registry.state()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base_commit, base_total = (statistics.median(column) for column in
                               zip(*results["same writes, no lease or check (before)"],
                                   strict=True))
    print("| path | n | p50 ms to the alias write | p50 ms to the end | ratio (alias, end) |")
    print("|---|---|---|---|---|")
    for name, timings in results.items():
        commit, total = (statistics.median(column) for column in zip(*timings, strict=True))
        print(f"| {name} | {len(timings)} | {commit:.1f} | {total:.1f} | "
              f"{commit / base_commit:.2f}, {total / base_total:.2f} |")
    print(f"\nmeasured {time.strftime('%Y-%m-%d')}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
