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
