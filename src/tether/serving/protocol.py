"""Request bodies in MLflow's scoring protocol (and tether's additions), parsed once.

JSON bodies carry exactly one of `dataframe_split`, `dataframe_records`, `instances`,
`inputs`; CSV bodies are a table with a header row. `/predict` also takes `ids`, one per
row. Nothing here knows a model: `Payload.rows(validator)` applies a version's checks.

>>> payload = parse_body(b'{"dataframe_records": [{"a": 1}], "ids": ["x"]}',
...                      "application/json", max_rows=10, extra_keys={"ids"})
>>> payload.kind, payload.n, payload.ids
('dataframe_records', 1, ['x'])
"""

from __future__ import annotations

import io
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

from tether.errors import InputError, PayloadTooLarge, UnsupportedMediaType
from tether.serving.validation import Rows, Validator

__all__ = ["FORMATS", "MAX_ID_LENGTH", "Payload", "media_type", "parse_body", "parse_ids"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON = "application/json"
CSV = "text/csv"
MAX_ID_LENGTH = 56  # the store keeps 64; shadow rows append a suffix


@dataclass(frozen=True, slots=True)
class Payload:
    kind: str  # a FORMATS key, or "csv"
    data: Any
    n: int
    ids: list[str] | None = None

    def rows(self, validator: Validator) -> Rows:
        if self.kind == "dataframe_split":
            return validator.split(self.data)
        if self.kind == "csv":
            return validator.frame(self.data)
        if self.kind == "inputs" and isinstance(self.data, dict):
            return validator.columnar(self.data)
        if isinstance(self.data, list):
            if self.data and not isinstance(self.data[0], dict):
                raise InputError(f"{self.kind}: rows must be objects of column: value "
                                 "(a list of lists has no column names)")
            return validator.records(self.data)
        raise InputError(f"{self.kind}: expected a list of objects or an object of columns")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(body: bytes, content_type: str | None, *, max_rows: int,
               extra_keys: Collection[str] = ()) -> Payload:
    kind = media_type(content_type)
    if not body.strip():
        raise InputError("empty body: send a JSON object with one of "
                         f"{', '.join(FORMATS)}, or a CSV table")
    if kind == JSON:
        return _parse_json(body, max_rows=max_rows, extra_keys=extra_keys)
    if kind == CSV:
        return _parse_csv(body, max_rows=max_rows)
    raise UnsupportedMediaType(f"content type {content_type or '(none)'!r} is not supported; "
                               f"send {JSON} or {CSV}")


def _parse_json(body: bytes, *, max_rows: int, extra_keys: Collection[str]) -> Payload:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InputError(f"expected a JSON object with one of {', '.join(FORMATS)}, got "
                         f"{type(document).__name__}")
    keys = [key for key in FORMATS if key in document]
    if len(keys) != 1:
        raise InputError(f"expected exactly one of {', '.join(FORMATS)}; got "
                         f"{sorted(document) or 'an empty object'}")
    unknown = set(document) - {keys[0], *extra_keys}
    if unknown:
        raise InputError(f"unknown field(s) {sorted(unknown)}")
    kind = keys[0]
    data = document[kind]
    n = _count_rows(kind, data)
    _check_rows(n, max_rows)
    ids = parse_ids(document["ids"], n) if "ids" in document else None
    return Payload(kind, data, n, ids)


def _parse_csv(body: bytes, *, max_rows: int) -> Payload:
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as exc:
        raise InputError(f"malformed CSV: {str(exc).strip().splitlines()[0]}") from exc
    _check_rows(len(frame), max_rows)
    return Payload("csv", frame, len(frame))


def _count_rows(kind: str, data: Any) -> int:
    if kind == "dataframe_split" and isinstance(data, dict):
        rows = data.get("data")
        return len(rows) if isinstance(rows, list) else 0
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        first: Any = next(iter(data.values()), [])
        return len(first) if isinstance(first, list) else 1
    return 0


def _check_rows(n: int, max_rows: int) -> None:
    if n > max_rows:
        raise PayloadTooLarge(f"{n} rows exceed the limit of {max_rows} rows per request "
                              "(serving.max_rows in tether.yaml)")
    if n == 0:
        raise InputError("no rows to predict")


def parse_ids(ids: Any, n: int) -> list[str]:
    """Client prediction ids: one per row, unique, short strings (or integers)."""
    if not isinstance(ids, list) or len(ids) != n:
        raise InputError(f"ids: expected a list of {n} prediction ids, one per row")
    out: list[str] = []
    for index, value in enumerate(ids):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InputError(f"ids[{index}]: expected a string, got {type(value).__name__}")
        text = str(value)
        if not text or len(text) > MAX_ID_LENGTH:
            raise InputError(f"ids[{index}]: must be 1 to {MAX_ID_LENGTH} characters")
        if not text.isprintable():
            raise InputError(f"ids[{index}]: must not contain control characters "
                             "(newlines, tabs)")
        out.append(text)
    if len(set(out)) != n:
        raise InputError("ids: prediction ids must be unique within a request")
    return out
