"""Reference vs current distributions per feature, with a test and PSI for each.

Numeric features: two-sample Kolmogorov-Smirnov (scipy.stats.ks_2samp) and PSI on
the reference's deciles. Categorical features: chi-square on the category counts
(scipy.stats.chi2_contingency) and PSI on the categories. A feature drifts when its
p-value is under `alpha`; the drift share is the fraction of features that drift.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> reference = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
>>> current = pd.DataFrame({"x": rng.normal(1, 1, 500), "c": rng.choice(["a", "b"], 500)})
>>> report = compare(reference, current, ["x", "c"], alpha=0.05)
>>> [(f.name, f.kind, f.drifted) for f in report.features], report.drift_share
([('x', 'numeric', True), ('c', 'categorical', False)], 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["DriftReport", "FeatureDrift", "compare"]

BINS = 10
MAX_CATEGORIES = 12
_EPSILON = 1e-4


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    name: str
    kind: str  # numeric | categorical
    test: str  # ks | chi2
    statistic: float
    p_value: float
    psi: float
    drifted: bool
    bins: list[str]
    reference: list[float]
    current: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {key: _finite(value) for key, value in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class DriftReport:
    features: list[FeatureDrift]
    drift_share: float


def compare(reference: pd.DataFrame, current: pd.DataFrame, features: Sequence[str], *,
            alpha: float) -> DriftReport:
    """Every feature present in both frames, most drifted first."""
    compared = [
        _compare_one(name, reference[name], current[name], alpha)
        for name in features if name in reference.columns and name in current.columns
    ]
    found = [f for f in compared if f is not None]
    found.sort(key=lambda f: (not f.drifted, f.p_value, -f.psi))
    share = sum(f.drifted for f in found) / len(found) if found else 0.0
    return DriftReport(features=found, drift_share=share)


def _compare_one(name: str, ref: pd.Series, cur: pd.Series, alpha: float) -> FeatureDrift | None:
    ref, cur = ref.dropna(), cur.dropna()
    if ref.empty or cur.empty:
        return None
    if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
        return _numeric(name, ref.to_numpy(float), cur.to_numpy(float), alpha)
    return _categorical(name, ref.astype(str), cur.astype(str), alpha)


def _numeric(name: str, ref: np.ndarray, cur: np.ndarray, alpha: float) -> FeatureDrift:
    result = stats.ks_2samp(ref, cur)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)))
    inner = edges[1:-1]
    ref_share = np.bincount(np.searchsorted(inner, ref, side="right"),
                            minlength=len(inner) + 1) / len(ref)
    cur_share = np.bincount(np.searchsorted(inner, cur, side="right"),
                            minlength=len(inner) + 1) / len(cur)
    labels = [_range_label(low, high) for low, high in
              zip([-math.inf, *inner], [*inner, math.inf], strict=True)]
    return FeatureDrift(name=name, kind="numeric", test="ks", statistic=float(result.statistic),
                        p_value=float(result.pvalue), psi=_psi(ref_share, cur_share),
                        drifted=bool(result.pvalue < alpha), bins=labels,
                        reference=ref_share.tolist(), current=cur_share.tolist())


def _categorical(name: str, ref: pd.Series, cur: pd.Series, alpha: float) -> FeatureDrift:
    ref_counts, cur_counts = ref.value_counts(), cur.value_counts()
    categories = list(ref_counts.index[:MAX_CATEGORIES])
    rest_ref = int(ref_counts.drop(categories).sum())
    rest_cur = int(cur_counts.drop(categories, errors="ignore").sum())
    ref_row = [int(ref_counts.get(c, 0)) for c in categories] + [rest_ref]
    cur_row = [int(cur_counts.get(c, 0)) for c in categories] + [rest_cur]
    labels = [str(c) for c in categories] + ["(other)"]
    keep = [i for i in range(len(labels)) if ref_row[i] + cur_row[i] > 0]
    table = np.array([[ref_row[i] for i in keep], [cur_row[i] for i in keep]])
    if table.shape[1] < 2:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value = (float(v) for v in stats.chi2_contingency(table)[:2])
    ref_share = table[0] / table[0].sum()
    cur_share = table[1] / table[1].sum()
    return FeatureDrift(name=name, kind="categorical", test="chi2", statistic=statistic,
                        p_value=p_value, psi=_psi(ref_share, cur_share),
                        drifted=bool(p_value < alpha), bins=[labels[i] for i in keep],
                        reference=ref_share.tolist(), current=cur_share.tolist())


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    ref = np.clip(ref_share, _EPSILON, None)
    cur = np.clip(cur_share, _EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _range_label(low: float, high: float) -> str:
    if math.isinf(low):
        return f"< {high:.3g}"
    if math.isinf(high):
        return f">= {low:.3g}"
    return f"{low:.3g} to {high:.3g}"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
