"""`GET /health?verbose=1`: what a person debugging a replica wants in one document.

What is served and why not, whether the registry answered the server's last read, and
the MLflow versions on both sides (this process's client, and the tracking server's when
the registry is one). Plain `GET /health` stays MLflow's liveness answer.

>>> redact("http://alice:s3cret@mlflow.internal:5000/")
'http://alice:***@mlflow.internal:5000/'
>>> redact("sqlite:////data/mlflow.db")
'sqlite:////data/mlflow.db'
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tether import __version__
from tether.config import ServingPolicy
from tether.project import Project
from tether.registry import mlflow_version

if TYPE_CHECKING:
    from tether.serving.server import ModelServer

__all__ = ["TRUE_WORDS", "HealthReport", "redact"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
SERVER_VERSION_TIMEOUT_SECONDS = 2.0
SERVER_VERSION_TTL_SECONDS = 60.0


def redact(uri: str) -> str:
    """The URI without its password, for a document anyone who reaches /health reads."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class HealthReport:
    """Builds the verbose health document; asks an MLflow tracking server for its
    version at most once a minute, with a short timeout."""

    def __init__(self, project: Project, options: ServingPolicy) -> None:
        self.project = project
        self.options = options
        self._server_version: str | None = None
        self._asked_at = float("-inf")

    async def document(self, server: ModelServer) -> dict[str, Any]:
        snapshot = server.snapshot()
        registry = snapshot["registry"]
        ready = bool(snapshot["ready"])
        if not ready:
            status = "not_ready"
        elif registry is not None and registry["reachable"] is False:
            status = "degraded"  # serving what is loaded; cannot follow the registry
        else:
            status = "ok"
        document: dict[str, Any] = {
            "status": status,
            "ready": ready,
            "reason": snapshot["reason"],
            "model": snapshot["model"],
            "source": snapshot["source"],
            "versions": snapshot["served"],
            "loaded": snapshot["loaded"],
            "failed": snapshot["failed"],
            "last_reload": snapshot["last_reload"],
            "tether": __version__,
            "mlflow": {"client_version": mlflow_version(), "server_version": None},
            "prediction_log": {"durability": self.options.durability.value,
                               "queued_rows": server.predlog.depth},
        }
        if registry is not None:
            uri = self.project.settings.registry_uri
            server_version = await self._tracking_server_version(uri, registry["reachable"])
            document["registry"] = {"uri": redact(uri), **registry}
            document["mlflow"]["server_version"] = server_version
        return document

    async def _tracking_server_version(self, uri: str, reachable: bool | None) -> str | None:
        if not uri.startswith(("http://", "https://")) or reachable is not True:
            return self._server_version
        if time.monotonic() - self._asked_at < SERVER_VERSION_TTL_SECONDS:
            return self._server_version
        self._asked_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=SERVER_VERSION_TIMEOUT_SECONDS) as client:
                answer = await client.get(f"{uri.rstrip('/')}/version")
            if answer.status_code == 200:
                self._server_version = answer.text.strip() or None
        except httpx.HTTPError:
            pass  # the registry's reachability is reported from the server's reads
        return self._server_version
