"""Columnar encodings of a batch of predictions: outputs, features, ids.

>>> outputs = Outputs(ts=np.array([1.0, 2.0]), prediction=np.array([1.0, np.nan]),
...                   score=np.array([0.9, np.nan]), latency_ms=np.array([3.0, 3.0]),
...                   error=np.array([False, True]))
>>> back = decode_outputs(encode_outputs(outputs), 2)
>>> back.error.tolist(), np.isnan(back.score).tolist()
([False, True], [False, True])
>>> multiclass = Outputs(ts=np.array([1.0, 2.0]), prediction=np.array([2.0, 0.0]),
...                      score=np.full(2, np.nan), latency_ms=np.array([3.0, 3.0]),
...                      error=np.array([False, False]),
...                      proba=np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]))
>>> decode_outputs(encode_outputs(multiclass), 2).proba.round(3).tolist()
[[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]
>>> timed = Outputs(ts=np.array([1.0, 2.0]), prediction=np.array([1.0, 0.0]),
...                 score=np.array([0.9, 0.2]), latency_ms=np.array([3.0, 3.0]),
...                 error=np.array([False, False]), model_cpu_ms=np.array([0.4, 0.4]),
...                 batch_rows=np.array([2.0, 2.0]))
>>> back = decode_outputs(encode_outputs(timed), 2)
>>> back.model_cpu_ms.tolist(), back.batch_rows.tolist()
([0.4, 0.4], [2.0, 2.0])

A blob written before the model's CPU time was kept (five columns, no marker) still
decodes; its rows have no CPU time:

>>> old = np.array([[1.0], [1.0], [0.9], [3.0], [0.0]]).astype("<f8").tobytes()
>>> back = decode_outputs(old, 1)
>>> back.latency_ms.tolist(), np.isnan(back.model_cpu_ms).tolist()
([3.0], [True])
>>> frame = pd.DataFrame({"x": [1.5, 2.5], "purpose": ["car", "home"]})
>>> decode_features(encode_features(frame)).equals(frame)
True
>>> decode_features(encode_features(pd.DataFrame({"odd": [1, "a"]})))["odd"].tolist()
['1', 'a']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["Outputs", "decode_feature_table", "decode_features", "decode_outputs",
           "encode_features", "encode_outputs"]

_UNKNOWN: np.ndarray = np.empty(0)  # a column left out: NaN for every row


@dataclass(frozen=True, slots=True)
class Outputs:
    """Per row of a batch: when, what was predicted, how sure, how fast, whether it failed.
    A classifier's prediction is its class as a number: the class itself when the
    classes of a multiclass model are numbers, else its index in `classes_`
    (`tether.classes`). A missing prediction or score (a failed request, a model without
    scores) is NaN. `proba`: a multiclass classifier's class probabilities (n, k) in its
    `classes_` order, None for other models.
    `model_cpu_ms`: CPU milliseconds of the model call that answered the row (the
    server's model thread); `batch_rows`: rows in that call. Both NaN where unknown (a
    failed request, a row written one at a time or before they were kept); left out,
    they are NaN."""

    ts: np.ndarray
    prediction: np.ndarray
    score: np.ndarray
    latency_ms: np.ndarray
    error: np.ndarray
    proba: np.ndarray | None = None
    model_cpu_ms: np.ndarray = field(default_factory=lambda: _UNKNOWN)
    batch_rows: np.ndarray = field(default_factory=lambda: _UNKNOWN)

    def __post_init__(self) -> None:
        for name in ("model_cpu_ms", "batch_rows"):
            if getattr(self, name) is _UNKNOWN:
                object.__setattr__(self, name, np.full(len(self.ts), np.nan))

    @property
    def classes(self) -> int:
        """How many class probabilities each row keeps (0: none)."""
        return 0 if self.proba is None else int(self.proba.shape[1])

    def take(self, index: np.ndarray) -> Outputs:
        return Outputs(ts=self.ts[index], prediction=self.prediction[index],
                       score=self.score[index], latency_ms=self.latency_ms[index],
                       error=self.error[index],
                       proba=None if self.proba is None else self.proba[index],
                       model_cpu_ms=self.model_cpu_ms[index],
                       batch_rows=self.batch_rows[index])

    @staticmethod
    def concat(parts: list[Outputs]) -> Outputs:
        ts, prediction, score, latency_ms, error, model_cpu_ms, batch_rows = (
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("ts", "prediction", "score", "latency_ms", "error",
                         "model_cpu_ms", "batch_rows"))
        k = max((p.classes for p in parts), default=0)
        if not k:
            return Outputs(ts, prediction, score, latency_ms, error,
                           model_cpu_ms=model_cpu_ms, batch_rows=batch_rows)
        # rows without probabilities (a failed request, another version) are NaN
        proba = np.full((sum(len(p.ts) for p in parts), k), np.nan)
        start = 0
        for part in parts:
            if part.proba is not None:
                proba[start:start + len(part.ts), :part.classes] = part.proba
            start += len(part.ts)
        return Outputs(ts, prediction, score, latency_ms, error, proba,
                       model_cpu_ms=model_cpu_ms, batch_rows=batch_rows)


# The first 8 bytes of a blob with the model's CPU time: a NaN with a payload of its
# own. Older blobs start with the first row's `ts`, which is never NaN, so the word
# tells the two layouts apart without a schema migration.
MARKER = np.array([0x7FF8_7465_7468_0002], dtype="<u8").tobytes()
_COLUMNS = 7
_OLD_COLUMNS = 5


def encode_outputs(outputs: Outputs) -> bytes:
    """`MARKER`, then seven float64 columns back to back (ts, prediction, score,
    latency_ms, error, model_cpu_ms, batch_rows): a decode is one `frombuffer`, no
    parsing. Class probabilities follow as float32 (n, k), row by row: 4 bytes a class,
    and a probability needs no more than float32's seven digits."""
    head = np.stack([outputs.ts, outputs.prediction, outputs.score, outputs.latency_ms,
                     outputs.error, outputs.model_cpu_ms, outputs.batch_rows]
                    ).astype("<f8", copy=False).tobytes()
    if outputs.proba is None:
        return MARKER + head
    return MARKER + head + np.ascontiguousarray(outputs.proba, dtype="<f4").tobytes()


def decode_outputs(blob: bytes, rows: int) -> Outputs:
    """The outputs of `rows` rows, of either layout: with `MARKER`, seven columns; without
    (written before the model's CPU time was kept), five, and the CPU time and batch
    size are NaN. The blob's length says how many class probabilities follow the
    columns (batches written before they were kept have none)."""
    marked = blob[:len(MARKER)] == MARKER
    start = len(MARKER) if marked else 0
    width = _COLUMNS if marked else _OLD_COLUMNS
    head = start + width * 8 * rows
    columns = np.frombuffer(blob, dtype="<f8", count=width * rows,
                            offset=start).reshape(width, rows)
    proba = None
    if len(blob) > head and rows:
        k = (len(blob) - head) // (4 * rows)
        proba = np.frombuffer(blob, dtype="<f4", offset=head,
                              count=rows * k).reshape(rows, k).astype(float)
    unknown = np.full(rows, np.nan)
    return Outputs(ts=columns[0], prediction=columns[1], score=columns[2],
                   latency_ms=columns[3], error=columns[4] != 0, proba=proba,
                   model_cpu_ms=columns[5] if marked else unknown,
                   batch_rows=columns[6] if marked else unknown)


def encode_features(frame: pd.DataFrame) -> bytes:
    """An Arrow IPC stream: typed columns (numbers, strings, dates), written without a
    per-row step. Arrow's own thread pool is left out: the log writes from a thread
    beside the server's event loop, and on a busy core the pool costs more than it saves."""
    dtypes = list(frame.dtypes)
    if len(set(dtypes)) == 1 and getattr(dtypes[0], "kind", "O") in "fiub":
        # all of one numeric type (a validated float matrix): columns are views of one
        # transposed copy, ten times faster than the per-column conversion
        matrix = np.ascontiguousarray(frame.to_numpy().T)
        table = pa.table({str(name): matrix[i] for i, name in enumerate(frame.columns)})
    else:
        try:
            table = (_column_by_column(frame) if all(map(_plain, dtypes))
                     else pa.Table.from_pandas(frame, preserve_index=False, nthreads=1))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # a column of mixed Python types (numbers and strings): kept as text rather
            # than losing the rows
            mixed = {name: str for name, kind in frame.dtypes.items() if kind.kind == "O"}
            table = pa.Table.from_pandas(frame.astype(mixed), preserve_index=False,
                                         nthreads=1)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _plain(dtype: object) -> bool:
    """A numpy dtype or pandas' default text dtype: Arrow reads either back as it was
    without pandas metadata (other extension types, such as Int64, need it)."""
    return isinstance(dtype, np.dtype) or dtype == pd.StringDtype(na_value=np.nan)


def _column_by_column(frame: pd.DataFrame) -> pa.Table:
    """The table `pa.Table.from_pandas` builds, without the pandas metadata it adds
    (index, dtype names) that decoding does not need for plain dtypes: for the one-row
    frames a busy server logs, that metadata cost more than the columns (about 300
    against 120 us)."""
    arrays = [pa.array(column.to_numpy() if isinstance(column.dtype, np.dtype) else column,
                       from_pandas=True) for _, column in frame.items()]
    return pa.Table.from_arrays(arrays, names=[str(name) for name in frame.columns])


def decode_features(blob: bytes) -> pd.DataFrame:
    return decode_feature_table(blob).to_pandas(use_threads=False)


def decode_feature_table(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(blob).read_all()


def encode_ids(ids: list[str]) -> str:
    return "\n".join(ids)


def decode_ids(text: str) -> list[str]:
    return text.split("\n")
