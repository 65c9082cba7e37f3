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

from pathlib import Path
from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from sweeps.cluster import (
        SlurmSpec,
    )
    from sweeps.command import (
        CommandSpec,
    )
    from sweeps.confirmation import (
        ConfirmSpec,
    )
    from sweeps.dotted import (
        DottedKeyError,
    )
    from sweeps.errors import (
        SpecError,
        SpecProblem,
    )
    from sweeps.params import (
        Choices,
        FixedValue,
        FloatRange,
        IntRange,
        SearchParam,
        grid_values,
    )
    from sweeps.parse import (
        load_spec,
        parse_spec,
    )
    from sweeps.settings import (
        Budget,
        ObjectiveSpec,
        PrunerSpec,
        SamplerSpec,
    )
    from sweeps.spec import (
        Distribution,
        StudyNameError,
        SweepSpec,
        baseline_method,
        check_study_name,
        spec_json_schema,
        spec_to_yaml,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "sweeps.cluster": ("SlurmSpec",),
        "sweeps.command": ("CommandSpec",),
        "sweeps.dotted": ("DottedKeyError",),
        "sweeps.errors": (
            "SpecError",
            "SpecProblem",
        ),
        "sweeps.params": (
            "Choices",
            "FixedValue",
            "FloatRange",
            "IntRange",
            "SearchParam",
            "grid_values",
        ),
        "sweeps.parse": (
            "load_spec",
            "parse_spec",
        ),
        "sweeps.confirmation": ("ConfirmSpec",),
        "sweeps.settings": (
            "Budget",
            "ObjectiveSpec",
            "PrunerSpec",
            "SamplerSpec",
        ),
        "sweeps.spec": (
            "Distribution",
            "StudyNameError",
            "SweepSpec",
            "baseline_method",
            "check_study_name",
            "spec_json_schema",
            "spec_to_yaml",
        ),
    },
)

# The folder of the shipped specs (default.yaml, seed-grid.yaml).
SPEC_DIR = Path(__file__).resolve().parent
__all__.append("SPEC_DIR")
