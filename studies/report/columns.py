"""The confirmation where people look, the MLflow runs table: the verdict's figures as tags
and metrics of the parent run (columns of the sweep's view, studies.tracking.client), and
the confirmation as the parent run's description.

Each figure is written as `salsweep studies show` prints it (studies.report.confirmation's
``format_estimate`` and ``divergence``), so the table and the terminal read the same: the
validation mean (the race chose on it), the test mean (reported only), the seeds and the
divergence rate.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from studies.confirmation import Confirmation, ConfirmedConfig
from studies.report.confirmation import (
    confirmation_csv,
    confirmation_markdown,
    confirmation_metrics,
    divergence,
    format_estimate,
)
from studies.report.confirmation_plot import save_confirmation_plot
from studies.tracking.layout import BASELINE_TAG, NOTE_TAG, RUNNER_UP_TAG, WINNER_TAG
from studies.urls import run_page_url

if TYPE_CHECKING:
    from studies.tracking.runlog import RunLog

__all__ = [
    "MAX_TAG_CHARS",
    "log_confirmation",
    "replicate_links",
    "verdict_figure",
    "verdict_metrics",
    "verdict_tags",
]

# MLflow's limit on a tag's value (mlflow.utils.validation.MAX_TAG_VAL_LENGTH).
MAX_TAG_CHARS = 8000


def _roles(c: Confirmation) -> list[tuple[str, str, ConfirmedConfig]]:
    """(tag, metric prefix, configuration) of the winner, runner-up and baseline present."""
    roles = [
        (WINNER_TAG, "confirm/winner", c.winner),
        (RUNNER_UP_TAG, "confirm/runner_up", c.runner_up),
        (BASELINE_TAG, "confirm/baseline", c.baseline),
    ]
    return [(tag, prefix, config) for tag, prefix, config in roles if config is not None]


def verdict_figure(config: ConfirmedConfig) -> str:
    """``trial 3: 0.1406 ± 0.0040 [0.1366, 0.1446] on validation, test 0.1502 ± 0.0051
    [0.1451, 0.1553], 5 seeds, diverged 0 of 5 (0%)``."""
    seeds = f"{config.seeds} seed{'s' if config.seeds != 1 else ''}"
    return (
        f"{config.label}: {format_estimate(config.validation_estimate)} on validation, test "
        f"{format_estimate(config.test_estimate)}, {seeds}, diverged {divergence(config)}"
    )


def replicate_links(c: Confirmation, run_page: Callable[[str], str]) -> str:
    """Markdown: each configuration's replicate runs, linked (``run_page(run_id)``: the
    run's address, studies.urls.run_page_url); empty without a run id."""
    lines = [
        f"- {config.label}: "
        + ", ".join(f"[run {i + 1}]({run_page(run_id)})" for i, run_id in enumerate(ids))
        for config in c.configs
        if (ids := config.mlflow_run_ids)
    ]
    return "\n".join(["## Replicate runs (MLflow)", "", *lines, ""]) if lines else ""


def verdict_tags(c: Confirmation, run_page: Callable[[str], str] | None = None) -> dict[str, str]:
    """The parent run's tags: ``confirm.winner``, ``confirm.runner_up``,
    ``confirm.baseline`` (:func:`verdict_figure`; those the confirmation has) and its
    description (``mlflow.note.content``): the confirmation's table and verdict, and with
    ``run_page`` the replicates' links (:func:`replicate_links`)."""
    tags = {tag: verdict_figure(config) for tag, _, config in _roles(c)}
    note = confirmation_markdown(c)
    if run_page is not None:
        note += "\n" + replicate_links(c, run_page)
    if len(note) > MAX_TAG_CHARS:
        note = note[: MAX_TAG_CHARS - 1] + "…"
    tags[NOTE_TAG] = note
    return tags


def verdict_metrics(c: Confirmation) -> dict[str, float]:
    """``confirm/<role>_mean``, ``_ci_low``, ``_ci_high`` (validation), ``_test_mean``,
    ``_seeds`` and ``_diverged_rate`` of the winner, runner-up and baseline (NaN where
    undefined), for charts and sorting; a superset of studies.report.confirmation's
    ``confirmation_metrics``."""
    out: dict[str, float] = {}
    for _, prefix, config in _roles(c):
        e = config.validation_estimate
        out[f"{prefix}_mean"] = e.mean if e.n else math.nan
        out[f"{prefix}_ci_low"] = e.low
        out[f"{prefix}_ci_high"] = e.high
        out[f"{prefix}_test_mean"] = config.test_estimate.mean
        out[f"{prefix}_seeds"] = float(config.seeds)
        out[f"{prefix}_diverged_rate"] = config.contender.divergence_rate
    return out


def log_confirmation(
    parent: RunLog, c: Confirmation, tracking_uri: str, experiment_id: str | None
) -> None:
    """The confirmation on the sweep's parent run: ``confirmation.md`` (with the
    replicates' links when ``experiment_id`` is known), ``confirmation.csv``,
    ``confirmation.png``, the verdict's metrics and tags (:func:`verdict_metrics`,
    :func:`verdict_tags`)."""

    def run_page(run_id: str) -> str:
        assert experiment_id is not None
        return run_page_url(tracking_uri, experiment_id, run_id)

    links = None if experiment_id is None else run_page
    with tempfile.TemporaryDirectory(prefix="salsweep-confirm-") as tmp:
        folder = Path(tmp)
        markdown = confirmation_markdown(c)
        if links is not None:
            markdown += "\n" + replicate_links(c, links)
        (folder / "confirmation.md").write_text(markdown)
        (folder / "confirmation.csv").write_text(confirmation_csv(c))
        save_confirmation_plot(c, folder / "confirmation.png")
        parent.log_artifacts(folder, None)
    parent.log_epoch(0, {**confirmation_metrics(c), **verdict_metrics(c)})
    parent.log_tags(verdict_tags(c, links))
