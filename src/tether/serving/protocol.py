"""Request bodies in MLflow's scoring protocol (and tether's additions), parsed once.

JSON bodies carry exactly one of `dataframe_split`, `dataframe_records`, `instances`,
`inputs`; CSV bodies are a table with a header row. `/predict` also takes `ids`, one per
row, one flat object of column: value as one row, and `{"features": [[...]]}`, rows of
values in the model's column order (`flat=True`). Nothing here knows a
model: `Payload.rows(validator)` applies a version's checks.

>>> payload = parse_body(b'{"dataframe_records": [{"a": 1}], "ids": ["x"]}',
...                      "application/json", max_rows=10, extra_keys={"ids"})
>>> payload.kind, payload.n, payload.ids
('dataframe_records', 1, ['x'])
>>> parse_body(b'{"heart_rate": 75, "steps": 8000}', "application/json", max_rows=10,
...            flat=True).data
[{'heart_rate': 75, 'steps': 8000}]
>>> parse_body(b'{"features": [[1, 2, 3, 4]]}', "application/json", max_rows=10,
...            flat=True).n
1

A body `/invocations` hands to MLflow's own parser first passes `check_for_mlflow`: no
deeper than `MAX_JSON_DEPTH` (MLflow's parser is recursive) and no value in a boolean
column that MLflow would read wrong.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tether.errors import InputError, PayloadTooLarge, UnsupportedMediaType
from tether.serving.http import check_depth, load_json
from tether.serving.ids import reserved_suffix
from tether.serving.validation import Rows, Validator, refuse_ambiguous

__all__ = ["FORMATS", "MAX_ID_LENGTH", "Payload", "check_for_mlflow", "media_type",
           "parse_body", "parse_ids", "payload_of"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
FEATURES = "features"  # /predict only: rows of values in the signature's column order
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
        if self.kind == FEATURES:
            names = list(validator.names)
            wrong = next((i for i, row in enumerate(self.data) if len(row) != len(names)),
                         None)
            if wrong is not None:
                raise InputError(f"features[{wrong}]: {len(self.data[wrong])} value(s); the "
                                 f"model takes {len(names)}: {', '.join(names)}")
            return validator.split({"columns": names, "data": self.data})
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

    def values(self, column: str) -> list[Any]:
        """The values a column holds in this request, whatever its format (none when the
        format names no columns)."""
        data = self.data
        if self.kind == "csv":
            return data[column].tolist() if column in data.columns else []
        if self.kind == "dataframe_split":
            columns = data.get("columns") if isinstance(data, dict) else None
            rows = data.get("data") if isinstance(data, dict) else None
            if not isinstance(columns, list) or column not in columns or \
                    not isinstance(rows, list):
                return []
            at = columns.index(column)
            return [row[at] for row in rows if isinstance(row, list) and len(row) > at]
        if isinstance(data, dict):
            value = data.get(column)
            return value if isinstance(value, list) else [value] if column in data else []
        if isinstance(data, list):
            return [row[column] for row in data if isinstance(row, dict) and column in row]
        return []


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(body: bytes, content_type: str | None, *, max_rows: int,
               extra_keys: Collection[str] = (), flat: bool = False) -> Payload:
    """A request body as a `Payload`; `flat` also takes one object of column: value (all
    of them numbers, strings, booleans or null) as one row."""
    kind = media_type(content_type)
    if not body.strip():
        raise InputError("empty body: send a JSON object with one of "
                         f"{', '.join(FORMATS)}, or a CSV table")
    if kind == JSON:
        return _payload(load_json(body), max_rows=max_rows, extra_keys=extra_keys, flat=flat)
    if kind == CSV:
        return _parse_csv(body, max_rows=max_rows)
    raise UnsupportedMediaType(f"content type {content_type or '(none)'!r} is not supported; "
                               f"send the header Content-Type: {JSON} (curl: -H "
                               f"'Content-Type: {JSON}') or Content-Type: {CSV}")


def check_for_mlflow(body: bytes, content_type: str, validator: Validator, *,
                     max_rows: int) -> None:
    """Refuse what MLflow's own parser would crash on (deep nesting: `PayloadTooDeep`) or
    read wrong (a string in a boolean column becomes true: `AmbiguousValue`); anything
    else is left for MLflow to answer."""
    check_depth(body)
    try:
        if media_type(content_type) == JSON:
            # Python's parser, as MLflow's: it also reads NaN, which orjson refuses
            payload = payload_of(json.loads(body), max_rows=max_rows)
        else:
            payload = parse_body(body, content_type, max_rows=max_rows)
    except PayloadTooLarge:
        raise
    except (InputError, ValueError, RecursionError):
        return  # not a table MLflow can read either: its own error answers
    for spec in validator.columns:
        if spec.dtype == "boolean":
            refuse_ambiguous(spec.name, payload.values(spec.name))


def payload_of(document: Any, *, max_rows: int) -> Payload:
    """A parsed JSON document in one of MLflow's formats as a `Payload`."""
    return _payload(document, max_rows=max_rows, extra_keys=(), flat=False)


def _payload(document: Any, *, max_rows: int, extra_keys: Collection[str],
             flat: bool) -> Payload:
    if flat and isinstance(document, dict) and FEATURES in document \
            and not any(key in document for key in FORMATS):
        return _features(document, max_rows=max_rows, extra_keys=extra_keys)
    if flat and isinstance(document, dict) and document and \
            not any(key in document for key in FORMATS) and \
            all(isinstance(v, str | int | float | bool) or v is None for v in document.values()):
        return Payload("dataframe_records", [document], 1)
    if not isinstance(document, dict):
        raise InputError(f"expected a JSON object with one of {', '.join(FORMATS)}, got "
                         f"{type(document).__name__}")
    keys = [key for key in FORMATS if key in document]
    if len(keys) != 1:
        also = " (or one flat object of column: value for a single row)" if flat else ""
        raise InputError(f"expected exactly one of {', '.join(FORMATS)}{also}; got "
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


def _features(document: dict[str, Any], *, max_rows: int,
              extra_keys: Collection[str]) -> Payload:
    """`{"features": [[5.1, 3.5, 1.4, 0.2]]}`: rows of values in the model's column order,
    as hand-built services take them (one row may be given as a flat list)."""
    unknown = set(document) - {FEATURES, *extra_keys}
    if unknown:
        raise InputError(f"unknown field(s) {sorted(unknown)}")
    rows = document[FEATURES]
    if not isinstance(rows, list):
        raise InputError(f"features must be a list of rows (or one row) of values in the "
                         f"model's column order, e.g. [[5.1, 3.5]] or [5.1, 3.5]; got "
                         f"{type(rows).__name__}")
    if rows and not isinstance(rows[0], list):
        rows = [rows]
    if not all(isinstance(row, list) for row in rows):
        raise InputError("features: expected a list of rows, each a list of values in the "
                         "model's column order")
    _check_rows(len(rows), max_rows)
    ids = parse_ids(document["ids"], len(rows)) if "ids" in document else None
    return Payload(FEATURES, rows, len(rows), ids)


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
    """Client prediction ids: one per row, unique, short strings (or integers), none ending
    in a suffix tether keeps for its own rows (`:shadow`, `:failed`)."""
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
        suffix = reserved_suffix(text)
        if suffix is not None:
            raise InputError(f"ids[{index}]: {text!r} ends in {suffix!r}, which tether keeps "
                             "for its own rows (a shadow or failed canary attempt); choose "
                             "an id without that ending")
        out.append(text)
    if len(set(out)) != n:
        raise InputError("ids: prediction ids must be unique within a request")
    return out
