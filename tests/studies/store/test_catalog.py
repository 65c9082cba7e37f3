"""Reading studies: the SQL reader (studies.store.tables) gives what Optuna gives, on SQLite and
PostgreSQL, falls back to Optuna where it does not apply, and reading parses no spec."""

from __future__ import annotations

import math
import sqlite3
import warnings
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    IntLogUniformDistribution,
    UniformDistribution,
)
from optuna.trial import TrialState, create_trial

from studies.store import tables
from studies.store.catalog import (
    StudyMismatch,
    _summaries_through_optuna,
    load_study,
    read_companion,
    read_study,
    stored_spec,
    study_summaries,
)
from studies.store.records import StudyRecord, as_record, companion_about, companion_study
from studies.store.storage import StorageError, open_storage
from sweeps import SpecError

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell, no optimize


def _study(url: str, name: str = "s", direction: str = "minimize") -> optuna.Study:
    """Study ``name``: complete trials (one of them infinite), pruned, failed, running and
    waiting ones; every kind of parameter distribution; JSON attributes of every type; and
    a companion study ``NAME:confirm`` with a replicate."""
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(url),
        direction=direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.set_user_attr("objective_metric", "val/abs_rel_align")
    study.set_user_attr("spec", {"objective": {"reduce": "best"}, "nested": [1, 2.5, None]})
    for value in (0.3, 0.2, 0.25):
        trial = study.ask()
        trial.suggest_float("loss.lambda_sg", 0.05, 2.0, log=True)
        trial.suggest_int("loss.num_scales", 1, 4)
        trial.suggest_categorical("loss.use_inv_depth", [True, False])
        trial.suggest_categorical("data.norm", ["group", None, 2.5, 3])
        trial.suggest_float("lr", 1e-4, 1e-2, step=1e-4)
        trial.report(value + 0.1, 1)
        trial.set_user_attr("mlflow_run_id", f"run-{trial.number}")
        trial.set_user_attr("config", {"lr": 1e-3, "loss": {"method": "ssi"}, "flag": True})
        study.tell(trial, value)
    trial = study.ask()
    trial.suggest_int("loss.num_scales", 1, 4)
    study.tell(trial, -math.inf)  # stored by its type column, without a value
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.FAIL)
    study.ask().set_user_attr("worker", "host:1")  # left RUNNING: no completion time
    study.enqueue_trial({"loss.num_scales": 2})  # WAITING: no start time either
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the legacy distributions
        study.add_trial(
            create_trial(
                value=0.4,
                params={"legacy.uniform": 0.5, "legacy.intlog": 8},
                distributions={
                    "legacy.uniform": UniformDistribution(0.0, 1.0),
                    "legacy.intlog": IntLogUniformDistribution(1, 16),
                },
            )
        )
    companion = companion_study(study, create=True)
    assert companion is not None
    companion.set_user_attr("metric", "test/abs_rel_align")
    companion.add_trial(
        create_trial(
            value=0.21,
            user_attrs={"config_key": "trial-1", "seed": 1, "role": "confirmation"},
            params={"x": 1.5, "k": 3, "c": "b"},
            distributions={
                "x": FloatDistribution(0.0, 2.0),
                "k": IntDistribution(1, 4),
                "c": CategoricalDistribution(["a", "b"]),
            },
        )
    )
    return study


def _through_optuna(name: str, url: str) -> StudyRecord:
    return as_record(load_study(name, url))


# The postgresql case asks for postgres_url at run time, which collection cannot see: its
# tier marker comes with the parameter.
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'o.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_sql_reader_reads_what_optuna_reads(url: str) -> None:
    _study(url)
    with tables.connect(url) as db:  # directly: no fall-back to Optuna
        ids = tables.study_names(db)
        direct = tables.read_studies(db, [ids["s"], ids["s:confirm"]])
    optuna_view = _through_optuna("s", url)
    assert direct[ids["s"]] == replace(optuna_view, companion=None)
    assert direct[ids["s:confirm"]] == optuna_view.companion
    read = read_study("s", url)
    assert read == optuna_view
    # What that means, spelled out: values, types and order as the trials suggested them.
    first = read.trials[0]
    assert (first.state, first.value) == ("COMPLETE", 0.3)
    assert list(first.params) == [
        "loss.lambda_sg",
        "loss.num_scales",
        "loss.use_inv_depth",
        "data.norm",
        "lr",
    ]
    assert isinstance(first.params["loss.num_scales"], int)
    assert isinstance(first.params["loss.use_inv_depth"], bool)
    assert first.params["data.norm"] in ("group", None, 2.5, 3)
    assert first.user_attrs == {
        "mlflow_run_id": "run-0",
        "config": {"lr": 1e-3, "loss": {"method": "ssi"}, "flag": True},
    }
    assert first.duration is not None and first.duration.total_seconds() >= 0
    assert [(t.number, t.state) for t in read.trials[3:]] == [
        (3, "COMPLETE"),
        (4, "PRUNED"),
        (5, "FAIL"),
        (6, "RUNNING"),
        (7, "WAITING"),
        (8, "COMPLETE"),
    ]
    assert read.trials[3].value == -math.inf
    assert read.trials[6].datetime_complete is None and read.trials[6].duration is None
    assert read.trials[7].datetime_start is None
    assert read.trials[8].params == {"legacy.uniform": 0.5, "legacy.intlog": 8}
    assert read.user_attrs["spec"] == {"objective": {"reduce": "best"}, "nested": [1, 2.5, None]}
    assert read.direction == "minimize"
    assert read.companion is not None and read.companion.study_name == "s:confirm"
    assert read.companion.user_attrs == {
        "metric": "test/abs_rel_align",
        "about": companion_about("s"),  # what its trials are (optuna-dashboard shows it)
    }
    assert read.companion.trials[0].params == {"x": 1.5, "k": 3, "c": "b"}


def test_summaries_are_optuna_s(url: str) -> None:
    _study(url, "a")
    _study(url, "b", direction="maximize")
    optuna.create_study(study_name="empty", storage=open_storage(url))
    with tables.connect(url) as db:
        direct = tables.study_counts(db)
    assert sorted(direct, key=lambda s: s.name) == sorted(
        _summaries_through_optuna(url), key=lambda s: s.name
    )
    shown = study_summaries(url)
    assert [s.name for s in shown] == ["a", "b", "empty"]  # companions hidden
    a, b, empty = shown
    assert (a.n_trials, a.n_complete, a.n_pruned, a.n_failed) == (9, 5, 1, 1)
    assert a.best_value == -math.inf and b.best_value == pytest.approx(0.4)
    assert a.started is not None and a.started <= datetime.now()
    assert (empty.n_trials, empty.best_value, empty.started) == (0, None, None)


def test_schema_revision_is_this_optuna_s(tmp_path: Path) -> None:
    """The reader knows the tables of the revision the installed Optuna creates."""
    path = tmp_path / "o.db"
    open_storage(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (tables.SCHEMA_REVISION,)
        ]


def test_missing_file_has_no_studies_and_stays_missing(tmp_path: Path) -> None:
    path = tmp_path / "new" / "o.db"
    url = f"sqlite:///{path}"
    assert study_summaries(url) == []
    with pytest.raises(
        StudyMismatch, match=r"no study named 's' in this storage \(studies: none\)"
    ):
        read_study("s", url)
    assert not path.exists() and not path.parent.exists()


def test_other_schema_revision_goes_through_optuna(tmp_path: Path) -> None:
    """A revision the reader does not know is Optuna's to read, or to refuse clearly."""
    url = f"sqlite:///{tmp_path / 'o.db'}"
    _study(url)
    with sqlite3.connect(tmp_path / "o.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'v9.9.9.z'")
    with pytest.raises(tables.Unreadable), tables.connect(url):
        pass
    with pytest.raises(StorageError, match="cannot open the Optuna storage"):
        read_study("s", url)
    with pytest.raises(StorageError, match="cannot open the Optuna storage"):
        study_summaries(url)


def test_database_without_tables_goes_through_optuna(postgres_url: str) -> None:
    """An empty PostgreSQL database: Optuna sets it up, as it does for a sweep."""
    assert study_summaries(postgres_url) == []
    with pytest.raises(StudyMismatch, match=r"\(studies: none\)"):
        read_study("s", postgres_url)
    with tables.connect(postgres_url) as db:  # the tables exist now: read directly
        assert tables.study_names(db) == {}


def test_reading_parses_no_spec(tmp_path: Path) -> None:
    """A stored spec that no longer parses (an older salsweep's) still shows and exports;
    only the commands that run trials need it and say why they cannot."""
    url = f"sqlite:///{tmp_path / 'o.db'}"
    _study(url).set_user_attr("spec", {"search": {}, "retired_key": 1})
    read = read_study("s", url)
    assert [t.user_attrs.get("mlflow_run_id") for t in read.trials[:2]] == ["run-0", "run-1"]
    study = load_study("s", url)
    assert isinstance(study.sampler, optuna.samplers.RandomSampler)
    assert isinstance(study.pruner, optuna.pruners.NopPruner)
    with pytest.raises(SpecError, match="retired_key"):
        stored_spec("s", url)


def test_unknown_study_names_the_known_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    _study(url)
    for read in (read_study, load_study):
        with pytest.raises(
            StudyMismatch, match=r"no study named 'x' in this storage \(studies: s\)"
        ):
            read("x", url)
        with pytest.raises(StudyMismatch, match="no study named 's:confirm'"):
            read("s:confirm", url)  # a companion is not a study of its own
    optuna.create_study(study_name="bare", storage=open_storage(url))
    with pytest.raises(StudyMismatch, match="it has no spec"):
        stored_spec("bare", url)


def test_companions_are_listed_after_their_study_when_asked(url: str) -> None:
    _study(url, "a")
    _study(url, "a-2")  # sorts between "a" and "a:confirm" by name alone
    names = [s.name for s in study_summaries(url, companions=True)]
    assert names == ["a", "a:confirm", "a-2", "a-2:confirm"]
    companion = study_summaries(url, companions=True)[1]
    assert (companion.n_trials, companion.n_complete) == (1, 1)
    assert [s.name for s in study_summaries(url)] == ["a", "a-2"]


def test_read_companion_gives_the_study_with_its_companion(url: str) -> None:
    _study(url)
    record = read_companion("s:confirm", url)
    assert record.study_name == "s" and record == read_study("s", url)
    assert record.companion is not None and record.companion.study_name == "s:confirm"
    assert record.companion.trials[0].user_attrs["config_key"] == "trial-1"


def test_read_companion_says_why_there_is_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    optuna.create_study(study_name="bare", storage=open_storage(url))
    with pytest.raises(
        StudyMismatch,
        match=r"study 'bare' has no companion study 'bare:confirm' yet: it has run no SSI "
        r"baseline and no confirmation \(salsweep studies confirm bare\)",
    ):
        read_companion("bare:confirm", url)
    with pytest.raises(StudyMismatch, match=r"no study named 'x:confirm' in this storage"):
        read_companion("x:confirm", url)
    with pytest.raises(StudyMismatch, match="not the name of a companion study"):
        read_companion("bare", url)
