r"""Users' data files (CSV or Parquet) as DataFrames, read as fast as the disk allows.

CSV goes through pyarrow's multithreaded reader, with pandas' conventions kept where
the two differ: the same strings mean missing, dates and times stay text (pandas does
not parse them unless asked), a column with no value is float NaN, a blank header is
"Unnamed: N". Whatever pyarrow refuses (a column whose type changes after the first
block, a quoted line break, a repeated header pandas renames "name.1") is read again by
pandas' own parser, so a file pandas reads is never an error here. One difference stays:
integers past int64 are float64 (pandas keeps them as Python ints in an object column).
Parquet goes through `pyarrow.parquet` with threads. Figures: benchmarks/README.md
(drift on files).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.csv").write_text("x,when,n\n1.5,2024-01-02,7\nNA,2024-01-03,8\n")
>>> frame = read_table(folder / "a.csv")
>>> list(frame.columns), [str(t) for t in frame.dtypes]
(['x', 'when', 'n'], ['float64', 'str', 'int64'])
>>> frame["x"].isna().tolist(), frame["when"].tolist()
([False, True], ['2024-01-02', '2024-01-03'])
>>> read_table(folder / "missing.csv")
Traceback (most recent call last):
...
tether.errors.DataError: ...missing.csv: no such data file
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["PARQUET_SUFFIXES", "read_table"]

PARQUET_SUFFIXES = (".parquet", ".pq")
# pandas.read_csv's default missing-value strings (pandas._libs.parsers.STR_NA_VALUES).
PANDAS_NA_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                    "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                    "nan", "null"]
BLOCK_BYTES = 4 << 20


def read_table(path: Path, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The file at `path` as a DataFrame: Parquet by suffix (.parquet, .pq), CSV otherwise.

    `columns` reads only those (all by default). Raises `DataError` naming the file when
    it does not exist or cannot be read.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return _to_pandas(pq.read_table(path, columns=list(columns) if columns else None,
                                            use_threads=True))
        return _read_csv(path, columns)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def _read_csv(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    import pyarrow as pa

    try:
        table = _arrow_csv(path, columns, {})
        # pyarrow infers dates and times; pandas leaves them as text unless asked, and so
        # does tether: read those columns again as strings, keeping the file's spelling
        dated = {field.name: pa.string() for field in table.schema
                 if pa.types.is_temporal(field.type)}
        if dated:
            table = _arrow_csv(path, columns, dated)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return _read_csv_pandas(path, columns)
    if len(set(table.column_names)) != table.num_columns or table.num_rows == 0:
        return _read_csv_pandas(path, columns)  # pandas' "name.1" renaming, its empty dtypes
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):  # nothing but missing values: NaN, as pandas has it
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    return _to_pandas(table.rename_columns([name if name else f"Unnamed: {i}"
                                            for i, name in enumerate(table.column_names)]))


def _arrow_csv(path: Path, columns: Sequence[str] | None,
               column_types: dict[str, pa.DataType]) -> pa.Table:
    from pyarrow import csv

    return csv.read_csv(
        path,
        read_options=csv.ReadOptions(use_threads=True, block_size=BLOCK_BYTES),
        convert_options=csv.ConvertOptions(
            null_values=PANDAS_NA_VALUES, strings_can_be_null=True,
            column_types=column_types, include_columns=list(columns) if columns else None))


def _read_csv_pandas(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path, usecols=list(columns) if columns else None, low_memory=False)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    # split_blocks + self_destruct: float columns without nulls are handed over without a
    # second copy of the whole table (peak memory ~1x the data instead of ~2x)
    options: dict[str, Any] = {"split_blocks": True, "self_destruct": True}
    return table.to_pandas(**options)
