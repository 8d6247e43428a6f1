"""Replay generated loan applications against a running server, labels arriving later.

Clients post batches to `/predict` over real HTTP; each batch's true outcomes are sent
to `/feedback` `label_delay` seconds later, as repayments would be observed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pandas as pd

from tether.example.loans import TARGET, generate

__all__ = ["Replayer", "World"]


@dataclass
class World:
    """How far the world has moved: the generator's knobs."""

    shift: float = 0.0
    concept: float = 0.0
    label_noise: float = 0.0


@dataclass
class Counters:
    rows: int = 0
    labels: int = 0
    failed_requests: int = 0
    by_route: dict[str, int] = field(default_factory=dict)


class Replayer:
    def __init__(self, base_url: str, *, batch_rows: int = 40, clients: int = 2,
                 label_delay: float = 0.5, max_rate_rows: float = 1500.0,
                 seed: int = 100,
                 sample: Callable[[int, int], pd.DataFrame] | None = None,
                 target: str = TARGET) -> None:
        """`sample(rows, seed)` draws a batch with its labels in `target` (default: loan
        applications from `world`)."""
        self.base_url = base_url
        self.sample = sample
        self.target = target
        self.batch_rows = batch_rows
        self.clients = clients
        self.label_delay = label_delay
        self.max_rate_rows = max_rate_rows
        self.world = World()
        self.counters = Counters()
        self._seed = seed
        self._lock = threading.Lock()
        self._pending: deque[tuple[float, list[tuple[str, int]]]] = deque()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True,
                                      name=f"demo-client-{index}")
            thread.start()
            self._threads.append(thread)
        labeler = threading.Thread(target=self._labeler, daemon=True, name="demo-labels")
        labeler.start()
        self._threads.append(labeler)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._send_labels(flush=True)

    def _next_seed(self) -> int:
        with self._lock:
            self._seed += 1
            return self._seed

    def _client(self, index: int) -> None:
        interval = self.batch_rows * self.clients / self.max_rate_rows
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                world = self.world
                if self.sample is not None:
                    frame = self.sample(self.batch_rows, self._next_seed())
                else:
                    frame = generate(n=self.batch_rows, seed=self._next_seed(),
                                     shift=world.shift, concept=world.concept,
                                     label_noise=world.label_noise)
                features = frame.drop(columns=[self.target])
                body = {"dataframe_split": {"columns": list(features.columns),
                                            "data": features.to_numpy().tolist()}}
                try:
                    response = client.post("/predict", json=body)
                except httpx.HTTPError:
                    self.counters.failed_requests += 1
                    continue
                if response.status_code != 200:
                    self.counters.failed_requests += 1
                    continue
                answer = response.json()
                outcomes = list(zip(answer["ids"], frame[self.target].astype(int),
                                    strict=True))
                with self._lock:
                    self.counters.rows += len(outcomes)
                    route = answer.get("route", "champion")
                    self.counters.by_route[route] = self.counters.by_route.get(route, 0) + \
                        len(outcomes)
                    self._pending.append((time.monotonic() + self.label_delay, outcomes))
                pause = interval - (time.monotonic() - started)
                if pause > 0:
                    self._stop.wait(pause)

    def _labeler(self) -> None:
        while not self._stop.wait(0.1):
            self._send_labels()

    def _send_labels(self, flush: bool = False) -> None:
        now = time.monotonic()
        due: list[tuple[str, int]] = []
        with self._lock:
            while self._pending and (flush or self._pending[0][0] <= now):
                due.extend(self._pending.popleft()[1])
        for start in range(0, len(due), 1000):
            chunk = due[start:start + 1000]
            try:
                httpx.post(f"{self.base_url}/feedback", timeout=30, json={
                    "labels": [{"id": pid, "label": int(label)} for pid, label in chunk]})
            except httpx.HTTPError:
                continue
            with self._lock:
                self.counters.labels += len(chunk)
