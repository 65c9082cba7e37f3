"""The spec keys of the sequential confirmation (sweeps.confirmation)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from studies.confirmation import SequentialDesign
from sweeps.confirmation import ConfirmSpec


def test_defaults_are_the_designs() -> None:
    spec = ConfirmSpec()
    assert (spec.initial_seeds, spec.max_seeds, spec.indifference_zone, spec.alpha) == (
        4,
        16,
        0.005,
        0.05,
    )
    design = SequentialDesign(**spec.design_arguments("minimize"))
    assert design == SequentialDesign()
    maximize = SequentialDesign(**ConfirmSpec(alpha=0.025).design_arguments("maximize"))
    assert (maximize.direction, maximize.alpha) == ("maximize", 0.025)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"initial_seeds": 2}, "greater than or equal to 3"),
        ({"initial_seeds": 6, "max_seeds": 5}, "max_seeds: 5 is below initial_seeds"),
        ({"indifference_zone": 0.0}, "greater than 0"),
        ({"alpha": 0.5}, "less than 0.5"),
        ({"seeds": 4}, "seeds: replaced by .* initial_seeds .* and max_seeds"),
        ({"top": 4}, "Extra inputs are not permitted"),
        ({"max_seeds": "12"}, "valid integer"),
    ],
)
def test_bad_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConfirmSpec.model_validate(values)
