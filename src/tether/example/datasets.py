"""Data sets scikit-learn ships with the package (nothing is downloaded), as data
generators for the example projects: `tether init --example diabetes` (regression),
`--example iris`, `--example iris-species` and `--example wine` (multiclass),
`--example breast-cancer` (binary).

>>> diabetes().shape, iris()["target"].nunique(), wine()["target"].nunique()
((442, 11), 3, 3)
>>> sorted(iris_species()["species"].unique())
['setosa', 'versicolor', 'virginica']
>>> breast_cancer().shape
(569, 31)
>>> list(iris().columns)  # doctest: +NORMALIZE_WHITESPACE
['sepal_length_cm', 'sepal_width_cm', 'petal_length_cm', 'petal_width_cm', 'target']
"""

from __future__ import annotations

import re

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

__all__ = ["breast_cancer", "diabetes", "iris", "iris_species", "wine"]


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def diabetes() -> pd.DataFrame:
    """442 patients, 10 baseline measurements and `target`, disease progression one year
    later (Efron et al., 2004), in original units."""
    return load_diabetes(as_frame=True, scaled=False).frame


def iris() -> pd.DataFrame:
    """150 flowers, 4 measurements in cm and `target`, the species as 0, 1, 2 (setosa,
    versicolor, virginica; Fisher, 1936)."""
    frame = load_iris(as_frame=True).frame
    return frame.rename(columns={c: _snake(c) for c in frame.columns})


def iris_species() -> pd.DataFrame:
    """The iris flowers with `species` named: setosa, versicolor, virginica (a
    classifier whose classes are strings)."""
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns={c: _snake(c) for c in data.frame.columns})
    names = pd.Series(data.target_names[data.target], index=frame.index)
    return frame.drop(columns="target").assign(species=names.to_numpy())


def wine() -> pd.DataFrame:
    """178 wines, 13 chemical measurements and `target`, the cultivar as 0, 1, 2 (UCI
    wine recognition data; Forina et al.)."""
    frame = load_wine(as_frame=True).frame
    return frame.rename(columns={c: _snake(c) for c in frame.columns})


def breast_cancer() -> pd.DataFrame:
    """569 cell nucleus images, 30 measurements and `target`: 0 malignant, 1 benign
    (Wisconsin diagnostic breast cancer data; Street et al., 1993)."""
    frame = load_breast_cancer(as_frame=True).frame
    return frame.rename(columns={c: _snake(c) for c in frame.columns})
