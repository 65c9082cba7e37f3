"""Reading studies: the cheap SQLite reader gives what the full storage gives, falls back
where it does not apply, and loading a study parses no spec."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from studies.catalog import (
    StudyMismatch,
    _SQLiteReader,
    load_study,
    open_for_reading,
    stored_spec,
    study_summaries,
)
from studies.storage import open_storage
from sweeps import SpecError

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell, no optimize


def _study(url: str) -> optuna.Study:
    """Study ``s``: two complete trials (one with reports), one pruned, one failed."""
    study = optuna.create_study(
        study_name="s",
        storage=open_storage(url),
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.set_user_attr("objective_metric", "val/abs_rel_align")
    for value, state in [(0.3, TrialState.COMPLETE), (0.2, TrialState.COMPLETE)]:
        trial = study.ask()
        trial.suggest_float("loss.lambda_sg", 0.05, 2.0, log=True)
        trial.report(value + 0.1, 1)
        trial.set_user_attr("mlflow_run_id", f"run-{trial.number}")
        study.tell(trial, value, state=state)
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.FAIL)
    return study


def _as_rows(study: optuna.Study) -> list[tuple[object, ...]]:
    return [
        (t.number, t.state, t.value, t.params, t.intermediate_values, t.user_attrs)
        for t in study.get_trials()
    ]


def test_reader_reads_what_the_full_storage_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    written = _study(url)
    storage = open_for_reading(url)
    assert isinstance(storage, _SQLiteReader)
    read = optuna.load_study(study_name="s", storage=storage)
    assert _as_rows(read) == _as_rows(written)
    assert len(_as_rows(read)) == 4 and read.best_value == pytest.approx(0.2)
    assert read.user_attrs == {"objective_metric": "val/abs_rel_align"}
    assert read.direction == optuna.study.StudyDirection.MINIMIZE
    [summary] = study_summaries(url)
    assert (summary.n_trials, summary.n_complete, summary.n_pruned, summary.n_failed) == (
        4,
        2,
        1,
        1,
    )
    assert summary.best_value == pytest.approx(0.2)


def test_reader_falls_back_to_the_full_storage(tmp_path: Path) -> None:
    # A missing file: opened (and created) the full way, as a sweep would.
    missing = f"sqlite:///{tmp_path / 'new' / 'o.db'}"
    storage = open_for_reading(missing)
    assert isinstance(storage, RDBStorage) and not isinstance(storage, _SQLiteReader)
    assert study_summaries(missing) == []
    # A file another Optuna version set up: checked by the full storage, still readable.
    url = f"sqlite:///{tmp_path / 'o.db'}"
    _study(url)
    with sqlite3.connect(tmp_path / "o.db") as db:
        db.execute("UPDATE version_info SET library_version = '4.0.0'")
    storage = open_for_reading(url)
    assert not isinstance(storage, _SQLiteReader)
    assert len(optuna.load_study(study_name="s", storage=storage).get_trials()) == 4


def test_loading_a_study_parses_no_spec(tmp_path: Path) -> None:
    """A stored spec that no longer parses (an older salsweep's) still shows and exports;
    only the commands that run trials need it and say why they cannot."""
    url = f"sqlite:///{tmp_path / 'o.db'}"
    _study(url).set_user_attr("spec", {"search": {}, "retired_key": 1})
    study = load_study("s", url)
    assert isinstance(study.sampler, optuna.samplers.RandomSampler)
    assert isinstance(study.pruner, optuna.pruners.NopPruner)
    assert [t.user_attrs.get("mlflow_run_id") for t in study.trials[:2]] == ["run-0", "run-1"]
    with pytest.raises(SpecError, match="retired_key"):
        stored_spec("s", url)


def test_unknown_study_names_the_known_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    _study(url)
    with pytest.raises(StudyMismatch, match=r"no study named 'x' in this storage \(studies: s\)"):
        load_study("x", url)
    with pytest.raises(StudyMismatch, match="it has no spec"):
        stored_spec("s", url)
