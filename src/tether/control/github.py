"""Hand a trigger to CI: GitHub's `repository_dispatch`, as the workflows in
`deploy/github/workflows/` expect."""

from __future__ import annotations

import re
from typing import Any

from tether.errors import ConfigError, TetherError

__all__ = ["DEFAULT_API_URL", "DispatchFailed", "dispatch"]

DEFAULT_API_URL = "https://api.github.com"
REPO_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class DispatchFailed(TetherError):
    exit_code = 7
    status_code = 502


def dispatch(repo: str, token: str | None, event_type: str, client_payload: dict[str, Any],
             *, api_url: str = DEFAULT_API_URL, timeout: float = 10.0) -> None:
    """POST /repos/{repo}/dispatches; GitHub answers 204 when the workflow is queued."""
    if not REPO_PATTERN.match(repo):
        raise ConfigError(f"--github {repo!r}: expected OWNER/REPO")
    if not token:
        raise ConfigError("no GitHub token: set TETHER_GITHUB_TOKEN (a token with the repo "
                          "scope, or a fine-grained token with contents: write)")
    import httpx  # here: `tether trigger --help` and the CLI's import need no HTTP client

    url = f"{api_url.rstrip('/')}/repos/{repo}/dispatches"
    try:
        response = httpx.post(
            url,
            json={"event_type": event_type, "client_payload": client_payload},
            headers={"Authorization": f"Bearer {token}",
                     "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise DispatchFailed(f"repository_dispatch to {repo}: {type(exc).__name__}: "
                             f"{exc}") from exc
    if response.status_code != 204:
        detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        raise DispatchFailed(f"repository_dispatch to {repo}: GitHub answered "
                             f"{response.status_code} {detail}".rstrip())
