"""The models and request bodies every server in the serving benchmark gets.

Two tables: sklearn's breast-cancer data (30 float features) for LogisticRegression
(behind a StandardScaler) and a 50-tree RandomForest; the example project's loan data
(7 numeric and 2 text features) for its own HistGradientBoosting pipeline (trained by
the example trainer, as `tether demo` trains it) and, when LightGBM is installed, the
same pipeline with an `LGBMClassifier`. Every model is saved once as an MLflow model
folder (cloudpickle, signature, input example) that all servers load.

Bodies carry the same rows in each server's own JSON protocol: MLflow's
`dataframe_split` (tether, `mlflow models serve`, the minimal server), the V2 inference
protocol (MLServer, which batches only that one), a records list (BentoML's DataFrame
input).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "src" / "tether" / "example" / "project"
ROWS = (1, 100)
PROTOCOLS = ("split", "v2", "rows")


@dataclass(frozen=True)
class Workload:
    name: str
    path: Path
    bodies: dict[tuple[str, int], Path]   # (protocol, rows) -> JSON file


def _breast() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return features, target


def _loans() -> tuple[pd.DataFrame, pd.Series]:
    from tether.example.loans import FEATURES, TARGET, generate

    frame = generate(n=6000, seed=1)
    return frame[FEATURES], frame[TARGET]


def _example_trainer() -> Any:
    spec = importlib.util.spec_from_file_location("example_train", EXAMPLE / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Context:
    """What the example trainer reads from tether's TrainContext."""

    def __init__(self, features: pd.DataFrame, target: pd.Series) -> None:
        self.X, self.y, self.params, self.seed, self.sample_weight = (
            features, target, {"max_iter": 200, "learning_rate": 0.1}, 7, None)


def _lightgbm(features: pd.DataFrame, target: pd.Series) -> Any:
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    categorical = ["home_ownership", "purpose"]
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
          categorical)], remainder="passthrough", verbose_feature_names_out=False)
    model = Pipeline([("encode", encode),
                      ("boost", LGBMClassifier(n_estimators=200, verbose=-1, random_state=7))])
    return model.fit(features, target)


def available() -> list[str]:
    names = ["LogisticRegression", "RandomForest(50)", "HistGradientBoosting"]
    if importlib.util.find_spec("lightgbm") is not None:
        names.append("LightGBM")
    return names


def build(folder: Path, names: list[str]) -> dict[str, Workload]:
    """Train, save and write the bodies of the named models (see `available()`)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logging.getLogger("mlflow").setLevel(logging.ERROR)  # the cloudpickle warning, per model
    out = {}
    for name in names:
        if name in ("LogisticRegression", "RandomForest(50)"):
            features, target = _breast()
            model: Any = (make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
                          if name == "LogisticRegression"
                          else RandomForestClassifier(n_estimators=50, random_state=0))
            model.fit(features, target)
        elif name == "HistGradientBoosting":
            features, target = _loans()
            model = _example_trainer().train(_Context(features, target))
        elif name == "LightGBM":
            features, target = _loans()
            model = _lightgbm(features, target)
        else:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join(available())}")
        slug = name.replace("(", "").replace(")", "")
        path = folder / slug
        mlflow.sklearn.save_model(model, str(path), serialization_format="cloudpickle",
                                  signature=infer_signature(features, model.predict(features)),
                                  input_example=features.head(3))
        out[name] = Workload(name, path, write_bodies(folder / f"bodies-{slug}", features))
    return out


def write_bodies(folder: Path, features: pd.DataFrame) -> dict[tuple[str, int], Path]:
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {}
    for rows in ROWS:
        head = features.head(rows)
        documents = {"split": split_body(head), "v2": v2_body(head),
                     "rows": {"rows": head.to_numpy().tolist()}}
        for protocol, document in documents.items():
            path = folder / f"{protocol}-{rows}.json"
            path.write_bytes(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY))
            bodies[(protocol, rows)] = path
    return bodies


def split_body(frame: pd.DataFrame) -> dict[str, Any]:
    split = frame.to_dict("split")
    return {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}


def v2_body(frame: pd.DataFrame) -> dict[str, Any]:
    """One V2 input per column (MLServer's pandas codec), as its MLflow runtime derives
    them from the model's signature."""
    inputs = []
    for column in frame.columns:
        values = frame[column]
        text = not pd.api.types.is_numeric_dtype(values.dtype)
        inputs.append({"name": str(column), "shape": [len(values)],
                       "datatype": "BYTES" if text else "FP64",
                       "data": values.astype(str if text else float).tolist(),
                       **({"parameters": {"content_type": "str"}} if text else {})})
    return {"inputs": inputs, "parameters": {"content_type": "pd"}}
