"""A classifier's classes and the numbers the store keeps for them.

The prediction log and the labels keep numbers only. A class that is a number is kept
as that number when the model has more than two classes (1, 2, 3 stay 1, 2, 3: what
tether always kept, so no stored row changes meaning, and a class the model never saw
can still arrive as a label for the next retrain to learn). Every other class is kept as
its index in the model's class list (sklearn's `classes_`, in its probability columns'
order): text classes ("setosa" is 0), and the two classes of a binary model, so that
1.0 is always its positive class, the one its score is the probability of (-1/1 and
"no"/"yes" become 0/1; 0/1 and False/True stay as they are). Text classes were not
logged before (their predictions were missing), so no stored row changes meaning.

>>> codes = ClassCodes(["setosa", "versicolor", "virginica"])
>>> codes.encode(np.array(["virginica", "setosa", "rose"])).tolist()
[2.0, 0.0, nan]
>>> codes.code("versicolor"), codes.decode(np.array([2.0, np.nan])).tolist()
(1.0, ['virginica', None])
>>> try:
...     codes.code("rose")
... except LabelNotAClass as exc:
...     print(exc)
label 'rose' is not a class of the model; its classes are 'setosa', 'versicolor', 'virginica'
>>> cultivars = ClassCodes([1, 2, 3])
>>> cultivars.codes, cultivars.code("3"), cultivars.code(4), cultivars.decode([3.0, 4.0]).tolist()
([1.0, 2.0, 3.0], 3.0, 4.0, [3, 4])
>>> ClassCodes([-1, 1]).encode([1, -1]).tolist(), ClassCodes(["no", "yes"]).code("yes")
([1.0, 0.0], 1.0)
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from tether.errors import InputError, RegistryUnavailable, TetherError

__all__ = ["ClassCodes", "LabelNotAClass", "VersionClasses", "model_classes", "plain_classes",
           "recorded_classes", "version_classes"]

PROFILE_FILE = "profile.json"  # tether.monitoring.reference.PROFILE_FILE
CLASSES = "classes"  # its meta key (tether.monitoring.reference.CLASSES)


class LabelNotAClass(InputError):
    """A label that is none of the model's classes (HTTP 400)."""


def plain_classes(classes: Sequence[Any] | np.ndarray) -> list[Any]:
    """Classes as plain Python values (JSON-ready): numpy scalars unwrapped."""
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(classes).tolist()]


class ClassCodes:
    """The index of each class of one model version, and back."""

    def __init__(self, classes: Sequence[Any] | np.ndarray, *,
                 multiclass: bool | None = None) -> None:
        self.classes: list[Any] = plain_classes(classes)
        if len(set(map(_key, self.classes))) != len(self.classes):
            raise ValueError(f"classes must be distinct, got {self.classes}")
        self._exact = {c: i for i, c in enumerate(self.classes)}  # 1 == 1.0 == True here
        self._by_key = {_key(c): i for i, c in enumerate(self.classes)}
        self._array = np.asarray(self.classes, dtype=object)
        # numeric classes of a multiclass model (the task's, even when this version saw
        # two of them; None: more than two classes): a class's code is the number itself
        many = len(self.classes) > 2 if multiclass is None else multiclass
        self.by_value = many and all(map(_number, self.classes))

    def __len__(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return f"ClassCodes({self.classes!r})"

    @property
    def codes(self) -> list[float]:
        """The code of every class, in class order: what metrics that need the class
        list (one-vs-rest AUC, log loss) are given, so each label meets its column."""
        if self.by_value:
            return [float(c) for c in self.classes]
        return [float(i) for i in range(len(self.classes))]

    def encode(self, values: np.ndarray | Sequence[Any]) -> np.ndarray:
        """Codes (n,) float64 of predicted classes; NaN for a value that is no class
        (kept by value: any number)."""
        array = np.asarray(values)
        if self.by_value:
            if array.dtype.kind in "biuf":
                return array.astype(float).reshape(-1)
            return np.array([_as_number(v) for v in array.reshape(-1).tolist()], dtype=float)
        # one dict lookup a row (the log writer's cost for every request): about five
        # times faster than pandas' get_indexer on a one-row request, and faster still
        # on 20,000 rows
        exact = self._exact
        items = array.reshape(-1).tolist()
        found = np.fromiter((exact.get(v, -1) for v in items), dtype=float, count=len(items))
        missing = np.flatnonzero(found < 0)
        for i in missing:  # a class spelled another way ("1" for "1.0"): by key
            found[i] = self._by_key.get(_key(items[i]), -1)
        return np.where(found >= 0, found, np.nan)

    def code(self, label: Any, owner: str = "the model") -> float:
        """The code of one label sent by a client; LabelNotAClass names the known classes
        when it is none of them. A number given as text ("3") matches the class 3, and
        a number matches the class spelled as that text. Numeric classes of a multiclass
        model take any number: a class the model never saw (0, for a model trained while
        only 1 and 2 had occurred) is a label a retrain can learn from."""
        if self.by_value:
            number = _parse_number(label) if isinstance(label, str) else label
            if isinstance(number, bool | int | float | np.number) and math.isfinite(number):
                return float(number)
        found = self._by_key.get(_key(label))
        if found is None:
            found = self._by_key.get(_key(_parse_number(label)) if isinstance(label, str)
                                     else ("s", str(label)))
        if found is None:
            shown = ", ".join(repr(c) for c in self.classes[:20])
            more = f" and {len(self.classes) - 20} more" if len(self.classes) > 20 else ""
            raise LabelNotAClass(f"label {label!r} is not a class of {owner}; its classes "
                                 f"are {shown}{more}")
        return float(found)

    def decode(self, codes: np.ndarray | Sequence[float]) -> np.ndarray:
        """Classes (n,) object of codes; None where a code is missing or out of range."""
        values = np.asarray(codes, dtype=float)
        if self.by_value:  # the number itself, an int where the classes are ints
            ints = all(isinstance(c, int) for c in self.classes)
            return np.array([None if not math.isfinite(v) else
                             int(v) if ints and v == int(v) else v
                             for v in values.tolist()], dtype=object)
        valid = np.isfinite(values) & (values >= 0) & (values < len(self.classes))
        found = np.full(len(values), None, dtype=object)
        found[valid] = self._array[values[valid].astype(int)]
        return found


def _number(value: Any) -> bool:
    return isinstance(value, bool | int | float | np.number)


def _key(value: Any) -> Any:
    """A label's identity across types: 1, 1.0, True and np.int64(1) are one class; text
    stays text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float):
        number = float(value)
        return ("n", number) if not math.isnan(number) else ("nan",)
    return ("s", str(value))


def _as_number(value: Any) -> float:
    number = _parse_number(value) if isinstance(value, str) else value
    return float(number) if isinstance(number, bool | int | float) else math.nan


def _parse_number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


class _References(Protocol):
    def reference_artifact(self, number: int, name: str) -> Any: ...

    def load_model(self, number: int) -> Any: ...


def model_classes(model: Any) -> list[Any] | None:
    """`classes_` of a loaded model (a `LoadedModel`'s `raw` estimator, or the estimator
    itself); None for a model without one (a regressor, a pyfunc)."""
    found = getattr(model, "classes_", None)
    if found is None:
        found = getattr(getattr(model, "raw", None), "classes_", None)
    return None if found is None else plain_classes(found)


def recorded_classes(registry: _References, version: int) -> list[Any] | None:
    """The classes the version's training profile records (binary and multiclass
    classifiers trained or adopted by tether); None when it records none or has no
    readable profile. RegistryUnavailable propagates: an outage is not an answer."""
    try:
        meta = json.loads(registry.reference_artifact(version, PROFILE_FILE).read_text())
    except RegistryUnavailable:
        raise
    except (TetherError, OSError, ValueError):
        return None
    found = meta.get("meta", {}).get(CLASSES) if isinstance(meta, dict) else None
    return list(found) if found else None


def version_classes(registry: _References, version: int) -> list[Any] | None:
    """The classes of a registered version: those its profile records, else its model's
    `classes_` (a binary classifier trained before profiles recorded classes; this loads
    the model). None for a model without classes or a version that cannot be loaded;
    RegistryUnavailable propagates."""
    found = recorded_classes(registry, version)
    if found is not None:
        return found
    try:
        return model_classes(registry.load_model(version))
    except RegistryUnavailable:
        raise
    except TetherError:
        return None


class VersionClasses:
    """The class codes of each model version, found once (thread-safe): `resolve(version)`
    returns the version's class list, or None for a model without classes, whose labels
    and predictions are kept as the numbers they are; what it raises is not kept, so the
    next call asks again."""

    def __init__(self, resolve: Callable[[int], Sequence[Any] | None], *,
                 multiclass: bool | None = None) -> None:
        self._resolve = resolve
        self._multiclass = multiclass
        self._found: dict[int, ClassCodes | None] = {}
        self._lock = threading.Lock()

    def put(self, version: int, codes: ClassCodes | None) -> None:
        with self._lock:
            self._found[version] = codes

    def get(self, version: int) -> ClassCodes | None:
        with self._lock:
            if version in self._found:
                return self._found[version]
        classes = self._resolve(version)
        codes = ClassCodes(classes, multiclass=self._multiclass) if classes else None
        self.put(version, codes)
        return codes

    def decode(self, versions: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The classes (n,) object that `codes` stand for, each read with the class list
        of the version that made the prediction; a version without classes keeps the
        number."""
        versions = np.asarray(versions)
        found = np.asarray(codes, dtype=float).astype(object)
        for version in np.unique(versions):
            mine = versions == version
            classes = self.get(int(version))
            if classes is not None:
                found[mine] = classes.decode(np.asarray(codes, dtype=float)[mine])
        return found
