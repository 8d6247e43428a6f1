"""What a crash of `tether serve` loses, on a real process killed with a real signal.

With `serving.durability: ids` (the default) or `acked` an answered `/predict`
prediction is in the store before its answer leaves, so SIGKILL (an OOM kill, a lost
node) loses none; with
`batched` a graceful stop (SIGTERM) writes everything queued. Labels sent afterwards for
every acknowledged id are all accepted."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from tests.serving.conftest import records
from tests.serving.processes import Tether
from tether.project import Project

ACKNOWLEDGED = 300


async def predict_until(url: str, rows: list[dict[str, float]], count: int,
                        process: Tether, sig: int) -> list[str]:
    """1-row /predict from 8 clients; send `sig` as soon as `count` were answered."""
    acked: list[str] = []
    killed = asyncio.Event()

    async def client(http: httpx.AsyncClient, offset: int) -> None:
        i = offset
        while not killed.is_set():
            try:
                answer = await http.post("/predict",
                                         json={"dataframe_records": [rows[i % len(rows)]]})
            except httpx.HTTPError:
                continue
            i += 8
            if answer.status_code == 200 and not killed.is_set():
                acked.extend(answer.json()["ids"])
                if len(acked) >= count:
                    process.process.send_signal(sig)
                    killed.set()

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await asyncio.gather(*(client(http, k) for k in range(8)))
    return acked


def set_durability(project: Project, durability: str) -> None:
    path = project.config.path
    policy = yaml.safe_load(path.read_text())
    policy.setdefault("serving", {})["durability"] = durability
    path.write_text(yaml.safe_dump(policy, sort_keys=False))


@pytest.mark.slow
@pytest.mark.parametrize(("durability", "sig"), [("ids", signal.SIGKILL),
                                                 ("acked", signal.SIGKILL),
                                                 ("batched", signal.SIGTERM)])
def test_no_acknowledged_prediction_is_lost(
        project: Project, versions: dict[str, int], cancer: tuple[pd.DataFrame, pd.Series],
        durability: str, sig: int) -> None:
    set_durability(project, durability)
    folder: Path = project.config.path.parent
    server = Tether(folder)
    try:
        server.wait_ready()
        rows = records(cancer[0], 200)
        acked = asyncio.run(predict_until(server.url, rows, ACKNOWLEDGED, server, sig))
        server.process.wait(60)
    finally:
        server.stop()
    assert len(acked) >= ACKNOWLEDGED
    store = Project.open(project.config.path).store
    result = store.add_feedback([(pid, 1.0) for pid in acked])
    assert result.unknown_ids == [], (
        f"{len(result.unknown_ids)} of {len(acked)} acknowledged predictions lost "
        f"after {signal.Signals(sig).name} with durability {durability}")
    assert result.accepted == len(acked)
