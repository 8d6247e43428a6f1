"""MLflow's environment, set before MLflow is imported: quiet, and quick to fail.

Each value is a default: a variable already set (by the user, the chart, CI) wins.
HTTP calls to an MLflow server fail within seconds instead of MLflow's own defaults (120 s
per attempt, 7 retries with growing pauses: minutes): 5 s per attempt, two retries (the
first at once, the second after 2 s plus up to 0.5 s of jitter). An unreachable server
fails in about 2 s; one that accepts connections and never answers in about 17 s.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["DEFAULTS", "HTTP_DEFAULTS", "use_defaults"]

HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}

DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    **HTTP_DEFAULTS,
}


def use_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    for name, value in DEFAULTS.items():
        environ.setdefault(name, value)
