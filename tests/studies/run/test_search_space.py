"""studies.run.search_space on real Optuna studies in SQLite: suggestions, grid, sampler, pruner."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.pruners import HyperbandPruner, MedianPruner, NopPruner
from optuna.samplers import GridSampler, RandomSampler, TPESampler

from studies.run.search_space import (
    build_pruner,
    build_sampler,
    grid_search_space,
    suggest_config,
)
from sweeps import SPEC_DIR, SweepSpec, load_spec, parse_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC: dict[str, Any] = {
    "name": "t",
    "base": {"data": {"height": 64, "width": 192}, "epochs": 3},
    "search": {
        "loss.lambda_sg": {"low": 0.05, "high": 2.0, "log": True},
        "loss.num_scales": {"low": 1, "high": 4},
        "loss.use_inv_depth": "bool",
        "lr": {"low": 1e-4, "high": 1e-2, "step": 1e-4},
        "lr_schedule": ["none", "cosine"],
        "loss.use_absolute": False,
    },
    "sampler": {"type": "random", "seed": 1},
}


def make_spec(**changes: Any) -> SweepSpec:
    return parse_spec({**SPEC, **changes}, "test")


def make_study(tmp_path: Path, spec: SweepSpec, name: str = "s") -> optuna.Study:
    return optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db",
        study_name=name,
        sampler=build_sampler(spec),
        pruner=build_pruner(spec),
        direction=spec.objective.direction,
    )


def run(study: optuna.Study, spec: SweepSpec, n: int) -> list[optuna.trial.FrozenTrial]:
    """Run ``n`` trials that build their configs; the finished trials.

    ``optimize`` rather than ask/tell: the grid sampler stops the study when the grid is
    done, which Optuna allows inside ``optimize`` only.
    """

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, spec)
        trial.set_user_attr("config", config.model_dump(mode="json"))
        return config.loss.lambda_sg

    study.optimize(objective, n_trials=n)
    return study.get_trials()


def test_suggest_config_applies_every_param_in_range(tmp_path: Path) -> None:
    spec = make_spec()
    trials = run(make_study(tmp_path, spec), spec, 8)
    for t in trials:
        assert set(t.params) == set(spec.searched())
        config = t.user_attrs["config"]
        loss = config["loss"]
        assert loss["lambda_sg"] == t.params["loss.lambda_sg"]
        assert 0.05 <= loss["lambda_sg"] <= 2.0 and isinstance(loss["lambda_sg"], float)
        assert loss["num_scales"] == t.params["loss.num_scales"]
        assert 1 <= loss["num_scales"] <= 4 and isinstance(loss["num_scales"], int)
        assert loss["use_inv_depth"] is t.params["loss.use_inv_depth"]
        assert config["lr"] == t.params["lr"] and 1e-4 <= config["lr"] <= 1e-2
        assert round(config["lr"] / 1e-4, 6).is_integer()  # on the step grid
        assert config["lr_schedule"] == t.params["lr_schedule"] in ("none", "cosine")
        assert loss["use_absolute"] is False  # fixed, not an Optuna param
        assert loss["method"] == "sparse-scale-adaptive"
    # The sampler explored: more than one value per param over 8 trials.
    assert len({t.params["loss.use_inv_depth"] for t in trials}) == 2
    assert len({t.params["loss.lambda_sg"] for t in trials}) == 8


def test_seed_grid_space_is_the_cartesian_product(tmp_path: Path) -> None:
    spec = load_spec(SPEC_DIR / "seed-grid.yaml")
    space = grid_search_space(spec)
    assert space == {
        "loss.lambda_sg": [0.3, 0.5, 0.7],
        "loss.num_scales": [2, 4, 5],
        "loss.use_inv_depth": [True, False],
    }
    study = make_study(tmp_path, spec)
    trials = run(study, spec, spec.budget.n_trials)
    points = [tuple(t.params[k] for k in space) for t in trials]
    assert sorted(points) == sorted(itertools.product(*space.values()))  # 18, each once
    # The SSI baseline is no trial of the study (it runs beside it, see studies.run.replicates).
    assert len(trials) == 18
    assert {t.user_attrs["config"]["loss"]["method"] for t in trials} == {"sparse-scale-adaptive"}
    assert isinstance(study.sampler, GridSampler) and study.sampler.is_exhausted(study)


def test_float_steps_make_a_grid() -> None:
    spec = make_spec(
        search={"loss.lambda_sg": {"low": 0.3, "high": 0.7, "step": 0.2}, "epochs": [1, 2]},
        sampler={"type": "grid"},
        budget={"n_trials": 6},
    )
    assert grid_search_space(spec) == {"loss.lambda_sg": [0.3, 0.5, 0.7], "epochs": [1, 2]}


def test_sampler_types() -> None:
    assert isinstance(build_sampler(make_spec(sampler={"type": "random"})), RandomSampler)
    tpe = build_sampler(make_spec(sampler={"type": "tpe", "seed": 3, "n_startup_trials": 2}))
    assert isinstance(tpe, TPESampler) and tpe._n_startup_trials == 2
    grid = make_spec(
        search={"loss.num_scales": [2, 3]}, sampler={"type": "grid"}, budget={"n_trials": 2}
    )
    assert isinstance(build_sampler(grid), GridSampler)


@pytest.mark.parametrize("kind", ["tpe", "random"])
def test_same_seed_same_suggestions(tmp_path: Path, kind: str) -> None:
    # TPE models the results from the third trial on.
    startup = {"n_startup_trials": 2} if kind == "tpe" else {}

    def params(seed: int, name: str) -> list[dict[str, Any]]:
        spec = make_spec(sampler={"type": kind, "seed": seed, **startup})
        return [t.params for t in run(make_study(tmp_path, spec, name), spec, 4)]

    first = params(7, "a")
    assert params(7, "b") == first
    assert params(8, "c") != first


def test_pruner_types() -> None:
    median = build_pruner(make_spec(pruner={"n_startup_trials": 2, "n_warmup_steps": 1}))
    assert isinstance(median, MedianPruner)
    assert (median._n_startup_trials, median._n_warmup_steps) == (2, 1)
    default = build_pruner(make_spec())
    assert isinstance(default, MedianPruner) and default._n_startup_trials == 5
    hyper = build_pruner(make_spec(pruner={"type": "hyperband", "reduction_factor": 2}))
    assert isinstance(hyper, HyperbandPruner)
    assert (hyper._min_resource, hyper._max_resource, hyper._reduction_factor) == (1, 3, 2)
    assert isinstance(build_pruner(make_spec(pruner={"type": "none"})), NopPruner)
