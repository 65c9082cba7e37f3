"""Sweep specifications: the YAML files users edit, and the parser/validator for them.

No Optuna or MLflow here (studies/ turns a spec into a study). A spec is read with
`load_spec(path)`; every problem in the file is reported at once by `SpecError`, each with
its key path. The shipped specs: ``sweeps/default.yaml`` (quick TPE sweep) and
``sweeps/seed-grid.yaml`` (the seed document's grid).
"""

from __future__ import annotations

from pathlib import Path

from sweeps.errors import SpecError, SpecProblem
from sweeps.params import Choices, FixedValue, FloatRange, IntRange, SearchParam, grid_values
from sweeps.parse import load_spec, parse_spec
from sweeps.settings import Budget, ConfirmSpec, ObjectiveSpec, PrunerSpec, SamplerSpec
from sweeps.spec import (
    Distribution,
    SweepSpec,
    baseline_method,
    spec_json_schema,
    spec_to_yaml,
)

__all__ = [
    "SPEC_DIR",
    "Budget",
    "Choices",
    "ConfirmSpec",
    "Distribution",
    "FixedValue",
    "FloatRange",
    "IntRange",
    "ObjectiveSpec",
    "PrunerSpec",
    "SamplerSpec",
    "SearchParam",
    "SpecError",
    "SpecProblem",
    "SweepSpec",
    "baseline_method",
    "grid_values",
    "load_spec",
    "parse_spec",
    "spec_json_schema",
    "spec_to_yaml",
]

# The folder of the shipped specs (default.yaml, seed-grid.yaml).
SPEC_DIR = Path(__file__).resolve().parent
