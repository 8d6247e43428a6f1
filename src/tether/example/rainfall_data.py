"""The rainfall example's data generator: the first years of the Bellevue series, for a
`tether retrain` outside a replay (`tether.replay.datasets.rainfall` has all of it)."""

from __future__ import annotations

import pandas as pd

from tether.replay.datasets import rainfall

__all__ = ["first_years"]


def first_years(years: int = 3) -> pd.DataFrame:
    """The first `years` years of days (365 a year) of the series."""
    return rainfall().iloc[: 365 * years].reset_index(drop=True)
