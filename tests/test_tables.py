"""Users' CSV and Parquet files: what pandas reads, read the same way; errors name the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tether.errors import DataError
from tether.example.loans import generate
from tether.tables import read_table

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
    ("", "cannot read (EmptyDataError"),
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


def test_drift_path_imports_nothing_heavy() -> None:
    """`tether drift` reads files and compares them: no scikit-learn, MLflow, matplotlib,
    scipy.stats (0.6 s) or SQLAlchemy on its path."""
    code = ("import sys; import tether.tables, tether.monitoring.drift, "
            "tether.monitoring.profile; "
            "print(sorted(m for m in ('sklearn', 'mlflow', 'matplotlib', 'scipy.stats', "
            "'sqlalchemy', 'scipy.spatial') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
