"""Change detectors: one contract for all, pinned detection indices, river agreement."""

from __future__ import annotations

import copy
import pickle
import random

import numpy as np
import pytest

from tether.monitoring.detectors import (
    DETECTORS,
    BernoulliCUSUM,
    DriftDetector,
    PageHinkley,
    detections,
)


def two_regimes(seed: int, before: float, after: float, n: int = 3000) -> list[float]:
    rng = random.Random(seed)
    return ([float(rng.random() < before) for _ in range(n)]
            + [float(rng.random() < after) for _ in range(n)])


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_contract(name: str) -> None:
    detector = DETECTORS[name]()
    assert isinstance(detector, DriftDetector)
    assert detector.drift_detected is False
    assert detector.update(0.0) is detector
    with pytest.raises(AttributeError):
        detector.drift_detected = True  # type: ignore[misc]
    # Clones and pickles behave identically on the same stream.
    stream = two_regimes(3, 0.05, 0.3)
    clone = copy.deepcopy(DETECTORS[name]())
    revived = pickle.loads(pickle.dumps(DETECTORS[name]()))
    fired = detections(DETECTORS[name](), stream)
    assert fired, f"{name} never fired on an obvious change"
    assert min(fired) >= 3000
    assert detections(clone, stream) == fired == detections(revived, stream)
    # After an alarm the detector starts over: the next update is not an alarm.
    again = DETECTORS[name]()
    for index, value in enumerate(stream):
        again.update(value)
        if index == fired[0] + 1:
            assert again.drift_detected is False
            break
    assert repr(DETECTORS[name]()).startswith(type(detector).__name__ + "(")


def test_pinned_detection_indices() -> None:
    stream = two_regimes(11, 0.05, 0.15)
    assert detections(BernoulliCUSUM(), stream) == [3086]
    assert detections(PageHinkley(threshold=20.0, mode="up"), stream) == [3067]


def test_page_hinkley_matches_river_on_the_same_streams() -> None:
    river_drift = pytest.importorskip("river.drift")
    rng = random.Random(12345)
    stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    for kwargs in ({}, {"mode": "up", "threshold": 20.0}, {"mode": "down", "delta": 0.01}):
        ours = detections(PageHinkley(**kwargs), stream)
        theirs = []
        reference = river_drift.PageHinkley(**kwargs)
        for index, value in enumerate(stream):
            reference.update(value)
            if reference.drift_detected:
                theirs.append(index)
        assert ours == theirs


def test_cusum_quiet_on_a_long_stable_stream_and_learns_p0() -> None:
    rng = np.random.default_rng(5)
    stream = (rng.random(100_000) < 0.08).astype(float).tolist()
    assert detections(BernoulliCUSUM(), stream) == []
    # A fixed p0 far below the true rate is an out-of-control process from the start.
    assert detections(BernoulliCUSUM(p0=0.02), stream[:2000])


def test_cusum_accepts_expected_error_fractions() -> None:
    rng = np.random.default_rng(6)
    before = rng.beta(1, 9, 4000)  # mean 0.1
    after = rng.beta(3, 7, 2000)   # mean 0.3
    fired = detections(BernoulliCUSUM(), np.r_[before, after].tolist())
    assert fired and 4000 <= fired[0] < 4200


@pytest.mark.parametrize(("factory", "message"), [
    (lambda: BernoulliCUSUM(ratio=1.0), "ratio must be greater than 1"),
    (lambda: BernoulliCUSUM(arl=1), "arl must be greater than 1"),
    (lambda: BernoulliCUSUM(p0=0.0), "p0 must lie in"),
    (lambda: PageHinkley(mode="sideways"), "mode must be one of"),
    (lambda: PageHinkley(threshold=0), "threshold must be positive"),
])
def test_constructors_name_the_broken_rule(factory: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()  # type: ignore[operator]
