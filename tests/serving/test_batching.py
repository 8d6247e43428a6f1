"""Adaptive micro-batching: concurrent requests share model calls; a bad one fails alone."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pandas as pd
import pytest

from tether.serving.batching import MicroBatcher, ModelCallFailed, Prediction


class SlowModel:
    """Doubles column a; takes 20 ms a call; refuses negative values."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, frame: pd.DataFrame) -> Prediction:
        time.sleep(0.02)
        if (frame["a"] < 0).any():
            raise ValueError("negative a")
        self.calls.append(len(frame))
        return Prediction(frame["a"].to_numpy() * 2)


def test_concurrent_requests_share_model_calls_and_get_their_own_rows() -> None:
    model = SlowModel()
    batcher = MicroBatcher(model, ["a"], max_rows=64)

    async def scenario() -> list[Prediction]:
        return await asyncio.gather(*[
            batcher.submit(np.array([[float(i)], [float(i) + 0.5]])) for i in range(40)])

    try:
        results = asyncio.run(scenario())
    finally:
        batcher.close()
    assert [r.values.tolist() for r in results] == [[2.0 * i, 2.0 * i + 1] for i in range(40)]
    assert sum(model.calls) == 80
    assert len(model.calls) <= 4  # the first call runs alone, the rest queue behind it
    assert max(model.calls) <= 64


def test_a_failing_request_fails_alone() -> None:
    model = SlowModel()
    batcher = MicroBatcher(model, ["a"], max_rows=64)

    async def scenario() -> list[Prediction | BaseException]:
        return await asyncio.gather(
            *[batcher.submit(np.array([[-1.0 if i == 5 else float(i)]])) for i in range(10)],
            return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        batcher.close()
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [5]
    assert isinstance(results[5], ModelCallFailed) and "negative a" in str(results[5])
    assert [r.values.tolist() for r in results if isinstance(r, Prediction)] == [
        [2.0 * i] for i in range(10) if i != 5]


def test_clients_that_come_back_at_different_moments_share_one_call() -> None:
    """Four clients answered together resend 0-15 ms apart: each batch waits for all four
    (it saw four outstanding at once), however slow the machine (the wait ends when they
    are there, not on a clock: `max_wait_s` is far longer than any test)."""
    model = SlowModel()
    batcher = MicroBatcher(model, ["a"], max_rows=64, max_wait_s=60.0)

    async def scenario() -> None:
        async def client(i: int) -> None:
            for _ in range(3):
                await batcher.submit(np.array([[float(i)]]))
                await asyncio.sleep(0.005 * i)

        await asyncio.gather(*[client(i) for i in range(4)])

    try:
        asyncio.run(scenario())
    finally:
        batcher.close()
    assert model.calls == [4, 4, 4]


def test_a_lone_client_is_never_held() -> None:
    """One client at a time: no batch waits (with a 60 s `max_wait_s`, a wait would hold
    this test for minutes)."""
    model = SlowModel()
    batcher = MicroBatcher(model, ["a"], max_rows=64, max_wait_s=60.0)

    async def scenario() -> None:
        for i in range(5):
            await batcher.submit(np.array([[float(i)]]))

    started = time.monotonic()
    try:
        asyncio.run(scenario())
    finally:
        batcher.close()
    assert model.calls == [1] * 5
    assert time.monotonic() - started < 30


def test_max_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_rows must be at least 1"):
        MicroBatcher(SlowModel(), ["a"], max_rows=0)


def test_model_calls_run_with_the_thread_limit_and_leave_other_threads_alone() -> None:
    """An OpenMP model called from the batcher uses `threads` threads (threadpoolctl);
    the limit is the model thread's, not the process's."""
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime sklearn ships)
    from threadpoolctl import threadpool_info

    def openmp_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info()
                if pool["user_api"] == "openmp"}

    outside = openmp_threads()
    seen: list[set[int]] = []

    def call(frame: pd.DataFrame) -> Prediction:
        seen.append(openmp_threads())
        return Prediction(np.zeros(len(frame)))

    limited = MicroBatcher(call, ["x"], threads=1)
    free = MicroBatcher(call, ["x"], threads=None)
    try:
        limited.run_now(np.zeros((1, 1)))
        free.run_now(np.zeros((1, 1)))
    finally:
        limited.close()
        free.close()
    assert outside, "no OpenMP runtime loaded"
    assert seen[0] == {1}
    assert seen[1] == outside and openmp_threads() == outside


def test_every_request_carries_its_batch_s_model_cpu_time_and_size() -> None:
    """The CPU time is the model thread's work during the call, not its waiting: a model
    that sleeps 20 ms costs next to nothing, one that computes for 20 ms of CPU costs
    at least that; every request of a batch carries the batch's figures."""
    sleeps = SlowModel()
    computed: list[int] = []

    def computes(frame: pd.DataFrame) -> Prediction:
        began = time.thread_time()
        while time.thread_time() - began < 0.02:
            pass
        computed.append(len(frame))
        return Prediction(np.zeros(len(frame)))

    async def scenario(batcher: MicroBatcher) -> list[Prediction]:
        return await asyncio.gather(*[batcher.submit(np.array([[float(i)]] * (1 + i % 2)))
                                      for i in range(12)])

    found = {}
    for name, model, calls in (("sleeps", sleeps, sleeps.calls),
                               ("computes", computes, computed)):
        batcher = MicroBatcher(model, ["a"], max_rows=64)
        try:
            results = asyncio.run(scenario(batcher))
        finally:
            batcher.close()
        # rows answered by calls of each size: exactly that size times its calls
        rows_by_size: dict[int, int] = {}
        for result in results:
            rows_by_size[result.batch_rows] = rows_by_size.get(result.batch_rows, 0) + \
                len(result.values)
        assert rows_by_size == {size: size * calls.count(size) for size in set(calls)}
        assert sum(calls) == 18
        found[name] = [result.model_cpu_ms for result in results]
    assert max(found["sleeps"]) < 10.0
    assert min(found["computes"]) >= 20.0
