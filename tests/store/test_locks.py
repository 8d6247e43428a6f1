"""Named leases: one owner at a time, until released or expired; held while in use."""

from __future__ import annotations

import threading
import time

from tether.store import Store


def test_lock_is_exclusive_until_released_or_expired(store: Store) -> None:
    assert store.acquire_lock("rollout", "one", ttl_seconds=30)
    assert not store.acquire_lock("rollout", "two", ttl_seconds=30)
    assert store.acquire_lock("rollout", "one", ttl_seconds=30)  # renewal
    assert store.lock_owner("rollout") == "one"
    store.release_lock("rollout", "one")
    assert store.acquire_lock("rollout", "two", ttl_seconds=0.01)
    time.sleep(0.05)
    assert store.lock_owner("rollout") is None
    assert store.acquire_lock("rollout", "one", ttl_seconds=30)


def test_a_lease_waits_for_the_holder_and_is_released_after_the_block(store: Store) -> None:
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with store.lease("registry/m", "first", ttl_seconds=30, wait_seconds=5) as held:
            assert held
            first_holds.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    first_holds.wait(5)
    with store.lease("registry/m", "second", ttl_seconds=30, wait_seconds=30) as held:
        order.append("second holds")
        assert held and store.lock_owner("registry/m") == "second"
    thread.join()
    assert order == ["first done", "second holds"]
    assert store.lock_owner("registry/m") is None


def test_a_lease_held_past_the_wait_is_not_taken(store: Store) -> None:
    assert store.acquire_lock("registry/m", "someone", ttl_seconds=30)
    with store.lease("registry/m", "me", ttl_seconds=30, wait_seconds=0.2) as held:
        assert not held
    assert store.lock_owner("registry/m") == "someone"  # and nobody released it


def test_a_lease_outlives_its_time_to_live_while_held(store: Store) -> None:
    with store.lease("registry/m", "slow", ttl_seconds=1.5, wait_seconds=1) as held:
        assert held
        time.sleep(4.0)  # more than twice its time to live: renewed every 0.5 s meanwhile
        assert not store.acquire_lock("registry/m", "other", ttl_seconds=30)


def test_a_dead_holders_lease_is_taken_once_it_expires(store: Store) -> None:
    assert store.acquire_lock("registry/m", "killed", ttl_seconds=0.2)  # never released
    with store.lease("registry/m", "next", ttl_seconds=30, wait_seconds=10) as held:
        assert held and store.lock_owner("registry/m") == "next"
