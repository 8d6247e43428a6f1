"""The controller's status: conditions that keep their `since`, persisted in the store
(SQLite, and PostgreSQL when available) as strict JSON."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tether.control import status as st
from tether.control.status import Condition, ControllerStatus, merge
from tether.store import Store


def waiting(since: float, message: str = "labels 3 < min_labels 50",
            version: int | None = 2) -> Condition:
    return Condition(st.ROLLOUT, st.TRUE, st.WAITING_FOR_LABELS, message, since,
                     version=version)


def test_an_unchanged_condition_keeps_since_and_counts_checks() -> None:
    kept = merge(waiting(100.0), waiting(160.0, "labels 9 < min_labels 50"))
    assert (kept.since, kept.checks, kept.message) == (100.0, 2, "labels 9 < min_labels 50")


@pytest.mark.parametrize("changed", [
    Condition(st.ROLLOUT, st.TRUE, st.STEP_PASSED, "passed", 160.0, version=2),
    Condition(st.ROLLOUT, st.FALSE, st.WAITING_FOR_LABELS, "x", 160.0, version=2),
    waiting(160.0, version=3),
])
def test_a_new_status_reason_or_version_starts_a_new_since(changed: Condition) -> None:
    assert merge(waiting(100.0), changed) == changed


def test_a_status_names_its_statuses() -> None:
    with pytest.raises(ValueError, match="status 'yes' is not one of True, False, Unknown"):
        Condition(st.HEALTHY, "yes", st.PASS_SUCCEEDED, "", 0.0)


def test_the_status_round_trips_through_the_store(store: Store) -> None:
    status = ControllerStatus.empty("m", "a", 100.0).with_conditions(
        [waiting(100.0), Condition(st.HEALTHY, st.TRUE, st.PASS_SUCCEEDED, "ok", 100.0)],
        actions=("wait (rollout): labels 3 < min_labels 50",),
        analysis={"ci_lower": math.nan, "labels": np.array([3, 40]), "p": np.float64(0.5)},
        pruned_at=90.0)
    assert [c.type for c in status.conditions] == [st.HEALTHY, st.ROLLOUT]  # a fixed order
    store.save_status("m", status.as_dict(), ts=status.ts, owner=status.owner)
    raw = store.load_status("m")
    assert raw is not None
    assert raw["analysis"] == {"ci_lower": None, "labels": [3, 40], "p": 0.5}
    loaded = ControllerStatus.from_dict(raw)
    assert loaded.conditions == status.conditions and loaded.pruned_at == 90.0
    later = loaded.with_conditions([waiting(130.0, "labels 7 < min_labels 50")], ts=130.0)
    store.save_status("m", later.as_dict(), ts=later.ts, owner="b")
    again = ControllerStatus.from_dict(store.load_status("m") or {})
    rollout = again.condition(st.ROLLOUT)
    assert rollout is not None and (rollout.since, rollout.checks) == (100.0, 2)
    assert store.load_status("other") is None
