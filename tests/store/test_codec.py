"""Features as the prediction log keeps them read back as pyarrow's own pandas
conversion gives them, whatever the column's type."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tether.store.codec import decode_features, encode_features

COLUMNS = {
    "float with a missing value": np.array([1.5, np.nan, 3.0]),
    "float32": np.array([1, 2, 3], dtype=np.float32),
    "int": np.array([1, 2, 3]),
    "bool": np.array([True, False, True]),
    "text with None": np.array(["car", None, "home"], dtype=object),
    "text as objects": pd.Series(["car", None, "home"], dtype=object),
    "text dtype": pd.array(["car", None, "home"], dtype="string"),
    "datetime": pd.to_datetime(["2024-01-01", None, "2024-03-01"]).to_numpy(),
    "datetime with a zone": pd.to_datetime(["2024-01-01", None, "2024-03-01"]).tz_localize(
        "UTC"),
    "category": pd.Categorical(["a", None, "b"]),
    "nullable int": pd.array([1, None, 3], dtype="Int64"),
    "numbers and text": np.array([1, "a", 2.5], dtype=object),
}


def _pyarrow_round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = {name: str for name, dtype in frame.dtypes.items() if dtype.kind == "O"}
        table = pa.Table.from_pandas(frame.astype(text), preserve_index=False)
    return table.to_pandas()


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_a_logged_column_reads_back_as_pyarrow_converts_it(kind: str) -> None:
    frame = pd.DataFrame({"x": COLUMNS[kind], "y": [0.1, 0.2, 0.3]})
    back = decode_features(encode_features(frame))
    pd.testing.assert_frame_equal(back, _pyarrow_round_trip(frame))


def test_mixed_columns_keep_names_order_and_values() -> None:
    frame = pd.DataFrame({name: values for name, values in COLUMNS.items()
                          if name != "numbers and text"})
    back = decode_features(encode_features(frame))
    assert list(back.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(back, _pyarrow_round_trip(frame))
