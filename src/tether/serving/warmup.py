"""What a version is tried on before it takes traffic, and what the tries teach the checks.

- The model folder's own `serving_input_example.json` (MLflow writes it next to
  `MLmodel`), parsed and validated as a client's request would be, then scored: a version
  that fails on its own example as a client sends it never takes traffic and never
  reports ready. An example tether's checks refuse (a tensor-shaped input, say) is left
  to MLflow's own code, as `/invocations` leaves such requests, and logged.
- Null in each non-float column the signature requires, one column at a time: where the
  model answers, the validator lets null through (MLflow's parser passes null in string,
  boolean and datetime columns to the model; tether does where the model takes it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tether.errors import InputError
from tether.serving.protocol import payload_of
from tether.serving.validation import FLOATS, INTEGERS, Validator, to_frame

__all__ = ["SERVING_INPUT_FILE", "nullable_columns", "serving_example"]

log = logging.getLogger("tether.serving")

SERVING_INPUT_FILE = "serving_input_example.json"  # MLflow's model folder layout
MAX_PROBED_COLUMNS = 16  # beyond this, one probe with every such column null


def serving_example(path: str | None, validator: Validator, *, max_rows: int
                    ) -> pd.DataFrame | None:
    """The folder's serving input example as validated rows; None when it has none, or
    when tether's checks refuse it (logged with the reason)."""
    if path is None:
        return None
    file = Path(path) / SERVING_INPUT_FILE
    if not file.is_file():
        return None
    try:
        document: Any = json.loads(file.read_bytes())  # MLflow writes NaN literals
    except ValueError:
        return None  # unreadable: the input example DataFrame still warms the version
    try:
        rows = payload_of(document, max_rows=max_rows).rows(validator)
    except InputError as exc:
        log.warning("%s: tether's checks refuse it (%s); /predict will refuse such rows, "
                    "/invocations hands them to MLflow", file, exc)
        return None
    return to_frame(rows, validator.names)


def nullable_columns(call: Callable[[pd.DataFrame], Any], example: pd.DataFrame,
                     validator: Validator) -> set[str]:
    """The required string, boolean and datetime columns the model answers null in."""
    candidates = [c.name for c in validator.columns
                  if c.required and c.dtype not in FLOATS | INTEGERS | {"binary"}]
    if not candidates or example.empty:
        return set()
    groups = ([[name] for name in candidates] if len(candidates) <= MAX_PROBED_COLUMNS
              else [candidates])
    found: set[str] = set()
    for group in groups:
        probe = example.head(1).copy()
        for name in group:
            probe[name] = pd.NaT if _is_datetime(probe[name]) else None
        try:
            answered = len(np.asarray(_values(call(probe)))) == 1
        except Exception:  # the model refused null here: that is what the probe asks
            answered = False
        if answered:
            found.update(group)
    return found


def _is_datetime(series: pd.Series) -> bool:
    return bool(pd.api.types.is_datetime64_any_dtype(series))


def _values(result: Any) -> Any:
    return getattr(result, "values", result)
