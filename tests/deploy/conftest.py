"""Fixtures for the deployment assets: paths, the rendered Helm chart, tools on PATH."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "tether"


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that rejects duplicate keys (PyYAML keeps the last one silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_strict(text: str) -> list[Any]:
    """Every document in `text`, empty ones dropped; duplicate keys are an error."""
    return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]


def tool(name: str) -> str:
    """The path of a command-line tool (the venv's bin first), or skip with the reason."""
    venv_bin = Path(sys.executable).parent
    found = shutil.which(name, path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return found


Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def render_chart() -> Render:
    """Render deploy/helm/tether offline with the Helm SDK; returns the manifests."""
    helm = pytest.importorskip("helm_python",
                               reason="helm-python-sdk (the dev extra) renders the chart")
    chart = helm.Chart.load(str(CHART))

    def render(values: dict[str, Any] | None = None, *, name: str = "tether",
               namespace: str = "tether") -> list[dict[str, Any]]:
        files = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
        docs: list[dict[str, Any]] = []
        for path, text in sorted(files.items()):
            if path.endswith(".yaml"):
                docs.extend(load_strict(text))
        return docs

    return render


def _find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind
               and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, got {len(matches)}"
    return matches[0]


@pytest.fixture(scope="session")
def find() -> Callable[..., dict[str, Any]]:
    """`find(docs, kind, name=None)`: the one manifest of that kind (and name)."""
    return _find


@pytest.fixture(scope="session")
def strict_yaml() -> Callable[[str], list[Any]]:
    """`strict_yaml(text)`: all YAML documents, duplicate keys rejected."""
    return load_strict


@pytest.fixture(scope="session")
def which() -> Callable[[str], str]:
    """`which(name)`: the tool's path (venv bin first), or skip the test naming what's missing."""
    return tool
