"""Latency verdicts that a busy neighbour cannot flip.

A wall-clock p99 of a few calls on a shared machine measures the machine: two CPU-bound
neighbours on two cores are enough to multiply it. So latency is judged the way
benchmarks compare two programs, side by side at the same moment:

- the gate calls challenger and champion in turn on the same rows (the order flips every
  round, so neither always runs first), with native pools at one thread
  (`tether.threads.limited`). Each call is timed as the CPU time of the calling thread,
  which a neighbour taking the cores delays but does not add to, and on the wall clock
  for information. The median per call decides: the challenger may be at most
  `max_latency_ratio` times the champion (differences under `SLACK_MS` never count),
  and at most `max_latency_ms` in absolute terms, a generous ceiling.
- a canary step compares the two arms' served latencies over the same window: the
  ratio of their medians decides; a p99 above the absolute ceiling fails the challenger
  only when the champion, on the same machine at the same time, stays below it (both
  above is the machine, and inconclusive). A probation has no champion serving beside
  the new one: a p99 above the ceiling is inconclusive there, never a rollback.

A model that works in threads of its own or waits on I/O is under-counted by the CPU
clock; its wall time is reported beside it.

>>> check = ratio_check(7.2, 6.9, max_ratio=2.0, what="CPU time per call")
>>> check.verdict.value, check.message
('pass', 'latency 7.200 ms vs champion 6.900 ms: x1.04 <= x2.00 (CPU time per call)')
>>> ceiling_check(250.0, 240.0, ceiling_ms=200.0, what="p99 of served requests").verdict.value
'inconclusive'
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from tether.threads import limited
from tether.verdict import Check, Verdict

__all__ = ["SLACK_MS", "Timing", "ceiling_check", "ratio_check", "time_interleaved"]

SLACK_MS = 1.0  # below this, a slower challenger is never a regression
ROUNDS = 31
BUDGET_SECONDS = 20.0
MIN_ROUNDS = 5


@dataclass(frozen=True)
class Timing:
    """Median milliseconds per call over `calls` calls."""

    cpu_ms: float
    wall_ms: float
    calls: int

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def time_interleaved(calls: Mapping[str, Callable[[], object]], *, rounds: int = ROUNDS,
                     budget_seconds: float = BUDGET_SECONDS, threads: int = 1,
                     ) -> dict[str, Timing]:
    """Time each call once per round, in turn (reversed every other round), after one
    warm-up call each; stop early after `budget_seconds` once `MIN_ROUNDS` are done.

    >>> timings = time_interleaved({"a": lambda: sum(range(1000)), "b": lambda: None},
    ...                            rounds=5)
    >>> timings["a"].calls, timings["a"].cpu_ms > timings["b"].cpu_ms
    (5, True)
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1.")
    names = list(calls)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    with limited(threads):
        for name in names:
            calls[name]()  # warm caches and lazy imports before timing
        started = time.perf_counter()
        for index in range(rounds):
            for name in (names if index % 2 == 0 else names[::-1]):
                cpu_start, wall_start = time.thread_time_ns(), time.perf_counter_ns()
                calls[name]()
                wall[name].append((time.perf_counter_ns() - wall_start) / 1e6)
                cpu[name].append((time.thread_time_ns() - cpu_start) / 1e6)
            if index + 1 >= MIN_ROUNDS and time.perf_counter() - started > budget_seconds:
                break
    return {name: Timing(cpu_ms=statistics.median(cpu[name]),
                         wall_ms=statistics.median(wall[name]), calls=len(cpu[name]))
            for name in names}


def ratio_check(challenger_ms: float, champion_ms: float, *, max_ratio: float,
                what: str, name: str = "latency_ratio") -> Check:
    """The challenger against the champion measured alongside it."""
    ratio = challenger_ms / champion_ms if champion_ms > 0 else float("inf")
    passed = challenger_ms <= champion_ms * max_ratio or \
        challenger_ms - champion_ms <= SLACK_MS
    shown = f"x{ratio:.2f}" if ratio != float("inf") else "x(inf)"
    if ratio <= max_ratio:
        judged = f"{shown} <= x{max_ratio:.2f}"
    elif passed:
        judged = f"{shown} > x{max_ratio:.2f}, but within {SLACK_MS:g} ms"
    else:
        judged = f"{shown} > x{max_ratio:.2f}"
    return Check(name, Verdict.PASS if passed else Verdict.FAIL,
                 f"latency {challenger_ms:.3f} ms vs champion {champion_ms:.3f} ms: "
                 f"{judged} ({what})", value=ratio, threshold=max_ratio)


def ceiling_check(challenger_ms: float, champion_ms: float | None, *, ceiling_ms: float,
                  what: str, name: str = "latency_ceiling", robust: bool = True) -> Check:
    """An absolute ceiling; when the champion, measured at the same time, is above it
    too, the machine is slow rather than the challenger: inconclusive. `robust`: the
    figure is one a busy machine does not inflate (CPU time), so with no champion beside
    it a breach fails; a wall-clock figure with no champion beside it cannot tell the
    model from the machine, and a breach is inconclusive."""
    if challenger_ms <= ceiling_ms:
        return Check(name, Verdict.PASS, f"latency {challenger_ms:.3f} ms <= ceiling "
                     f"{ceiling_ms:.2f} ms ({what})", value=challenger_ms,
                     threshold=ceiling_ms)
    if champion_ms is None and not robust:
        return Check(name, Verdict.INCONCLUSIVE,
                     f"latency {challenger_ms:.3f} ms > ceiling {ceiling_ms:.2f} ms, with no "
                     f"champion measured at the same time to tell the model from the "
                     f"machine ({what})", value=challenger_ms, threshold=ceiling_ms)
    if champion_ms is not None and champion_ms > ceiling_ms:
        return Check(name, Verdict.INCONCLUSIVE,
                     f"latency {challenger_ms:.3f} ms > ceiling {ceiling_ms:.2f} ms, and the "
                     f"champion's {champion_ms:.3f} ms at the same time too: the machine is "
                     f"slow, not the challenger ({what})", value=challenger_ms,
                     threshold=ceiling_ms)
    return Check(name, Verdict.FAIL, f"latency {challenger_ms:.3f} ms > ceiling "
                 f"{ceiling_ms:.2f} ms ({what})", value=challenger_ms, threshold=ceiling_ms)
