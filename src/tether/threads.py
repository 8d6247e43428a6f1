"""Thread pools sized on purpose.

Native libraries (OpenMP in scikit-learn's gradient boosting, BLAS in numpy) start one
thread per core by default. On a shared machine that is the wrong size twice over: a
one-row predict spread over every core waits for the slowest of them (measured on a
busy 2-core machine: the example's HistGradientBoosting answered one row in p50
1,212 ms with its default threads and in 7 ms with one), and a training job that takes
every core starves the server running beside it in `tether up`.

So tether sets the size with threadpoolctl wherever it calls a model:

- timing a model (the gate's latency checks): one thread, as one request is served;
- serving: each version's model thread, `serving.model_threads` (1): the server is
  already parallel (event loop, model thread, log writer), so a call must not be too;
- training and scoring held-out rows: every CPU this process may use but one (at least
  one), or `TETHER_TRAINING_THREADS` when set;
- profiling and drift-checking large data (`map_columns`): one column per available
  CPU, since numpy's sort and reductions run without the GIL.

>>> with limited(1):
...     pass
>>> training_threads({"TETHER_TRAINING_THREADS": "3"})
3
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from tether.errors import ConfigError

__all__ = ["available_cpus", "limit_this_thread", "limited", "map_columns", "training_threads"]

Item = TypeVar("Item")
Result = TypeVar("Result")
# Below this many cells (rows x columns) starting threads costs more than it saves.
PARALLEL_CELLS = 1_000_000


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def training_threads(environ: Mapping[str, str] | None = None) -> int:
    """Threads for training and batch scoring: `TETHER_TRAINING_THREADS`, else every
    available CPU but one, at least one."""
    env = os.environ if environ is None else environ
    raw = env.get("TETHER_TRAINING_THREADS")
    if raw:
        try:
            threads = int(raw)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ConfigError(f"TETHER_TRAINING_THREADS: expected a whole number >= 1, "
                              f"got {raw!r}")
        return threads
    return max(1, available_cpus() - 1)


@contextmanager
def limited(threads: int) -> Iterator[None]:
    """Run the block with native thread pools (OpenMP, BLAS) of at most `threads`."""
    from threadpoolctl import threadpool_limits  # 16 ms: not for `tether drift`

    with threadpool_limits(limits=threads):
        yield


def limit_this_thread(threads: int | None) -> None:
    """Cap native thread pools for every call this thread makes from now on (a
    server's model thread); None leaves the libraries' defaults. OpenMP's limit belongs
    to the calling thread; BLAS libraries (OpenBLAS, MKL) have one per process."""
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)


def map_columns(work: Callable[[Item], Result], columns: Sequence[Item], *,
                rows: int) -> list[Result]:
    """`[work(c) for c in columns]`, in that order, one column per available CPU when
    the data has at least `PARALLEL_CELLS` cells (`rows` x columns). `work` must not
    touch shared state; the first exception it raises is raised here."""
    workers = min(available_cpus(), len(columns))
    if workers < 2 or rows * len(columns) < PARALLEL_CELLS:
        return [work(column) for column in columns]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tether-columns") as pool:
        return list(pool.map(work, columns))
