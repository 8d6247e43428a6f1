"""The compiled input checks, on their own (no server)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tether.errors import InputError, PayloadTooLarge, UnsupportedMediaType
from tether.registry import ColumnSpec
from tether.serving.protocol import parse_body, parse_ids
from tether.serving.validation import Validator

FLOATS = [ColumnSpec("a", "double"), ColumnSpec("b", "double")]
MIXED = [ColumnSpec("x", "double"), ColumnSpec("n", "long"), ColumnSpec("s", "string")]


def message(call: object) -> str:
    with pytest.raises(InputError) as caught:
        call()  # type: ignore[operator]
    return str(caught.value)


def test_float_rows_take_the_fast_path_in_signature_order() -> None:
    check = Validator(FLOATS, allow_nan=False)
    matrix = check.records([{"b": 2, "a": 1.5}, {"a": 3.0, "b": 4.0}])
    assert isinstance(matrix, np.ndarray)
    assert matrix.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    columnar = check.columnar({"b": [2.0], "a": [1.0]})
    assert isinstance(columnar, np.ndarray) and columnar.tolist() == [[1.0, 2.0]]


def test_missing_and_extra_columns_are_named_with_their_types() -> None:
    check = Validator(FLOATS)
    text = message(lambda: check.split({"columns": ["a", "c"], "data": [[1, 2]]}))
    assert "missing column(s) 'b' (double)" in text and "unexpected column(s) ['c']" in text


def test_a_string_where_a_float_is_expected_names_column_and_row() -> None:
    check = Validator(FLOATS)
    text = message(lambda: check.split({"columns": ["a", "b"], "data": [[1, 2], [3, "4"]]}))
    assert text == "column 'b': expected double, got str '4' at row 1"


def test_nan_is_refused_only_where_the_model_cannot_take_it() -> None:
    rows = {"columns": ["a", "b"], "data": [[1.0, None]]}
    assert "NaN or null at row 0" in message(lambda: Validator(FLOATS, allow_nan=False)
                                             .split(rows))
    frame = Validator(FLOATS, allow_nan=True).split(rows)
    assert np.isnan(np.asarray(frame, dtype=float)[0, 1])


def test_mixed_types_are_checked_per_column() -> None:
    check = Validator(MIXED)
    frame = check.records([{"x": 1, "n": 2, "s": "u"}])
    assert isinstance(frame, pd.DataFrame)
    assert [str(t) for t in frame.dtypes[:2]] == ["float64", "int64"]
    assert pd.api.types.is_string_dtype(frame["s"])
    assert message(lambda: check.records([{"x": 1.0, "n": 2.5, "s": "u"}])) == (
        "column 'n': expected long, got float 2.5 at row 0")
    assert message(lambda: check.records([{"x": 1.0, "n": None, "s": "u"}])) == (
        "column 'n': null at row 0; expected long")


def test_ragged_and_non_object_rows_are_input_errors() -> None:
    check = Validator(FLOATS)
    assert "rows do not form a table" in message(
        lambda: check.split({"columns": ["a", "b"], "data": [[1.0], [1.0, 2.0, 3.0]]}))
    assert message(lambda: check.records([[1.0, 2.0]])).startswith("row 0: expected an object")


def test_body_parsing_limits_and_ids() -> None:
    with pytest.raises(PayloadTooLarge, match="limit of 5 rows"):
        parse_body(b'{"dataframe_records": [{}, {}, {}, {}, {}, {}]}', "application/json",
                   max_rows=5)
    with pytest.raises(UnsupportedMediaType):
        parse_body(b"a=1", "application/x-www-form-urlencoded", max_rows=5)
    assert "malformed JSON" in message(lambda: parse_body(b"{", "application/json",
                                                          max_rows=5))
    assert "empty body" in message(lambda: parse_body(b"  ", "application/json", max_rows=5))
    assert "exactly one of" in message(lambda: parse_body(
        b'{"dataframe_records": [], "inputs": []}', "application/json", max_rows=5))
    assert parse_ids([1, "b"], 2) == ["1", "b"]
    assert "unique" in message(lambda: parse_ids(["a", "a"], 2))
    assert "one per row" in message(lambda: parse_ids(["a"], 2))


TYPED = [ColumnSpec("x", "double"), ColumnSpec("f", "float"), ColumnSpec("n", "long"),
         ColumnSpec("i", "integer"), ColumnSpec("b", "boolean"), ColumnSpec("s", "string")]
TYPED_ROWS = [[1, 0.5, 3, -4, True, "a"], [2.5, 7, 2**40, 2**31 + 5, False, "b"],
              [-0.0, 1e30, -(2**63), 0, True, ""]]


def per_value(check: Validator, columns: list[str], rows: list[list[object]]) -> pd.DataFrame:
    """What the validator builds the slow way: pandas infers each value, then per column."""
    return check.frame(pd.DataFrame(rows, columns=columns))


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [5, 3, 1, 0, 4, 2]])
def test_mixed_rows_built_column_by_column_equal_the_per_value_frame(order: list[int]) -> None:
    check = Validator(TYPED)
    columns = [TYPED[i].name for i in order]
    rows = [[row[i] for i in order] for row in TYPED_ROWS]
    expected = per_value(check, columns, rows)
    for got in (check.split({"columns": columns, "data": rows}),
                check.records([dict(zip(columns, row, strict=True)) for row in rows]),
                check.columnar({name: [row[k] for row in rows]
                                for k, name in enumerate(columns)})):
        pd.testing.assert_frame_equal(got, expected)
    assert [str(t) for t in expected.dtypes[:5]] == ["float64", "float32", "int64", "int32",
                                                      "bool"]


@pytest.mark.parametrize(("column", "value", "error"), [
    ("x", "1.5", "column 'x': expected double, got str '1.5' at row 1"),
    ("x", True, "column 'x': expected double, got bool True at row 1"),
    # named as sent: pandas would have made the whole column floats first
    ("n", 2.0, "column 'n': expected long, got float 2.0 at row 1"),
    ("i", "3", "column 'i': expected integer, got str '3' at row 1"),
    ("n", None, "column 'n': null at row 1; expected long"),
    ("b", "false", "column 'b': expected boolean (JSON true or false), got str 'false' at "
                   "row 1"),
    ("s", 3, "column 's': expected string, got int 3 at row 1"),
    ("s", None, "column 's': null at row 1; expected string (the signature requires a value "
                "and the model was not seen to handle a missing one)"),
])
def test_a_value_of_the_wrong_type_in_a_mixed_body_is_worded_as_before(
        column: str, value: object, error: str) -> None:
    check = Validator(TYPED)
    names = [spec.name for spec in TYPED]
    rows = [list(row) for row in TYPED_ROWS]
    rows[1][names.index(column)] = value
    assert message(lambda: check.split({"columns": names, "data": rows})) == error
    assert message(lambda: check.records([dict(zip(names, row, strict=True))
                                          for row in rows])) == error


def test_nulls_in_a_mixed_body_follow_the_model_as_before() -> None:
    names = [spec.name for spec in TYPED]
    rows = [list(row) for row in TYPED_ROWS]
    rows[2][0] = None
    refuse = Validator(TYPED, allow_nan=False)
    assert message(lambda: refuse.split({"columns": names, "data": rows})) == (
        "column 'x': NaN or null at row 2; this model cannot handle missing values")
    frame = Validator(TYPED, allow_nan=True).split({"columns": names, "data": rows})
    assert np.isnan(frame["x"].iloc[2]) and frame["x"].dtype == np.float64
    ragged = [*TYPED_ROWS[:2], [*TYPED_ROWS[2], "extra"]]
    assert "rows do not form a table" in message(
        lambda: refuse.split({"columns": names, "data": ragged}))

