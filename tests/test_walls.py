"""The walls between packages: only `registry/` imports MLflow, only `store/` imports
SQLAlchemy. Read from the source, so a new module cannot slip past."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "tether"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("library", "package"), [("mlflow", "registry"),
                                                  ("sqlalchemy", "store")])
def test_only_one_package_imports_each_library(library: str, package: str) -> None:
    importers = sorted(str(path.relative_to(SOURCE)) for path in SOURCE.rglob("*.py")
                       if library in _imports(path))
    assert importers, f"nothing imports {library}: the test reads the wrong folder"
    assert [p for p in importers if not p.startswith(f"{package}/")] == []
