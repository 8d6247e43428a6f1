"""Tell servers the registry changed, so they reload now instead of at their next poll."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from tether.errors import TetherError

__all__ = ["PushFailed", "http_push"]


class PushFailed(TetherError):
    pass


def http_push(urls: Sequence[str], token: str | None,
              timeout: float = 5.0) -> Callable[[], None]:
    """A push that POSTs /admin/reload to every server at once (each answers when its
    reload is done, so one after the other the last replica would wait for all the
    others); failures are listed together in one PushFailed. A server that does not
    answer within `timeout` seconds fails the push; it still follows at its next poll."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def one(url: str) -> str | None:
        try:
            response = httpx.post(f"{url.rstrip('/')}/admin/reload", headers=headers,
                                  timeout=timeout)
        except httpx.HTTPError as exc:
            return f"{url}: {type(exc).__name__}"
        return f"{url}: HTTP {response.status_code}" if response.status_code >= 300 else None

    def push() -> None:
        if not urls:
            return
        with ThreadPoolExecutor(max_workers=min(len(urls), 32),
                                thread_name_prefix="tether-push") as pool:
            failed = [f for f in pool.map(one, urls) if f is not None]
        if failed:
            raise PushFailed("reload push failed for " + ", ".join(failed))

    return push
