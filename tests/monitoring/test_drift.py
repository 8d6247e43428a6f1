"""Drift from the profile: accuracy against scipy on full samples, verdicts on known shift,
Benjamini-Hochberg, and every kind of bad input."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tether.errors import DataError
from tether.example.loans import generate
from tether.monitoring.drift import benjamini_hochberg, detect_drift, feature_drift
from tether.monitoring.profile import CategoricalProfile, Profile, bin_sums, build_profile
from tether.tables import read_columns
from tether.threads import available_cpus, map_columns

FEATURES = ["income", "loan_amount", "credit_score", "age", "employment_years",
            "debt_to_income", "late_payments", "home_ownership", "purpose"]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate(6000, seed=1)[FEATURES]


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame) -> Profile:
    return build_profile(reference)


def test_profile_is_compact_json_and_round_trips(profile: Profile) -> None:
    text = json.dumps(profile.as_dict())
    assert len(text) < 500_000
    assert Profile.from_dict(json.loads(text)) == profile
    with pytest.raises(DataError, match="unsupported format"):
        Profile.from_dict({"format": 99})


def test_scores_from_the_profile_match_scipy_on_the_full_samples(
        reference: pd.DataFrame, profile: Profile) -> None:
    current = generate(1500, seed=2, shift=0.3)
    for name in ("income", "credit_score", "debt_to_income", "employment_years"):
        result = feature_drift(name, profile.features[name], current[name], method="ks")
        ks = stats.ks_2samp(reference[name], current[name], method="asymp")
        assert abs(result.scores["ks"] - ks.statistic) <= 0.002
        assert result.p_value == pytest.approx(ks.pvalue, rel=0.2, abs=1e-12)
        wasserstein = (stats.wasserstein_distance(reference[name], current[name])
                       / reference[name].std(ddof=0))
        assert result.scores["wasserstein"] == pytest.approx(wasserstein, rel=0.01)


def test_benjamini_hochberg_matches_the_step_up_rule() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(40) ** 3
    adjusted = np.array(benjamini_hochberg(p.tolist()))
    order = np.argsort(p)
    m = len(p)
    # Reference: adjusted p_(i) = min over j >= i of m * p_(j) / j, capped at 1.
    ranked = p[order] * m / np.arange(1, m + 1)
    expected = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1)
    assert np.allclose(adjusted[order], expected)
    alpha = 0.1
    k = max((i + 1 for i in range(m) if p[order][i] <= (i + 1) / m * alpha), default=0)
    assert set(np.flatnonzero(adjusted <= alpha)) == set(order[:k])


def test_no_shift_no_drift_and_bh_keeps_false_flags_rare(profile: Profile) -> None:
    flagged = 0
    for seed in range(10, 30):
        report = detect_drift(profile, generate(1000, seed=seed)[FEATURES])
        assert report.enough_data and not report.drifted
        flagged += sum(bool(f.drifted) for f in report.features)
    assert flagged <= 3  # 20 windows x 9 features at a 5% false discovery rate


@pytest.mark.parametrize(("shift", "expected"), [(0.0, False), (0.3, True), (1.0, True)])
def test_verdict_on_known_shift(profile: Profile, shift: float, expected: bool) -> None:
    report = detect_drift(profile, generate(1000, seed=4, shift=shift)[FEATURES])
    assert report.drifted is expected
    if expected:
        assert {"income", "credit_score", "debt_to_income"} <= {
            f.name for f in report.features if f.drifted}
        assert report.features[0].p_adjusted is not None


def test_large_windows_use_distances_and_small_shifts_pass(profile: Profile) -> None:
    # 20k rows: every test would reject a tiny shift; the distance does not.
    report = detect_drift(profile, generate(20_000, seed=5, shift=0.02)[FEATURES])
    assert {f.method for f in report.features} == {"wasserstein", "jensenshannon"}
    assert not report.drifted and report.share_drifted == 0.0


def test_empty_and_tiny_windows_get_no_verdict(profile: Profile) -> None:
    empty = detect_drift(profile, pd.DataFrame(columns=FEATURES))
    assert not empty.enough_data and empty.share_drifted is None and not empty.drifted
    assert "not enough data" in (empty.reason or "")
    tiny = detect_drift(profile, generate(10, seed=6, shift=1.0)[FEATURES])
    assert not tiny.enough_data and all(f.drifted is None and f.score is None
                                        for f in tiny.features)
    assert "need 30" in (tiny.features[0].reason or "")


def test_nan_and_inf_are_counted_as_missing_not_compared(profile: Profile) -> None:
    current = generate(600, seed=7)[FEATURES].copy()
    current.loc[:99, "income"] = np.nan
    current.loc[100:149, "income"] = np.inf
    current.loc[150:159, "income"] = -np.inf
    result = detect_drift(profile, current).feature("income")
    assert result.missing_current == 160 and result.rows_current == 440
    # the values left are drawn as the reference's were: their distribution holds ...
    assert np.isfinite(result.score or np.nan) and (result.p_adjusted or 0.0) >= 0.05
    # ... but 27% of rows without a value, where training had none, is drift
    assert result.missing_reference == 0.0
    assert result.missing_share == pytest.approx(160 / 600)
    assert result.missing_drifted is True and result.drifted is True
    assert result.reason == "missing values 0.0% -> 26.7% of rows"


def test_a_column_that_goes_from_0_to_100_percent_missing_has_drifted(profile: Profile) -> None:
    current = generate(600, seed=7)[FEATURES].copy()
    report = detect_drift(profile, current.assign(income=None))
    income = report.feature("income")
    assert income.drifted is True and income.score is None
    assert (income.missing_reference, income.missing_share) == (0.0, 1.0)
    assert income.missing_p_value is not None and income.missing_p_value < 1e-12
    assert report.share_drifted == pytest.approx(1 / len(FEATURES))


@pytest.mark.parametrize(("current_missing", "rows", "drifted"), [
    (0.05, 2000, False),   # the reference's own rate
    (0.09, 2000, False),   # significant on 2000 rows, but a change under 0.1
    (0.30, 2000, True),
    (0.30, 40, True),      # 12 of 40 rows against 5%: clear even on a small window
    (0.15, 40, False),     # 6 of 40 rows: within a small window's noise (Fisher p > 0.05)
    (0.0, 2000, False),    # fewer missing values than in training is no alarm below 0.1
])
def test_the_missing_rate_is_judged_by_its_size_and_a_test(current_missing: float, rows: int,
                                                           drifted: bool) -> None:
    rng = np.random.default_rng(11)
    reference = pd.Series(rng.normal(size=20_000))
    reference[rng.random(20_000) < 0.05] = np.nan
    profile = build_profile(pd.DataFrame({"x": reference}))
    current = pd.Series(rng.normal(size=rows))
    current[: round(current_missing * rows)] = np.nan
    result = feature_drift("x", profile.features["x"], current)
    assert result.missing_reference == pytest.approx(0.05, abs=0.005)
    assert result.missing_drifted is drifted
    assert result.drifted is drifted  # the values themselves do not move


def test_constant_columns() -> None:
    reference = pd.DataFrame({"c": np.full(500, 3.0), "x": np.arange(500.0)})
    profile = build_profile(reference)
    assert profile.features["c"].kind == "categorical"  # one value: compared as a category
    same = detect_drift(profile, pd.DataFrame({"c": np.full(200, 3.0), "x": np.arange(200.0)}))
    assert same.feature("c").drifted is False
    moved = detect_drift(profile, pd.DataFrame({"c": np.full(200, 4.0), "x": np.arange(200.0)}))
    assert moved.feature("c").drifted is True and moved.feature("c").unseen == ["4.0"]
    # A constant numeric column with many rows gets a zero spread; no division by zero.
    wide = build_profile(pd.DataFrame({"x": np.r_[np.zeros(1000), np.arange(10.0)]}))
    result = feature_drift("x", wide.features["x"], pd.Series(np.zeros(300)), method="wasserstein")
    assert result.score is not None and np.isfinite(result.score)


def test_unseen_categories_are_reported_and_drift(profile: Profile) -> None:
    current = generate(800, seed=8)[FEATURES].copy()
    current.loc[:299, "purpose"] = "crypto"
    result = detect_drift(profile, current).feature("purpose")
    assert result.unseen == ["crypto"] and result.drifted is True
    assert np.isfinite(result.scores["psi"]) and result.p_value is not None


def test_columns_missing_on_either_side(profile: Profile) -> None:
    current = generate(500, seed=9)[FEATURES].drop(columns=["age", "purpose"]).assign(extra=1)
    report = detect_drift(profile, current)
    assert report.missing_columns == ["age", "purpose"]
    assert report.extra_columns == ["extra"]
    assert {f.name for f in report.features} == set(FEATURES) - {"age", "purpose"}
    nothing = detect_drift(profile, pd.DataFrame({"other": range(100)}))
    assert not nothing.enough_data and "no column" in (nothing.reason or "")


def test_mismatched_types_are_named_not_guessed(profile: Profile) -> None:
    current = generate(500, seed=10)[FEATURES].copy()
    current["income"] = current["income"].astype(object)
    current.loc[:9, "income"] = "n/a"
    report = detect_drift(profile, current)
    result = report.feature("income")
    # a value a numeric column cannot hold is drift, and counts in the share
    assert result.drifted is True and "type mismatch" in (result.reason or "")
    judged = [f for f in report.features if f.drifted is not None]
    assert report.share_drifted == sum(bool(f.drifted) for f in judged) / len(judged)
    assert report.share_drifted is not None and report.share_drifted > 0
    # below min_rows there is no verdict, mismatch or not
    small = detect_drift(profile, current.head(5)).feature("income")
    assert small.drifted is None and "type mismatch" in (small.reason or "")
    # Numbers as text are numbers: a CSV read as strings still compares.
    as_text = generate(500, seed=10)[FEATURES].astype(str)
    assert detect_drift(profile, as_text).feature("income").drifted is False
    # Numbers in a categorical column are categories (all unseen here).
    numbers = generate(500, seed=10)[FEATURES].assign(purpose=7)
    assert detect_drift(profile, numbers).feature("purpose").drifted is True


def test_build_profile_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="empty"):
        build_profile(pd.DataFrame({"x": []}))
    with pytest.raises(DataError, match="no column"):
        build_profile(pd.DataFrame({"x": [1.0]}), features=["y"])
    with pytest.raises(ValueError, match="unknown drift method"):
        detect_drift(build_profile(pd.DataFrame({"x": np.arange(100.0)})),
                     pd.DataFrame({"x": np.arange(100.0)}), method="magic")


def test_files_read_column_by_column_give_the_same_profile_and_verdicts(
        tmp_path: Path, reference: pd.DataFrame, profile: Profile) -> None:
    """`tether drift` reads files as numpy columns (no pandas): the profile and every
    score match those of the DataFrames, numbers, few-valued numbers and text alike."""
    current = generate(3000, seed=4, shift=0.3)[FEATURES]
    current.loc[::11, "income"] = np.nan
    reference.to_csv(tmp_path / "reference.csv", index=False)
    current.to_parquet(tmp_path / "current.parquet")
    from_files = build_profile(read_columns(tmp_path / "reference.csv"))
    assert from_files.features.keys() == profile.features.keys()
    for name, expected in profile.features.items():
        got = from_files.features[name]
        assert got.kind == expected.kind, name
        if isinstance(expected, CategoricalProfile):
            assert got == expected, name
        else:
            for key, value in asdict(expected).items():
                if key != "kind":
                    assert getattr(got, key) == pytest.approx(value, rel=1e-9, abs=1e-12), name
    theirs = detect_drift(profile, current, method="ks")
    ours = detect_drift(from_files, read_columns(tmp_path / "current.parquet"), method="ks")
    for a, b in zip(ours.features, theirs.features, strict=True):
        assert (a.name, a.drifted, a.missing_current) == (b.name, b.drifted, b.missing_current)
        assert a.scores == pytest.approx(b.scores, rel=1e-6, abs=1e-12), a.name
        assert (a.p_adjusted is None) == (b.p_adjusted is None), a.name
        if b.p_adjusted is not None:
            assert a.p_adjusted == pytest.approx(b.p_adjusted, rel=1e-6, abs=1e-12), a.name


@pytest.mark.parametrize("seed", range(5))
def test_bin_sums_are_the_sums_of_each_slice(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.sort(rng.normal(size=int(rng.integers(1, 400))))
    bounds = np.sort(rng.integers(0, len(values) + 1, size=int(rng.integers(2, 30))))
    expected = [values[lo:hi].sum() for lo, hi in itertools.pairwise(bounds)]
    assert bin_sums(values, bounds) == pytest.approx(expected, abs=1e-9)


def test_large_data_is_profiled_on_every_cpu_with_the_same_result() -> None:
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({f"c{i}": rng.normal(i, 1, 120_000) for i in range(10)})
    names: set[str] = set()

    def record(column: str) -> str:
        names.add(threading.current_thread().name)
        return column

    assert map_columns(record, list(frame.columns), rows=len(frame)) == list(frame.columns)
    assert (any(n.startswith("tether-columns") for n in names)) == (available_cpus() > 1)
    names.clear()
    assert map_columns(record, ["a", "b"], rows=10) == ["a", "b"]
    assert names == {threading.current_thread().name}  # small data: no threads
    together = build_profile(frame)  # 1.2M cells: in parallel
    for name in frame.columns:  # one column, 120k cells: in this thread
        assert together.features[name] == build_profile(frame[[name]]).features[name]
