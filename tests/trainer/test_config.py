"""trainer.config: the loss's depth range (LossConfig.min_depth / max_depth) and where its
default comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from loss import get_loss
from loss.units import DEFAULT_MAX_DEPTH, DEFAULT_MIN_DEPTH
from trainer import DataConfig, LossConfig, TrainConfig, describe_validation_error
from trainer.io import dump_train_config, load_train_config


def loss_range(config: TrainConfig) -> tuple[float, float]:
    return config.loss.min_depth, config.loss.max_depth


def test_defaults() -> None:
    assert (LossConfig().min_depth, LossConfig().max_depth) == (1.0, 80.0)
    assert (DEFAULT_MIN_DEPTH, DEFAULT_MAX_DEPTH) == (1.0, 80.0)
    assert loss_range(TrainConfig()) == (1.0, 80.0)
    # The same numbers as the loss itself: a LossConfig's parameters are get_loss's.
    config = LossConfig()
    assert get_loss(config.method, **config.loss_params()) == get_loss(config.method)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"data": {"max_depth": 10.0}}, (1.0, 10.0)),
        ({"data": {"min_depth": 0.5, "max_depth": 10}}, (0.5, 10.0)),
        ({"data": {"max_depth": 10.0}, "loss": {"max_depth": 20.0}}, (1.0, 20.0)),
        ({"data": {"min_depth": 0.1, "max_depth": 10.0}, "loss": {"min_depth": 2.0}}, (2.0, 10.0)),
        ({"data": {"max_depth": 10.0}, "loss": {"method": "ssi"}}, (1.0, 10.0)),
    ],
)
def test_left_out_the_loss_takes_the_datas_range(
    raw: dict[str, Any], expected: tuple[float, float]
) -> None:
    config = TrainConfig.model_validate(raw)
    assert loss_range(config) == expected
    assert all(type(v) is float for v in loss_range(config))
    # Written out, the range is explicit and reads back the same.
    assert TrainConfig.model_validate(config.model_dump(mode="json")) == config


def test_instances_too() -> None:
    config = TrainConfig(data=DataConfig(min_depth=0.5, max_depth=10.0), loss=LossConfig())
    assert loss_range(config) == (0.5, 10.0)
    explicit = TrainConfig(data=DataConfig(max_depth=10.0), loss=LossConfig(max_depth=40.0))
    assert loss_range(explicit) == (1.0, 40.0)
    assert explicit.loss.model_fields_set == {"max_depth", "min_depth"}


def test_a_dumped_config_keeps_its_range(tmp_path: Path) -> None:
    """A file written by ``dump_train_config`` (and so every export) names the loss's range;
    changing data.max_depth afterwards no longer moves it."""
    path = tmp_path / "c.yaml"
    path.write_text(dump_train_config(TrainConfig.model_validate({"data": {"max_depth": 10.0}})))
    written = yaml.safe_load(path.read_text())
    assert (written["loss"]["min_depth"], written["loss"]["max_depth"]) == (1.0, 10.0)
    assert loss_range(load_train_config(path)) == (1.0, 10.0)
    written["data"]["max_depth"] = 20.0
    assert loss_range(TrainConfig.model_validate(written)) == (1.0, 10.0)


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        # The data's range is wrong: reported once, at data, not copied to the loss.
        ({"data": {"min_depth": 50.0, "max_depth": 20.0}}, ["data"]),
        ({"data": {"max_depth": float("inf")}}, [("data", "max_depth")]),
        ({"data": {"max_depth": "far"}}, [("data", "max_depth")]),
        ({"data": {"max_depth": True}}, ["data"]),  # True reads as 1.0: data's error only
        # The loss's own.
        ({"loss": {"min_depth": 5.0, "max_depth": 2.0}}, ["loss"]),
        ({"loss": {"min_depth": 0.0}}, [("loss", "min_depth")]),
        ({"loss": {"max_depth": 1e6}}, [("loss", "max_depth")]),
        ({"data": {"max_depth": 2.0}, "loss": {"min_depth": 5.0}}, ["loss"]),
    ],
)
def test_errors_are_reported_once(raw: dict[str, Any], errors: list[Any]) -> None:
    with pytest.raises(ValidationError) as info:
        TrainConfig.model_validate(raw)
    locations = [e["loc"][:2] if len(e["loc"]) > 1 else e["loc"][0] for e in info.value.errors()]
    assert locations == errors, describe_validation_error(info.value)


def test_loss_range_error_message() -> None:
    with pytest.raises(ValidationError, match=r"max_depth \(2.0\) must be larger than min_depth"):
        LossConfig(min_depth=5.0, max_depth=2.0)


def test_field_descriptions_and_bounds() -> None:
    fields = LossConfig.model_fields
    for name in ("min_depth", "max_depth"):
        assert "data." + name in (fields[name].description or "")
    schema = LossConfig.model_json_schema()["properties"]
    assert schema["min_depth"]["minimum"] == 1e-3
    assert schema["max_depth"]["maximum"] == 1e5
