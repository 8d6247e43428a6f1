"""Baseline: the smallest Starlette + orjson server that predicts (no validation, no
logging, no metrics). Run: python minimal_server.py MODEL_DIR PORT"""

from __future__ import annotations

import sys

import numpy as np
import orjson
import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def build(model_dir: str) -> Starlette:
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(model_dir)

    async def invocations(request: Request) -> Response:
        split = orjson.loads(await request.body())["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        predictions = np.asarray(model.predict(frame)).tolist()
        return Response(orjson.dumps({"predictions": predictions}),
                        media_type="application/json")

    return Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning", access_log=False)
