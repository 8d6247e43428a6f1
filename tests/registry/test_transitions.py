"""Every transition's plan, and every crash inside it, on the pure state model: after any
prefix of a plan's writes, repair leaves no problem and never serves a version nobody
chose. No MLflow here; tests/registry/test_facade.py runs the plans on a real registry."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.registry.states import CANARY, registry
from tether.errors import InvalidTransition, NothingToRollBack, RegistryConflict
from tether.registry import RegistryState, RolloutSpec, State
from tether.registry import transitions as t
from tether.registry.invariants import find_problems, plan_repair

# (name, state before, plan, champion after the whole plan)
PLANS: list[tuple[str, RegistryState, Callable[[RegistryState], list[t.Write]], int]] = [
    ("promote", registry(1, v1="champion", v2="candidate"),
     lambda s: t.promote(s, 2, "better"), 2),
    ("promote over a previous", registry(2, previous=1, v1="retired", v2="champion",
                                         v3="candidate"),
     lambda s: t.promote(s, 3, "better"), 3),
    ("promote the challenger", registry(1, challenger=3, rollout=CANARY, v1="champion",
                                        v3="canary"),
     lambda s: t.promote(s, 3, "canary passed"), 3),
    ("promote during another rollout", registry(1, challenger=3, rollout=CANARY,
                                                v1="champion", v2="candidate", v3="canary"),
     lambda s: t.promote(s, 2, "by hand"), 2),
    ("rollback", registry(2, previous=1, v1="retired", v2="champion"),
     lambda s: t.rollback(s, "worse")[2], 1),
    ("rollback during a rollout", registry(2, previous=1, challenger=3,
                                           rollout=CANARY, v1="retired", v2="champion",
                                           v3="canary"),
     lambda s: t.rollback(s, "worse")[2], 1),
    ("start a canary", registry(1, v1="champion", v3="candidate"),
     lambda s: t.start_rollout(s, CANARY, "canary"), 1),
    ("next canary step", registry(1, challenger=3, rollout=CANARY, v1="champion",
                                  v3="canary"),
     lambda s: t.update_rollout(s, RolloutSpec(3, "canary", 0.5, 1, 0.0), "step"), 1),
    ("stop a canary", registry(1, challenger=3, rollout=CANARY, v1="champion", v3="canary"),
     lambda s: t.stop_rollout(s, State.REJECTED, "worse")[1], 1),
]


@pytest.mark.parametrize("name, before, plan, champion", PLANS, ids=[p[0] for p in PLANS])
def test_every_crash_point_of_every_plan_is_repaired(
        name: str, before: RegistryState, plan: Callable[[RegistryState], list[t.Write]],
        champion: int) -> None:
    assert find_problems(before) == []
    writes = plan(before)
    after = t.apply(before, writes)
    assert find_problems(after) == [] and after.champion == champion
    tagged = [v.version for v in after.versions if v.state == State.CHAMPION]
    assert tagged == [champion]
    for cut in range(len(writes) + 1):
        crashed = t.apply(before, writes[:cut])
        repair = plan_repair(crashed)
        repaired = t.apply(crashed, repair.writes)
        assert repair.left == [] and find_problems(repaired) == [], (cut, repair)
        # the champion is the one before or the one the plan chose, never a third
        assert repaired.champion in (before.champion, champion), (cut, repaired)
        assert [v.version for v in repaired.versions
                if v.state == State.CHAMPION] == [repaired.champion]
        if repaired.previous is not None:
            assert repaired.previous != repaired.champion


def test_invalid_transitions_say_why() -> None:
    state = registry(1, v1="champion", v2="rejected", v3="candidate")
    with pytest.raises(InvalidTransition, match="version 2 was rejected"):
        t.promote(state, 2, "x")
    with pytest.raises(InvalidTransition, match="already the champion"):
        t.promote(state, 1, "x")
    with pytest.raises(NothingToRollBack, match="no previous version"):
        t.rollback(state, "x")
    rolling = t.apply(state, t.start_rollout(state, CANARY, "canary"))
    with pytest.raises(InvalidTransition, match="only one rollout at a time"):
        t.start_rollout(rolling, RolloutSpec(2, "canary", 0.1), "again")
    with pytest.raises(InvalidTransition, match="version 2 is not rolling out"):
        t.update_rollout(rolling, RolloutSpec(2, "canary", 0.5), "step")
    assert t.stop_rollout(state, State.REJECTED, "nothing") == (None, [])


def test_a_plan_on_a_state_that_moved_is_a_conflict_naming_the_change() -> None:
    read = registry(1, v1="champion", v2="candidate", v3="candidate")
    moved = t.apply(read, t.promote(read, 3, "first"))
    with pytest.raises(RegistryConflict) as caught:
        t.check_expected(read, moved, "promoting version 2")
    assert str(caught.value) == ("champion and previous changed while promoting version 2 "
                                 "(champion 1 -> 3, previous - -> 1); retry")
    t.check_expected(moved, moved, "promoting version 2")  # unchanged: no conflict
    stepped = t.apply(moved, [t.SetRollout(CANARY)])
    with pytest.raises(RegistryConflict, match=r"^rollout changed while x \(- -> canary 10% "
                                               r"to version 3 \(step 0\)\); retry$"):
        t.check_expected(moved, stepped, "x")
