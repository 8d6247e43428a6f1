"""Every import that tether defers into a function (so that a command loads only what it
uses) names a module and attributes that exist: such an import runs only when its
function does, so a renamed module would otherwise surface only in the one command,
and the one user, that reaches it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import tether

SOURCE = Path(tether.__file__).parent


def _deferred_imports() -> list[tuple[str, int, str, str | None]]:
    """(file, line, module, attribute or None) of each tether import inside a function."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        package = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)
        if path.name != "__init__.py":
            package = package.rpartition(".")[0]
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                where = str(path.relative_to(SOURCE.parent))
                if isinstance(node, ast.ImportFrom):
                    module = node.module or ""
                    if node.level:
                        base = package.split(".")[: len(package.split(".")) - node.level + 1]
                        module = ".".join([*base, module] if module else base)
                    if module.split(".")[0] == "tether":
                        found += [(where, node.lineno, module, alias.name)
                                  for alias in node.names]
                elif isinstance(node, ast.Import):
                    found += [(where, node.lineno, alias.name, None) for alias in node.names
                              if alias.name.split(".")[0] == "tether"]
    return found


DEFERRED = _deferred_imports()


def test_the_search_finds_the_deferred_imports() -> None:
    assert len(DEFERRED) > 50
    assert ("tether/demo/run.py", "tether", "apps") in {(f, m, n) for f, _, m, n in DEFERRED}
    assert ("tether/cli/demo.py", "tether.demo.federated", "run_federated_demo") in {
        (f, m, n) for f, _, m, n in DEFERRED}


@pytest.mark.parametrize(("where", "line", "module", "name"), DEFERRED,
                         ids=[f"{f}:{n}" for f, n, _, _ in DEFERRED])
def test_a_deferred_import_resolves(where: str, line: int, module: str,
                                    name: str | None) -> None:
    imported = importlib.import_module(module)
    if name is not None and not hasattr(imported, name):
        importlib.import_module(f"{module}.{name}")  # a submodule, or ImportError
