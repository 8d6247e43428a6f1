"""Where the ServerApp reports to: a one-run HTTP endpoint with a one-run token.

The ServerApp POSTs JSON reports (`sites`, `round`, `final`, `failed`, `summaries`) to
`url` with `Authorization: Bearer <token>`; each accepted report is queued for the
driver. A report without the token, too large, or not a JSON object is refused with a
4xx and never queued. The standard library's threading HTTP server is enough here: a
few requests per round, on one port that lives as long as the run.
"""

from __future__ import annotations

import hmac
import json
import queue
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["MAX_REPORT_BYTES", "ReportReceiver"]

MAX_REPORT_BYTES = 64 * 1024 * 1024
KINDS = frozenset({"sites", "round", "final", "failed", "summaries"})


class ReportReceiver:
    """Listens on `host` (a free port) until closed; `get()` returns the next report."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 advertise: str | None = None) -> None:
        self.token = secrets.token_urlsafe(32)
        self.reports: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # the run's events and metrics are the log

            def _answer(self, status: HTTPStatus, message: str = "") -> None:
                body = json.dumps({"error": status.phrase.lower().replace(" ", "_"),
                                   "message": message} if status >= 400 else
                                  {"accepted": True}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                if self.path != "/report":
                    return self._answer(HTTPStatus.NOT_FOUND, f"no route {self.path}")
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if not hmac.compare_digest(given.encode(), receiver.token.encode()):
                    return self._answer(HTTPStatus.UNAUTHORIZED, "missing or wrong run token")
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    return self._answer(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
                if length > MAX_REPORT_BYTES:
                    return self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                        f"report of {length} bytes > {MAX_REPORT_BYTES}")
                try:
                    report = json.loads(self.rfile.read(length))
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                    return self._answer(HTTPStatus.BAD_REQUEST, "body is not JSON")
                if not isinstance(report, dict) or report.get("kind") not in KINDS:
                    return self._answer(HTTPStatus.UNPROCESSABLE_ENTITY,
                                        f"expected an object with kind in {sorted(KINDS)}")
                receiver.reports.put(report)
                return self._answer(HTTPStatus.ACCEPTED)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        bound_port = int(self._server.server_address[1])
        self.url = f"http://{advertise or host}:{bound_port}/report"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="tether-federated-reports", daemon=True)

    def __enter__(self) -> ReportReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def get(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.reports.get(timeout=timeout)
        except queue.Empty:
            return None
