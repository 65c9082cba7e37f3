"""studies.report.columns: the verdict's figures as the parent run's tags and metrics, its
description, and what `log_confirmation` puts on the parent run. The figures shown in a
real browser are checked in tests/studies/test_ui_browser.py."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from studies.confirmation import Confirmation
from studies.confirmation.confirmed import load_confirmation
from studies.report.columns import (
    log_confirmation,
    replicate_links,
    verdict_figure,
    verdict_metrics,
    verdict_tags,
)
from studies.report.confirmation import confirmation_markdown, table_rows
from studies.store import as_record
from studies.urls import run_page_url
from tests.studies.confirm_helpers import add_replicate, set_race

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _confirmation(tmp_path: Path) -> Confirmation:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="v")
    for lam, value in [(0.1, 0.3), (0.5, 0.25), (1.0, 0.28)]:
        study.add_trial(
            create_trial(
                value=value,
                params={"loss.lambda_sg": lam},
                distributions={"loss.lambda_sg": FloatDistribution(0.05, 2.0)},
            )
        )
    set_race(study, ["trial-1", "trial-2"], initial_seeds=3, max_seeds=3)
    for seed, (a, b, base) in enumerate(
        [(0.20, 0.26, 0.40), (0.22, 0.24, 0.41), (0.21, math.nan, 0.39)], start=1
    ):
        add_replicate(study, "trial-1", seed, a, test=a + 0.05, params={"loss.lambda_sg": 0.5})
        add_replicate(study, "trial-2", seed, b, test=b + 0.05, params={"loss.lambda_sg": 1.0})
        add_replicate(study, "baseline", seed, base, test=base + 0.05)
    c = load_confirmation(as_record(study))
    assert c is not None
    return c


def test_the_figures_read_as_studies_show_prints_them(tmp_path: Path) -> None:
    c = _confirmation(tmp_path)
    rows = {row[0].removesuffix(" (winner)"): row for row in table_rows(c)}
    tags = verdict_tags(c)
    for tag, label in [
        ("confirm.winner", "trial 1"),
        ("confirm.runner_up", "trial 2"),
        ("confirm.baseline", "baseline (ssi)"),
    ]:
        _, _, seeds, diverged, validation, test, *_ = rows[label]
        assert tags[tag] == (
            f"{label}: {validation} on validation, test {test}, {seeds} seeds, diverged {diverged}"
        )
    assert tags["confirm.winner"] == (
        "trial 1: 0.2100 ± 0.0248 [0.1852, 0.2348] on validation, test 0.2600 ± 0.0248 "
        "[0.2352, 0.2848], 3 seeds, diverged 0 of 3 (0%)"
    )
    assert tags["confirm.runner_up"].endswith(", 3 seeds, diverged 1 of 3 (33%)")
    assert verdict_figure(c.config("baseline")).startswith("baseline (ssi): 0.4000 ± ")
    assert tags["mlflow.note.content"] == confirmation_markdown(c)


def test_the_figures_as_metrics(tmp_path: Path) -> None:
    metrics = verdict_metrics(_confirmation(tmp_path))
    assert metrics["confirm/winner_mean"] == pytest.approx(0.21)
    assert metrics["confirm/winner_ci_low"] == pytest.approx(0.21 - 0.0248414, abs=1e-6)
    assert metrics["confirm/winner_seeds"] == 3.0
    assert metrics["confirm/winner_test_mean"] == pytest.approx(0.26)
    assert metrics["confirm/runner_up_mean"] == pytest.approx(0.25)  # of the finite scores
    assert metrics["confirm/runner_up_seeds"] == 3.0
    assert metrics["confirm/runner_up_diverged_rate"] == pytest.approx(1 / 3)
    assert metrics["confirm/baseline_mean"] == pytest.approx(0.40)
    assert set(metrics) == {
        f"confirm/{role}_{what}"
        for role in ("winner", "runner_up", "baseline")
        for what in ("mean", "ci_low", "ci_high", "test_mean", "seeds", "diverged_rate")
    }


def test_the_replicates_are_linked_in_the_training_layout(tmp_path: Path) -> None:
    c = _confirmation(tmp_path)

    def page(run_id: str) -> str:
        return run_page_url("http://u:pw@h:5000", "7", run_id)

    links = replicate_links(c, page)
    assert links.startswith("## Replicate runs (MLflow)\n")
    assert (
        "- trial 1: [run 1](http://u:***@h:5000/#/experiments/7/runs/trial-1-1-confirmation"
        "?workflowType=machine_learning), [run 2]("
    ) in links
    assert links.count("workflowType=machine_learning") == 9
    assert verdict_tags(c, page)["mlflow.note.content"].endswith(links)


class _Parent:
    """Records what is logged on the parent run."""

    def __init__(self) -> None:
        self.artifacts: dict[str, str] = {}
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = {}

    def log_artifacts(self, directory: Path, artifact_path: str | None) -> None:
        assert artifact_path is None
        self.artifacts = {
            p.name: p.read_bytes().decode("utf-8", "replace") for p in directory.iterdir()
        }

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        assert epoch == 0
        self.metrics.update(metrics)

    def log_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)


def test_log_confirmation_on_the_parent_run(tmp_path: Path) -> None:
    c = _confirmation(tmp_path)
    parent = _Parent()
    log_confirmation(parent, c, "http://127.0.0.1:5000", "3")  # type: ignore[arg-type]
    assert set(parent.artifacts) == {"confirmation.md", "confirmation.csv", "confirmation.png"}
    md = parent.artifacts["confirmation.md"]
    assert md.startswith(confirmation_markdown(c))
    assert "/#/experiments/3/runs/baseline-1-confirmation?workflowType=machine_learning" in md
    assert parent.metrics["confirm/winner_mean"] == pytest.approx(0.21)
    assert parent.tags["confirm.winner"].startswith("trial 1: 0.2100")
    assert parent.tags["mlflow.note.content"] == md
    unknown: Any = _Parent()
    log_confirmation(unknown, c, "http://127.0.0.1:5000", None)  # no experiment: no links
    assert "workflowType" not in unknown.artifacts["confirmation.md"]
