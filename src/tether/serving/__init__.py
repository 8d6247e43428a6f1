"""The model server: MLflow's scoring protocol, hot swaps, canary and shadow routing,
micro-batching, a prediction log and Prometheus metrics.

```
app.py         create_app: routes, lifespan, error table
server.py      ModelServer: follow the registry, route, predict, shadow, feedback
slots.py       a loaded, warmed version; the cache that keeps the replaced one
routing.py     the routing table (one reference swap) and stable canary hashing
validation.py  input checks compiled from the signature
protocol.py    MLflow request formats, ids
batching.py    adaptive micro-batching into one model call
predlog.py     bounded queue written to the store in the background
metrics.py     prometheus_client objects named by tether.metric_names
http.py        bounded bodies, JSON errors, request metrics
openapi.py     the OpenAPI document and /docs
```
"""

from __future__ import annotations

from tether.serving.app import create_app
from tether.serving.server import SHADOW_SUFFIX, ModelServer

__all__ = ["SHADOW_SUFFIX", "ModelServer", "create_app"]
