"""Users' CSV and Parquet files: what pandas reads, read the same way; errors name the file.
`read_columns` gives the same values column by column, without pandas for numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tether.errors import DataError
from tether.example.loans import generate
from tether.tables import Columns, read_columns, read_table

CSV_CASES = {
    "numbers_and_text": "a,b,c\n1,2.5,x\n3,,y\n",
    "missing_spellings": "a,b\nNA,1\nnull,2\nNone,3\nn/a,4\n<NA>,5\n,6\n",
    "dates_stay_text": ("d,t,x\n2024-01-02,2024-01-02T10:00:00,1\n"
                        "2024-02-03,2024-02-03T11:30:00,2\n"),
    "booleans": "a,b\nTrue,true\nFalse,false\n",
    "repeated_header": "a,b,a\n1,2,3\n4,5,6\n",
    "blank_header": ",b\nx,1\ny,2\n",
    "type_changes_late": "a,b\n" + "1,2\n" * 50_000 + "abc,3\n",
    "quoted_newline": 'a,b\n"x\ny",1\nz,2\n',
    "leading_space_numbers": "a,b\n 1.5,x\n2, y\n",
    "header_only": "a,b\n",
}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_csv_reads_as_pandas_reads_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text(CSV_CASES[name])
    ours = read_table(path)
    theirs = pd.read_csv(path, low_memory=False)
    assert list(ours.columns) == list(theirs.columns)
    assert [str(t) for t in ours.dtypes] == [str(t) for t in theirs.dtypes]
    pd.testing.assert_frame_equal(ours, theirs)


def _same_values(columns: Columns, frame: pd.DataFrame) -> None:
    assert columns.columns == [str(c) for c in frame.columns] and len(columns) == len(frame)
    if frame.empty:
        return  # no values to compare (a header alone: pandas says text, Arrow says null)
    for name in frame.columns:
        ours, theirs = columns[str(name)], frame[name]
        if pd.api.types.is_numeric_dtype(theirs.dtype) or pd.api.types.is_bool_dtype(
                theirs.dtype):
            assert isinstance(ours, np.ndarray) and ours.dtype == np.float64, name
            np.testing.assert_array_equal(ours, theirs.to_numpy(dtype=float, na_value=np.nan))
        else:
            pd.testing.assert_series_equal(ours, theirs, check_names=False)


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_columns_of_a_csv_hold_what_pandas_reads(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text(CSV_CASES[name])
    _same_values(read_columns(path), pd.read_csv(path, low_memory=False))


def test_columns_of_numbers_with_gaps_in_every_arrow_type(tmp_path: Path) -> None:
    """Each Arrow number type, with missing values, in several chunks (row groups)."""
    table = pa.table({
        "i8": pa.array([1, None, -3, 4], pa.int8()),
        "u32": pa.array([1, 2, None, 4_000_000_000], pa.uint32()),
        "i64": pa.array([2**40, None, 0, -1], pa.int64()),
        "f16": pa.array(np.array([1.5, np.nan, 2.0, 0.25], dtype=np.float16)),
        "f32": pa.array([0.5, None, 1e30, -2.0], pa.float32()),
        "f64": pa.array([0.1, None, float("inf"), float("nan")], pa.float64()),
        "flag": pa.array([True, None, False, True]),
        "none": pa.array([None] * 4, pa.null()),
    })
    path = tmp_path / "numbers.parquet"
    pq.write_table(table, path, row_group_size=3)  # two chunks: 3 rows, then 1
    columns = read_columns(path)
    expected = table.to_pandas()
    for name in table.column_names:
        theirs = pd.to_numeric(expected[name].astype(object), errors="coerce").astype(float)
        np.testing.assert_array_equal(columns[name], theirs.to_numpy(), err_msg=name)


def test_columns_of_a_parquet_file_written_by_pandas(tmp_path: Path) -> None:
    frame = generate(500, seed=5).set_index("age")  # the index is not a column
    frame.to_parquet(tmp_path / "loans.parquet")
    _same_values(read_columns(tmp_path / "loans.parquet"), frame.reset_index(drop=True))


def test_parquet_and_a_column_subset(tmp_path: Path) -> None:
    frame = generate(500, seed=5)
    frame.to_parquet(tmp_path / "loans.parquet")
    frame.to_csv(tmp_path / "loans.csv", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "loans.parquet"), frame)
    for suffix in ("parquet", "csv"):
        subset = read_table(tmp_path / f"loans.{suffix}", columns=["age", "purpose"])
        assert list(subset.columns) == ["age", "purpose"]
        assert np.allclose(subset["age"], frame["age"])


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such data file"),
    ("", "the file is empty (0 bytes)"),
    (b"PAR1 not really parquet", "cannot read"),
])
def test_unreadable_files_raise_data_error_naming_the_file(tmp_path: Path,
                                                           content: str | bytes | None,
                                                           message: str) -> None:
    path = tmp_path / ("bad.parquet" if isinstance(content, bytes) else "bad.csv")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize("form", ["gzip", "bz2", "zip", "parquet"])
def test_a_file_is_read_by_what_it_holds_whatever_its_name(tmp_path: Path, form: str) -> None:
    # a compressed CSV or a Parquet file named .csv was "cannot read (UnicodeDecodeError)"
    frame = generate(300, seed=3)
    path = tmp_path / "data.csv"
    if form == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, compression=form)
    pd.testing.assert_frame_equal(read_table(path), frame)
    columns = read_columns(path)
    assert columns.columns == list(frame.columns)
    assert np.allclose(columns["income"], frame["income"])
    assert list(columns["purpose"]) == list(frame["purpose"])


def test_a_folder_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "data.csv").mkdir()
    for read in (read_table, read_columns):
        with pytest.raises(DataError, match=r"data\.csv: is a folder, not a data file"):
            read(tmp_path / "data.csv")


HEAVY_FOR_DRIFT = ("sklearn", "mlflow", "matplotlib", "scipy", "sqlalchemy", "pandas",
                   "pyarrow.compute", "pyarrow.dataset", "threadpoolctl")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_drift_of_files_of_numbers_imports_nothing_heavy(tmp_path: Path, suffix: str) -> None:
    """`tether drift` on two files of numbers (with gaps, a few-valued column, a shift)
    reads, profiles and compares them without pandas (0.15-0.25 s to import), scipy,
    pyarrow.compute, scikit-learn, MLflow, matplotlib or SQLAlchemy."""
    rng = np.random.default_rng(3)
    for name, shift in (("reference", 0.0), ("current", 0.5)):
        frame = pd.DataFrame({"x": rng.normal(shift, 1, 2000), "n": rng.integers(0, 3, 2000),
                              "flag": rng.random(2000) < 0.3})
        frame.loc[::7, "x"] = np.nan
        path = tmp_path / f"{name}.{suffix}"
        frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path)
    code = ("import sys, json; from pathlib import Path; "
            "from tether.tables import read_columns; "
            "from tether.monitoring.profile import build_profile; "
            "from tether.monitoring.drift import detect_drift; "
            f"r = detect_drift(build_profile(read_columns(Path({str(tmp_path)!r}) / "
            f"'reference.{suffix}')), read_columns(Path({str(tmp_path)!r}) / "
            f"'current.{suffix}')); "
            f"print(json.dumps([sorted(m for m in {HEAVY_FOR_DRIFT!r} if m in sys.modules), "
            "[f.name for f in r.features if f.drifted]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == [[], ["x"]]
