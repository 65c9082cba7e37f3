"""Fixtures of the sweep-spec tests: a small valid spec and a writer for YAML files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

# Valid: every test that wants an error changes one or more keys of a copy.
GOOD: dict[str, Any] = {
    "name": "tiny",
    "base": {"data": {"height": 64, "width": 192}, "epochs": 3},
    "search": {
        "loss.lambda_sg": {"low": 0.05, "high": 2.0, "log": True},
        "loss.num_scales": {"low": 1, "high": 4},
        "loss.use_inv_depth": "bool",
    },
    "budget": {"n_trials": 6},
}


@pytest.fixture
def good() -> dict[str, Any]:
    """A fresh deep copy of a small valid spec mapping."""
    return copy.deepcopy(GOOD)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str | dict[str, Any]], Path]:
    """Write YAML text (or a mapping dumped as YAML) to ``tmp_path/spec.yaml``."""

    def _write(content: str | dict[str, Any]) -> Path:
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path = tmp_path / "spec.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return _write
