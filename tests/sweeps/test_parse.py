"""Reading good sweep specs: the shipped files, shorthands, defaults, round trips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps import (
    SPEC_DIR,
    Choices,
    FloatRange,
    IntRange,
    SweepSpec,
    load_spec,
    parse_spec,
    spec_json_schema,
    spec_to_yaml,
)


def test_default_spec() -> None:
    """Every value sweeps/default.yaml writes, pinned (a change to the shipped sweep is
    deliberate: update the file's comments, the README's timings and this test)."""
    spec = load_spec(SPEC_DIR / "default.yaml")
    assert spec.name == "salsweep-default"
    assert spec.search == {
        "loss.lambda_sg": FloatRange(low=0.05, high=2.0, log=True),
        "loss.num_scales": IntRange(low=1, high=4),
        "loss.use_inv_depth": Choices(choices=[True, False]),
    }
    base = spec.base
    assert (base.loss.method, base.loss.num_scales) == ("scale-adaptive", 4)
    data = base.data
    assert (data.kind, data.seed, data.height, data.width) == ("synthetic", 0, 64, 192)
    assert (data.num_train, data.num_val, data.num_test) == (1000, 128, 128)
    assert base.model.base_channels == 8
    assert (base.epochs, base.steps_per_epoch, base.batch_size) == (4, 150, 4)
    assert base.lr == 0.004 and base.previews is True
    assert (spec.budget.n_trials, spec.budget.timeout) == (8, None)
    assert spec.baseline is True
    objective = spec.objective
    assert (objective.metric, objective.direction, objective.reduce) == (
        "val/abs_rel_align",
        "minimize",
        "best",
    )
    assert (spec.sampler.type, spec.sampler.seed, spec.sampler.n_startup_trials) == ("tpe", 0, 3)
    pruner = spec.pruner
    assert (pruner.type, pruner.n_startup_trials, pruner.n_warmup_steps) == ("median", 2, 2)
    assert spec.confirm is not None
    confirm = spec.confirm
    assert (confirm.top_k, confirm.initial_seeds, confirm.max_seeds) == (2, 4, 12)
    assert (confirm.indifference_zone, confirm.alpha) == (0.005, 0.05)


def test_seed_grid_spec() -> None:
    spec = load_spec(SPEC_DIR / "seed-grid.yaml")
    assert spec.sampler.type == "grid"
    assert spec.search == {
        "loss.lambda_sg": Choices(choices=[0.3, 0.5, 0.7]),
        "loss.num_scales": Choices(choices=[2, 4, 5]),
        "loss.use_inv_depth": Choices(choices=[True, False]),
    }
    assert spec.base.loss.method == "sparse-scale-adaptive"
    assert spec.base.data.sparse is True
    assert spec.budget.n_trials == 3 * 3 * 2  # the grid (the baseline runs outside it)
    # Every grid point is a valid config (5 scales fit the image).
    for scales in (2, 4, 5):
        assert spec.config_for({"loss.num_scales": scales}).loss.num_scales == scales


def test_defaults_filled(good: dict[str, Any]) -> None:
    del good["budget"]
    spec = parse_spec(good, "t")
    assert spec.budget.n_trials == 8 and spec.budget.timeout is None
    assert spec.objective.reduce == "best"
    assert spec.sampler.type == "tpe" and spec.sampler.seed is None
    assert spec.pruner.type == "median" and spec.baseline is False
    assert spec.objective.metric == "val/abs_rel_align"
    assert spec.confirm is None  # no key: no confirmation
    good["confirm"] = None
    assert parse_spec(good, "t").confirm is None
    good["confirm"] = {}
    confirm = parse_spec(good, "t").confirm
    assert confirm is not None and (confirm.top_k, confirm.initial_seeds, confirm.max_seeds) == (
        3,
        4,
        16,
    )
    good["confirm"] = {"top_k": 1, "initial_seeds": 5, "max_seeds": 9, "alpha": 0.025}
    spec = parse_spec(good, "t")
    confirm = spec.confirm
    assert confirm is not None
    assert (confirm.top_k, confirm.initial_seeds, confirm.max_seeds, confirm.alpha) == (
        1,
        5,
        9,
        0.025,
    )
    # The stored JSON dump reads back equal (resume, studies confirm).
    assert parse_spec(spec.model_dump(mode="json"), "t") == spec
    assert spec.base.lr == 1e-3  # TrainConfig defaults in the base


def test_name_defaults_to_file_stem(good: dict[str, Any], tmp_path: Path) -> None:
    del good["name"]
    path = tmp_path / "my-sweep.yaml"
    path.write_text(yaml.safe_dump(good), encoding="utf-8")
    assert load_spec(path).name == "my-sweep"


def test_shorthands_and_fixed_values(good: dict[str, Any]) -> None:
    good["search"] = {
        "loss.lambda_sg": [1, 0.5],  # a list = choices; ints taken as floats
        "lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "loss.num_scales": {"low": 1, "high": 3, "step": 2},
        "loss.epsilon": {"low": 0, "high": 1e-3, "step": 1e-4},
        "loss.use_absolute": False,  # fixed: applied to every trial, not searched
        "lr_schedule": {"choices": ["none", "cosine"]},
    }
    good["sampler"] = "random"  # shorthand for {type: random}
    good["pruner"] = "none"
    spec = parse_spec(good, "t")
    assert spec.search["loss.lambda_sg"] == Choices(choices=[1.0, 0.5])
    assert isinstance(spec.search["loss.lambda_sg"].choices[0], float)
    assert spec.search["loss.epsilon"] == FloatRange(low=0.0, high=1e-3, step=1e-4)
    assert spec.fixed() == {"loss.use_absolute": False}
    assert set(spec.searched()) == set(good["search"]) - {"loss.use_absolute"}
    assert spec.sampler.type == "random" and spec.pruner.type == "none"
    assert spec.config_for({}).loss.use_absolute is False


@pytest.mark.parametrize("name", ["default.yaml", "seed-grid.yaml"])
def test_round_trips(name: str) -> None:
    spec = load_spec(SPEC_DIR / name)
    assert parse_spec(yaml.safe_load(spec_to_yaml(spec)), "yaml") == spec
    assert parse_spec(spec.model_dump(mode="json"), "json") == spec
    # Direct model validation (no parse_spec) gives the same spec and runs the checks.
    assert SweepSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_direct_validation_runs_the_checks(good: dict[str, Any]) -> None:
    data = parse_spec(good, "t").model_dump(mode="json")
    data["search"]["loss.lambda_sg"] = {"low": 2.0, "high": 0.5, "log": False, "step": None}
    with pytest.raises(ValueError, match=r"search\.loss\.lambda_sg\.low: must be < high"):
        SweepSpec.model_validate(data)


def test_json_schema_describes_every_field() -> None:
    schema = spec_json_schema()
    props = schema["properties"]
    assert set(props) == set(SweepSpec.model_fields)
    assert all(props[k].get("description") for k in props)
    budget = schema["$defs"]["Budget"]["properties"]["n_trials"]
    assert budget["minimum"] == 1 and budget["description"]
    assert schema["$defs"]["FloatRange"]["additionalProperties"] is False


def test_comment_only_base_is_the_default(write: Callable[[str], Path]) -> None:
    path = write("name: x\nbase:\nsearch:\n  lr: {low: 0.0001, high: 0.01, log: true}\n")
    assert load_spec(path).base.data.height == 96
