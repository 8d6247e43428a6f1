"""Compact per-feature summaries of the training data, saved with every model version.

A drift check reads the profile, never the training set: numeric columns keep a fine
quantile sketch (unique edges, the reference CDF at each edge and the integral of the
CDF over each bin), categorical columns keep their category counts. The sketch is exact
for the reference CDF at its edges, so Kolmogorov-Smirnov is off by at most the largest
reference mass between two edges (about 1/`sketch_points`) and the Wasserstein distance
is exact unless the two CDFs cross inside a bin (see `tether.monitoring.drift`).

>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"x": np.arange(100.0), "colour": ["red", "blue"] * 50})
>>> profile = build_profile(frame, sketch_points=4)
>>> profile.features["x"].edges, profile.features["x"].cdf
([0.0, 24.75, 49.5, 74.25, 99.0], [0.01, 0.25, 0.5, 0.75, 1.0])
>>> profile.features["colour"].counts
{'blue': 50, 'red': 50}
>>> Profile.from_dict(profile.as_dict()) == profile
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tether.errors import DataError
from tether.threads import map_columns

if TYPE_CHECKING:
    import pandas as pd

    from tether.tables import Columns

# A column is a pandas Series or, from `tether.tables.read_columns`, a numpy array of
# numbers: profiles and drift checks of files of numbers never import pandas.
Column = Any

__all__ = [
    "FORMAT",
    "CategoricalProfile",
    "FeatureProfile",
    "NumericProfile",
    "Profile",
    "bin_sums",
    "build_profile",
    "categorical_values",
    "category_counts",
    "is_numeric",
    "numeric_values",
]

FORMAT = 1
SKETCH_POINTS = 1000
COARSE_BINS = 10
# A numeric column with this few distinct values is compared as categories (as Evidently does).
MAX_DISCRETE_VALUES = 5
MAX_CATEGORIES = 200
OTHER = "__other__"


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column: quantile sketch plus moments, over its finite values."""

    count: int
    missing: int
    edges: list[float]          # unique, increasing; edges[0] = min, edges[-1] = max
    cdf: list[float]            # share of reference values <= each edge
    integrals: list[float]      # integral of the reference CDF over (edges[i-1], edges[i]]
    coarse: list[float]         # inner decile edges for PSI / Jensen-Shannon bins
    mean: float
    std: float
    kind: str = "numeric"

    @property
    def missing_share(self) -> float | None:
        """Share of the reference's rows with no value (NaN, None, +-inf)."""
        return _share(self.missing, self.count)

    @property
    def coarse_shares(self) -> np.ndarray:
        """Reference share in each coarse bin (-inf, c0], (c0, c1], ..., (c_last, inf)."""
        at = np.asarray(self.cdf)[np.searchsorted(self.edges, self.coarse)]
        cumulative = np.concatenate([[0.0], at, [1.0]])
        return np.diff(cumulative)


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical (or few-valued numeric) column: category counts, as strings."""

    count: int
    missing: int
    counts: dict[str, int]
    numeric: bool = False       # values were numbers; compare current numbers as numbers
    kind: str = "categorical"

    @property
    def missing_share(self) -> float | None:
        """Share of the reference's rows with no value (NaN, None)."""
        return _share(self.missing, self.count)


def _share(missing: int, present: int) -> float | None:
    return missing / (missing + present) if missing + present else None


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    """Every feature's summary, plus the prediction's and the calibration curve."""

    rows: int
    features: dict[str, FeatureProfile]
    prediction: FeatureProfile | None = None
    prediction_column: str | None = None
    calibration: dict[str, list[float]] | None = None
    # multiclass: {"classes": [...], "curves": [one calibration per class, in that order]}
    class_calibration: dict[str, Any] | None = None
    error_rate: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataError(f"profile: unsupported format {data.get('format')!r}, "
                            f"expected {FORMAT}" if isinstance(data, dict)
                            else "profile: expected a JSON object")
        prediction = data.get("prediction")
        return cls(
            rows=int(data["rows"]),
            features={name: _feature_from_dict(item) for name, item in data["features"].items()},
            prediction=_feature_from_dict(prediction) if prediction else None,
            prediction_column=data.get("prediction_column"),
            calibration=data.get("calibration"),
            class_calibration=data.get("class_calibration"),
            error_rate=data.get("error_rate"),
            meta=dict(data.get("meta") or {}),
        )


def _feature_from_dict(data: dict[str, Any]) -> FeatureProfile:
    fields = {k: v for k, v in data.items() if k != "kind"}
    if data.get("kind") == "numeric":
        return NumericProfile(**fields)
    return CategoricalProfile(**fields)


def _number_array(column: Column) -> bool:
    """A numpy array of numbers or booleans: read without pandas."""
    return isinstance(column, np.ndarray) and column.dtype.kind in "biuf"


def is_numeric(column: Column) -> bool:
    """Whether the column holds numbers (or booleans), by its dtype."""
    if isinstance(column, np.ndarray):
        return _number_array(column)
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column.dtype)
                or pd.api.types.is_bool_dtype(column.dtype))


def numeric_values(column: Column) -> tuple[np.ndarray, int, int]:
    """Finite values as float64, the count of missing (NaN/None/inf) and of unparseable ones."""
    if _number_array(column):
        values = column.astype(float, copy=False)
        bad = 0
    else:
        import pandas as pd

        series = pd.Series(column) if isinstance(column, np.ndarray) else column
        if pd.api.types.is_bool_dtype(series.dtype):
            series = series.astype(float)
        if pd.api.types.is_numeric_dtype(series.dtype):
            values = series.to_numpy(dtype=float, na_value=np.nan)
            bad = 0
        else:
            parsed = pd.to_numeric(series, errors="coerce")
            bad = int((parsed.isna() & series.notna()).sum())
            values = parsed.to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(values)
    present = int(np.count_nonzero(finite))
    if present == len(values):
        return values, 0, bad  # no copy: a million-row column is 8 MB
    return values[finite], len(values) - present - bad, bad


def categorical_values(series: pd.Series, numeric: bool) -> tuple[pd.Series, int]:
    """Values as category strings (numbers as floats, so 1 and 1.0 agree) and missing count."""
    import pandas as pd

    if numeric:
        # + 0.0: -0.0 and 0.0 are one category, as np.unique counts them in category_counts
        values = pd.to_numeric(series, errors="coerce").astype(float) + 0.0
        values = values[np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))]
        return values.map(repr), int(len(series) - len(values))
    present = series.dropna()
    return present.astype(str), int(len(series) - len(present))


def category_counts(column: Column, numeric: bool) -> tuple[dict[str, int], int]:
    """Rows per category string (as `categorical_values` names them) and missing count."""
    if _number_array(column):
        values, missing, _ = numeric_values(column)
        keys, counts = np.unique(values + 0.0, return_counts=True)
        return {repr(float(k)): int(c) for k, c in zip(keys, counts, strict=True)}, missing
    import pandas as pd

    series = pd.Series(column) if isinstance(column, np.ndarray) else column
    categories, missing = categorical_values(series, numeric)
    return {str(k): int(v) for k, v in categories.value_counts().items()}, missing


def _sorted_quantiles(ordered: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """np.quantile's default (linear) method on an already sorted array, without the
    partition np.quantile would redo for every one of the ~1000 probabilities."""
    position = probabilities * (len(ordered) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def bin_sums(ordered: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """`ordered[bounds[i]:bounds[i + 1]].sum()` for every i; `bounds` non-decreasing
    positions in `ordered`. Shape: (len(bounds) - 1,).

    One pass without the prefix-sum array (`np.cumsum` allocates and writes a copy of
    the column: 2.6 ms for 300k values against 0.05 ms for this).

    >>> bin_sums(np.arange(6.0), np.array([0, 2, 2, 5]))
    array([1., 0., 9.])
    """
    starts = bounds[:-1]
    sums = np.zeros(len(starts))
    filled = bounds[1:] > starts
    if filled.any():
        # a bin runs to the next non-empty bin's start, the last to bounds[-1]
        sums[filled] = np.add.reduceat(ordered[:bounds[-1]], starts[filled])
    return sums


def _numeric_profile(ordered: np.ndarray, missing: int, sketch_points: int) -> NumericProfile:
    n = len(ordered)
    quantiles = _sorted_quantiles(ordered, np.linspace(0.0, 1.0, sketch_points + 1))
    edges = np.unique(quantiles)
    below_or_at = np.searchsorted(ordered, edges, side="right")
    cdf = below_or_at / n
    # Integral of the empirical CDF over (e[i-1], e[i]]: F(e[i-1]) * width + sum(e[i] - x)/n
    # over the values x inside the bin (exact; one pass over the sorted values).
    inside_count = np.diff(below_or_at)
    inside_sum = bin_sums(ordered, below_or_at)
    widths = np.diff(edges)
    integrals = cdf[:-1] * widths + (inside_count * edges[1:] - inside_sum) / n
    deciles = np.round(np.linspace(0, sketch_points, COARSE_BINS + 1)[1:-1]).astype(int)
    coarse = np.unique(quantiles[deciles])  # a subset of the edges, so shares are exact
    coarse = coarse[coarse < edges[-1]]
    return NumericProfile(
        count=n, missing=missing, edges=edges.tolist(), cdf=cdf.tolist(),
        integrals=[0.0, *integrals.tolist()], coarse=coarse.tolist(),
        mean=float(ordered.mean()), std=float(ordered.std()))


def _feature_profile(column: Column, sketch_points: int,
                     discrete: bool = False) -> FeatureProfile:
    numeric = is_numeric(column)
    if numeric and not discrete:
        values, missing, _ = numeric_values(column)
        ordered = np.sort(values)
        distinct = 1 + int(np.count_nonzero(np.diff(ordered))) if len(ordered) else 0
        if distinct > MAX_DISCRETE_VALUES:
            return _numeric_profile(ordered, missing, sketch_points)
    counts, missing = category_counts(column, numeric)
    if len(counts) > MAX_CATEGORIES:
        ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: ties keep order
        counts = dict(ranked[: MAX_CATEGORIES - 1])
        counts[OTHER] = sum(count for _, count in ranked[MAX_CATEGORIES - 1:])
    return CategoricalProfile(count=sum(counts.values()), missing=missing,
                              counts=dict(sorted(counts.items())), numeric=numeric)


def build_profile(frame: pd.DataFrame | Columns, *, features: list[str] | None = None,
                  prediction: pd.Series | np.ndarray | None = None,
                  calibration: dict[str, list[float]] | None = None,
                  class_calibration: dict[str, Any] | None = None,
                  error_rate: float | None = None, meta: dict[str, Any] | None = None,
                  sketch_points: int = SKETCH_POINTS, discrete_prediction: bool = False,
                  ) -> Profile:
    """Summarise `features` of `frame` (default: every column); JSON-ready via `as_dict()`.

    `prediction` is the holdout's score (or prediction) column, for prediction drift;
    `discrete_prediction`: it holds class labels, summarised as category counts however
    many classes there are.
    """
    columns = list(frame.columns) if features is None else features
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"reference data has no column(s) {', '.join(map(repr, missing))}")
    if len(frame) == 0 or not len(frame.columns):
        raise DataError("reference data is empty; a profile needs rows")
    if sketch_points < 2:
        raise ValueError("sketch_points must be at least 2.")
    summaries = map_columns(lambda c: _feature_profile(frame[c], sketch_points), columns,
                            rows=len(frame))
    profiles = {str(c): summary for c, summary in zip(columns, summaries, strict=True)}
    predicted = None
    column = None
    if prediction is not None:
        predicted = _feature_profile(np.asarray(prediction), sketch_points, discrete_prediction)
        column = getattr(prediction, "name", None)
    return Profile(rows=len(frame), features=profiles, prediction=predicted,
                   prediction_column=str(column) if column is not None else None,
                   calibration=calibration, class_calibration=class_calibration,
                   error_rate=None if error_rate is None or math.isnan(error_rate)
                   else float(error_rate),
                   meta=dict(meta or {}))
