"""The store's tables.

Predictions are kept by batch: one row per batch of predictions the log writes (one
version and route, any number of rows), its outputs and its features in columnar
blobs, plus one narrow row per prediction id so that feedback finds its prediction.
Writing a prediction then costs one small index entry instead of a wide row, a JSON
document and four index entries. Totals of traffic and labels per 5 seconds and per
minute, kept up to date by the writers, answer the dashboard without reading predictions.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "batch_features",
    "batches",
    "events",
    "feedback",
    "label_totals",
    "locks",
    "metadata",
    "prediction_ids",
    "traffic_totals",
]

metadata = sa.MetaData()

batches = sa.Table(
    "tether_batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("route", sa.String(16), nullable=False),
    sa.Column("ts_min", sa.Float, nullable=False),
    sa.Column("ts_max", sa.Float, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("ids", sa.Text, nullable=False),  # newline-separated, in row order
    sa.Column("outputs", sa.LargeBinary, nullable=False),  # see codec.encode_outputs
    sa.Index("ix_batches_model_ts", "model_name", "ts_max"),
    sa.Index("ix_batches_model_version_ts", "model_name", "model_version", "ts_max"),
)

# Apart from the outputs, so that aggregating a window never reads a feature.
batch_features = sa.Table(
    "tether_batch_features",
    metadata,
    sa.Column("batch_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),  # Arrow IPC stream
)

prediction_ids = sa.Table(
    "tether_prediction_ids",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("batch_id", sa.Integer, nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

# A label carries what the dashboard and the monitors need of its prediction, so that
# labeled windows are one index range and never a join with every prediction.
feedback = sa.Table(
    "tether_labels",
    metadata,
    sa.Column("prediction_id", sa.String(64), primary_key=True),
    sa.Column("label", sa.Float, nullable=False),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("route", sa.String(16), nullable=False),
    sa.Column("batch_id", sa.Integer, nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("prediction_ts", sa.Float, nullable=False),
    sa.Column("prediction", sa.Float),
    sa.Column("score", sa.Float),
    sa.Index("ix_labels_model_ts", "model_name", "prediction_ts"),
    sa.Index("ix_labels_model_version_ts", "model_name", "model_version", "prediction_ts"),
)


def _totals_key() -> list[sa.Column[object]]:
    return [
        sa.Column("model_name", sa.String(200), primary_key=True),
        sa.Column("width", sa.Integer, primary_key=True, autoincrement=False),  # seconds
        sa.Column("period", sa.BigInteger, primary_key=True, autoincrement=False),  # ts // width
        sa.Column("model_version", sa.Integer, primary_key=True, autoincrement=False),
        # each Store instance keeps its own running totals: no two processes ever
        # read-modify-write the same row
        sa.Column("writer", sa.String(80), primary_key=True),
    ]


traffic_totals = sa.Table(
    "tether_traffic_totals",
    metadata,
    *_totals_key(),
    sa.Column("totals", sa.LargeBinary, nullable=False),  # see kept_totals.pack
)

label_totals = sa.Table(
    "tether_label_totals",
    metadata,
    *_totals_key(),
    sa.Column("totals", sa.LargeBinary, nullable=False),  # see kept_totals.pack
)

events = sa.Table(
    "tether_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.Text, nullable=False, default="{}"),
)

locks = sa.Table(
    "tether_locks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
