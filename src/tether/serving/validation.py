"""Input checks compiled once per model version from its signature.

A `Validator` turns a parsed request (split, records or columns) into rows the model
can take: a float matrix in signature order when every column is a float (the fast
path, one `numpy.asarray` per request); for a signature that mixes types, a DataFrame
built column by column when every value already has its column's JSON type (one
`type()` pass and one numpy array per column); otherwise a typed DataFrame checked
column by column with pandas' vectorized type inference, which also words the errors.
Every failure is an `InputError` that names the column, the expected type and the
first bad row.

Column types are read as MLflow's signature types define them (`mlflow.types.DataType`,
enforced by `mlflow.models.utils._enforce_mlflow_datatype`), with these choices:

- `datetime`: ISO-8601 strings (the documented way to send them in JSON), parsed to
  `datetime64[ns]` as MLflow's scoring server does; a value that is not ISO-8601, or
  carries a UTC offset (MLflow's datetime is timezone-naive), is refused naming it;
- `boolean`: JSON `true`/`false` (and 0/1); a string such as "false" is refused with
  `AmbiguousValue`, never read as true (MLflow's `astype(bool)` makes every non-empty
  string true);
- missing values: a column the signature marks optional (`required: false`) may be
  absent or null; null is also accepted where the model was seen to handle it when the
  version was loaded (`allow_nan` for float columns, `nullable` for the others); never
  in an integer column (MLflow refuses it too).

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
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_datetime64_any_dtype

from tether.errors import AmbiguousValue, InputError
from tether.registry import ColumnSpec
from tether.serving.http import shown

__all__ = ["FLOATS", "INTEGERS", "Rows", "Validator", "refuse_ambiguous", "row_count", "to_frame"]

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
    "boolean": lambda v: isinstance(v, bool | np.bool_) or (_is_integer(v) and v in (0, 1)),
    "string": lambda v: isinstance(v, str),
    "datetime": lambda v: isinstance(v, str | pd.Timestamp | np.datetime64),
}
_DATETIME_KINDS = frozenset({"string", "datetime", "datetime64", "date", "empty"})


def refuse_ambiguous(column: str, values: Sequence[Any]) -> None:
    """`AmbiguousValue` for the first value of a boolean column that is not true, false,
    0, 1 or null: what MLflow's parser would turn into true.

    >>> refuse_ambiguous("is_member", [True, 0, None, "no"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tether.errors.AmbiguousValue: column 'is_member': expected boolean ..., got str 'no' at row 3
    """
    accepts = _ACCEPTS["boolean"]
    for row, value in enumerate(values):
        if not (accepts(value) or _is_null(value)):
            raise AmbiguousValue(f"column {column!r}: expected boolean (JSON true or false), "
                                 f"got {type(value).__name__} {shown(value)} at row {row}")


class Validator:
    """The checks for one model version, built once when the version is loaded.

    `allow_nan`: float columns take NaN and null; `nullable`: the other columns that take
    null (optional columns always do).
    """

    def __init__(self, columns: Sequence[ColumnSpec], *, allow_nan: bool = True,
                 nullable: Collection[str] = ()) -> None:
        self.columns = list(columns)
        self.names = [c.name for c in self.columns]
        self.name_set = frozenset(self.names)
        self.optional = frozenset(c.name for c in self.columns if not c.required)
        self.allow_nan = allow_nan
        self.nullable = frozenset(nullable)
        self.all_float = bool(self.columns) and all(c.dtype in FLOATS for c in self.columns)
        self._expected = ", ".join(f"{c.name} ({c.dtype}{'' if c.required else ', optional'})"
                                   for c in self.columns)

    @property
    def nullable(self) -> frozenset[str]:
        """Columns that take null: optional ones, and those the model was seen to handle."""
        return self._nullable

    @nullable.setter
    def nullable(self, names: Collection[str]) -> None:
        self._nullable = frozenset(names) | self.optional
        # float columns that take NaN even when the model as a whole was not seen to
        self._nan_columns = np.array([name in self._nullable for name in self.names],
                                     dtype=bool)

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
        elif data and len(columns) == len(self.names):
            width = len(columns)
            if all(type(row) is list and len(row) == width for row in data):
                typed = self._typed_frame(dict(zip(columns, zip(*data, strict=True),
                                                        strict=True)))
                if typed is not None:
                    return typed
        return self.frame(self._build(lambda: pd.DataFrame(data, columns=columns)))

    def records(self, payload: Any) -> Rows:
        """`[{"a": 1.0, "b": 2.0}, ...]` (pandas' records orient)."""
        if not isinstance(payload, list):
            raise InputError("dataframe_records: expected a list of objects, one per row")
        complete = True
        for index, record in enumerate(payload):
            if not isinstance(record, dict):
                raise InputError(f"row {index}: expected an object of column: value, "
                                 f"got {type(record).__name__}")
            if self.columns and record.keys() != self.name_set:
                self._check_names(list(record), where=f"row {index}: ")
                complete = False  # optional columns left out
        if self.all_float and payload and complete:
            names = self.names
            fast = self._float_matrix([[r[c] for c in names] for r in payload], names)
            if fast is not None:
                return fast
        elif self.columns and payload and complete:
            typed = self._typed_frame({c: [r[c] for r in payload] for c in self.names})
            if typed is not None:
                return typed
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
        if self.all_float and lengths != {0} and payload.keys() == self.name_set:
            fast = self._float_matrix([payload[c] for c in self.names], self.names,
                                      transposed=True)
            if fast is not None:
                return fast
        elif self.columns and lengths != {0} and payload.keys() == self.name_set:
            typed = self._typed_frame(payload)
            if typed is not None:
                return typed
        return self.frame(self._build(lambda: pd.DataFrame(payload)))

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check a DataFrame column by column and return it in signature order and types;
        optional columns left out come back as nulls."""
        if not self.columns:
            return frame
        self._check_names([str(c) for c in frame.columns])
        index = pd.RangeIndex(len(frame))
        typed = {spec.name: self._column(spec, frame[spec.name]) if spec.name in frame
                 else _nulls(spec, index) for spec in self.columns}
        return pd.DataFrame(typed, index=index)

    # checks ----------------------------------------------------------------------------

    def _check_names(self, columns: Sequence[str], where: str = "") -> None:
        if not self.columns:
            return
        if len(set(columns)) != len(columns):
            twice = sorted(name for name, n in Counter(columns).items() if n > 1)
            raise InputError(f"{where}column(s) given more than once: {twice}")
        given = set(columns)
        missing = [c for c in self.columns if c.name not in given and c.required]
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

    def _typed_frame(self, values: dict[str, Sequence[Any]]) -> pd.DataFrame | None:
        """The fast path for mixed signatures: every column given, every value of its
        column's JSON type, one numpy array per column in signature order (the frame the
        slow way builds, same dtypes, without pandas inferring a type per value).

        A value of the wrong type is refused here, named as it was sent (the slow way
        sees it after pandas has coerced its column: an int column with one float in it
        is all floats by then). None sends the request the slow way: nulls, 0/1 in a
        boolean column, and types this path does not build (datetime, binary)."""
        arrays: dict[str, np.ndarray] = {}
        for spec in self.columns:
            column = values[spec.name]
            kinds = set(map(type, column))
            try:
                if spec.dtype in FLOATS and kinds <= {float, int}:
                    array = np.array(column, dtype=_NUMPY_FLOAT[spec.dtype])
                    if (not (self.allow_nan or spec.name in self._nullable)
                            and np.isnan(array).any()):
                        return None
                elif spec.dtype in INTEGERS and kinds == {int}:
                    # int64 first, then the column's type: what the slow way's astype does
                    array = np.array(column, dtype=np.int64).astype(_NUMPY_INT[spec.dtype])
                elif spec.dtype == "string" and kinds == {str}:
                    array = np.array(column, dtype=object)
                elif spec.dtype == "boolean" and kinds == {bool}:
                    array = np.array(column, dtype=bool)
                else:
                    self._refuse_first(spec, column)
                    return None
            except (OverflowError, ValueError):
                return None
            arrays[spec.name] = array
        return pd.DataFrame(arrays, copy=False)

    @staticmethod
    def _refuse_first(spec: ColumnSpec, column: Sequence[Any]) -> None:
        """The first value that is neither of the column's type nor null, as sent."""
        accepts = _ACCEPTS.get(spec.dtype)
        if accepts is None or spec.dtype == "datetime":
            return
        for row, value in enumerate(column):
            if not accepts(value) and not _is_null(value):
                if spec.dtype == "boolean":
                    raise AmbiguousValue(f"column {spec.name!r}: expected boolean (JSON true "
                                         f"or false), got {type(value).__name__} "
                                         f"{shown(value)} at row {row}")
                raise InputError(f"column {spec.name!r}: expected {spec.dtype}, got "
                                 f"{type(value).__name__} {shown(value)} at row {row}")

    def _reject_nan(self, matrix: np.ndarray) -> None:
        if np.isfinite(matrix.sum()):
            return  # one reduction instead of a boolean matrix, on the common path
        bad = np.isnan(matrix) & ~self._nan_columns
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise InputError(f"column {self.names[col]!r}: NaN or null at row {row}; this "
                             "model cannot handle missing values")

    def _column(self, spec: ColumnSpec, series: pd.Series) -> Any:
        if spec.dtype == "binary":
            return series  # passed on as given
        if spec.dtype == "datetime":
            return self._datetime(spec, series)
        accepts = _ACCEPTS.get(spec.dtype)
        if accepts is None:
            return series  # a type tether does not check: the model's own enforcement does
        kind = infer_dtype(series, skipna=True)
        nulls = series.isna()
        if spec.dtype in FLOATS:
            if kind not in _FLOAT_KINDS:
                raise self._type_error(spec, series, accepts)
            if nulls.any() and not (self.allow_nan or spec.name in self._nullable):
                row = int(np.flatnonzero(nulls.to_numpy())[0])
                raise InputError(f"column {spec.name!r}: NaN or null at row {row}; this model "
                                 "cannot handle missing values")
            return series.astype(_NUMPY_FLOAT[spec.dtype])
        if nulls.any() and (spec.dtype in INTEGERS or spec.name not in self._nullable):
            row = int(np.flatnonzero(nulls.to_numpy())[0])
            raise InputError(f"column {spec.name!r}: null at row {row}; expected {spec.dtype}"
                             + ("" if spec.dtype in INTEGERS else
                                " (the signature requires a value and the model was not "
                                "seen to handle a missing one)"))
        if spec.dtype == "boolean":
            return self._boolean(spec, series, kind, nulls)
        expected_kind = {"long": "integer", "integer": "integer", "string": "string"}[spec.dtype]
        if kind not in (expected_kind, "empty"):
            raise self._type_error(spec, series, accepts)
        if spec.dtype in INTEGERS:
            return series.astype(_NUMPY_INT[spec.dtype])
        return series

    def _boolean(self, spec: ColumnSpec, series: pd.Series, kind: str,
                 nulls: pd.Series) -> pd.Series:
        accepts = _ACCEPTS["boolean"]
        values = series[~nulls]
        if not (kind in ("boolean", "empty")
                or (kind == "integer" and values.isin((0, 1)).all())
                or (kind == "mixed-integer" and values.map(accepts).all())):
            error = self._type_error(spec, series, accepts, expected="boolean (JSON true or "
                                     "false)")
            raise AmbiguousValue(str(error))
        if nulls.any():
            return series.map(lambda v: None if _is_null(v) else bool(v)).astype(object)
        return series.astype(bool)

    def _datetime(self, spec: ColumnSpec, series: pd.Series) -> pd.Series:
        nulls = series.isna()
        if nulls.any() and spec.name not in self._nullable:
            row = int(np.flatnonzero(nulls.to_numpy())[0])
            raise InputError(f"column {spec.name!r}: null at row {row}; expected datetime")
        if not is_datetime64_any_dtype(series):
            if infer_dtype(series, skipna=True) not in _DATETIME_KINDS:
                raise self._type_error(spec, series, _ACCEPTS["datetime"],
                                       expected="datetime (an ISO-8601 string)")
            try:
                series = pd.to_datetime(series, format="ISO8601")
            except (ValueError, TypeError, OverflowError):
                raise self._unparsable(spec, series) from None
        if getattr(series.dt, "tz", None) is not None:
            row = int(np.flatnonzero(series.notna().to_numpy())[0])
            raise InputError(f"column {spec.name!r}: {series.iloc[row]} at row {row} has a UTC "
                             "offset; the model's datetime type is timezone-naive (as "
                             "MLflow's): send the time without an offset")
        return series.astype("datetime64[ns]")

    @staticmethod
    def _unparsable(spec: ColumnSpec, series: pd.Series) -> InputError:
        for row, value in enumerate(series.tolist()):
            if _is_null(value):
                continue
            try:
                pd.to_datetime(value, format="ISO8601")
            except (ValueError, TypeError, OverflowError):
                return InputError(f"column {spec.name!r}: expected datetime (an ISO-8601 "
                                  f"string such as '2024-01-31T12:30:00'), got {shown(value)} "
                                  f"at row {row}")
        return InputError(f"column {spec.name!r}: values mix timezone-aware and naive times")

    @staticmethod
    def _type_error(spec: ColumnSpec, series: pd.Series, accepts: Callable[[Any], bool],
                    expected: str | None = None) -> InputError:
        expected = expected or spec.dtype
        for row, value in enumerate(series.tolist()):
            if not accepts(value) and not _is_null(value):
                return InputError(f"column {spec.name!r}: expected {expected}, got "
                                  f"{type(value).__name__} {shown(value)} at row {row}")
        return InputError(f"column {spec.name!r}: expected {expected}")

    @staticmethod
    def _build(make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        try:
            return make()
        except (ValueError, TypeError) as exc:
            raise InputError(f"rows do not form a table: {exc}") from exc


def _nulls(spec: ColumnSpec, index: pd.RangeIndex) -> pd.Series:
    """An optional column the request left out: all missing, in the column's type."""
    if spec.dtype in FLOATS:
        return pd.Series(np.nan, index=index, dtype=_NUMPY_FLOAT[spec.dtype])
    if spec.dtype == "datetime":
        return pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    if spec.dtype in INTEGERS:
        return pd.Series(pd.NA, index=index, dtype="Int64" if spec.dtype == "long" else "Int32")
    return pd.Series(None, index=index, dtype=object)
