"""A bounded open-loop load: `rate` requests per second for `seconds`, then it stops.

Unlike wrk (closed loop: each connection waits for its answer before sending again), the
sender keeps to its schedule whatever the server does, so a server that falls behind
shows it as queueing in the latencies instead of as a lower request rate. Latency is
measured from the moment a request was due, not from when it went out, so the sender's
own lag is never hidden (no coordinated omission). A request fails on a non-2xx answer,
a transport error or no answer within `timeout` seconds. Loopback only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass
class SoakResult:
    seconds: float
    sent: int
    ok: int
    failed: int
    latencies_ms: list[float] = field(repr=False)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


async def _soak(url: str, body: bytes, rate: float, seconds: float, timeout: float,
                max_connections: int) -> SoakResult:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def one(due: float) -> None:
            try:
                answer = await client.post(url, content=body, headers=headers)
                if answer.status_code >= 300:
                    failures[f"HTTP {answer.status_code}"] += 1
                    return
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
                return
            latencies.append((loop.time() - due) * 1000.0)

        total = int(rate * seconds)
        start = loop.time()
        tasks = []
        report_every = max(int(rate * 60), 1)
        for i in range(total):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
            if i and i % report_every == 0:
                print(f"    {i / rate:4.0f} s: {len(latencies)} answered, "
                      f"{sum(failures.values())} failed", flush=True)
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    return SoakResult(seconds=elapsed, sent=total, ok=len(latencies),
                      failed=sum(failures.values()), latencies_ms=latencies, failures=failures)


def run(url: str, body: bytes, rate: float, seconds: float, timeout: float = 10.0,
        max_connections: int = 512) -> SoakResult:
    """POST `body` to `url` at `rate` per second for `seconds` (bounded in count and time)."""
    started = time.perf_counter()
    result = asyncio.run(_soak(url, body, rate, seconds, timeout, max_connections))
    print(f"    done in {time.perf_counter() - started:.0f} s: {result.ok} ok, "
          f"{result.failed} failed", flush=True)
    return result


def table(rows: list[tuple[str, SoakResult]]) -> str:
    base = dict(rows).get("minimal")
    lines = ["| server | sent | ok | failed | req/s | p50 ms | p99 ms | max ms | "
             "p99 vs minimal | failures |", "|---|---|---|---|---|---|---|---|---|---|"]
    for server, r in rows:
        ratio = (f"{r.percentile(99) / base.percentile(99):.2f}"
                 if base is not None and base.latencies_ms else "-")
        kinds = ", ".join(f"{k} {v}" for k, v in r.failures.most_common()) or "-"
        lines.append(f"| {server} | {r.sent} | {r.ok} | {r.failed} | {r.rps:.1f} | "
                     f"{r.percentile(50):.1f} | {r.percentile(99):.1f} | "
                     f"{max(r.latencies_ms, default=float('nan')):.1f} | {ratio} | {kinds} |")
    return "\n".join(lines)
