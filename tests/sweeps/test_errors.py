"""Bad sweep specs: every problem reported at once, each with its exact key path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sweeps import IntRange, SpecError, SpecProblem, load_spec, parse_spec
from trainer.io import ConfigError, parse_train_config


def problems(data: Any) -> dict[str, str]:
    """``{key path: message}`` of the SpecError that parsing ``data`` raises."""
    with pytest.raises(SpecError) as info:
        parse_spec(data, "spec.yaml")
    found = {p.path: p.message for p in info.value.problems}
    assert len(found) == len(info.value.problems), "one problem per key path here"
    return found


def test_message_lists_every_problem_one_per_line(good: dict[str, Any]) -> None:
    good["base"]["lr"] = 5.0
    good["search"]["loss.lambda_sg"] = {"low": 2.0, "high": 0.5}
    with pytest.raises(SpecError) as info:
        parse_spec(good, "spec.yaml")
    lines = str(info.value).splitlines()
    assert lines[0] == "spec.yaml: 2 problem(s)"
    assert lines[1:] == [
        "  base.lr: Input should be less than or equal to 1 (got 5.0)",
        "  search.loss.lambda_sg.low: must be < high (got low=2.0, high=0.5)",
    ]
    assert info.value.problems[1] == SpecProblem(
        "search.loss.lambda_sg.low", "must be < high (got low=2.0, high=0.5)"
    )
    assert isinstance(info.value, ValueError)


def test_all_problems_at_once(good: dict[str, Any]) -> None:
    good.update(
        seach={},
        base={"loss": {"num_scale": 3}, "lr": "fast"},
        budget={"n_trials": 0, "timeout": -1},
        objective={"direction": "down", "reduce": "mean"},
        sampler={"type": "random", "n_startup_trials": 3},
        pruner={"type": "none", "n_warmup_steps": 1},
        baseline="yes",
    )
    good["search"].update(
        {
            "loss.lamda_sg": 0.5,
            "loss": {"low": 1, "high": 2},
            "loss.num_scales": {"low": 1, "high": 4.5, "stepp": 1},
            "loss.use_inv_depth": {"choices": [True, "no"]},
            "loss.lambda_sg": {"low": 2.0, "high": 0.5},
        }
    )
    found = problems(good)
    assert set(found) == {
        "seach",
        "base.loss.num_scale",
        "base.lr",
        "search.loss.lamda_sg",
        "search.loss",
        "search.loss.num_scales.high",
        "search.loss.num_scales.stepp",
        "search.loss.use_inv_depth.choices[1]",
        "search.loss.lambda_sg.low",
        "budget.n_trials",
        "budget.timeout",
        "objective.direction",
        "objective.reduce",
        "sampler.n_startup_trials",
        "pruner.n_warmup_steps",
        "baseline",
    }
    assert found["seach"].startswith("unknown key (did you mean 'search'?")
    assert found["base.loss.num_scale"].startswith("unknown key (did you mean 'num_scales'?")
    assert "did you mean 'lambda_sg'" in found["search.loss.lamda_sg"]
    assert "a section, not a setting" in found["search.loss"]
    assert found["search.loss.num_scales.high"] == "Input should be a valid integer (got 4.5)"
    assert found["search.loss.use_inv_depth.choices[1]"].startswith(
        "Input should be a valid boolean"
    )
    assert found["sampler.n_startup_trials"] == "applies to type tpe only (type is random)"
    assert found["pruner.n_warmup_steps"] == "applies to type median only (type is none)"


def test_unknown_keys_in_every_section(good: dict[str, Any]) -> None:
    good["budget"]["trials"] = 3
    good["sampler"] = {"kind": "tpe"}
    good["search"]["lr"] = {"choices": [0.1], "low": 0.1}
    found = problems(good)
    assert set(found) == {"budget.trials", "sampler.kind", "search.lr.low"}
    assert all(m.startswith("unknown key") for m in found.values())


@pytest.mark.parametrize(
    ("param", "path", "message"),
    [
        ({"low": 1.0, "high": 1.0}, "search.lr.low", "must be < high (got low=1.0, high=1.0)"),
        ({"low": 0.0, "high": 0.1, "log": True}, "search.lr.low", "must be > 0 with log: true"),
        ({"low": 0.1, "high": 0.5, "step": 0.15}, "search.lr.step", "is not a multiple of step"),
        ({"low": 0.1, "high": 0.5, "log": True, "step": 0.1}, "search.lr.step", "cannot be"),
        ({"choices": []}, "search.lr.choices", "List should have at least 1 item"),
        ({"choices": [0.1, 0.1]}, "search.lr.choices[1]", "duplicate 0.1"),
        ({"low": "a", "high": 0.1}, "search.lr.low", "Input should be a valid number (got 'a')"),
        ({"high": 0.1}, "search.lr.low", "Field required"),
        ("fast", "search.lr", "Input should be a valid number (got 'fast')"),
    ],
)
def test_bad_float_param(good: dict[str, Any], param: Any, path: str, message: str) -> None:
    good["search"]["lr"] = param
    found = problems(good)
    assert list(found) == [path]
    assert message in found[path]


def test_range_of_a_non_number_setting(good: dict[str, Any]) -> None:
    good["search"]["lr_schedule"] = {"low": 0, "high": 1}
    good["search"]["epochs"] = "bool"
    good["search"]["loss.method"] = {"choices": ["scale-adaptive", "l1"]}
    found = problems(good)
    assert "a range needs a number setting" in found["search.lr_schedule"]
    assert "the shorthand `bool` is for true/false settings" in found["search.epochs"]
    assert "Input should be 'scale-adaptive'" in found["search.loss.method.choices[1]"]


def test_both_ends_checked_against_field_bounds(good: dict[str, Any]) -> None:
    good["search"]["loss.lambda_sg"] = {"low": -1.0, "high": 200.0}
    good["search"]["loss.num_scales"] = {"low": 0, "high": 9}
    found = problems(good)
    assert found["search.loss.lambda_sg.low"] == (
        "-1.0 is invalid: Input should be greater than or equal to 0"
    )
    assert found["search.loss.lambda_sg.high"] == (
        "200.0 is invalid: Input should be less than or equal to 100"
    )
    assert set(found) == {
        "search.loss.lambda_sg.low",
        "search.loss.lambda_sg.high",
        "search.loss.num_scales.low",
        "search.loss.num_scales.high",
    }


def test_num_scales_too_large_for_the_image(good: dict[str, Any]) -> None:
    good["base"]["data"] = {"height": 32, "width": 64}
    good["search"]["loss.num_scales"] = {"choices": [2, 5, 6]}  # 32 / 2^5 = 1 px
    found = problems(good)
    assert list(found) == ["search.loss.num_scales.choices[2]"]
    assert found["search.loss.num_scales.choices[2]"].startswith(
        "6 is invalid: loss.num_scales=6 is too large for a 32x64 image"
    )


def test_values_inside_a_range_are_checked(good: dict[str, Any]) -> None:
    good["search"]["data.height"] = {"low": 64, "high": 128}  # most are not multiples of 16
    found = problems(good)
    assert list(found) == ["search.data.height"]
    assert found["search.data.height"].startswith("60 of the 65 values are invalid, e.g. 65:")
    good["search"]["data.height"] = {"low": 64, "high": 128, "step": 16}
    assert parse_spec(good, "t").search["data.height"] == IntRange(low=64, high=128, step=16)


def test_ends_valid_alone_but_not_together(good: dict[str, Any]) -> None:
    good["search"] = {
        "data.min_depth": {"low": 1.0, "high": 50.0},
        "data.max_depth": {"low": 20.0, "high": 80.0},
    }
    found = problems(good)
    assert list(found) == ["search"]
    assert found["search"].startswith(
        "the combination data.min_depth=50.0, data.max_depth=20.0 is invalid"
    )


def test_fixed_values_valid_alone_but_not_together(good: dict[str, Any]) -> None:
    good["search"].update({"data.min_depth": 50.0, "data.max_depth": 40.0})
    assert problems(good) == {
        "search": "the fixed values data.min_depth=50.0, data.max_depth=40.0 are invalid: "
        "max_depth (40.0) must be larger than min_depth (50.0)"
    }


def test_grid_needs_discrete_params(good: dict[str, Any]) -> None:
    good["sampler"] = {"type": "grid"}
    found = problems(good)
    assert list(found) == ["search.loss.lambda_sg"]
    assert "the grid sampler needs a discrete param" in found["search.loss.lambda_sg"]


def test_grid_budget_at_most_the_grid(good: dict[str, Any]) -> None:
    good["sampler"] = {"type": "grid"}
    good["search"]["loss.lambda_sg"] = [0.3, 0.7]
    good["baseline"] = True  # runs outside the study: it takes no grid point
    good["budget"]["n_trials"] = 2 * 4 * 2 + 1
    found = problems(good)
    assert found == {
        "budget.n_trials": "17 is more than the grid's 16 points; at most 16 "
        "(more would repeat grid points)"
    }
    good["budget"]["n_trials"] = 16
    assert parse_spec(good, "t").budget.n_trials == 16


def test_baseline_needs_a_scale_adaptive_method(good: dict[str, Any]) -> None:
    good["baseline"] = True
    good["base"]["loss"] = {"method": "ssi"}
    found = problems(good)
    assert found["baseline"].startswith("needs a scale-adaptive loss.method")
    # lambda_sg and use_inv_depth mean nothing to the SSI loss.
    assert "has no effect with loss.method ssi" in found["search.loss.lambda_sg"]
    assert "has no effect with loss.method ssi" in found["search.loss.use_inv_depth"]
    good["base"]["loss"] = {}
    good["search"]["loss.method"] = ["scale-adaptive", "sparse-scale-adaptive"]
    assert "cannot be searched with baseline: true" in problems(good)["search.loss.method"]


def test_objective_direction_must_fit_the_metric(good: dict[str, Any]) -> None:
    good["objective"] = {"metric": "val/a1_med"}
    assert problems(good) == {"objective.direction": "val/a1_med is higher-is-better: use maximize"}
    good["objective"] = {"metric": "val/a1", "direction": "maximize"}
    assert parse_spec(good, "t").objective.direction == "maximize"
    good["objective"] = {"metric": "val/a1_align"}
    assert problems(good) == {
        "objective.direction": "val/a1_align is higher-is-better: use maximize"
    }
    good["objective"] = {"metric": "val/abs_rel_align", "direction": "maximize"}
    assert problems(good) == {
        "objective.direction": "val/abs_rel_align is lower-is-better: use minimize"
    }
    # The same metrics aligned in depth.
    good["objective"] = {"metric": "val/a1_align_depth"}
    assert problems(good) == {
        "objective.direction": "val/a1_align_depth is higher-is-better: use maximize"
    }
    good["objective"] = {"metric": "val/abs_rel_align_depth", "direction": "maximize"}
    assert problems(good) == {
        "objective.direction": "val/abs_rel_align_depth is lower-is-better: use minimize"
    }


def test_objective_cannot_be_a_test_metric(good: dict[str, Any]) -> None:
    good["objective"] = {"metric": "test/abs_rel_align"}
    assert problems(good) == {
        "objective.metric": "test/abs_rel_align is a test-split metric, which the search never "
        "sees; use val/abs_rel_align (the confirmation reports the test split)"
    }


@pytest.mark.parametrize(
    ("confirm", "expected"),
    [
        ({"top_k": 0}, {"confirm.top_k": "greater than or equal to 1 (got 0)"}),
        ({"initial_seeds": 2}, {"confirm.initial_seeds": "greater than or equal to 3 (got 2)"}),
        (
            {"top_k": 2.5, "max_seeds": "3"},
            {"confirm.top_k": "", "confirm.max_seeds": ""},
        ),
        ({"initial_seeds": 6, "max_seeds": 5}, {"confirm.max_seeds": "5 is below initial_seeds"}),
        # The fixed-seed confirmation's key: refused, naming the race's keys.
        ({"seeds": 4}, {"confirm.seeds": "replaced by the sequential confirmation's initial"}),
        ({"top": 2}, {"confirm.top": "unknown key"}),
        ([3, 3], {"confirm": "expected a mapping, got list"}),
    ],
)
def test_confirm_problems(good: dict[str, Any], confirm: Any, expected: dict[str, str]) -> None:
    good["confirm"] = confirm
    found = problems(good)
    assert sorted(found) == sorted(expected)
    for key, start in expected.items():
        assert start in found[key], (key, found[key])


def test_pruner_settings_beyond_the_epochs(good: dict[str, Any]) -> None:
    good["pruner"] = {"type": "hyperband", "min_resource": 4}
    assert "more than the epochs of a trial (3)" in problems(good)["pruner.min_resource"]
    good["pruner"] = None
    assert "null is ambiguous" in problems(good)["pruner"]


def test_search_required_and_must_search_something(good: dict[str, Any]) -> None:
    del good["search"]
    assert problems(good) == {"search": "required: the settings to search"}
    good["search"] = {"lr": 0.01}
    assert "needs at least one searched setting" in problems(good)["search"]


def test_top_level_must_be_a_mapping() -> None:
    assert problems([1, 2]) == {"(top level)": "expected a mapping, got list"}
    assert problems({"search": {"lr": [0.1, 0.2]}}) == {"name": "required (the default study name)"}


def test_yaml_syntax_error_gives_the_line(write: Callable[[str], Path]) -> None:
    path = write("name: x\nsearch:\n  lr: {low: 0.1, high: 0.2\n  seed: 1\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (problem,) = info.value.problems
    assert problem.path == "" and problem.message.startswith("line 4, column 7: invalid YAML")
    assert str(info.value).startswith(f"{path}: 1 problem(s)\n  line 4")


def test_duplicate_keys_are_errors(write: Callable[[str], Path]) -> None:
    path = write("name: x\nsearch:\n  lr: [0.1, 0.2]\n  lr: 0.3\nname: y\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [str(p) for p in info.value.problems] == [
        "line 4: duplicate key 'lr'",
        "line 5: duplicate key 'name'",
    ]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems == [SpecProblem("", "file not found")]
    assert str(info.value) == f"{path}: 1 problem(s)\n  file not found"


def test_a_training_config_reads_like_the_spec_s_base(good: dict[str, Any]) -> None:
    """One formatter (trainer.validation) for both: the same problems, the same words,
    under ``base.`` in a spec."""
    bad = {"lr": 5.0, "epochs": "many", "loss": {"lamda_sg": 0.5}}
    good["base"] = bad
    in_spec = problems(good)
    with pytest.raises(ConfigError) as info:
        parse_train_config(bad, "train.yaml")
    assert {f"base.{line}" for line in info.value.problems} == {
        f"{path}: {message}" for path, message in in_spec.items()
    }
    assert in_spec["base.loss.lamda_sg"].startswith(
        "unknown key (did you mean 'lambda_sg'? valid keys: "
    )
    assert "lr: Input should be less than or equal to 1 (got 5.0)" in info.value.problems
