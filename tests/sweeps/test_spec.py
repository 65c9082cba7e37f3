"""SweepSpec helpers: configs from values, the baseline, grids, snapping into the space."""

from __future__ import annotations

from typing import Any

import pytest

from sweeps import (
    Choices,
    FloatRange,
    IntRange,
    SpecError,
    StudyNameError,
    baseline_method,
    check_study_name,
    grid_values,
    parse_spec,
)


def test_config_for_applies_values_and_fixed(good: dict[str, Any]) -> None:
    good["search"]["loss.use_absolute"] = False
    spec = parse_spec(good, "t")
    config = spec.config_for(
        {"loss.lambda_sg": 0.25, "loss.num_scales": 3, "loss.use_inv_depth": True}
    )
    assert config.loss.lambda_sg == 0.25 and config.loss.num_scales == 3
    assert config.loss.use_inv_depth is True and config.loss.use_absolute is False
    assert config.loss.method == spec.base.loss.method == "sparse-scale-adaptive"
    assert config.data == spec.base.data and config.epochs == 3


def test_config_for_validates(good: dict[str, Any]) -> None:
    spec = parse_spec(good, "t")
    with pytest.raises(SpecError) as info:
        spec.config_for({"loss.num_scales": 8})  # 64 px cannot take 8 scales
    assert "loss.num_scales=8 is too large for a 64x192 image" in str(info.value)


@pytest.mark.parametrize(
    ("method", "ssi"),
    [("scale-adaptive", "ssi"), ("sparse-scale-adaptive", "sparse-ssi")],
)
def test_baseline_uses_the_matching_ssi_loss(good: dict[str, Any], method: str, ssi: str) -> None:
    assert baseline_method(method) == ssi
    good["base"]["loss"] = {"method": method}
    spec = parse_spec(good, "t")
    config = spec.baseline_config()
    assert config.loss.method == ssi
    assert config.loss.num_scales == spec.base.loss.num_scales == 4


def test_baseline_config_is_the_base_with_fixed_values(good: dict[str, Any]) -> None:
    # The baseline is no trial: it keeps the base's own values, even outside the space.
    good["base"]["loss"] = {"num_scales": 4, "lambda_sg": 0.5}
    good["search"]["loss.num_scales"] = {"low": 1, "high": 3}
    good["search"]["lr"] = 0.01  # fixed: applied to every run, baseline included
    config = parse_spec(good, "t").baseline_config()
    assert config.loss.method == "sparse-ssi" and config.loss.num_scales == 4
    assert config.lr == 0.01


def test_training_seed(good: dict[str, Any]) -> None:
    assert parse_spec(good, "t").training_seed() == 0
    good["base"]["seed"] = 7
    assert parse_spec(good, "t").training_seed() == 7
    good["search"]["seed"] = 11  # a fixed value of search wins
    assert parse_spec(good, "t").training_seed() == 11


def test_grid_values() -> None:
    assert grid_values(FloatRange(low=0.3, high=0.7, step=0.2)) == [0.3, 0.5, 0.7]
    assert grid_values(FloatRange(low=0.1, high=0.4, step=0.1)) == [0.1, 0.2, 0.3, 0.4]
    assert grid_values(IntRange(low=2, high=8, step=3)) == [2, 5, 8]
    assert grid_values(Choices(choices=[True, False])) == [True, False]
    with pytest.raises(ValueError, match="continuous"):
        grid_values(FloatRange(low=0.1, high=0.4))


def test_max_epochs_follows_a_searched_epochs(good: dict[str, Any]) -> None:
    assert parse_spec(good, "t").max_epochs() == 3
    good["search"]["epochs"] = [2, 6]
    assert parse_spec(good, "t").max_epochs() == 6


@pytest.mark.parametrize("name", ["salsweep-default", "e2e", "a", "run_2.v3", "A-b.c_d"])
def test_study_name_accepted(name: str) -> None:
    assert check_study_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../evil", "use letters, digits"),
        ("a/b", "use letters, digits"),
        ("..", "use letters, digits"),
        (".hidden", "use letters, digits"),
        ("-flag", "use letters, digits"),
        ("a b", "use letters, digits"),
        ("a\\b", "use letters, digits"),
        ("name\n", "use letters, digits"),
        ("e2e:confirm", "use letters, digits"),  # the companion study's name is no study's
        ("", "empty"),
        ("x" * 101, "longer than 100 characters"),
    ],
)
def test_study_name_refused_in_one_line(name: str, why: str) -> None:
    with pytest.raises(StudyNameError) as info:
        check_study_name(name)
    message = str(info.value)
    assert message.startswith(f"invalid study name {name!r}: {why}")
    assert "\n" not in message
    # A SpecError: the CLI reports it like a bad spec (exit 1, one line).
    assert isinstance(info.value, SpecError)


def test_spec_name_follows_the_same_rule(good: dict[str, Any]) -> None:
    good["name"] = "../evil"
    with pytest.raises(SpecError, match="name"):
        parse_spec(good, "t")
    good["name"] = "x" * 100
    assert parse_spec(good, "t").name == check_study_name("x" * 100)
