"""Tell servers the registry changed, so they reload now instead of at their next poll."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx

from tether.errors import TetherError

__all__ = ["http_push"]


class PushFailed(TetherError):
    pass


def http_push(urls: Sequence[str], token: str | None,
              timeout: float = 5.0) -> Callable[[], None]:
    """A push that POSTs /admin/reload to every server; failures are listed together."""

    def push() -> None:
        failed = []
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for url in urls:
            try:
                response = httpx.post(f"{url.rstrip('/')}/admin/reload", headers=headers,
                                      timeout=timeout)
                if response.status_code >= 300:
                    failed.append(f"{url}: HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                failed.append(f"{url}: {type(exc).__name__}")
        if failed:
            raise PushFailed("reload push failed for " + ", ".join(failed))

    return push
