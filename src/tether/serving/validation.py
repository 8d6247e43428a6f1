"""Input checks compiled once per model version from its signature.

A `Validator` turns a parsed request (split, records or columns) into rows the model
can take: a float matrix in signature order when every column is a float (the fast
path, one `numpy.asarray` per request), otherwise a typed DataFrame checked column by
column with pandas' vectorized type inference. Every failure is an `InputError` that
names the column, the expected type and the first bad row.

>>> from tether.registry import ColumnSpec
>>> check = Validator([ColumnSpec("a", "double"), ColumnSpec("b", "double")], allow_nan=False)
>>> check.split({"columns": ["b", "a"], "data": [[2, 1.5]]}).tolist()
[[1.5, 2.0]]
>>> try:
...     check.records([{"a": 1.0, "b": "x"}])
... except InputError as exc:
...     print(exc)
column 'b': expected double, got str 'x' at row 0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from tether.errors import InputError
from tether.registry import ColumnSpec

__all__ = ["FLOATS", "Rows", "Validator", "row_count", "to_frame"]

Rows: TypeAlias = np.ndarray | pd.DataFrame

FLOATS = frozenset({"double", "float"})
INTEGERS = frozenset({"long", "integer"})
_FLOAT_KINDS = frozenset({"floating", "integer", "mixed-integer-float", "empty"})
_NUMPY_INT = {"long": np.int64, "integer": np.int32}
_NUMPY_FLOAT = {"double": np.float64, "float": np.float32}


def row_count(rows: Rows) -> int:
    return int(rows.shape[0])


def to_frame(rows: Rows, names: Sequence[str] | pd.Index) -> pd.DataFrame:
    if isinstance(rows, np.ndarray):
        columns = names if isinstance(names, pd.Index) else pd.Index(list(names))
        return pd.DataFrame(rows, columns=columns, copy=False)
    return rows


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool | np.bool_))


def _is_integer(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))


_ACCEPTS: dict[str, Callable[[Any], bool]] = {
    "double": lambda v: _is_number(v) or _is_null(v),
    "float": lambda v: _is_number(v) or _is_null(v),
    "long": _is_integer,
    "integer": _is_integer,
    "boolean": lambda v: isinstance(v, bool | np.bool_),
    "string": lambda v: isinstance(v, str),
}


class Validator:
    """The checks for one model version, built once when the version is loaded."""

    def __init__(self, columns: Sequence[ColumnSpec], *, allow_nan: bool = True) -> None:
        self.columns = list(columns)
        self.names = [c.name for c in self.columns]
        self.name_set = frozenset(self.names)
        self.allow_nan = allow_nan
        self.all_float = bool(self.columns) and all(c.dtype in FLOATS for c in self.columns)
        self._expected = ", ".join(f"{c.name} ({c.dtype})" for c in self.columns)

    # request shapes --------------------------------------------------------------------

    def split(self, payload: Any) -> Rows:
        """`{"columns": [...], "data": [[...], ...]}` (pandas' split orient)."""
        if not isinstance(payload, dict):
            raise InputError("dataframe_split: expected an object with 'columns' and 'data'")
        unknown = set(payload) - {"columns", "data", "index"}
        if unknown:
            raise InputError(f"dataframe_split: unknown field(s) {sorted(unknown)}; "
                             "allowed: columns, data, index")
        data = payload.get("data")
        if not isinstance(data, list):
            raise InputError("dataframe_split.data: expected a list of rows")
        columns = payload.get("columns", self.names or None)
        if columns is None:
            return self.frame(self._build(lambda: pd.DataFrame(data)))
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InputError("dataframe_split.columns: expected a list of column names")
        self._check_names(columns)
        if self.all_float and data:
            fast = self._float_matrix(data, columns)
            if fast is not None:
                return fast
        return self.frame(self._build(lambda: pd.DataFrame(data, columns=columns)))

    def records(self, payload: Any) -> Rows:
        """`[{"a": 1.0, "b": 2.0}, ...]` (pandas' records orient)."""
        if not isinstance(payload, list):
            raise InputError("dataframe_records: expected a list of objects, one per row")
        for index, record in enumerate(payload):
            if not isinstance(record, dict):
                raise InputError(f"row {index}: expected an object of column: value, "
                                 f"got {type(record).__name__}")
            if self.columns and record.keys() != self.name_set:
                self._check_names(list(record), where=f"row {index}: ")
        if self.all_float and payload:
            names = self.names
            fast = self._float_matrix([[r[c] for c in names] for r in payload], names)
            if fast is not None:
                return fast
        return self.frame(self._build(lambda: pd.DataFrame.from_records(payload)))

    def columnar(self, payload: Any) -> Rows:
        """`{"a": [1.0, 2.0], "b": [3.0, 4.0]}` (TF serving's columnar `inputs`)."""
        if not isinstance(payload, dict) or not all(isinstance(v, list)
                                                    for v in payload.values()):
            raise InputError("inputs: expected an object of column: list of values, or a "
                             "list of objects")
        lengths = {len(v) for v in payload.values()}
        if len(lengths) > 1:
            raise InputError(f"inputs: columns have different lengths {sorted(lengths)}")
        self._check_names(list(payload))
        if self.all_float and lengths != {0}:
            fast = self._float_matrix([payload[c] for c in self.names], self.names,
                                      transposed=True)
            if fast is not None:
                return fast
        return self.frame(self._build(lambda: pd.DataFrame(payload)))

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check a DataFrame column by column and return it in signature order and types."""
        if not self.columns:
            return frame
        self._check_names([str(c) for c in frame.columns])
        typed = {spec.name: self._column(spec, frame[spec.name]) for spec in self.columns}
        return pd.DataFrame(typed, index=pd.RangeIndex(len(frame)))

    # checks ----------------------------------------------------------------------------

    def _check_names(self, columns: Sequence[str], where: str = "") -> None:
        if not self.columns:
            return
        if len(set(columns)) != len(columns):
            twice = sorted(name for name, n in Counter(columns).items() if n > 1)
            raise InputError(f"{where}column(s) given more than once: {twice}")
        given = set(columns)
        missing = [c for c in self.columns if c.name not in given]
        extra = [c for c in columns if c not in self.name_set]
        problems = []
        if missing:
            problems.append("missing column(s) " + ", ".join(
                f"{c.name!r} ({c.dtype})" for c in missing))
        if extra:
            problems.append(f"unexpected column(s) {extra}")
        if problems:
            raise InputError(f"{where}{'; '.join(problems)}; the model expects: "
                             f"{self._expected}")

    def _float_matrix(self, data: list[Any], columns: Sequence[str], *,
                      transposed: bool = False) -> np.ndarray | None:
        """The fast path: numbers only, in signature order; None sends it the slow way."""
        try:
            matrix = np.asarray(data)
        except ValueError:
            return None  # ragged rows: the slow path names the row
        if matrix.ndim != 2 or matrix.dtype.kind not in "fi":
            return None
        if transposed:
            matrix = matrix.T
        if matrix.shape[1] != len(self.names):
            return None
        if list(columns) != self.names:
            position = {name: i for i, name in enumerate(columns)}
            matrix = matrix[:, [position[name] for name in self.names]]
        matrix = matrix.astype(np.float64, copy=False)
        if not self.allow_nan and matrix.dtype.kind == "f":
            self._reject_nan(matrix)
        return matrix

    def _reject_nan(self, matrix: np.ndarray) -> None:
        if np.isfinite(matrix.sum()):
            return  # one reduction instead of a boolean matrix, on the common path
        bad = np.isnan(matrix)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise InputError(f"column {self.names[col]!r}: NaN or null at row {row}; this "
                             "model cannot handle missing values")

    def _column(self, spec: ColumnSpec, series: pd.Series) -> Any:
        accepts = _ACCEPTS.get(spec.dtype)
        if accepts is None:
            return series  # datetime, binary: passed on as given
        kind = infer_dtype(series, skipna=True)
        nulls = series.isna()
        if spec.dtype in FLOATS:
            if kind not in _FLOAT_KINDS:
                raise self._type_error(spec, series, accepts)
            if nulls.any() and not self.allow_nan:
                row = int(np.flatnonzero(nulls.to_numpy())[0])
                raise InputError(f"column {spec.name!r}: NaN or null at row {row}; this model "
                                 "cannot handle missing values")
            return series.astype(_NUMPY_FLOAT[spec.dtype])
        if nulls.any():
            row = int(np.flatnonzero(nulls.to_numpy())[0])
            raise InputError(f"column {spec.name!r}: null at row {row}; expected {spec.dtype}")
        expected_kind = {"long": "integer", "integer": "integer", "boolean": "boolean",
                         "string": "string"}[spec.dtype]
        if kind not in (expected_kind, "empty"):
            raise self._type_error(spec, series, accepts)
        if spec.dtype in INTEGERS:
            return series.astype(_NUMPY_INT[spec.dtype])
        return series

    @staticmethod
    def _type_error(spec: ColumnSpec, series: pd.Series,
                    accepts: Callable[[Any], bool]) -> InputError:
        for row, value in enumerate(series.tolist()):
            if not accepts(value):
                return InputError(f"column {spec.name!r}: expected {spec.dtype}, got "
                                  f"{type(value).__name__} {value!r} at row {row}")
        return InputError(f"column {spec.name!r}: expected {spec.dtype}")

    @staticmethod
    def _build(make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        try:
            return make()
        except (ValueError, TypeError) as exc:
            raise InputError(f"rows do not form a table: {exc}") from exc
