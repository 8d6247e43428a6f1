from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.cli import tether_json
from tests.conftest import write_project
from tether.config import load_config
from tether.errors import ConfigError


def _write(folder: Path, text: str) -> Path:
    path = folder / "tether.yaml"
    path.write_text(text)
    return path


def test_example_policy_loads_with_embedded_defaults(tmp_path: Path) -> None:
    config = load_config(write_project(tmp_path), environ={})
    assert config.policy.model.name == "loan-default"
    assert config.settings.tracking_uri == f"sqlite:///{tmp_path / '.tether' / 'mlflow.db'}"
    assert config.settings.store_url.endswith(".tether/store.db")
    assert config.policy.rollout.steps == [0.05, 0.25, 0.5]


def test_environment_overrides_settings(tmp_path: Path) -> None:
    env = {"TETHER_TRACKING_URI": "http://mlflow:5000", "TETHER_STORE_URL": "postgresql://x/y",
           "TETHER_ADMIN_TOKEN": "secret", "TETHER_POLL_SECONDS": "0.5"}
    settings = load_config(write_project(tmp_path), environ=env).settings
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.registry_uri == "http://mlflow:5000"
    assert settings.store_url == "postgresql://x/y"
    assert settings.admin_token == "secret"
    assert settings.poll_seconds == 0.5
    assert settings.artifact_root is None  # a tracking server keeps its own artifacts


def test_mlflow_variables_are_honoured_where_tethers_own_are_unset(tmp_path: Path) -> None:
    config = write_project(tmp_path)
    mlflow_env = {"MLFLOW_TRACKING_URI": "http://mlflow:5000",
                  "MLFLOW_REGISTRY_URI": "http://registry:5000"}
    settings = load_config(config, environ=mlflow_env).settings
    assert (settings.tracking_uri, settings.registry_uri) == ("http://mlflow:5000",
                                                              "http://registry:5000")
    # tether's own win; MLflow's registry variable goes with MLflow's tracking variable
    own = load_config(config, environ={**mlflow_env,
                                       "TETHER_TRACKING_URI": "sqlite:////srv/m.db"}).settings
    assert (own.tracking_uri, own.registry_uri) == ("sqlite:////srv/m.db", "sqlite:////srv/m.db")
    assert own.artifact_root == (tmp_path / ".tether" / "artifacts").as_uri()
    both = load_config(config, environ={**mlflow_env, "TETHER_REGISTRY_URI": "http://r:1"})
    assert both.settings.registry_uri == "http://r:1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: [", "line 1: not valid YAML: expected the node content"),
        ("model:\n\tname: m\n", "line 2: not valid YAML: found character '\\t' that cannot"),
        # PyYAML keeps the last of two keys: the second section reset the first one's fields
        ("model: {name: m}\ntrainer: t:t\ndata: {reference: d.csv}\n"
         "monitoring: {window_size: 50, min_labels: 5}\nmonitoring: {min_labels: 7}\n",
         "line 5: not valid YAML: 'monitoring' is given twice (first on line 4); keep one"),
        ("model: {name: m, name: n}\n", "'name' is given twice (first on line 1)"),
        ("- a\n- b\n", "expected a mapping of settings, got list"),
        ("trainer: t:t\ndata: {reference: d.csv}\n", "model: required field is missing"),
        ("model: {name: m}\ntrainer: t:t\ndata: {reference: d.csv}\nmetric: {primary: rmse}\n",
         "metric.primary: 'rmse' is not a metric of binary_classification"),
        ("model: {name: m}\ntrainer: nocolon\ndata: {reference: d.csv}\n",
         "trainer: String should match pattern"),
        ("model: {name: m}\ntrainer: t:t\ndata: {}\n",
         "give exactly one of data.reference (a file) or data.generator"),
        ("model: {name: m}\ntrainer: t:t\ndata: {reference: d.csv}\nrollout: {steps: [0.5, 0.2]}\n",
         "rollout.steps: rollout steps must increase"),
        ("model: {name: m, colour: red}\ntrainer: t:t\ndata: {reference: d.csv}\n",
         "model.colour: unknown field"),
        ("model: {name: m}\ntrainer: t:t\ndata: {reference: d.csv}\ngate: {min_delta: 1.5}\n",
         "gate.min_delta: 1.5 is the whole range of roc_auc"),
    ],
)
def test_bad_policy_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_a_policy_that_is_not_utf8_text_is_named(tmp_path: Path) -> None:
    path = tmp_path / "tether.yaml"
    path.write_bytes("model: {name: caf\u00e9}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 0xe9 at offset 17); save it as UTF-8"


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    path = _write(tmp_path, "model: {name: m}\ntrainer: t:t\ndata: {reference: d.csv}\n"
                            "monitoring:\n  <<: {window_size: 50, min_labels: 5}\n"
                            "  min_labels: 7\n")
    monitoring = load_config(path, environ={}).policy.monitoring
    assert (monitoring.window_size, monitoring.min_labels) == (50, 7)


@pytest.mark.parametrize("tolerance", [-0.05, -1.0, -3.0])
def test_a_negative_min_delta_of_any_size_is_a_tolerance(tmp_path: Path, tolerance: float) -> None:
    path = _write(tmp_path, "model: {name: m}\ntrainer: t:t\ndata: {reference: d.csv}\n"
                            f"gate: {{min_delta: {tolerance}}}\n")
    assert load_config(path, environ={}).policy.gate.min_delta == tolerance


def test_missing_policy_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `tether init`"):
        load_config(tmp_path / "nowhere.yaml", environ={})


def test_bad_poll_interval_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TETHER_POLL_SECONDS"):
        load_config(write_project(tmp_path), environ={"TETHER_POLL_SECONDS": "soon"})


def test_a_project_in_a_folder_named_with_url_characters_keeps_its_files_there(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`?`, `#` and `%` in the folder's path: the registry and the store are the files in
    its `.tether`, written by retrain and read back by status and history."""
    folder = tmp_path / "odd?name #2 100%41"
    (folder / ".tether").mkdir(parents=True)
    shutil.copyfile(mlflow_template, folder / ".tether" / "mlflow.db")
    write_project(folder)
    for name in list(os.environ):
        if name.startswith(("TETHER_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(folder)
    assert tether_json("retrain")["model_version"] == 1
    assert [v["version"] for v in tether_json("status")["versions"]] == [1]
    assert {p.name for p in (folder / ".tether").iterdir()} >= {"mlflow.db", "store.db"}
    assert tether_json("history")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("odd") and p != folder
                and any(p.rglob("*.db"))]  # no database written anywhere else
