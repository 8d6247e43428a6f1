"""`tether init --template federated`: the project, the Flower app and each hospital's
data, a policy that loads, and clear errors for what it cannot do."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from tether.cli import app
from tether.example.health import FEATURES, TARGET
from tether.federated.template import SITES
from tether.project import Project

runner = CliRunner()


def test_init_writes_the_federated_project(tmp_path: Path) -> None:
    folder = tmp_path / "health"
    result = runner.invoke(app, ["init", str(folder), "--example", "federated"])
    assert result.exit_code == 0, result.output
    project = Project.open(folder / "tether.yaml")
    federated = project.policy.federated
    assert project.model_name == "health-risk" and federated is not None
    assert federated.sites == list(SITES) and federated.min_sites == 2
    assert (folder / "app" / "pyproject.toml").is_file()
    assert (folder / "app" / "health_fl" / "server_app.py").is_file()
    for site in SITES:
        train = pd.read_csv(folder / "sites" / site / "train.csv")
        assert list(train.columns) == [*FEATURES, TARGET] and len(train) == 600
    # the sites differ (non-IID): the city breathes worse air than the countryside
    city = pd.read_csv(folder / "sites" / "hospital_01" / "train.csv")["pm25"].mean()
    rural = pd.read_csv(folder / "sites" / "hospital_03" / "train.csv")["pm25"].mean()
    assert city > 2 * rural

    again = runner.invoke(app, ["init", str(folder), "--template", "federated"])
    assert again.exit_code == 2 and "already exists; pass --force" in again.output


def test_init_refuses_what_the_template_cannot_be(tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["init", str(tmp_path / "a"), "--template", "nope"])
    assert unknown.exit_code == 2 and "the one template is 'federated'" in unknown.output
    regression = runner.invoke(app, ["init", str(tmp_path / "b"), "--template", "federated",
                                     "--task", "regression"])
    assert regression.exit_code == 2
    assert "does not take --task regression" in regression.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
