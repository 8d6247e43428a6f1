"""Sites' data summaries (federated training): what each site reported of its recent data,
binned on the champion's reference bins. Counts only, never rows.

The table sits in its own module; `Store.record_site_summaries` and
`Store.site_summaries` are its facade.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from tether.store.schema import metadata

__all__ = ["SiteSummary", "insert_summaries", "latest_summaries", "site_summaries"]

site_summaries = sa.Table(
    "tether_site_summaries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("site", sa.String(200), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    # {"version": champion the bins came from, "edges": {feature: [...]},
    #  "counts": {feature: [...]}, "reference": {feature: [...]}}
    # (recent data and the site's training data; len(counts) == len(edges) + 1)
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_site_summaries_model_ts", "model_name", "ts"),
)


@dataclass(frozen=True)
class SiteSummary:
    """One site's binned summary: bin i holds values in (edges[i-1], edges[i]].

    `counts` describe the site's recent data, `reference` the data it trains on (its own
    baseline: sites differ from each other, so each is compared with itself)."""

    model_name: str
    site: str
    rows: int
    version: int | None
    edges: dict[str, list[float]]
    counts: dict[str, list[int]]
    reference: dict[str, list[int]] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    id: int | None = None


def insert_summaries(conn: sa.Connection, summaries: Sequence[SiteSummary]) -> None:
    if summaries:
        conn.execute(site_summaries.insert(), [
            {"model_name": s.model_name, "site": s.site, "ts": s.ts, "rows": s.rows,
             "data": json.dumps({"version": s.version, "edges": s.edges,
                                 "counts": s.counts, "reference": s.reference},
                                sort_keys=True)}
            for s in summaries])


def latest_summaries(conn: sa.Connection, model_name: str,
                     since: float | None = None) -> list[SiteSummary]:
    """Each site's most recent summary (since `since`), by site name."""
    query = sa.select(site_summaries).where(site_summaries.c.model_name == model_name)
    if since is not None:
        query = query.where(site_summaries.c.ts >= since)
    latest: dict[str, SiteSummary] = {}
    for row in conn.execute(query.order_by(site_summaries.c.id)).mappings():
        data = json.loads(row["data"])
        latest[row["site"]] = SiteSummary(
            model_name=row["model_name"], site=row["site"], rows=row["rows"],
            version=data.get("version"), edges=data.get("edges", {}),
            counts=data.get("counts", {}), reference=data.get("reference", {}),
            ts=row["ts"], id=row["id"])
    return [latest[site] for site in sorted(latest)]
