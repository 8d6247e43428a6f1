"""Named leases: one owner at a time, until released or expired.

A lease is a row with an owner and an expiry time; taking it deletes an expired row
first, so an owner that died (SIGKILL, a lost node) frees it within its time to live.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tether.errors import StoreError
from tether.store.connection import Database
from tether.store.schema import locks

__all__ = ["acquire_lock", "lease", "lock_owner", "release_lock"]

log = logging.getLogger("tether.store")


def acquire_lock(db: Database, name: str, owner: str, ttl_seconds: float,
                 clock: Callable[[], float] = time.time) -> bool:
    """Take or renew `name` until `clock() + ttl_seconds`; False when another live owner
    holds it. `clock`: what "now" is for expiry (a replay's simulated time)."""
    now = clock()
    with db.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.expires_at < now))
        updated = conn.execute(locks.update()
                               .where(locks.c.name == name, locks.c.owner == owner)
                               .values(expires_at=now + ttl_seconds))
        if updated.rowcount:
            return True
    try:
        with db.begin() as conn:
            conn.execute(locks.insert().values(name=name, owner=owner,
                                               expires_at=now + ttl_seconds))
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            return False
        raise
    return True


def release_lock(db: Database, name: str, owner: str) -> None:
    with db.begin() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == owner))


def lock_owner(db: Database, name: str, clock: Callable[[], float] = time.time) -> str | None:
    with db.connect() as conn:
        return conn.execute(sa.select(locks.c.owner).where(
            locks.c.name == name, locks.c.expires_at >= clock())).scalar_one_or_none()


@contextmanager
def lease(db: Database, name: str, owner: str, *, ttl_seconds: float,
          wait_seconds: float, clock: Callable[[], float] = time.time) -> Iterator[bool]:
    """Hold `name` for the block, waiting up to `wait_seconds` for it; yields whether it
    was taken. While held it is renewed every third of `ttl_seconds`, so a short time to
    live frees it soon after a holder dies without ending a slow holder's turn."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.02
    while not acquire_lock(db, name, owner, ttl_seconds, clock):
        if time.monotonic() >= deadline:
            yield False
            return
        # jittered, growing pauses: waiters do not take turns hammering the table
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, 0.25)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(db, name, owner, ttl_seconds, stop, clock),
                               name=f"tether-lease-{name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        try:
            release_lock(db, name, owner)
        except StoreError as exc:  # it expires on its own
            log.warning("lease %s: release failed: %s", name, exc)


def _renew(db: Database, name: str, owner: str, ttl_seconds: float,
           stop: threading.Event, clock: Callable[[], float]) -> None:
    while not stop.wait(ttl_seconds / 3):
        try:
            if not acquire_lock(db, name, owner, ttl_seconds, clock):
                log.warning("lease %s: lost to %s", name, lock_owner(db, name, clock))
                return
        except StoreError as exc:
            log.warning("lease %s: renewal failed: %s", name, exc)
