"""A bounded open-loop load: `rate` requests per second for `seconds`, then it stops.

Unlike wrk (closed loop: each connection waits for its answer before sending again), the
schedule does not slow down when the server does: requests fall due at a fixed rate and
wait in the client's queue for one of `connections` keep-alive connections, as users'
requests would. Latency is measured from the moment a request fell due, so queueing
shows (no coordinated omission). A request fails on a non-2xx answer, a broken
connection, or no answer within `timeout` seconds of falling due (then it is dropped,
as a client with that timeout would). The sender is a plain asyncio HTTP/1.1 client, so
that it stays far below one core at a few hundred requests per second. Loopback only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


@dataclass
class SoakResult:
    seconds: float
    sent: int
    ok: int
    failed: int
    latencies_ms: list[float] = field(repr=False)
    failures: Counter[str] = field(default_factory=Counter)
    sender_lag_ms: float = 0.0   # worst lateness of the schedule itself (should be ~0)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


class _Connection:
    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _soak(url: str, body: bytes, rate: float, seconds: float, timeout: float,
                connections: int) -> SoakResult:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    request = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    due_queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    async def worker() -> None:
        connection = _Connection(parts.hostname or "127.0.0.1", parts.port or 80, request)
        while (due := await due_queue.get()) is not None:
            left = due + timeout - loop.time()
            if left <= 0:
                failures["no answer in time (queued)"] += 1
                continue
            try:
                status = await asyncio.wait_for(connection.post(), left)
            except TimeoutError:
                failures["no answer in time"] += 1
                connection.close()
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                failures[type(exc).__name__] += 1
                connection.close()
                continue
            if status >= 300:
                failures[f"HTTP {status}"] += 1
            else:
                latencies.append((loop.time() - due) * 1000.0)
        connection.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    total = int(rate * seconds)
    start = loop.time()
    lag = 0.0
    report_every = max(int(rate * 60), 1)
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = max(lag, loop.time() - due)
        due_queue.put_nowait(due)
        if i and i % report_every == 0:
            print(f"    {i / rate:4.0f} s: {len(latencies)} answered, "
                  f"{sum(failures.values())} failed", flush=True)
    for _ in workers:
        due_queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = loop.time() - start
    return SoakResult(seconds=elapsed, sent=total, ok=len(latencies),
                      failed=sum(failures.values()), latencies_ms=latencies, failures=failures,
                      sender_lag_ms=lag * 1000.0)


def run(url: str, body: bytes, rate: float, seconds: float, timeout: float = 10.0,
        connections: int = 64) -> SoakResult:
    """POST `body` to `url` at `rate` per second for `seconds` (bounded in count and time:
    at most `seconds` + `timeout` seconds)."""
    started = time.perf_counter()
    result = asyncio.run(_soak(url, body, rate, seconds, timeout, connections))
    print(f"    done in {time.perf_counter() - started:.0f} s: {result.ok} ok, "
          f"{result.failed} failed", flush=True)
    return result


def table(rows: list[tuple[str, SoakResult]]) -> str:
    base = dict(rows).get("minimal")
    lines = ["| server | sent | ok | failed | ok req/s | p50 ms | p99 ms | max ms | "
             "p99 vs minimal | failures | sender lag ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for server, r in rows:
        ratio = (f"{r.percentile(99) / base.percentile(99):.2f}"
                 if base is not None and base.latencies_ms and r.latencies_ms else "-")
        kinds = ", ".join(f"{k} {v}" for k, v in r.failures.most_common()) or "-"
        lines.append(f"| {server} | {r.sent} | {r.ok} | {r.failed} | {r.rps:.1f} | "
                     f"{r.percentile(50):.1f} | {r.percentile(99):.1f} | "
                     f"{max(r.latencies_ms, default=float('nan')):.1f} | {ratio} | {kinds} | "
                     f"{r.sender_lag_ms:.1f} |")
    return "\n".join(lines)
