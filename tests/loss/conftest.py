"""Fixtures of the loss tests: the seed reference and the test helpers, as modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _load(name: str) -> ModuleType:
    # Tests are imported with --import-mode=importlib (no package, no sys.path entry),
    # so sibling helper modules are loaded from their path.
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"salsweep_tests_loss_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def seed_ref() -> ModuleType:
    """tests/loss/seed_reference.py: the seed's formulas, literally, and the SSI baseline's."""
    return _load("seed_reference")


@pytest.fixture(scope="session")
def helpers() -> ModuleType:
    """tests/loss/helpers.py: random inputs, relative error, DESIGN.md's masked formulas."""
    return _load("helpers")
