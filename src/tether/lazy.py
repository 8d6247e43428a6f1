"""A package's re-exports imported on first use (PEP 562 module `__getattr__`), so that
importing one of its modules does not import every module behind its names.

>>> import tether.scoring
>>> getattr_, dir_ = exports("tether.scoring", {"Task": "tasks"})
>>> getattr_("Task").__name__
'Task'
>>> getattr_("Nothing")
Traceback (most recent call last):
    ...
AttributeError: module 'tether.scoring' has no attribute 'Nothing'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(package: str, homes: Mapping[str, str],
            ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`, whose name N lives in module
    `package.homes[N]`; a resolved name is then set on the package, so it is looked up
    once."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        module = sys.modules[package]
        return sorted({*vars(module), *getattr(module, "__all__", ()), *homes})

    return __getattr__, __dir__
