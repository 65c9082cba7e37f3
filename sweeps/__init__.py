"""Sweep specifications: the YAML files users edit, and the parser/validator for them.

No Optuna or MLflow here (studies/ turns a spec into a study). A spec is read with
`load_spec(path)`; every problem in the file is reported at once by `SpecError`, each with
its key path. The shipped specs: ``sweeps/default.yaml`` (quick TPE sweep) and
``sweeps/seed-grid.yaml`` (the seed document's grid). A spec with a ``command`` section
runs the user's own program per trial (sweeps.command; its checks: sweeps.command_checks).

Names load on first use (PEP 562): ``from sweeps import SPEC_DIR`` builds no pydantic
model, ``from sweeps import load_spec`` loads the parser and the models it needs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.command import CommandSpec
    from sweeps.dotted import DottedKeyError
    from sweeps.errors import SpecError, SpecProblem
    from sweeps.params import (
        Choices,
        FixedValue,
        FloatRange,
        IntRange,
        SearchParam,
        grid_values,
    )
    from sweeps.parse import load_spec, parse_spec
    from sweeps.settings import Budget, ConfirmSpec, ObjectiveSpec, PrunerSpec, SamplerSpec
    from sweeps.spec import (
        Distribution,
        StudyNameError,
        SweepSpec,
        baseline_method,
        check_study_name,
        spec_json_schema,
        spec_to_yaml,
    )

# Public name -> the module that defines it (every name of __all__ but SPEC_DIR).
_NAMES: dict[str, str] = {
    "Budget": "sweeps.settings",
    "Choices": "sweeps.params",
    "CommandSpec": "sweeps.command",
    "ConfirmSpec": "sweeps.settings",
    "Distribution": "sweeps.spec",
    "DottedKeyError": "sweeps.dotted",
    "FixedValue": "sweeps.params",
    "FloatRange": "sweeps.params",
    "IntRange": "sweeps.params",
    "ObjectiveSpec": "sweeps.settings",
    "PrunerSpec": "sweeps.settings",
    "SamplerSpec": "sweeps.settings",
    "SearchParam": "sweeps.params",
    "SpecError": "sweeps.errors",
    "SpecProblem": "sweeps.errors",
    "StudyNameError": "sweeps.spec",
    "SweepSpec": "sweeps.spec",
    "baseline_method": "sweeps.spec",
    "check_study_name": "sweeps.spec",
    "grid_values": "sweeps.params",
    "load_spec": "sweeps.parse",
    "parse_spec": "sweeps.parse",
    "spec_json_schema": "sweeps.spec",
    "spec_to_yaml": "sweeps.spec",
}

__all__ = [
    "SPEC_DIR",
    "Budget",
    "Choices",
    "CommandSpec",
    "ConfirmSpec",
    "Distribution",
    "DottedKeyError",
    "FixedValue",
    "FloatRange",
    "IntRange",
    "ObjectiveSpec",
    "PrunerSpec",
    "SamplerSpec",
    "SearchParam",
    "SpecError",
    "SpecProblem",
    "StudyNameError",
    "SweepSpec",
    "baseline_method",
    "check_study_name",
    "grid_values",
    "load_spec",
    "parse_spec",
    "spec_json_schema",
    "spec_to_yaml",
]

# The folder of the shipped specs (default.yaml, seed-grid.yaml).
SPEC_DIR = Path(__file__).resolve().parent


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
