r"""Users' data files (CSV or Parquet), read as fast as this machine allows.

`read_table` gives a DataFrame. Parquet goes through `pyarrow.parquet` with threads,
handed to pandas without a second copy of the data. CSV goes through pandas' own C
parser, which reads these files about as fast as pyarrow's multithreaded reader here
(300k x 20: 0.13-0.17 s against 0.15-0.38 s), so pandas' conventions (missing-value
strings, dates kept as text, "name.1" for a repeated header) hold by construction.

`read_columns` gives the columns one by one, numbers as numpy arrays, for `tether
drift`: importing pandas costs a process 0.15-0.25 s, as much as the whole drift of two
300k-row files, so a file whose every column is numeric never imports it. Parquet is
read with `ParquetFile` (`pq.read_table` imports `pyarrow.dataset`, which imports
pandas); CSV with pyarrow's reader, given pandas' missing-value strings, and when
pyarrow reads any column of the file as something other than numbers (text, dates, a
number pandas would parse and pyarrow does not) the file is read by `read_table`
instead, so the values are pandas' by construction.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.csv").write_text("x,when,n\n1.5,2024-01-02,7\nNA,2024-01-03,8\n")
>>> frame = read_table(folder / "a.csv")
>>> list(frame.columns), [str(t) for t in frame.dtypes]
(['x', 'when', 'n'], ['float64', 'str', 'int64'])
>>> frame["x"].isna().tolist(), frame["when"].tolist()
([False, True], ['2024-01-02', '2024-01-03'])
>>> columns = read_columns(folder / "a.csv")
>>> columns.columns, len(columns), columns["n"], type(columns["when"]).__name__
(['x', 'when', 'n'], 2, array([7., 8.]), 'Series')
>>> _ = (folder / "b.csv").write_text("x,n\n1.5,7\nNA,\n")
>>> read_columns(folder / "b.csv")["n"]
array([ 7., nan])
>>> read_table(folder / "missing.csv")
Traceback (most recent call last):
...
tether.errors.DataError: ...missing.csv: no such data file
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["PARQUET_SUFFIXES", "Columns", "read_columns", "read_table"]

PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_MAGIC = b"PAR1"
# what a file starts with when it is compressed, whatever its name says
COMPRESSION_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"PK\x03\x04", "zip"),
                     (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
# pandas' default missing-value strings (pandas.io.parsers.readers.STR_NA_VALUES),
# written out so that reading a CSV of numbers needs no pandas import
PANDAS_NA_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                    "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                    "nan", "null")


@dataclass(frozen=True)
class Columns:
    """A data file's columns by name: numbers (and booleans, as 0/1) as float64 numpy
    arrays with NaN for a missing number, anything else as a pandas Series.

    Offers what profiles and drift checks read of a DataFrame: `columns`, `len()` (the
    rows) and `[name]`.
    """

    data: dict[str, Any]
    rows: int

    @property
    def columns(self) -> list[str]:
        return list(self.data)

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    def __len__(self) -> int:
        return self.rows

    def without(self, names: Iterable[str]) -> Columns:
        """These columns left out (names it does not have are ignored)."""
        dropped = set(names)
        return Columns({k: v for k, v in self.data.items() if k not in dropped}, self.rows)


def read_table(path: Path, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The file at `path` as a DataFrame: Parquet, or CSV (gzip, bz2, zip, xz or zstd
    compressed or not), known by the file's first bytes, else by its suffix (.parquet,
    .pq: Parquet).

    `columns` reads only those (all by default). Raises `DataError` naming the file when
    it does not exist, is a folder or is empty, or cannot be read.
    """
    kind = _kind(path)
    wanted = list(columns) if columns else None
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=wanted, use_threads=True)
            # split_blocks + self_destruct: columns are handed over one by one, so the
            # peak is about one copy of the data instead of two
            return table.to_pandas(split_blocks=True, self_destruct=True)
        import pandas as pd

        return pd.read_csv(path, usecols=wanted, compression=kind or "infer")
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def read_columns(path: Path) -> Columns:
    """The file at `path` column by column (see `Columns`), without pandas when every
    column holds numbers. Raises `DataError` naming the file, as `read_table` does."""
    kind = _kind(path)
    try:
        if kind == "parquet":
            return _parquet_columns(path)
        table = _numeric_csv(path) if kind is None else None
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    if table is None:
        return _frame_columns(read_table(path))
    return Columns({name: _numbers(table.column(name)) for name in table.column_names},
                   table.num_rows)


def _kind(path: Path) -> str | None:
    """"parquet", a compression pandas reads ("gzip", ...), or None for a plain CSV."""
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a data file: give a CSV or Parquet "
                        "file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise DataError(f"{path}: the file is empty (0 bytes): give a CSV file with a header "
                        "row, or a Parquet file")
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    found = next((name for magic, name in COMPRESSION_MAGIC if head.startswith(magic)), None)
    if found is None and path.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"  # not one: pyarrow's error says so
    return found


def _frame_columns(frame: pd.DataFrame) -> Columns:
    import numpy as np
    import pandas as pd

    def column(series: pd.Series) -> Any:
        kind = series.dtype
        if pd.api.types.is_bool_dtype(kind) or pd.api.types.is_numeric_dtype(kind):
            return series.to_numpy(dtype=float, na_value=np.nan)
        return series

    return Columns({str(name): column(frame[name]) for name in frame.columns}, len(frame))


def _parquet_columns(path: Path) -> Columns:
    import pyarrow.parquet as pq

    # memory-mapped and without pre-buffering: 0.035 s for two 300k x 20 files in every
    # fresh process, against 0.04-0.2 s with pyarrow's defaults
    table = pq.ParquetFile(path, memory_map=True, pre_buffer=False).read(use_threads=True)
    metadata = table.schema.pandas_metadata or {}
    index = {name for name in metadata.get("index_columns", []) if isinstance(name, str)}
    names = [name for name in table.column_names if name not in index]
    data = {name: _numbers(table.column(name)) for name in names
            if _is_number(table.schema.field(name).type)}
    others = [name for name in names if name not in data]
    if others:  # text, dates, ...: through pandas, which this file then needs anyway
        converted = table.select(others).replace_schema_metadata(None).to_pandas()
        data.update((name, converted[name]) for name in others)
    return Columns({name: data[name] for name in names}, table.num_rows)


def _numeric_csv(path: Path) -> pa.Table | None:
    """The CSV as an Arrow table if pyarrow reads every column as numbers, else None."""
    from pyarrow import csv

    try:
        table = csv.read_csv(path, convert_options=csv.ConvertOptions(
            null_values=list(PANDAS_NA_VALUES), strings_can_be_null=True))
    except Exception:
        return None  # e.g. a type that changes after the first block: pandas decides
    names = table.column_names
    if len(set(names)) != len(names) or "" in names or table.num_columns == 0:
        return None  # pandas renames repeated and blank headers
    if not all(_is_number(field.type) for field in table.schema):
        return None
    return table


def _is_number(kind: pa.DataType) -> bool:
    import pyarrow.types as types

    return bool(types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind)
                or types.is_null(kind))


def _numbers(column: pa.ChunkedArray) -> Any:
    """The column as one float64 array, NaN where a value is missing."""
    import numpy as np

    chunks = [_float_chunk(chunk) for chunk in column.chunks]
    if len(chunks) == 1:
        return chunks[0]
    return np.concatenate(chunks) if chunks else np.empty(0)


def _float_chunk(chunk: pa.Array) -> Any:
    # Straight from Arrow's buffers: every pyarrow route to numpy (to_numpy, __array__,
    # fill_null with a NaN scalar) imports pandas, and `cast` pyarrow.compute, together
    # 0.2-0.3 s of a `tether drift` that otherwise takes 0.4 s.
    import numpy as np
    import pyarrow.types as types

    kind, size, start = chunk.type, len(chunk), chunk.offset
    buffers = chunk.buffers()
    if types.is_null(kind) or size == 0:
        return np.full(size, np.nan)
    if types.is_boolean(kind):
        bits = np.unpackbits(np.frombuffer(buffers[1], dtype=np.uint8), bitorder="little")
        values = bits[start:start + size].astype(np.float64)
    else:
        code = "f" if types.is_floating(kind) else "i" if types.is_signed_integer(kind) else "u"
        dtype = np.dtype(f"{code}{kind.bit_width // 8}")
        raw = np.frombuffer(buffers[1], dtype=dtype, count=size, offset=start * dtype.itemsize)
        values = raw.astype(np.float64, copy=False)
    if chunk.null_count:
        bits = np.unpackbits(np.frombuffer(buffers[0], dtype=np.uint8), bitorder="little")
        values = np.where(bits[start:start + size].astype(bool), values, np.nan)
    return values
