"""The confirmation owns the training seed and the scene seed: a spec that searches either
is refused with the key path and the reason; fixing them stays allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sweeps import SpecError, load_spec, parse_spec
from sweeps.checks import CONFIRMATION_OWNED, seed_problems
from sweeps.params import Choices, IntRange

SHIPPED = sorted(Path(__file__).resolve().parents[2].joinpath("sweeps").glob("*.yaml"))


def problems(data: Any) -> dict[str, str]:
    """``{key path: message}`` of the SpecError that parsing ``data`` raises."""
    with pytest.raises(SpecError) as info:
        parse_spec(data, "spec.yaml")
    return {p.path: p.message for p in info.value.problems}


@pytest.mark.parametrize(
    ("path", "searched", "owned"),
    [
        ("seed", {"low": 0, "high": 4}, "the training seed"),
        ("seed", [0, 1, 2], "the training seed"),
        ("data.seed", {"choices": [0, 1]}, "the scene seed"),
        ("data.seed", {"low": 0, "high": 9, "step": 3}, "the scene seed"),
    ],
)
def test_searching_a_seed_is_refused_with_path_and_reason(
    good: dict[str, Any], path: str, searched: object, owned: str
) -> None:
    good["search"][path] = searched
    found = problems(good)
    assert list(found) == [f"search.{path}"]
    message = found[f"search.{path}"]
    assert message.startswith(f"cannot be searched: the confirmation owns {owned}")
    assert "fix it (a plain value, or base) instead" in message


def test_both_seeds_reported_at_once_beside_other_problems(good: dict[str, Any]) -> None:
    good["search"]["seed"] = [0, 1]
    good["search"]["data.seed"] = [0, 1]
    good["search"]["loss.lambda_sg"] = {"low": 2.0, "high": 0.5}
    found = problems(good)
    assert set(found) == {"search.seed", "search.data.seed", "search.loss.lambda_sg.low"}


def test_fixed_seeds_are_allowed_and_fix_the_search(good: dict[str, Any]) -> None:
    good["search"]["seed"] = 11
    good["search"]["data.seed"] = 3
    spec = parse_spec(good, "t")
    assert spec.training_seed() == 11
    config = spec.config_for({})
    assert config.seed == 11 and config.data.seed == 3


def test_seed_problems_alone() -> None:
    assert seed_problems({"loss.num_scales": IntRange(low=1, high=3)}) == []
    assert seed_problems({"seed": 4, "data.seed": 0}) == []
    found = seed_problems({"seed": Choices(choices=[1, 2]), "data.seed": IntRange(low=0, high=1)})
    assert [p.path for p in found] == ["search.seed", "search.data.seed"]
    assert set(CONFIRMATION_OWNED) == {"seed", "data.seed"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_specs_still_validate(path: Path) -> None:
    spec = load_spec(path)
    assert not seed_problems(spec.search)
