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
- a canary step compares the two arms over the same window by the CPU time of their
  model calls, which the server measures in the model's thread (`thread_time`) and logs
  with every row beside the call's batch size. The champion takes more of the traffic,
  so its calls gather bigger batches: calls are compared batch size by batch size
  (`compare_cpu_per_call`), and the ratio decides, against `max_latency_ratio`. A
  served wall-clock p99 above the absolute ceiling fails the challenger only when the
  champion, on the same machine at the same time, stays below it (both above is the
  machine, and inconclusive). A probation has no champion serving beside the new one:
  a p99 above the ceiling is inconclusive there, never a rollback.

A model that works in threads of its own (`serving.model_threads` above 1, or pools
threadpoolctl does not know) or waits on I/O is under-counted by the CPU clock; its
wall time is reported beside it.

>>> check = ratio_check(7.2, 6.9, max_ratio=2.0, what="CPU time per call")
>>> check.verdict.value, check.message
('pass', 'latency 7.200 ms vs champion 6.900 ms: x1.04 <= x2.00 (CPU time per call)')
>>> ceiling_check(250.0, 240.0, ceiling_ms=200.0, what="p99 of served requests").verdict.value
'inconclusive'
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tether.threads import limited
from tether.verdict import Check, Verdict

__all__ = ["MIN_CPU_CALLS", "SLACK_MS", "CpuComparison", "Timing", "ceiling_check",
           "compare_cpu_per_call", "median_per_call", "ratio_check", "time_interleaved"]

SLACK_MS = 1.0  # below this, a slower challenger is never a regression
ROUNDS = 31
BUDGET_SECONDS = 20.0
MIN_ROUNDS = 5
MIN_CPU_CALLS = 10  # calls of batch sizes both arms served, below which no ratio is taken
# thread_time ticks in nanoseconds, but a call the clock saw as 0 must not make a ratio
# infinite: medians are floored at one microsecond
_CPU_FLOOR_MS = 1e-3


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


@dataclass(frozen=True)
class CpuComparison:
    """Two arms' model CPU time per call, compared batch size by batch size.

    `ratio`: challenger over champion, None (with `reason`) when there is nothing to
    compare; `challenger_ms`, `champion_ms`: the weighted geometric means of the
    per-size medians (their quotient is `ratio`); `calls`: the calls compared (per
    size, the smaller arm's count, summed); `strata`: the batch sizes both arms served.
    """

    ratio: float | None
    challenger_ms: float | None
    champion_ms: float | None
    calls: int
    strata: int
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def _calls_by_size(cpu_ms: np.ndarray, batch_rows: np.ndarray,
                   ) -> dict[int, tuple[float, int]]:
    """Per batch size: the median CPU ms per call and how many calls. Every row of a
    call carries the call's figures, so a call of b rows is b rows: the median over the
    rows of one size is the median over its calls, and calls = rows / b."""
    cpu = np.asarray(cpu_ms, dtype=float)
    size = np.asarray(batch_rows, dtype=float)
    known = np.isfinite(cpu) & np.isfinite(size) & (size >= 1)
    cpu, size = cpu[known], size[known].astype(np.int64)
    found = {}
    for b in np.unique(size).tolist():
        mine = cpu[size == b]
        found[int(b)] = (float(np.median(mine)), max(1, round(mine.size / b)))
    return found


def compare_cpu_per_call(challenger_cpu_ms: np.ndarray, challenger_batch_rows: np.ndarray,
                         champion_cpu_ms: np.ndarray, champion_batch_rows: np.ndarray, *,
                         min_calls: int = MIN_CPU_CALLS) -> CpuComparison:
    """The challenger's model CPU time per call over the champion's, like with like.

    Inputs are per served row (n,): the CPU milliseconds of the model call that answered
    the row and that call's row count (NaN where unknown, e.g. rows logged before they
    were kept). The champion takes more traffic, so its calls are bigger and cost more:
    only batch sizes both arms served are compared (strata), each by the ratio of its
    medians, and the ratios are combined as a geometric mean weighted by the smaller
    arm's number of calls of that size. Fewer than `min_calls` such calls: no ratio.

    >>> one, two = np.full(60, 1.0), np.full(40, 2.0)
    >>> champion = compare_cpu_per_call(np.full(30, 0.6), np.full(30, 1.0),
    ...     np.r_[np.full(60, 0.5), np.full(40, 0.9)], np.r_[one, two])
    >>> round(champion.ratio, 2), champion.calls, champion.strata
    (1.2, 30, 1)
    >>> compare_cpu_per_call(np.full(30, 0.6), np.full(30, 3.0),
    ...                      np.full(60, 0.5), one).reason
    'no batch size served by both arms (challenger: 3; champion: 1)'
    """
    mine = _calls_by_size(challenger_cpu_ms, challenger_batch_rows)
    theirs = _calls_by_size(champion_cpu_ms, champion_batch_rows)
    shared = sorted(set(mine) & set(theirs))
    if not mine or not theirs:
        arm = "the challenger" if not mine else "the champion"
        return CpuComparison(None, None, None, 0, 0,
                             f"no model CPU time logged for {arm}'s calls")
    if not shared:
        return CpuComparison(None, None, None, 0, 0,
                             f"no batch size served by both arms (challenger: "
                             f"{_sizes(mine)}; champion: {_sizes(theirs)})")
    weights = np.array([min(mine[b][1], theirs[b][1]) for b in shared], dtype=float)
    calls = int(weights.sum())
    if calls < min_calls:
        return CpuComparison(None, None, None, calls, len(shared),
                             f"{calls} calls of batch sizes both arms served < "
                             f"{min_calls}")
    log_mine = np.log([max(mine[b][0], _CPU_FLOOR_MS) for b in shared])
    log_theirs = np.log([max(theirs[b][0], _CPU_FLOOR_MS) for b in shared])
    challenger_ms = math.exp(float(np.average(log_mine, weights=weights)))
    champion_ms = math.exp(float(np.average(log_theirs, weights=weights)))
    return CpuComparison(challenger_ms / champion_ms, challenger_ms, champion_ms, calls,
                         len(shared))


def _sizes(found: Mapping[int, object]) -> str:
    sizes = sorted(found)
    shown = ", ".join(str(b) for b in sizes[:5])
    return shown + (f" and {len(sizes) - 5} more" if len(sizes) > 5 else "")


def median_per_call(cpu_ms: np.ndarray, batch_rows: np.ndarray) -> float | None:
    """The median CPU ms per model call of an arm's rows (n,), each call counted once
    (a row weighs 1 / its batch size); None when no row has it.

    >>> median_per_call(np.array([1.0, 5.0, 5.0, 5.0, np.nan]),
    ...                 np.array([1.0, 3.0, 3.0, 3.0, np.nan]))
    1.0
    """
    cpu = np.asarray(cpu_ms, dtype=float)
    size = np.asarray(batch_rows, dtype=float)
    known = np.isfinite(cpu) & np.isfinite(size) & (size >= 1)
    if not known.any():
        return None
    order = np.argsort(cpu[known], kind="stable")
    values, weights = cpu[known][order], 1.0 / size[known][order]
    cumulative = np.cumsum(weights)
    return float(values[np.searchsorted(cumulative, cumulative[-1] / 2)])


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
