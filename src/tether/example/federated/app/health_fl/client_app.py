"""The ClientApp: runs at each hospital, next to its data, inside its SuperNode.

The SuperNode's node config names the site and where its data lives:

    flower-supernode --node-config 'site="hospital_01" data-path="/data/train.csv"
                                    recent-path="/data/recent.csv"'

Rows never leave this process. Replies carry model arrays, counts and metrics:
`query` answers pooled feature statistics (count, sum, sum of squares per feature) or a
binned summary of the site's recent data and of its training data (counts per bin);
`train` scores the global model it received on the site's validation split, takes
`local-epochs` gradient steps on its training split and scores the update; `evaluate`
scores the final global model.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from health_fl.model import fit, log_loss, predict_proba, read_columns, roc_auc, split, standardise

app = ClientApp()

VALIDATION_SHARE = 0.2


def _site(context: Context) -> str:
    return str(context.node_config.get("site", f"node-{context.node_id}"))


@lru_cache(maxsize=4)
def _data(path: str, columns: tuple[str, ...], seed: int) -> tuple[np.ndarray, ...]:
    values = read_columns(path, list(columns))
    x, y = values[:, :-1], values[:, -1]
    train, validation = split(len(values), VALIDATION_SHARE, seed)
    return x[train], y[train], x[validation], y[validation]


def _local(context: Context) -> tuple[np.ndarray, ...]:
    features = str(context.run_config["features"]).split(",")
    columns = (*features, str(context.run_config["target"]))
    return _data(str(context.node_config["data-path"]), columns,
                 int(context.run_config.get("seed", 0)))


def _arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {name: array.numpy() for name, array in record.items()}


def _reply(msg: Message, context: Context, metrics: dict,
           arrays: dict[str, np.ndarray] | None = None) -> Message:
    content = RecordDict({"metrics": MetricRecord(metrics),
                          "site": ConfigRecord({"site": _site(context)})})
    if arrays is not None:
        content["arrays"] = ArrayRecord({name: Array(np.ascontiguousarray(value))
                                         for name, value in arrays.items()})
    return Message(content=content, reply_to=msg)


def _scores(arrays: dict[str, np.ndarray], z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    p = predict_proba(arrays, z)
    return {"loss": log_loss(y, p), "roc_auc": roc_auc(y, p),
            "accuracy": float(np.mean((p >= 0.5) == y))}


@app.query()
def query(msg: Message, context: Context) -> Message:
    config = msg.content["config"]
    if config["action"] == "stats":
        x_train, _, _, _ = _local(context)
        return _reply(msg, context, {
            "num-examples": len(x_train),
            "sum": x_train.sum(axis=0).tolist(),
            "sumsq": np.square(x_train).sum(axis=0).tolist()})
    # a binned summary of recent data, and of the rows the site trains on (its own
    # baseline): counts per bin, never rows
    bins = json.loads(str(config["bins"]))
    recent = str(context.node_config.get("recent-path") or context.node_config["data-path"])
    metrics: dict = {}
    rows = 0
    for name, edges in bins.items():
        for key, path in (("counts", recent), ("reference", context.node_config["data-path"])):
            try:
                values = read_columns(str(path), [name])[:, 0]
            except ValueError:
                continue
            if key == "counts":
                rows = max(rows, len(values))
            # bin 0: x <= e0; bin i: e[i-1] < x <= e[i]; last bin: x > e[-1]
            index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
            metrics[f"{key}/{name}"] = np.bincount(index, minlength=len(edges) + 1).tolist()
    metrics["rows"] = rows
    return _reply(msg, context, metrics)


@app.train()
def train(msg: Message, context: Context) -> Message:
    x_train, y_train, x_val, y_val = _local(context)
    arrays = _arrays(msg.content["arrays"])
    z, z_val = standardise(x_train, arrays), standardise(x_val, arrays)
    incoming = _scores(arrays, z_val, y_val)
    updated = fit(arrays, z, y_train, epochs=int(context.run_config["local-epochs"]))
    trained, local = _scores(updated, z, y_train), _scores(updated, z_val, y_val)
    return _reply(msg, context, {
        "num-examples": len(x_train),
        "train-loss": trained["loss"],
        "global-val-loss": incoming["loss"],
        "global-val-roc-auc": incoming["roc_auc"],
        "local-val-loss": local["loss"],
        "local-val-roc-auc": local["roc_auc"]}, updated)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    _, _, x_val, y_val = _local(context)
    arrays = _arrays(msg.content["arrays"])
    scores = _scores(arrays, standardise(x_val, arrays), y_val)
    return _reply(msg, context, {"num-examples": len(x_val), "eval-loss": scores["loss"],
                                 "eval-roc-auc": scores["roc_auc"],
                                 "eval-accuracy": scores["accuracy"]})
