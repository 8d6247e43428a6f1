"""The controller's status: one JSON document per model, replaced by every pass.

The store keeps it opaque (the controller defines its shape); this module only writes
and reads it, so a restarted controller, `tether status` and the dashboard all see
what the last pass saw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from tether.store.connection import Database
from tether.store.schema import metadata

__all__ = ["controller_status", "read_status", "write_status"]

controller_status = sa.Table(
    "tether_controller_status",
    metadata,
    sa.Column("model_name", sa.String(200), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
)


def write_status(db: Database, model_name: str, document: Mapping[str, Any], *,
                 ts: float, owner: str) -> None:
    """Replace the model's status with `document` (JSON-serialisable; NaN and infinity
    are kept as null, so every reader gets strict JSON)."""
    text = json.dumps(_finite(document), sort_keys=True, default=str, allow_nan=False)
    table = controller_status
    with db.begin() as conn:
        updated = conn.execute(table.update().where(table.c.model_name == model_name)
                               .values(ts=ts, owner=owner, document=text))
        if not updated.rowcount:
            conn.execute(table.insert().values(model_name=model_name, ts=ts, owner=owner,
                                               document=text))


def read_status(db: Database, model_name: str) -> dict[str, Any] | None:
    """The model's last status, or None when no controller has written one."""
    table = controller_status
    with db.connect() as conn:
        text = conn.execute(sa.select(table.c.document)
                            .where(table.c.model_name == model_name)).scalar_one_or_none()
    return json.loads(text) if text is not None else None


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and numbers
        return _finite(value.tolist())
    return value
