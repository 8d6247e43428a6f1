"""One table of invariants names problems and plans repairs; a repair never blesses a
version unfit to serve. Pure: no MLflow."""

from __future__ import annotations

from tests.registry.states import registry
from tether.registry import (
    INVARIANTS,
    Evidence,
    RegistryState,
    State,
    find_problems,
    plan_repair,
)
from tether.registry import transitions as t
from tether.registry.invariants import Repair


def _repaired(state: RegistryState, evidence: Evidence = Evidence(),
              ) -> tuple[RegistryState, Repair]:
    plan = plan_repair(state, evidence)
    return t.apply(state, plan.writes), plan


def test_the_registry_state_and_repair_read_the_same_table() -> None:
    state = registry(2, previous=2, challenger=3, v1="champion", v2="candidate", v3="canary")
    problems = find_problems(state)
    assert state.problems == [p.message for p in problems]
    assert {p.invariant for p in problems} <= {i.name for i in INVARIANTS}
    fixed, plan = _repaired(state)
    assert plan.left == [] and fixed.problems == []


def test_an_alias_moved_to_a_version_that_never_passed_a_gate_goes_back() -> None:
    moved = registry(2, v1="champion", v2="candidate", ungated=[2])
    fixed, plan = _repaired(moved)
    assert (fixed.champion, fixed.previous) == (1, None)
    assert [(v.version, v.state) for v in fixed.versions] == [(1, "champion"),
                                                              (2, "rolled_back")]
    assert plan.repaired == ["alias champion back on version 1, the last good champion; "
                             "version 2 tagged rolled_back (it never passed a gate)"]


def test_an_alias_moved_to_a_version_servers_cannot_load_goes_back() -> None:
    state = registry(2, previous=1, v1="retired", v2="champion", v3="candidate")
    moved = t.apply(state, [t.SetAlias("champion", 3)])  # v3 passed its gate
    evidence = Evidence(unloadable={3: "UnpicklingError: pickle data was truncated"})
    fixed, plan = _repaired(moved, evidence)
    assert (fixed.champion, fixed.previous) == (2, 1)
    assert fixed.version(3).state == State.ROLLED_BACK
    assert "servers could not load it (UnpicklingError" in plan.repaired[0]
    # without the servers' report, the same move is a promotion left half-written
    blessed, _ = _repaired(moved)
    assert blessed.champion == 3 and blessed.version(2).state == State.RETIRED


def test_the_last_good_champion_is_the_previous_one_when_the_tagged_one_is_unfit() -> None:
    state = registry(2, previous=1, v1="retired", v2="champion", v3="rejected")
    moved = t.apply(state, [t.SetAlias("champion", 3)])
    fixed, _ = _repaired(moved, Evidence(unloadable={2: "ModuleNotFoundError: xgboost"}))
    assert (fixed.champion, fixed.previous) == (1, None)
    assert [(v.version, v.state) for v in fixed.versions] == [
        (1, "champion"), (2, "retired"), (3, "rejected")]


def test_with_no_version_fit_to_serve_repair_writes_nothing_and_says_who_decides() -> None:
    plan = plan_repair(registry(2, v1="rolled_back", v2="candidate", ungated=[2]))
    assert plan.writes == []
    (left,) = plan.left
    assert left.message.endswith("no version fit to serve is left to restore: promote one "
                                 "with `tether promote --version N`")


def test_champion_tags_without_the_alias_get_it_on_the_newest_fit_one() -> None:
    state = registry(None, v1="retired", v2="champion", v3="champion")
    fixed, plan = _repaired(state, Evidence(unloadable={3: "OSError: no such file"}))
    assert fixed.champion == 2 and fixed.version(3).state == State.RETIRED
    assert plan.repaired == ["alias champion set to 2", "version 3 tagged retired"]


def test_a_version_left_tagged_canary_without_a_rollout_is_a_candidate_again() -> None:
    state = registry(1, v1="champion", v3="canary")
    assert state.problems == ["version 3 is tagged canary but no rollout routes to it"]
    fixed, _ = _repaired(state)
    assert fixed.version(3).state == State.CANDIDATE
