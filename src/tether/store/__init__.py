"""The one package that talks to the database: predictions, labels, totals, events, leases.

SQLAlchemy Core on any URL; a SQLite file by default, PostgreSQL at scale. `Store` is the
facade; each concern is a module of its own (see `facade.py`), beside what they share:
`schema` (the tables), `records` (what goes in and out), `codec` (columnar blobs),
`totals` (the totals' vectors), `kept_totals` (how writers keep them) and `connection`.

>>> store = Store("sqlite://")
>>> store.log_predictions([PredictionRecord(id="p1", model_name="m", model_version=1,
...     route="champion", features={"x": 1.0}, prediction=1.0, score=0.9)])
>>> store.add_feedback([("p1", 1.0), ("nope", 0.0)]).unknown_ids
['nope']
>>> store.prediction_window("m", labeled_only=True)[["id", "label", "x"]].to_dict("records")
[{'id': 'p1', 'label': 1.0, 'x': 1.0}]
"""

from tether.store.codec import Outputs
from tether.store.facade import Store
from tether.store.kept_totals import FINE_TOTALS_DAYS
from tether.store.labels import LabelEncoder
from tether.store.records import (
    Event,
    FeedbackResult,
    LogResult,
    PredictionBatch,
    PredictionRecord,
    PruneResult,
)
from tether.store.schema import metadata
from tether.store.sites import SiteSummary
from tether.store.totals import (
    LATENCY_BIN_GROWTH,
    SCORE_BINS,
    LabelBucket,
    ScoreBin,
    TrafficBucket,
)

__all__ = [
    "FINE_TOTALS_DAYS",
    "LATENCY_BIN_GROWTH",
    "SCORE_BINS",
    "Event",
    "FeedbackResult",
    "LabelBucket",
    "LabelEncoder",
    "LogResult",
    "Outputs",
    "PredictionBatch",
    "PredictionRecord",
    "PruneResult",
    "ScoreBin",
    "SiteSummary",
    "Store",
    "TrafficBucket",
    "metadata",
]
