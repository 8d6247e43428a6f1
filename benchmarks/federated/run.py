"""Federated training, measured: accuracy against pooled and per-site training, and where
a round's time goes. Run by hand (needs `make flower-env`):

    PYTHONPATH=src .venv/bin/python benchmarks/federated/run.py [--rounds 3]

1. Holdout ROC AUC on the platform's validation set (600 patients of each of the three
   hospitals, another seed than the sites' data) of: the federated model (a real Flower
   run: SuperLink and three SuperNodes on 127.0.0.1, FedAvg), the same logistic
   regression trained centrally on the pooled rows the sites train on (the baseline,
   ratio federated/centralised), and each site's own model trained on its rows alone.
2. Seconds per round with 3 and 5 sites (ratio 5/3), and where the time goes: before
   round 1 (`flwr run`, the SuperLink starting the ServerApp, the statistics query),
   the rounds, Flower's own account of ServerApp and ClientApp process time, the cost of
   starting one ClientApp process (imports) with NumPy only and with pandas and
   scikit-learn, and the local fit itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from tether.config import load_config  # noqa: E402
from tether.example.health import FEATURES, TARGET, central, generate  # noqa: E402
from tether.federated import LocalFederation, find_flower_bin, run_federated  # noqa: E402
from tether.federated.template import (  # noqa: E402
    SITE_ROWS,
    site_files,
    write_site_data,
    write_template,
)
from tether.project import Project  # noqa: E402
from tether.training import TrainContext  # noqa: E402

SITES5 = ["hospital_01", "hospital_02", "hospital_03", "hospital_04", "hospital_05"]
APP = ROOT / "src" / "tether" / "example" / "federated" / "app" / "health_fl"


def site_training_rows(site: str) -> pd.DataFrame:
    """The rows the ClientApp trains on: its 80% split (same seeded permutation)."""
    frame = generate(site, SITE_ROWS, seed=1)
    order = np.random.default_rng(7).permutation(len(frame))
    return frame.iloc[order[: round(len(frame) * 0.8)]]


def fit_logistic(rows: pd.DataFrame) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(
        rows[FEATURES], rows[TARGET])


def auc(model: Any, holdout: pd.DataFrame) -> float:
    return float(roc_auc_score(holdout[TARGET], model.predict_proba(holdout[FEATURES])[:, 1]))


def federated_run(flower_bin: Path, sites: list[str], rounds: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="tether-fed-bench-")) / "project"
    write_template(folder)
    for site in sites:
        write_site_data(folder, site)
    policy = yaml.safe_load((folder / "tether.yaml").read_text())
    policy["federated"].update({"sites": sites, "rounds": rounds,
                                "round_timeout_seconds": 120})
    (folder / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    started = time.monotonic()
    with LocalFederation(flower_bin, folder / ".tether" / "federation",
                         {s: dict(site_files(folder, s)) for s in sites}) as federation:
        up = time.monotonic() - started
        os.environ["TETHER_FLOWER_SUPERLINK"] = federation.address
        os.environ["TETHER_FLOWER_BIN"] = str(flower_bin)
        project = Project(load_config(folder / "tether.yaml"))
        data = central()
        marks: list[tuple[str, float]] = []
        context = TrainContext(data=data, target=TARGET, features=FEATURES, params={},
                               seed=7, sample_weight=np.ones(len(data)), project=project,
                               progress=lambda text, *_: marks.append(
                                   (text, time.monotonic())))
        from tether.example.federated_train import build  # type: ignore[import-not-found]

        run_started = time.monotonic()
        model = run_federated(context, lambda arrays: build(arrays, FEATURES))
        run_seconds = time.monotonic() - run_started
        flower_run = context.details["federated"]["flower_run_id"]
        from tether.federated.driver import flower_for

        status = flower_for(project).status(flower_run).raw
    joined = next(t for text, t in marks if "joined" in text)
    round_marks = [t for text, t in marks if "round" in text]
    per_round = np.diff([joined, *round_marks])
    return {"model": model, "startup": up, "seconds": run_seconds,
            "before_round_1": joined - run_started, "per_round": per_round,
            "after_rounds": run_seconds - (round_marks[-1] - run_started),
            "compute": status.get("compute-time", {}), "traffic": status.get(
                "network-traffic", {})}


def import_seconds(python: Path, modules: str, repeat: int = 3) -> float:
    best = []
    for _ in range(repeat):
        started = time.monotonic()
        subprocess.run([str(python), "-c", f"import {modules}"], check=True)
        best.append(time.monotonic() - started)
    return float(np.median(best))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    flower_bin = find_flower_bin(ROOT)
    # the template's trainer, importable here for `build`
    sys.modules.setdefault("tether.example.federated_train", _load_trainer())
    holdout = central()
    pooled = pd.concat([site_training_rows(s) for s in SITES5[:3]], ignore_index=True)
    centralised = auc(fit_logistic(pooled), holdout)
    alone = {s: auc(fit_logistic(site_training_rows(s)), holdout) for s in SITES5[:3]}
    three = federated_run(flower_bin, SITES5[:3], args.rounds)
    five = federated_run(flower_bin, SITES5, args.rounds)
    federated = auc(three["model"], holdout)

    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores\n")
    print("holdout ROC AUC (platform validation set, 1800 patients of three hospitals)")
    print("| model | ROC AUC | vs centralised |")
    print("|---|---|---|")
    print(f"| centralised (pooled rows of the 3 sites) | {centralised:.4f} | 1.000 |")
    print(f"| federated, 3 sites x {args.rounds} rounds (FedAvg) | {federated:.4f} | "
          f"{federated / centralised:.3f} ({federated - centralised:+.4f}) |")
    for site, value in alone.items():
        print(f"| {site} alone | {value:.4f} | {value / centralised:.3f} "
              f"({value - centralised:+.4f}) |")

    print("\nseconds (wall clock)")
    print("| sites | federation start | run | before round 1 | per round (median) | "
          "after last round | ServerApp s | ClientApp s | bytes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, result in ((3, three), (5, five)):
        compute = result["compute"]
        print(f"| {n} | {result['startup']:.1f} | {result['seconds']:.1f} | "
              f"{result['before_round_1']:.1f} | {float(np.median(result['per_round'])):.1f} "
              f"| {result['after_rounds']:.1f} | {compute.get('serverapp-seconds', 0):.1f} | "
              f"{compute.get('clientapp-seconds', 0):.1f} | "
              f"{result['traffic'].get('total-bytes', 0):,} |")
    ratio = float(np.median(five["per_round"]) / np.median(three["per_round"]))
    print(f"\nper round, 5 sites / 3 sites: {ratio:.2f}x")

    numpy_only = import_seconds(flower_bin / "python", "flwr.clientapp, numpy")
    # the Flower environment has no pandas or scikit-learn: their import cost is measured
    # with tether's interpreter and added
    bare = import_seconds(Path(sys.executable), "numpy")
    extra = import_seconds(Path(sys.executable), "numpy, pandas, sklearn.linear_model, "
                                                 "sklearn.metrics") - bare
    heavy = numpy_only + extra
    sys.path.insert(0, str(APP.parent))
    from health_fl.model import fit, initial_arrays, standardise  # type: ignore[import-not-found]

    rows = site_training_rows("hospital_01")  # one site's training rows
    x, y = rows[FEATURES].to_numpy(float), rows[TARGET].to_numpy(float)
    arrays = initial_arrays(x.mean(axis=0), x.std(axis=0))
    started = time.perf_counter()
    for _ in range(20):
        fit(arrays, standardise(x, arrays), y, 20)
    fitting = (time.perf_counter() - started) / 20
    print("\none ClientApp process start (imports), median of 3: "
          f"NumPy only {numpy_only:.2f} s, with pandas and scikit-learn {heavy:.2f} s "
          f"({heavy / numpy_only:.1f}x)")
    print(f"one local fit ({len(rows)} rows, 20 epochs): {fitting * 1000:.1f} ms")


def _load_trainer() -> Any:
    import importlib.util

    path = ROOT / "src" / "tether" / "example" / "federated" / "train.py"
    spec = importlib.util.spec_from_file_location("tether.example.federated_train", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
