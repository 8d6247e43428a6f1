"""Versions tether did not train: a model logged with plain MLflow (`mlflow.sklearn.
log_model`, registered or not) taken into the project's registered model, and the
reference artifacts tether computes for it kept in a run of their own.

URIs, as MLflow spells them: `models:/NAME/3`, `models:/NAME@alias`, `runs:/RUN_ID/PATH`.
A version of the project's own registered model is adopted where it is; any other
becomes a new version of the project's model, pointing at the same artifacts (nothing
is copied). The user's run is never written to: the artifacts tether computes go to a
run in tether's experiment, named on the version by the tag `tether.reference_run`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

from tether.errors import ConfigError
from tether.registry.client import process_uris
from tether.registry.state import REASON_TAG, REFERENCE_DIR

__all__ = ["REFERENCE_RUN_TAG", "Source", "log_reference", "parse_uri", "take_version"]

REFERENCE_RUN_TAG = "tether.reference_run"
_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w.-]+))/?$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-zA-Z]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class Source:
    """What a URI names: a registered version (`name` and `version` or `alias`) or a
    run's logged model (`run_id`, `path`)."""

    uri: str
    name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    path: str | None = None


def parse_uri(uri: str) -> Source:
    """Raises ConfigError naming the forms accepted."""
    text = uri.strip()
    found = _MODELS.match(text)
    if found:
        version = found["version"]
        return Source(uri=text, name=found["name"],
                      version=int(version) if version else None, alias=found["alias"])
    found = _RUNS.match(text)
    if found:
        return Source(uri=text, run_id=found["run"], path=found["path"].strip("/"))
    raise ConfigError(f"{uri!r} is not a model URI tether can adopt; use "
                      "models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH")


def take_version(client: MlflowClient, model_name: str, source: Source,
                 uris: tuple[str, str], tags: Mapping[str, str]) -> tuple[int, bool]:
    """The version of `model_name` for `source`: (number, whether it was created now).
    A version of `model_name` itself is taken as it is; anything else is registered as a
    new version of `model_name`, tagged `tags`."""
    if source.name is not None:
        version = (client.get_model_version_by_alias(source.name, source.alias)
                   if source.alias is not None
                   else client.get_model_version(source.name, str(source.version)))
        if source.name == model_name:
            return int(version.version), False
        with process_uris(*uris):  # a models:/m-... source resolves through them
            created = client.create_model_version(
                model_name, source=str(version.source), run_id=version.run_id,
                model_id=getattr(version, "model_id", None),
                tags={**tags, REASON_TAG: f"adopted from {source.uri}"},
                description=f"adopted from {source.uri} (version {version.version})")
        return int(created.version), True
    stream = MLFLOW_LOGGING_STREAM
    was_enabled = stream.enabled
    # register_model prints "Registered model ... already exists" straight to stderr,
    # past the log levels, on every adopt of a run: tether says what it registered
    stream.enabled = False
    try:
        with process_uris(*uris):  # runs:/ resolves through MLflow's process-wide URIs
            created = mlflow.register_model(
                source.uri, model_name, tags={**tags, REASON_TAG: f"adopted from {source.uri}"})
    finally:
        stream.enabled = was_enabled
    return int(created.version), True


def log_reference(client: MlflowClient, experiment_id: str, model_name: str, number: int,
                  artifacts: Mapping[str, pd.DataFrame], files: Mapping[str, str]) -> str:
    """A finished run holding `reference/` for version `number`, named on the version by
    the tag `tether.reference_run`. Returns the run's id."""
    run_id = client.create_run(experiment_id, run_name=f"adopt-v{number}").info.run_id
    client.set_tag(run_id, "tether.adopted_version", str(number))
    with tempfile.TemporaryDirectory() as scratch:
        for name, frame in artifacts.items():
            path = Path(scratch) / f"{name}.parquet"
            frame.to_parquet(path, index=False)
            client.log_artifact(run_id, str(path), artifact_path=REFERENCE_DIR)
        for name, text in files.items():
            path = Path(scratch) / name
            path.write_text(text)
            client.log_artifact(run_id, str(path), artifact_path=REFERENCE_DIR)
    client.set_terminated(run_id, "FINISHED")
    client.set_model_version_tag(model_name, str(number), REFERENCE_RUN_TAG, run_id)
    return run_id
