"""Package faces that load on first use (PEP 562), written once for every package.

A package's ``__init__`` names each public name once, by the module that defines it, and
gets ``__getattr__``, ``__dir__`` and ``__all__`` from :func:`lazy_face`::

    __getattr__, __dir__, __all__ = lazy_face(__name__, {
        "studies.store.catalog": ("read_study", "load_study"),
    })

so that ``from studies import read_study`` imports ``studies.store.catalog`` (and what it
needs) and nothing else: read-only commands stay free of torch, Optuna and MLflow. For
the type checker the face repeats the names under ``if TYPE_CHECKING:`` imports;
tests/test_imports.py checks that both lists agree. Lives in the lowest package that has
a face (loss) and imports nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_face"]


def lazy_face(
    package: str, names: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` whose public names are
    ``names`` (defining module -> its names). A name is imported from its module on first
    access and then cached in the package's namespace."""
    where = {name: module for module, listed in names.items() for name in listed}
    if len(where) != sum(len(listed) for listed in names.values()):
        raise ValueError(f"{package}: a public name is listed twice")

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
