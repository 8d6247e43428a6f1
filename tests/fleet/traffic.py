"""Bounded traffic through the load balancer: loan applications posted to `/predict` by a
few keep-alive clients at a capped rate, their labels sent to `/feedback` later, and
every answer recorded (status or socket error, the version and route that answered)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import httpx

from tether.demo.traffic import World
from tether.example.loans import TARGET, generate


@dataclass(frozen=True, slots=True)
class Answer:
    at: float  # time.monotonic() when the answer came
    status: int  # 0: a socket error, no HTTP answer
    version: int | None
    route: str | None
    error: str | None = None


class Traffic:
    """`clients` threads posting `batch_rows` rows per request at most `rate` requests
    per second in all; labels follow `label_delay` seconds later."""

    def __init__(self, base_url: str, *, clients: int = 2, batch_rows: int = 20,
                 rate: float = 30.0, label_delay: float = 0.5, seed: int = 1000) -> None:
        self.base_url = base_url
        self.clients = clients
        self.batch_rows = batch_rows
        self.rate = rate
        self.label_delay = label_delay
        self.world = World()
        self.answers: list[Answer] = []
        self.labels_sent = 0
        self._seed = seed
        self._lock = threading.Lock()
        self._pending: deque[tuple[float, list[tuple[str, int]]]] = deque()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._client, daemon=True,
                                          name=f"fleet-client-{i}")
                         for i in range(self.clients)]
        self._threads.append(threading.Thread(target=self._labeler, daemon=True,
                                              name="fleet-labels"))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._send_labels(flush=True)

    def since(self, start: float, end: float | None = None) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.at >= start and (end is None or a.at < end)]

    def _next_seed(self) -> int:
        with self._lock:
            self._seed += 1
            return self._seed

    def _client(self) -> None:
        interval = self.clients / self.rate
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                world = self.world
                frame = generate(n=self.batch_rows, seed=self._next_seed(), shift=world.shift,
                                 concept=world.concept, label_noise=world.label_noise)
                features = frame.drop(columns=[TARGET])
                body = {"dataframe_split": {"columns": list(features.columns),
                                            "data": features.to_numpy().tolist()}}
                try:
                    response = client.post("/predict", json=body)
                except httpx.TransportError as exc:
                    self._record(Answer(time.monotonic(), 0, None, None, type(exc).__name__))
                    continue
                version = response.headers.get("x-model-version")
                answer = Answer(time.monotonic(), response.status_code,
                                int(version) if version else None,
                                response.headers.get("x-model-route"),
                                None if response.is_success else response.text[:200])
                self._record(answer)
                if response.is_success:
                    outcomes = list(zip(response.json()["ids"],
                                        frame[TARGET].astype(int), strict=True))
                    with self._lock:
                        self._pending.append((time.monotonic() + self.label_delay, outcomes))
                pause = interval - (time.monotonic() - started)
                if pause > 0:
                    self._stop.wait(pause)

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def _labeler(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.wait(0.2):
                self._send_labels(client)

    def _send_labels(self, client: httpx.Client | None = None, flush: bool = False) -> None:
        now = time.monotonic()
        due: list[tuple[str, int]] = []
        with self._lock:
            while self._pending and (flush or self._pending[0][0] <= now):
                due.extend(self._pending.popleft()[1])
        if not due:
            return
        post = client.post if client is not None else httpx.Client(
            base_url=self.base_url, timeout=30).post
        try:
            post("/feedback", json={"labels": [{"id": pid, "label": int(label)}
                                               for pid, label in due]})
        except httpx.HTTPError:
            return
        self.labels_sent += len(due)
