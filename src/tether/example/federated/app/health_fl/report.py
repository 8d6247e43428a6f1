"""What the ServerApp sends back to tether: JSON over HTTP to the run's report URL.

Only aggregates cross: model arrays, per-site counts and metrics, the sites' binned
data summaries. Arrays travel as NumPy `.npy` bytes in base64 so that they arrive
bit for bit. The token is the run's own (a fresh secret for every run).
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np

ATTEMPTS = 5


def encode_arrays(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    encoded = {}
    for name, value in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value), allow_pickle=False)
        encoded[name] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return encoded


class Reporter:
    """Posts reports to tether; a report that cannot be delivered fails the run."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    def send(self, report: dict[str, Any]) -> None:
        if not self.url:
            return
        body = json.dumps(report).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {self.token}"})
        delay = 0.2
        for attempt in range(ATTEMPTS):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == ATTEMPTS - 1:
                    raise RuntimeError(f"tether refused the {report.get('kind')} report: "
                                       f"HTTP {exc.code}") from exc
            except OSError as exc:
                if attempt == ATTEMPTS - 1:
                    raise RuntimeError(f"cannot reach tether at {self.url}: {exc}") from exc
            time.sleep(delay)
            delay *= 2
