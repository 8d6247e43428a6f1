"""A real federation for the tests: a SuperLink and three SuperNodes on 127.0.0.1, each
SuperNode with its own hospital's data, from the project `tether init --template
federated` writes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tether.errors import ConfigError
from tether.federated import LocalFederation, find_flower_bin
from tether.federated.template import SITES, site_files, write_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def flower_bin() -> Path:
    try:
        return find_flower_bin(ROOT)
    except ConfigError as exc:
        if os.environ.get("CI"):
            raise  # CI creates the Flower environment (`make flower-env`): never skip there
        pytest.skip(f"no Flower environment: {exc}")


def write_federated_project(folder: Path, **overrides: object) -> Path:
    write_template(folder)
    policy = yaml.safe_load((folder / "tether.yaml").read_text())
    # Tests share two cores with other work (load averages of 15-30 seen): the latency
    # rule is tested on its own, not here.
    policy["gate"]["max_latency_ms"] = 60_000
    for dotted, value in overrides.items():
        node = policy
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    (folder / "tether.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory, flower_bin: Path,
               mlflow_template: Path) -> Iterator[tuple[Path, LocalFederation]]:
    """The project folder and its running federation (module-wide: starting one costs
    seconds). The SuperLink's address and Flower's bin folder are in the environment."""
    folder = write_federated_project(
        tmp_path_factory.mktemp("federated") / "project",
        # the canary test rolls out the model trained while a site was away (two of
        # three rounds without hospital_03): it may score a little below v1
        **{"gate.min_delta": -0.05,
           "federated.round_timeout_seconds": 25, "federated.join_timeout_seconds": 30,
           "federated.run_timeout_seconds": 400,
           "rollout.min_predictions": 150, "rollout.min_labels": 100,
           "rollback.probation_min_predictions": 150})
    (folder / ".tether").mkdir()
    shutil.copyfile(mlflow_template, folder / ".tether" / "mlflow.db")
    saved = {k: v for k, v in os.environ.items() if k.startswith("TETHER_")}
    for name in saved:
        del os.environ[name]
    sites = {site: site_files(folder, site) for site in SITES}
    with LocalFederation(flower_bin, folder / ".tether" / "federation", sites) as running:
        os.environ["TETHER_FLOWER_SUPERLINK"] = running.address
        os.environ["TETHER_FLOWER_BIN"] = str(flower_bin)
        try:
            yield folder, running
        finally:
            for name in [n for n in os.environ if n.startswith("TETHER_")]:
                del os.environ[name]
            os.environ.update(saved)
