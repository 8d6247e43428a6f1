"""Data and prediction drift of a window against a version's profile, in one pass.

Methods (scores all computed from one histogram of the current column on the profile's
sketch, so asking for every method costs the same as asking for one):

- numeric: `ks` (two-sample Kolmogorov-Smirnov; p-value from `scipy.stats.kstwo`, as
  `scipy.stats.ks_2samp` does in its asymptotic mode), `wasserstein` (earth mover's
  distance divided by the reference standard deviation, as Evidently normalises it),
  `psi` and `jensenshannon` (as `scipy.spatial.distance`) on the reference decile bins;
- categorical: `chi2` (`scipy.stats.chi2_contingency`, the two-sample test of
  homogeneity, so unseen categories are counted and never divide by zero), `psi`,
  `jensenshannon` on the categories.

Default method by sample size, as Evidently chooses it: when the smaller side has at most
1000 values, the statistical test (`ks` / `chi2`), whose p-values are corrected across
features with Benjamini-Hochberg; above that, the distances (`wasserstein` /
`jensenshannon` with threshold 0.1), because on large samples every test rejects.
(Evidently looks at the reference size only; tether looks at the smaller side, so a
1000-row live window against a 50k-row reference still gets a test.)

Missing values are part of drift: each column's share of missing values (NaN, None,
+-inf) in the window is compared with the reference's by Fisher's exact test
(`scipy.stats.fisher_exact`); the column has drifted when the test rejects at `alpha`
*and* the share moved by at least `MISSING_SHARE_CHANGE` (0.1, settable as
`thresholds["missing"]`), so that neither a small window's noise nor a large window's
trivial change counts. A column that goes from 0% to 100% missing has no values left to
compare, yet it has drifted.

>>> import numpy as np, pandas as pd
>>> from tether.monitoring.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> reference = pd.DataFrame({"a": rng.normal(0, 1, 5000), "b": rng.normal(0, 1, 5000)})
>>> profile = build_profile(reference)
>>> current = pd.DataFrame({"a": rng.normal(0.5, 1, 800), "b": rng.normal(0, 1, 800)})
>>> report = detect_drift(profile, current)
>>> [(f.name, f.method, f.drifted) for f in report.features]
[('a', 'ks', True), ('b', 'ks', False)]
>>> report.share_drifted, report.drifted
(0.5, True)
>>> gone = current.assign(b=np.nan)
>>> b = detect_drift(profile, gone).feature("b")
>>> b.drifted, b.missing_reference, b.missing_share, b.reason.split("; ")[0]
(True, 0.0, 1.0, 'missing values 0.0% -> 100.0% of rows')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from tether.monitoring.methods import METHODS
from tether.monitoring.profile import (
    CategoricalProfile,
    Column,
    FeatureProfile,
    NumericProfile,
    Profile,
    bin_sums,
    category_counts,
    numeric_values,
)
from tether.threads import map_columns

if TYPE_CHECKING:
    import pandas as pd

    from tether.tables import Columns

__all__ = [
    "DISTANCE_THRESHOLDS",
    "METHODS",
    "MISSING_SHARE_CHANGE",
    "DriftReport",
    "FeatureDrift",
    "Histogram",
    "benjamini_hochberg",
    "default_method",
    "detect_drift",
    "feature_drift",
    "histogram",
]

NUMERIC_METHODS = ("ks", "wasserstein", "psi", "jensenshannon")
CATEGORICAL_METHODS = ("chi2", "psi", "jensenshannon")
TESTS = frozenset({"ks", "chi2"})
DISTANCE_THRESHOLDS = {"wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.2}
LARGE_SAMPLE = 1000
MIN_ROWS = 30
MISSING_SHARE_CHANGE = 0.1
# PSI is undefined on empty bins; Evidently replaces zero shares by this.
EMPTY_SHARE = 1e-4
MIN_NORM = 1e-3
# A histogram shows this many of the reference's most frequent categories, then "(other)".
SHOWN_CATEGORIES = 12
OTHER_LABEL = "(other)"


@dataclass(frozen=True)
class FeatureDrift:
    """One column's verdict; `score` and `drifted` are None when there is no verdict.

    `drifted` is True when the distribution of the values drifted or the share of
    missing values did (`missing_drifted`); `missing_reference` and `missing_share` are
    the shares of rows with a missing value in the reference and in the window."""

    name: str
    kind: str
    method: str
    score: float | None
    threshold: float
    drifted: bool | None
    p_value: float | None = None
    p_adjusted: float | None = None
    rows_reference: int = 0
    rows_current: int = 0
    missing_current: int = 0
    missing_reference: float | None = None
    missing_share: float | None = None
    missing_p_value: float | None = None
    missing_drifted: bool | None = None
    scores: dict[str, float] = field(default_factory=dict)
    unseen: list[str] = field(default_factory=list)
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Every column, the share that drifted and the prediction's drift."""

    rows_reference: int
    rows_current: int
    features: list[FeatureDrift]
    share_drifted: float | None
    drifted: bool
    share_threshold: float
    alpha: float
    enough_data: bool
    prediction: FeatureDrift | None = None
    missing_columns: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    reason: str | None = None

    @property
    def prediction_drift(self) -> float | None:
        return None if self.prediction is None else self.prediction.score

    def feature(self, name: str) -> FeatureDrift:
        return next(f for f in self.features if f.name == name)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prediction_drift"] = self.prediction_drift
        return data


def default_method(kind: str, rows_reference: int, rows_current: int) -> str:
    """The method Evidently's rule picks for this column kind and these sizes.

    >>> default_method("numeric", 50_000, 800), default_method("numeric", 50_000, 5000)
    ('ks', 'wasserstein')
    >>> default_method("categorical", 900, 10_000)
    'chi2'
    """
    small = min(rows_reference, rows_current) <= LARGE_SAMPLE
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    return "chi2" if small else "jensenshannon"


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (`scipy.stats.false_discovery_control`).

    >>> [round(p, 4) for p in benjamini_hochberg([0.01, 0.04, 0.03, 0.2])]
    [0.04, 0.0533, 0.0533, 0.2]
    """
    if not p_values:
        return []
    from scipy import stats  # ~0.6 s to import: only when there are tests to correct

    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values), method="bh")]


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    r = np.where(reference == 0, EMPTY_SHARE, reference)
    c = np.where(current == 0, EMPTY_SHARE, current)
    return float(np.sum((r - c) * np.log(r / c)))


def _rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`scipy.special.rel_entr` for shares (x, y >= 0, y > 0 wherever x > 0)."""
    safe_y = np.where(x > 0, y, 1.0)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / safe_y), 0.0)


def _jensenshannon(reference: np.ndarray, current: np.ndarray) -> float:
    """`scipy.spatial.distance.jensenshannon` (natural log), written out: importing
    scipy.spatial (or scipy.special, for `rel_entr`) costs every `tether drift` 0.1-0.2 s,
    as much as the whole drift of two 300k-row files.

    >>> round(_jensenshannon(np.array([0.5, 0.5]), np.array([0.9, 0.1])), 6)
    0.318982
    """
    if reference.sum() <= 0 or current.sum() <= 0:
        return 0.0
    p = reference / reference.sum()
    q = current / current.sum()
    middle = (p + q) / 2.0
    divergence = (_rel_entr(p, middle).sum() + _rel_entr(q, middle).sum()) / 2.0
    return math.sqrt(max(float(divergence), 0.0))


def _ks_p_value(statistic: float, n: int, m: int) -> float:
    """Two-sided p-value as `ks_2samp(method="asymp")` computes it; above 10k effective
    rows `kstwo` takes half a second per call, and its limit `kstwobign` agrees to 1e-6."""
    n_eff = max(round(n * m / (n + m)), 1)
    if n_eff <= 10_000:
        from scipy import stats  # ~0.6 s to import: only for windows that need it

        return float(stats.kstwo.sf(statistic, n_eff))
    # kstwobign.sf is scipy.special.kolmogorov, without importing scipy.stats
    from scipy import special  # 0.17 s: only when the KS test decides

    return float(special.kolmogorov(statistic * math.sqrt(n_eff)))


def _numeric_scores(profile: NumericProfile, values: np.ndarray, *,
                    p_value: bool) -> tuple[dict[str, float], float | None]:
    """Every numeric score from one sort of the current values: counts and sums per bin;
    the KS test's p-value only when `p_value` (it is the verdict only for `ks`)."""
    edges = np.asarray(profile.edges)
    ref_cdf = np.asarray(profile.cdf)
    m = len(values)
    # Sorting the window (SIMD sort) and locating the ~1000 edges in it is several times
    # faster than a binary search of every value among the edges.
    ordered = np.sort(values)
    at_or_below = np.searchsorted(ordered, edges, side="right")
    # bin 0: x <= e0; bin i: e[i-1] < x <= e[i]; last bin: x > e[-1]
    bounds = np.concatenate([[0], at_or_below, [m]])
    counts = np.diff(bounds)
    sums = bin_sums(ordered, bounds)
    k = len(edges)
    cur_cdf = at_or_below / m
    # Kolmogorov-Smirnov: the sup over the edges, and just below the reference minimum.
    below_min = np.searchsorted(ordered, edges[0], side="left") / m
    statistic = float(max(np.max(np.abs(ref_cdf - cur_cdf)), below_min))
    ks_p_value = _ks_p_value(statistic, profile.count, m) if p_value else None
    # Wasserstein-1 = integral |F_ref - F_cur| dx; per bin, the integral of each CDF is
    # exact (cdf at the left edge * width + sum(e_right - x) / n), and outside the
    # reference range the reference CDF is 0 or 1.
    widths = np.diff(edges)
    cur_integrals = cur_cdf[:-1] * widths + (counts[1:k] * edges[1:] - sums[1:k]) / m
    inside = float(np.sum(np.abs(np.asarray(profile.integrals[1:]) - cur_integrals)))
    low_tail = (counts[0] * edges[0] - sums[0]) / m
    high_tail = (sums[k] - counts[k] * edges[-1]) / m
    wasserstein = (inside + low_tail + high_tail) / max(profile.std, MIN_NORM)
    coarse_at = np.searchsorted(edges, profile.coarse)
    cur_coarse = np.diff(np.concatenate([[0.0], cur_cdf[coarse_at], [1.0]]))
    ref_coarse = profile.coarse_shares
    scores = {"ks": statistic, "wasserstein": float(wasserstein),
              "psi": _psi(ref_coarse, cur_coarse),
              "jensenshannon": _jensenshannon(ref_coarse, cur_coarse)}
    return scores, ks_p_value


def _categorical_scores(profile: CategoricalProfile, observed: dict[str, int], *,
                        p_value: bool) -> tuple[dict[str, float], float | None, list[str]]:
    """Chi-squared, PSI and Jensen-Shannon on the category counts; the chi-squared test's
    p-value only when `p_value` (it is the verdict only for `chi2`)."""
    keys = sorted(set(profile.counts) | set(observed))
    reference = np.array([profile.counts.get(key, 0) for key in keys], dtype=float)
    current = np.array([observed.get(key, 0) for key in keys], dtype=float)
    unseen = [key for key in keys if profile.counts.get(key, 0) == 0]
    if len(keys) < 2:
        chi2, chi2_p_value = 0.0, 1.0
    elif p_value:
        from scipy import stats  # 0.6 s to import: only when the test decides

        result = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
        chi2, chi2_p_value = float(result.statistic), float(result.pvalue)
    else:
        chi2, chi2_p_value = _chi2_statistic(np.vstack([reference, current])), None
    r, c = _shares(reference), _shares(current)
    scores = {"chi2": chi2, "psi": _psi(r, c), "jensenshannon": _jensenshannon(r, c)}
    return scores, chi2_p_value, unseen


def _chi2_statistic(table: np.ndarray) -> float:
    """Pearson's chi-squared statistic of a contingency table, as `chi2_contingency`
    (without Yates' correction) computes it; its p-value needs scipy.stats.

    >>> round(_chi2_statistic(np.array([[10.0, 20.0, 30.0], [15.0, 15.0, 40.0]])), 6)
    2.387755
    """
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    return float(np.sum((table - expected) ** 2 / expected))


def feature_drift(name: str, profile: FeatureProfile, current: Column, *,
                  method: str | None = None, alpha: float = 0.05,
                  thresholds: Mapping[str, float] | None = None,
                  min_rows: int = MIN_ROWS) -> FeatureDrift:
    """One column against its profile. The p-value is not yet corrected across features."""
    limits = {**DISTANCE_THRESHOLDS, **(thresholds or {})}
    kind = profile.kind
    allowed = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
    if method is not None and method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; choose from {', '.join(METHODS)}.")
    unseen: list[str] = []
    if isinstance(profile, NumericProfile):
        values, missing, unparseable = numeric_values(current)
        rows = len(values)
    else:
        observed, missing = category_counts(current, profile.numeric)
        unparseable, rows = 0, sum(observed.values())
    chosen = (method if method is not None and method in allowed
              else default_method(kind, profile.count, rows))
    threshold = alpha if chosen in TESTS else limits[chosen]
    missingness = _missing_check(profile, missing, len(current), alpha=alpha,
                                 change=limits.get("missing", MISSING_SHARE_CHANGE),
                                 min_rows=min_rows)
    base: dict[str, Any] = {"name": name, "kind": kind, "method": chosen, "threshold": threshold,
            "rows_reference": profile.count, "rows_current": rows, "missing_current": missing,
            **missingness}
    missing_note = (f"missing values {missingness['missing_reference']:.1%} -> "
                    f"{missingness['missing_share']:.1%} of rows"
                    if missingness["missing_drifted"] else None)
    if unparseable:
        # values a numeric column cannot hold are drift in themselves (the model cannot
        # read them); below min_rows the window is too small for any verdict
        enough = len(current) >= min_rows
        return FeatureDrift(**base, score=None,
                            drifted=True if enough else missingness["missing_drifted"] or None,
                            reason=_join(missing_note,
                                         f"type mismatch: the reference is numeric, the "
                                         f"current column has {unparseable} non-numeric "
                                         f"value(s)"))
    if rows < min_rows or profile.count < min_rows:
        return FeatureDrift(**base, score=None, drifted=missingness["missing_drifted"] or None,
                            reason=_join(missing_note,
                                         f"not enough data: {rows} current and "
                                         f"{profile.count} reference value(s), need "
                                         f"{min_rows} on each side"))
    if isinstance(profile, NumericProfile):
        scores, p_value = _numeric_scores(profile, values, p_value=chosen == "ks")
    else:
        scores, p_value, unseen = _categorical_scores(profile, observed,
                                                      p_value=chosen == "chi2")
    score = scores[chosen]
    moved = bool(missingness["missing_drifted"])
    if chosen in TESTS:
        return FeatureDrift(**base, score=score, drifted=moved or bool(
                                p_value is not None and p_value < alpha),
                            p_value=p_value, scores=scores, unseen=unseen, reason=missing_note)
    return FeatureDrift(**base, score=score, drifted=moved or bool(score >= threshold),
                        scores=scores, unseen=unseen, reason=missing_note)


def _join(*parts: str | None) -> str:
    return "; ".join(part for part in parts if part)


def _missing_check(profile: FeatureProfile, missing: int, total: int, *, alpha: float,
                   change: float, min_rows: int) -> dict[str, Any]:
    """The share of missing values in the window against the reference's (Fisher's
    exact test and a minimum change of the share); no verdict on too few rows."""
    reference_total = profile.count + profile.missing
    reference = profile.missing_share
    current = missing / total if total else None
    found: dict[str, Any] = {"missing_reference": reference, "missing_share": current,
                             "missing_p_value": None, "missing_drifted": None}
    if reference is None or current is None or total < min_rows or reference_total < min_rows:
        return found
    if abs(current - reference) < change:
        found["missing_drifted"] = False
        return found
    table = [[profile.missing, profile.count], [missing, total - missing]]
    from scipy import stats  # only when the share moved: not on every drift check

    p_value = float(stats.fisher_exact(table).pvalue)
    found.update(missing_p_value=p_value, missing_drifted=p_value < alpha)
    return found


def detect_drift(profile: Profile, current: pd.DataFrame | Columns, *, method: str | None = None,
                 methods: Mapping[str, str] | None = None, alpha: float = 0.05,
                 share_threshold: float = 0.5, thresholds: Mapping[str, float] | None = None,
                 min_rows: int = MIN_ROWS, prediction: pd.Series | None = None) -> DriftReport:
    """Every profiled column of `current` against `profile`, corrected for many features.

    A window with fewer than `min_rows` rows gets `enough_data=False` and no verdict.
    Columns the profile has but `current` lacks are listed in `missing_columns`.
    """
    present = [name for name in profile.features if name in current.columns]
    missing = [name for name in profile.features if name not in current.columns]
    extra = [str(c) for c in current.columns if c not in profile.features]
    results = map_columns(
        lambda name: feature_drift(name, profile.features[name], current[name],
                                   method=(methods or {}).get(name, method), alpha=alpha,
                                   thresholds=thresholds, min_rows=min_rows),
        present, rows=len(current))
    tested = [i for i, r in enumerate(results) if r.method in TESTS and r.p_value is not None]
    adjusted = benjamini_hochberg([results[i].p_value or 0.0 for i in tested])
    for i, p in zip(tested, adjusted, strict=True):
        results[i] = _replace(results[i], p_adjusted=p,
                              drifted=p < alpha or bool(results[i].missing_drifted))
    judged = [r for r in results if r.drifted is not None]
    predicted = None
    if prediction is not None and profile.prediction is not None:
        predicted = feature_drift("prediction", profile.prediction, prediction, method=method,
                                  alpha=alpha, thresholds=thresholds, min_rows=min_rows)
    common: dict[str, Any] = {"rows_reference": profile.rows, "rows_current": len(current),
              "features": results, "share_threshold": share_threshold, "alpha": alpha,
              "prediction": predicted, "missing_columns": missing, "extra_columns": extra}
    if not judged:
        reason = (f"not enough data: {len(current)} row(s) in the window, need {min_rows}"
                  if present else "no column of the profile is in the current data")
        return DriftReport(**common, share_drifted=None, drifted=False, enough_data=False,
                           reason=reason)
    share = sum(bool(r.drifted) for r in judged) / len(judged)
    return DriftReport(**common, share_drifted=share, drifted=share >= share_threshold,
                       enough_data=True)


def _replace(result: FeatureDrift, **changes: Any) -> FeatureDrift:
    return FeatureDrift(**{**asdict(result), **changes})


@dataclass(frozen=True)
class Histogram:
    """Reference and current shares of one column on the bins PSI compares, for a chart."""

    bins: list[str]
    reference: list[float]
    current: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def histogram(profile: FeatureProfile, current: Column, *,
              categories: int = SHOWN_CATEGORIES) -> Histogram:
    """Shares per bin: a numeric column on the profile's decile bins (those of `psi` and
    `jensenshannon`), a categorical one on its `categories` most frequent reference
    categories plus "(other)" for the rest and for categories the reference never saw.

    >>> import numpy as np, pandas as pd
    >>> from tether.monitoring.profile import build_profile
    >>> frame = pd.DataFrame({"x": np.arange(100.0), "c": ["a"] * 70 + ["b"] * 30})
    >>> profile = build_profile(frame)
    >>> h = histogram(profile.features["x"], pd.Series(np.arange(50.0, 100.0)))
    >>> h.bins[:2], h.bins[-1], [round(v, 3) for v in h.reference[:2] + h.current[-2:]]
    (['<= 9.9', '9.9 to 19.8'], '> 89.1', [0.1, 0.1, 0.2, 0.2])
    >>> histogram(profile.features["c"], pd.Series(["b", "b", "z"]), categories=1)
    Histogram(bins=['a', '(other)'], reference=[0.7, 0.3], current=[0.0, 1.0])
    """
    if isinstance(profile, NumericProfile):
        values, _, _ = numeric_values(current)
        coarse = np.asarray(profile.coarse)
        ordered = np.sort(values)
        at_or_below = np.searchsorted(ordered, coarse, side="right") / max(len(ordered), 1)
        cur = np.diff(np.concatenate([[0.0], at_or_below, [1.0 if len(ordered) else 0.0]]))
        labels = ([f"<= {coarse[0]:.3g}"]
                  + [f"{low:.3g} to {high:.3g}" for low, high in pairwise(coarse)]
                  + [f"> {coarse[-1]:.3g}"]) if len(coarse) else ["all values"]
        return Histogram(bins=labels, reference=_floats(profile.coarse_shares),
                         current=_floats(cur))
    counts, _ = category_counts(current, profile.numeric)
    observed = sum(counts.values())
    ranked = sorted(profile.counts, key=lambda key: (-profile.counts[key], key))
    shown = ranked[:categories]
    ref_counts = [profile.counts[key] for key in shown]
    cur_counts = [int(counts.get(key, 0)) for key in shown]
    rest_ref, rest_cur = profile.count - sum(ref_counts), observed - sum(cur_counts)
    if rest_ref > 0 or rest_cur > 0:
        shown, ref_counts, cur_counts = ([*shown, OTHER_LABEL], [*ref_counts, rest_ref],
                                         [*cur_counts, rest_cur])
    ref_total, cur_total = max(profile.count, 1), max(observed, 1)
    reference = [count / ref_total for count in ref_counts]
    now = [count / cur_total for count in cur_counts]
    return Histogram(bins=list(shown), reference=_floats(reference), current=_floats(now))


def _floats(values: Any) -> list[float]:
    return [float(v) for v in values]
