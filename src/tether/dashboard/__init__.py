"""The web page that shows a model's life, and the JSON API behind its charts.

```
GET  /                      the page (static HTML, JS and the vendored Chart.js)
GET  /api/state             champion, challenger, traffic shares, rollout and analysis
GET  /api/timeseries        per-version buckets: traffic, errors, latency, labels, metrics
GET  /api/drift             drift share, top features, reference vs current distributions
GET  /api/events            the decision timeline
GET  /api/auth              checks an admin token
POST /admin/rollback        admin: roll back the champion
POST /admin/retrain         admin: ask the controller to retrain
```
"""

from __future__ import annotations

from tether.dashboard.routes import dashboard_routes

__all__ = ["dashboard_routes"]
