"""Owned labels: a client that knows its own prediction ids learns nothing about others'.

The attack this answers: a victim labels its predictions; an attacker sends one /predict,
derives neighbouring ids from its own (the ids used to be a per-process prefix and a
counter) and relabels the victim's predictions with the opposite class.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import httpx
import pandas as pd
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from tests.serving.conftest import LiveServer, records
from tether.project import Project
from tether.serving import create_app
from tether.serving.ids import IdSource


def _common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))


def test_ids_are_128_random_bits_with_nothing_shared_between_neighbours() -> None:
    source = IdSource()
    ids = [*source.take(500), *(source.key() for _ in range(500)), *source.take(1)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    # a prefix and a counter share 12+ characters between neighbours; 128 random bits
    # share 8 with odds of 1 in 4 billion per pair
    assert max(_common_prefix(a, b) for a, b in itertools.pairwise(ids)) < 8
    # every bit varies: each of the 32 hex positions takes many values across the ids
    assert min(len({i[k] for i in ids}) for k in range(32)) >= 12


def test_an_attacker_cannot_relabel_other_clients_predictions(
        project: Project, versions: dict[str, int], cancer: tuple[pd.DataFrame, pd.Series],
        live: Callable[[Starlette], LiveServer]) -> None:
    features, target = cancer
    app = create_app(Project.open(project.config.path), poll=False,
                     registry=CollectorRegistry())
    with live(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        victim: dict[str, tuple[int, int]] = {}
        for i in range(150):
            answer = client.post("/predict", json={"dataframe_records": records(features, 1, i)})
            victim[answer.json()["ids"][0]] = (answer.json()["predictions"][0],
                                               int(target.iloc[i]))
        labelled = client.post("/feedback", json={"labels": [
            {"id": pid, "label": truth} for pid, (_, truth) in victim.items()]})
        mine = client.post("/predict", json={"dataframe_records": records(features, 1, 200)}
                           ).json()["ids"][0]
        # what one id can teach: its neighbours as numbers, or a prefix and a counter
        number = int(mine.replace("-", ""), 16)
        guesses = {f"{number + k:032x}" for k in range(-2000, 2000) if k}
        head, _, tail = mine.rpartition("-")
        if head:
            guesses |= {f"{head}-{n:012x}" for n in range(int(tail, 16))}
        guesses |= {mine[:-4] + os.urandom(2).hex() for _ in range(2000)}
        guesses.discard(mine)  # labelling one's own prediction is allowed
        hits = sorted(guesses & victim.keys())
        attack = client.post("/feedback", json={"labels": [
            {"id": pid, "label": 1} for pid in sorted(guesses)[:5000]]})
    assert labelled.json()["accepted"] == 150
    assert hits == []
    assert attack.status_code == 200 and attack.json()["accepted"] == 0
    stored = project.store.prediction_window(project.model_name, labeled_only=True)
    truth = {pid: float(t) for pid, (_, t) in victim.items()}
    assert dict(zip(stored["id"], stored["label"], strict=True)) == truth
