"""Where a champion came from decides what may roll it back on probation: the event log
(a real store) says whether its promotion ended a canary."""

from __future__ import annotations

from tether.control.observe import _came_through_a_canary
from tether.events import EventKind
from tether.project import Project


def test_a_promotion_that_ended_a_canary_is_told_from_one_by_hand(project: Project) -> None:
    record = project.record
    record(EventKind.ROLLOUT_STARTED, "canary step 0", version=2, ts=100.0)
    record(EventKind.ROLLOUT_STEP, "step 0 passed", version=2, ts=110.0)
    canaried = record(EventKind.PROMOTED, "canary passed all 1 steps", version=2, ts=110.0)
    assert _came_through_a_canary(project, canaried)

    by_hand = record(EventKind.PROMOTED, "promoted by hand", version=3, ts=120.0)
    assert not _came_through_a_canary(project, by_hand)

    # a canary of another version that passed a step, then a hand promotion
    record(EventKind.ROLLOUT_STARTED, "canary step 0", version=4, ts=130.0)
    record(EventKind.ROLLOUT_STEP, "step 0 passed", version=4, ts=140.0)
    record(EventKind.ROLLOUT_ABORTED, "worse", version=4, ts=150.0)
    assert not _came_through_a_canary(
        project, record(EventKind.PROMOTED, "by hand", version=5, ts=160.0))
