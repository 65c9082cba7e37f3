"""The objective's value, the study's budget and folder: pure functions on small inputs."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from studies import attrs
from studies.home import study_dir
from studies.run.objective import objective_value
from studies.run.sweep import trial_budget
from sweeps import StudyNameError
from tests.studies.sweep_helpers import tiny_spec

M = "val/abs_rel_align"
NAN = math.nan
HISTORY = [{M: 0.30, "val/a1": 0.5}, {M: 0.20, "val/a1": 0.7}, {M: 0.25, "val/a1": 0.6}]


@pytest.mark.parametrize(
    ("metric", "direction", "reduce", "expected"),
    [
        (M, "minimize", "best", 0.20),
        (M, "minimize", "last", 0.25),
        ("val/a1", "maximize", "best", 0.7),
        ("val/a1", "maximize", "last", 0.6),
        # "last" is the last epoch whatever the direction
        (M, "maximize", "last", 0.25),
        (M, "maximize", "best", 0.30),
    ],
)
def test_objective_value(metric: str, direction: str, reduce: str, expected: float) -> None:
    assert objective_value(HISTORY, metric, direction, reduce) == expected


def test_objective_value_skips_non_finite_epochs() -> None:
    history = [{M: 0.4}, {M: NAN}, {M: 0.3}, {M: math.inf}, {"val/a1": 0.9}]
    assert objective_value(history, M, "minimize", "best") == 0.3
    # "last" is the last finite epoch (epoch 3), not the NaN, inf or missing ones after it
    assert objective_value(history, M, "minimize", "last") == 0.3
    assert objective_value(history, M, "maximize", "best") == 0.4
    assert objective_value([{M: -math.inf}, {M: 0.5}], M, "minimize", "best") == 0.5


@pytest.mark.parametrize("reduce", ["best", "last"])
def test_objective_value_without_a_finite_epoch(reduce: str) -> None:
    with pytest.raises(ValueError, match="never produced a finite 'val/abs_rel_align'"):
        objective_value([{M: NAN}, {M: math.inf}], M, "minimize", reduce)
    with pytest.raises(ValueError, match="never produced"):
        objective_value([], M, "minimize", reduce)


def test_trial_budget_launch_then_resume() -> None:
    spec = tiny_spec("budget", n_trials=8)
    study = optuna.create_study()
    # A launch: --n-trials when given, else the spec's; stored either way.
    assert trial_budget(study, spec, 4, create=True) == 4
    assert study.user_attrs[attrs.BUDGET] == 4
    # A plain resume keeps the launch's 4 (not the spec's 8) ...
    assert trial_budget(study, spec, None, create=False) == 4
    # ... a resume given --n-trials sets a new budget, which the next resume keeps.
    assert trial_budget(study, spec, 6, create=False) == 6
    assert trial_budget(study, spec, None, create=False) == 6
    # A launch without --n-trials goes back to the spec's budget (its help says so).
    assert trial_budget(study, spec, None, create=True) == 8
    assert study.user_attrs[attrs.BUDGET] == 8


def test_trial_budget_of_a_study_without_one_stored() -> None:
    study = optuna.create_study()  # launched before the budget was stored
    assert trial_budget(study, tiny_spec("old", n_trials=3), None, create=False) == 3
    assert study.user_attrs[attrs.BUDGET] == 3


def test_study_dir_stays_in_the_data_dir(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert study_dir(home, "e2e") == home / "studies" / "e2e"
    for name in ("../../evil", "..", "a/../../b", "/etc", ".x"):
        with pytest.raises(StudyNameError, match="invalid study name"):
            study_dir(home, name)
    # A valid name whose folder is a link out of the data dir is refused too.
    (home / "studies").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "studies" / "linked").symlink_to(outside)
    with pytest.raises(StudyNameError, match="outside the data dir"):
        study_dir(home, "linked")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "outside"]
    assert list(outside.iterdir()) == []
