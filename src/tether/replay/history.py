"""The history a replay runs over: rows in time order, a target, and when each row happened.

Time comes from a column (dates, or seconds since the epoch) or from row order with a
stated rate (`1/d`: one row a day, from `start`). Everything wrong with the input is one
`ReplayInputError` line that says what to change.

>>> parse_duration("30d"), parse_duration("1y"), parse_duration("90min")
(2592000.0, 31536000.0, 5400.0)
>>> parse_rate("24/d"), parse_rate("1d")
(3600.0, 86400.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from tether.errors import DataError
from tether.tables import read_table

__all__ = ["History", "ReplayInputError", "describe_seconds", "load_history", "parse_duration",
           "parse_rate", "parse_start"]

UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0,
         "y": 365 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|h|d|w|y)\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|min|h|d|w|y)\s*$")
DEFAULT_START = "2000-01-01"


class ReplayInputError(DataError):
    """The history or an option of `tether replay` cannot be replayed as given."""


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in `30d`, `12h`, `1y` (365 days), `2w`, `90min`, `45s`."""
    match = _DURATION.match(str(text))
    if match is None:
        raise ReplayInputError(f"{what} {text!r}: expected a number and a unit (s, min, h, "
                               "d, w, y), e.g. 7d or 1y")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_rate(text: str) -> float:
    """Seconds between rows: `24/d` (24 rows a day), `1/2h`, or a period per row (`1d`)."""
    match = _RATE.match(str(text))
    if match is not None:
        rows = float(match.group(1))
        period = float(match.group(2) or 1.0) * UNITS[match.group(3)]
        if rows <= 0:
            raise ReplayInputError(f"--rate {text!r}: the number of rows must be positive")
        return period / rows
    seconds = parse_duration(text, "--rate")
    if seconds <= 0:
        raise ReplayInputError(f"--rate {text!r}: the period per row must be positive")
    return seconds


def parse_start(text: str) -> float:
    """Seconds since the epoch of an ISO date or time (UTC unless it says otherwise)."""
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ReplayInputError(f"--start {text!r}: expected a date such as 1949-01-01") from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(UTC)
    return float(stamp.timestamp())


def describe_seconds(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable.

    >>> describe_seconds(86400 * 400), describe_seconds(5400), describe_seconds(20)
    ('1.1y', '1.5h', '20s')
    """
    for unit in ("y", "d", "h", "min"):
        if abs(seconds) >= UNITS[unit]:
            return f"{seconds / UNITS[unit]:.3g}{unit}"
    return f"{seconds:.3g}s"


@dataclass(frozen=True)
class History:
    """Rows in time order. `frame`: features and target (n rows); `times`: seconds since
    the epoch (n,), strictly increasing."""

    frame: pd.DataFrame
    times: np.ndarray
    target: str
    source: str

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c != self.target]

    @property
    def span(self) -> float:
        """Seconds from the first row to the last."""
        return float(self.times[-1] - self.times[0]) if len(self.times) else 0.0

    def date(self, index: int) -> str:
        return when(float(self.times[index]))


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def load_history(source: Path | str | pd.DataFrame, *, target: str,
                 time_column: str | None = None, rate: str | None = None,
                 start: str | None = None) -> History:
    """Read and check a history (CSV or Parquet, or a frame already loaded).

    Raises ReplayInputError for: no time column and no rate, a time column that is
    missing or unreadable, times out of order or repeated, a missing target column or
    target values.
    """
    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), "history"
    else:
        path = Path(source)
        if not path.is_file():
            raise ReplayInputError(f"--data {path}: no such file")
        frame, name = read_table(path), str(path)
    frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("Unnamed: ")])
    if frame.empty:
        raise ReplayInputError(f"{name}: the history has no rows")
    if target not in frame.columns:
        raise ReplayInputError(f"{name}: no target column {target!r}; columns: "
                               f"{', '.join(map(str, frame.columns))}")
    missing = frame[target].isna().to_numpy()
    if missing.any():
        raise ReplayInputError(f"{name}: target {target!r} is missing in {int(missing.sum())} "
                               f"row(s) (first: row {int(np.flatnonzero(missing)[0])}); drop "
                               "or fill them: a replay scores every row")
    if time_column is not None and rate is not None:
        raise ReplayInputError("give --time-column or --rate, not both")
    if time_column is not None:
        times = _times_of(frame, time_column, name)
        frame = frame.drop(columns=[time_column])
    elif rate is not None:
        step = parse_rate(rate)
        times = parse_start(start or DEFAULT_START) + step * np.arange(len(frame), dtype=float)
    else:
        raise ReplayInputError(f"{name}: no time: give --time-column COL (dates or epoch "
                               "seconds) or --rate R (rows per period, e.g. 1/d, from --start)")
    _check_order(times, name, time_column)
    return History(frame=frame.reset_index(drop=True), times=times, target=target, source=name)


def _times_of(frame: pd.DataFrame, column: str, name: str) -> np.ndarray:
    if column not in frame.columns:
        raise ReplayInputError(f"{name}: no time column {column!r}; columns: "
                               f"{', '.join(map(str, frame.columns))}")
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values):
        times = values.to_numpy(dtype=float)
    else:
        parsed = pd.to_datetime(values, utc=True, errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ReplayInputError(f"{name}: time column {column!r}: row {first} "
                                   f"({values.iloc[first]!r}) is not a date or a time")
        times = (parsed - pd.Timestamp(0, tz=UTC)).dt.total_seconds().to_numpy(dtype=float)
    if np.isnan(times).any():
        first = int(np.flatnonzero(np.isnan(times))[0])
        raise ReplayInputError(f"{name}: time column {column!r} is empty in row {first}")
    return times


def _check_order(times: np.ndarray, name: str, column: str | None) -> None:
    gaps = np.diff(times)
    where = column or "the time"
    if (gaps < 0).any():
        row = int(np.flatnonzero(gaps < 0)[0]) + 1
        raise ReplayInputError(f"{name}: times are not in order: row {row} ({when(times[row])}) "
                               f"comes before row {row - 1} ({when(times[row - 1])}); sort "
                               f"the history by {where}")
    if (gaps == 0).any():
        row = int(np.flatnonzero(gaps == 0)[0]) + 1
        raise ReplayInputError(f"{name}: times repeat: rows {row - 1} and {row} are both at "
                               f"{when(times[row])}; a replay needs one time per row")
