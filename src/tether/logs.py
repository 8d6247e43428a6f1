"""Log output of every tether process: lines for people, or JSON for a log pipeline.

`configure_logging("json")` makes every record (tether's, uvicorn's, the libraries')
one JSON object per line on stderr, with `time` (ISO 8601, UTC), `level`, `logger`,
`message` and the record's own fields, which is what Loki, Vector or Fluent Bit read
without a parser. `"text"` writes `time level logger: message`.

Records go through a queue to one writer thread, so a request never waits on a write
to stderr (a slow terminal or a full pipe) and the JSON encoding happens off the
request path. The access log (`tether.access`, one record per HTTP request: method,
path, status, latency, model version and route, never the request's features) is on
unless `access_log=False`.

>>> import io, json, logging
>>> stream = io.StringIO()
>>> configure_logging("json", stream=stream)
>>> logging.getLogger("tether.access").info(
...     "POST /predict 200", extra={"status": 200, "model_version": 3})
>>> flush_logs()
>>> record = json.loads(stream.getvalue())
>>> record["level"], record["logger"], record["status"], record["model_version"]
('INFO', 'tether.access', 200, 3)
>>> reset_logging()
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import IO, Any

from tether.errors import ConfigError

__all__ = ["ACCESS_LOGGER", "LOG_FORMATS", "AccessLog", "configure_logging", "flush_logs",
           "log_access", "reset_logging"]

LOG_FORMATS = ("text", "json")
ACCESS_LOGGER = "tether.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# libraries that log freely at INFO; a pipeline wants their warnings, not their chatter
QUIET = ("mlflow", "alembic", "urllib3", "git", "httpx", "httpcore", "botocore", "uvicorn")

_listener: logging.handlers.QueueListener | None = None
_installed: logging.Handler | None = None
_access = logging.getLogger(ACCESS_LOGGER)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]


def log_access(scope: Scope, status: int, seconds: float, version: str | None = None,
               route: str | None = None) -> None:
    """One access-log record for an HTTP request: method, path, status, latency in ms,
    the model version and route that answered (when one did) and the client's address.
    Never a body or a query string. Formatting and writing happen on the log's thread."""
    if not _access.isEnabledFor(logging.INFO):
        return
    latency_ms = round(seconds * 1000.0, 3)
    client = scope.get("client")
    served = f" v{version} {route}" if version else ""
    _access.info("%s %s %d %.1f ms%s", scope["method"], scope["path"], status, latency_ms,
                 served, extra={"method": scope["method"], "path": scope["path"], "status": status,
                        "latency_ms": latency_ms,
                        "model_version": int(version) if version else None,
                        "route": route, "client": client[0] if client else None})


class AccessLog:
    """ASGI middleware writing `log_access` records, for apps without the model server's
    own instrumentation (the controller's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or not _access.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            log_access(scope, status, time.perf_counter() - started)


class _LocalQueueHandler(logging.handlers.QueueHandler):
    """Hands the record itself to the writer thread: the standard handler formats it
    first (for another process), which would put the formatting back on the caller."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when the record is written (a test runner may
    swap it after logging was set up)."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure_logging(log_format: str = "text", level: str = "info", *,
                      access_log: bool = True, stream: IO[str] | None = None) -> None:
    """Send every logger's records to `stream` (stderr) in `log_format`.

    `level` applies to tether's loggers; other libraries log warnings and above.
    Raises ConfigError for an unknown format or level. Calling it again replaces the
    previous setup.
    """
    global _listener, _installed
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)} "
                          "(--log-format or TETHER_LOG_FORMAT)")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ConfigError(f"log level {level!r}: use debug, info, warning or error")
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(_formatter(log_format))
    reset_logging()
    messages: queue.SimpleQueue[Any] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(messages, handler, respect_handler_level=False)
    _listener.start()
    root = logging.getLogger()
    _installed = _LocalQueueHandler(messages)
    root.addHandler(_installed)
    root.setLevel(logging.WARNING)
    tether = logging.getLogger("tether")
    tether.setLevel(numeric)
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    quiet_retries_and_setup(numeric)
    # Python's warnings become records too, so that every line of a JSON log is JSON
    logging.captureWarnings(log_format == "json")


def quiet_retries_and_setup(level: int = logging.WARNING) -> None:
    """Below debug, drop the lines that repeat what tether already says once: urllib3's
    warning at every retry while the registry is down (tether logs the outage itself)
    and MLflow's INFO lines on creating its tables (MLflow sets its logger's level from
    MLFLOW_LOGGING_LEVEL when it is imported, so the variable is set too)."""
    retries = logging.getLogger("urllib3.connectionpool")
    if level <= logging.DEBUG:
        retries.setLevel(logging.NOTSET)  # urllib3's own level again
        return
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    retries.setLevel(logging.ERROR)
    mlflow_logger = logging.getLogger("mlflow")
    mlflow_logger.setLevel(max(mlflow_logger.level, logging.WARNING))


def reset_logging() -> None:
    """Write what is queued and take tether's handler off again (tests, notebooks)."""
    global _listener, _installed
    if _listener is not None:
        _listener.stop()
        _listener = None
    if _installed is not None:
        logging.getLogger().removeHandler(_installed)
        _installed = None


def flush_logs() -> None:
    """Write every record queued so far (tests, and before the process exits)."""
    if _listener is not None:
        _listener.stop()  # drains the queue, then joins the writer thread
        _listener.start()


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    from pythonjsonlogger.orjson import OrjsonFormatter

    return OrjsonFormatter("{levelname}{name}{message}", style="{", timestamp="time",
                           rename_fields={"levelname": "level", "name": "logger"})


@atexit.register
def _drain_at_exit() -> None:
    if _listener is not None:
        _listener.stop()
