"""BentoML 1.4 serving an MLflow model with adaptive batching (run by run.py, in
benchmarks/.venv-bentoml): `bentoml serve bento_service:Model --port N`.

The model is imported once into a scratch BentoML store (`bentoml.mlflow.import_model`,
as BentoML's MLflow guide does) from the same MLflow folder every server loads. The API
is batchable (rows are the batch dimension), up to 4096 rows per model call as tether's
batcher, one worker (the server is pinned to one core).

The input is an array of rows, turned into the model's DataFrame by the signature's
column names. A batchable `pd.DataFrame` input, the natural choice, does not work in
BentoML 1.4.40: `PandasDataFrameContainer.get_batch_size` returns `batch.shape` (a
tuple) where the dispatcher adds integers, so the first request hangs until
`max_latency_ms` and then fails with 503 "process is overloaded".
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
import pandas as pd

MODEL_TAG = os.environ.get("BENCH_BENTO_MODEL", "bench:latest")
MAX_BATCH_ROWS = int(os.environ.get("BENCH_BENTO_MAX_BATCH", "4096"))
MAX_LATENCY_MS = int(os.environ.get("BENCH_BENTO_MAX_LATENCY_MS", "10000"))


@bentoml.service(workers=1, traffic={"timeout": 60})
class Model:
    def __init__(self) -> None:
        self.model = bentoml.mlflow.load_model(MODEL_TAG)
        schema = self.model.metadata.get_input_schema()
        self.columns = schema.input_names()
        self.text = {spec.name for spec in schema.inputs
                     if getattr(spec.type, "name", str(spec.type)) == "string"}

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_ROWS, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, rows: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(rows, columns=self.columns)
        if self.text:  # mixed rows arrive as one text array: numbers back to numbers
            numeric = [c for c in self.columns if c not in self.text]
            frame[numeric] = frame[numeric].astype(float)
        return np.asarray(self.model.predict(frame))
