r"""Users' data files (CSV or Parquet) as DataFrames, read as fast as this machine allows.

Parquet goes through `pyarrow.parquet` with threads, handed to pandas without a second
copy of the data. CSV goes through pandas' own C parser: pyarrow's multithreaded CSV
reader was measured slower than pandas 3's parser here (both 300k x 20 files: 2.42 s
against 1.51 s on the shared 2-core machine, and slower in every interleaved run; see
benchmarks/README.md, drift on files), and pandas' conventions (missing-value strings,
dates kept as text, "name.1" for a repeated header) then hold by construction.

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
from typing import TYPE_CHECKING

from tether.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PARQUET_SUFFIXES", "read_table"]

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: Path, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The file at `path` as a DataFrame: Parquet by suffix (.parquet, .pq), CSV otherwise.

    `columns` reads only those (all by default). Raises `DataError` naming the file when
    it does not exist or cannot be read.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    wanted = list(columns) if columns else None
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=wanted, use_threads=True)
            # split_blocks + self_destruct: columns are handed over one by one, so the
            # peak is about one copy of the data instead of two
            return table.to_pandas(split_blocks=True, self_destruct=True)
        import pandas as pd

        return pd.read_csv(path, usecols=wanted)
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
