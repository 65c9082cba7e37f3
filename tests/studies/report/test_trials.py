"""studies.report.trials and .plots on real Optuna studies in SQLite: trial rows, replicate
rows and plot files (the plots' readability: test_plots.py)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from studies.report.plots import save_study_plots
from studies.report.trials import ReplicateRow, TrialRow, replicate_rows, trial_rows
from studies.store import as_record
from studies.store.records import companion_study
from tests.studies.confirm_helpers import add_replicate, add_search_baseline

optuna.logging.set_verbosity(optuna.logging.WARNING)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DISTRIBUTIONS = {
    "loss.lambda_sg": FloatDistribution(0.05, 2.0, log=True),
    "loss.num_scales": IntDistribution(1, 4),
    "loss.use_inv_depth": CategoricalDistribution([True, False]),
}
START = datetime(2025, 1, 1, 12, 0, 0)


def make_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="r")


def add(
    study: optuna.Study,
    params: dict[str, Any],
    value: float | None,
    state: TrialState = TrialState.COMPLETE,
    **attrs: Any,
) -> None:
    n = len(study.trials)
    trial = create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params=params,
        distributions={k: DISTRIBUTIONS[k] for k in params},
        user_attrs=attrs,
        intermediate_values={1: value + 0.1, 2: value} if value is not None else None,
    )
    # create_trial stamps "now": give trial n a known duration of n + 1 seconds.
    trial.datetime_start = START
    trial.datetime_complete = START + timedelta(seconds=n + 1)
    study.add_trial(trial)


def p(lam: float, scales: int, inv: bool) -> dict[str, Any]:
    return {"loss.lambda_sg": lam, "loss.num_scales": scales, "loss.use_inv_depth": inv}


def test_trial_rows(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    add(study, p(0.5, 4, False), 0.4, mlflow_run_id="r0")
    add(study, p(0.2, 2, True), 0.3, mlflow_run_id="r1")
    add(study, p(1.0, 3, False), 0.35, TrialState.PRUNED, mlflow_run_id="r2")
    add(study, p(1.5, 1, True), None, TrialState.FAIL)
    running = study.ask()
    rows = trial_rows(as_record(study))
    assert [r.number for r in rows] == [0, 1, 2, 3, running.number]
    assert rows[0] == TrialRow(
        number=0,
        state="COMPLETE",
        params=p(0.5, 4, False),
        value=0.4,
        duration=1.0,
        mlflow_run_id="r0",
        baseline=False,
    )
    assert [r.state for r in rows] == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "RUNNING"]
    assert [r.value for r in rows] == [0.4, 0.3, None, None, None]
    assert [r.baseline for r in rows] == [False] * 5
    assert [r.mlflow_run_id for r in rows] == ["r0", "r1", "r2", None, None]
    assert [r.duration for r in rows[:4]] == [1.0, 2.0, 3.0, 4.0]
    assert rows[4].duration is None and rows[4].params == {}


def test_baseline_heads_the_rows_from_the_companion_study(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    add(study, p(0.2, 2, True), 0.3, mlflow_run_id="r0")
    add_search_baseline(study, 0.45, seed=0)
    rows = trial_rows(as_record(study))
    assert [(r.number, r.baseline, r.value) for r in rows] == [(None, True, 0.45), (0, False, 0.3)]
    assert rows[0].params == {"loss.method": "ssi"}
    assert rows[0].mlflow_run_id == "baseline-0-search-baseline"
    assert len(study.trials) == 1  # the main study holds the search's trial only


def test_replicate_rows_name_each_run(tmp_path: Path) -> None:
    """The companion study's trials as `studies show NAME:confirm` lists them: the
    configuration's label, seed, role, state, value (validation; NaN for a diverged run),
    test score and run id."""
    study = make_study(tmp_path)
    add(study, p(0.2, 2, True), 0.3)
    add_search_baseline(study, 0.45, seed=0)
    add_replicate(study, "trial-0", 1, 0.31, test=0.36, params=p(0.2, 2, True))
    add_replicate(study, "trial-0", 2, float("nan"), params=p(0.2, 2, True))  # diverged
    add_replicate(study, "baseline", 1, 0.5)
    companion = companion_study(study)
    assert companion is not None
    companion.set_user_attr("search_metric", "val/abs_rel_align")
    companion.add_trial(  # a copy of a job queued twice, pruned
        create_trial(
            state=TrialState.PRUNED,
            user_attrs={
                "config_key": "trial-0",
                "seed": 1,
                "role": "confirmation",
                "duplicate_of": 1,
            },
        )
    )
    record = as_record(study)
    assert record.companion is not None
    rows = replicate_rows(record.companion)
    assert [(r.number, r.config, r.seed, r.role, r.state) for r in rows] == [
        (0, "baseline (ssi)", 0, "search baseline", "COMPLETE"),
        (1, "trial 0", 1, "confirmation", "COMPLETE"),
        (2, "trial 0", 2, "confirmation", "PRUNED"),
        (3, "baseline (ssi)", 1, "confirmation", "COMPLETE"),
        (4, "trial 0", 1, "confirmation", "PRUNED"),
    ]
    assert rows[1] == ReplicateRow(
        number=1,
        config="trial 0",
        params=p(0.2, 2, True),
        seed=1,
        role="confirmation",
        state="COMPLETE",
        value=0.31,
        metric="val/abs_rel_align",  # the race decides on validation
        test_value=0.36,  # the test split reports
        duration=rows[1].duration,
        mlflow_run_id="trial-0-1-confirmation",
        note="",
    )
    assert rows[0].metric == "val/abs_rel_align"  # the search's metric, on validation
    assert rows[0].test_value is None and rows[3].test_value is None  # none stored
    assert math.isnan(rows[2].value or 0.0)
    assert rows[2].note == "diverged: non-finite training loss"
    assert rows[4].value is None
    assert rows[4].note == "a duplicate of trial 1, which runs this job"


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC


def test_plots_written(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    add_search_baseline(study, 0.9)  # beside the study: never plotted
    for i, (lam, scales, inv) in enumerate(
        [(0.1, 1, True), (0.3, 2, False), (0.8, 3, True), (1.2, 4, False), (1.9, 2, True)]
    ):
        add(study, p(lam, scales, inv), 0.2 + 0.05 * i + 0.01 * scales)
    out = tmp_path / "plots"
    written = save_study_plots(as_record(study), out)
    names = ["optimization_history", "param_importances", "parallel_coordinate"]
    assert written == [out / f"{n}.png" for n in names]
    assert all(is_png(f) and f.stat().st_size > 1000 for f in written)
    assert sorted(f.name for f in out.iterdir()) == sorted(f"{n}.png" for n in names)


@pytest.mark.parametrize(
    ("trials", "expected"),
    [
        ([], []),
        ([p(0.5, 4, False)], ["optimization_history"]),
        # Two complete trials, but every param took a single value: no importances.
        ([p(0.5, 4, False), p(0.5, 4, False)], ["optimization_history"]),
    ],
)
def test_plots_skipped_when_impossible(
    tmp_path: Path, trials: list[dict[str, Any]], expected: list[str]
) -> None:
    study = make_study(tmp_path)
    add_search_baseline(study, 0.5)  # never plotted
    for i, params in enumerate(trials):
        add(study, params, 0.3 + 0.1 * i)
    written = save_study_plots(as_record(study), tmp_path / "plots")
    assert [f.stem for f in written] == expected
    assert all(is_png(f) for f in written)
