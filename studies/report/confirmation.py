"""The confirmation's race in words and tables: what the CLI prints, what the parent run
keeps (``confirmation.md``, ``confirmation.csv``; its plot: studies.report.confirmation_plot)
and what an export says in its header.

Everywhere the same: the winner was chosen on validation, the test split only reports;
each contender's mean has its divergence rate beside it; the sentences
(studies.confirmation.words) name the test, the seeds, the Holm adjustment, the intervals
and the split.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from studies.confirmation import Confirmation, ConfirmedConfig, Estimate
from studies.confirmation.sequential import Comparison, Difference
from studies.report.numbers import decimals_for, fixed, settings

__all__ = [
    "TABLE_HEADER",
    "confirmation_csv",
    "confirmation_markdown",
    "confirmation_metrics",
    "divergence",
    "export_header_lines",
    "format_difference",
    "format_estimate",
    "format_params",
    "format_race_difference",
    "outcome_words",
    "table_rows",
    "table_title",
    "terminal_table",
    "verdict_lines",
]

TABLE_HEADER = (
    "config",
    "params",
    "seeds",
    "diverged",
    "validation: mean ± 95% CI",
    "test: mean ± 95% CI",
    "winner - this: validation",
    "winner - this: test",
    "outcome",
)


def _interval(e: Estimate, scale: float | None = None) -> str:
    """``0.2345 ± 0.0123 [0.2222, 0.2468]``: every number at the decimals that give the
    largest 4-5 significant digits (`decimals_for`), so that they line up. ``scale``: the
    values a difference compares (e.g. a configuration's mean), whose precision it is shown
    at, or at 3 significant digits of its own when it is smaller than that shows."""
    own = decimals_for(e.mean, e.half_width, e.low, e.high)
    d = own if scale is None else max(decimals_for(scale), own - 1)
    if not e.has_interval:
        return f"{fixed(e.mean, d)} ± n/a"
    return f"{fixed(e.mean, d)} ± {fixed(e.half_width, d)} [{fixed(e.low, d)}, {fixed(e.high, d)}]"


def format_estimate(e: Estimate) -> str:
    """``0.2345 ± 0.0123 [0.2222, 0.2468]``; ``0.2345 ± n/a`` with one value; 4 significant
    digits below 1, 5 from 1 on (``12.345 ± 0.210 [12.135, 12.555]``)."""
    if e.n == 0:
        return "n/a"
    return _interval(e)


def format_difference(d: Estimate, scale: float | None = None) -> str:
    """``-0.0712 ± 0.0150 [-0.0862, -0.0562], 3 pairs``; ``scale``: the values compared
    (e.g. a configuration's mean), whose precision the difference is shown at."""
    if d.n == 0:
        return "no shared seed"
    sign = "+" if d.mean >= 0 else ""
    pairs = f"{d.n} pair{'s' if d.n != 1 else ''}"
    return f"{sign}{_interval(d, scale)}, {pairs}"


def format_race_difference(d: Difference, scale: float | None = None) -> str:
    """The race's ``winner - other`` with its simultaneous interval: ``-0.0190 [-0.0302,
    -0.0078], 4 pairs`` (``-0.0190, 1 pair`` without an interval), at the precision of
    ``scale`` (the values compared) or 3 significant digits of its own when smaller."""
    if d.n == 0:
        return "no shared seed"
    own = decimals_for(d.mean, d.low, d.high)
    places = own if scale is None else max(decimals_for(scale), own - 1)
    sign = "+" if d.mean >= 0 else ""
    pairs = f"{d.n} pair{'s' if d.n != 1 else ''}"
    if not (math.isfinite(d.low) and math.isfinite(d.high)):
        return f"{sign}{fixed(d.mean, places)}, {pairs}"
    return (
        f"{sign}{fixed(d.mean, places)} [{fixed(d.low, places)}, {fixed(d.high, places)}], {pairs}"
    )


def format_params(params: dict[str, Any]) -> str:
    """``lambda_sg=0.3, num_scales=2`` (the last part of each dotted name)."""
    return settings(params)


def divergence(config: ConfirmedConfig) -> str:
    """``1 of 6 (17%)``; ``0 of 6 (0%)``; ``no seed``."""
    seeds, diverged = config.seeds, config.diverged
    if not seeds:
        return "no seed"
    return f"{diverged} of {seeds} ({100.0 * diverged / seeds:.0f}%)"


def outcome_words(c: Comparison | None) -> str:
    """The winner against this contender, in a word or two: ``winner``, ``better`` (the
    winner is), ``WORSE``, ``equivalent``, ``unresolved (futile)`` ..."""
    if c is None:
        return "winner"
    if c.outcome == "better":
        return "winner better"
    if c.outcome == "worse":
        return "winner WORSE"
    if c.outcome == "equivalent":
        return "equivalent"
    return f"unresolved ({c.reason})" if c.reason else "unresolved"


def _seeds(config: ConfirmedConfig) -> str:
    return f"{config.seeds}, racing" if config.contender.in_race else str(config.seeds)


def table_title(c: Confirmation) -> str:
    """What the table is: the race, the split that chose and the one that reports."""
    level = f"{100.0 * (1.0 - c.state.design.alpha):g}%"
    return (
        f"confirmation: sequential race on {c.metric} (validation chose; {c.test_metric} "
        f"on the test split reports); differences paired over shared seeds, simultaneous "
        f"{level} intervals"
    )


def table_rows(c: Confirmation) -> list[tuple[str, ...]]:
    """One row per contender, the winner first, under `TABLE_HEADER`."""
    rows: list[tuple[str, ...]] = []
    winner = c.winner
    scale = winner.validation_estimate.mean if winner is not None else None
    test_scale = winner.test_estimate.mean if winner is not None else None
    for config in c.configs:
        is_winner = winner is not None and config.key == winner.key
        comparison = config.comparison
        rows.append(
            (
                config.label + (" (winner)" if is_winner else ""),
                format_params(config.params),
                _seeds(config),
                divergence(config),
                format_estimate(config.validation_estimate),
                format_estimate(config.test_estimate),
                "-" if comparison is None else format_race_difference(comparison.validation, scale),
                "-" if comparison is None else format_race_difference(comparison.test, test_scale),
                outcome_words(comparison) if winner is not None else "-",
            )
        )
    return rows


# The columns a terminal shows (160 characters wide when not a terminal): the differences
# with their intervals are in the sentences printed under the table, the params in the
# trials table above it.
_TERMINAL = (0, 2, 3, 4, 5, 8)


def terminal_table(c: Confirmation) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The header and rows `salsweep studies show` prints: config, seeds, diverged, the
    validation and test means with their intervals, and the outcome."""
    header = tuple(TABLE_HEADER[i] for i in _TERMINAL)
    return header, [tuple(row[i] for i in _TERMINAL) for row in table_rows(c)]


def verdict_lines(c: Confirmation) -> list[str]:
    """The verdict, one sentence a line (studies.confirmation.words.race_sentences)."""
    return c.sentences()


def _seed_span(values: list[int]) -> str:
    if not values:
        return "none"
    if values == list(range(values[0], values[0] + len(values))) and len(values) > 2:
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)


def export_header_lines(c: Confirmation) -> list[str]:
    """Comment lines of an export of the race's winner: how it was chosen, its validation
    and test figures with the seeds and the divergence rate, the baseline's and the
    runner-up's comparisons, a plain caution where the race did not establish the winner
    better, and the verdict's sentences."""
    winner = c.winner
    if winner is None:
        return [
            "# confirmed: no winner yet - the race has not had its first look "
            f"({c.state.design.n0} seeds per contender; salsweep studies confirm "
            f"{c.study_name} goes on)"
        ]
    state = c.state
    indices = sorted(winner.validation)
    seeds = f"training seeds {_seed_span([winner.training_seeds[i] for i in indices])}"
    if winner.data_seeds:
        seeds += f", data seeds {_seed_span([winner.data_seeds[i] for i in indices])}"
    status = "decided" if state.done else "still running"
    lines = [
        f"# confirmed: the winner of a sequential paired t race on {c.metric}, chosen on "
        f"validation; the test split only reports (race {status} after {state.looks} seeds)",
        f"# winner: {winner.label}: {c.metric} = {format_estimate(winner.validation_estimate)} "
        f"(mean ± 95% CI, validation) over {winner.seeds} seeds ({seeds}; paired with every "
        f"contender), diverged {divergence(winner)}; {c.test_metric} = "
        f"{format_estimate(winner.test_estimate)} (test split, reported only)",
    ]
    cautions = []
    for role, other in (("baseline", c.baseline), ("runner-up", c.runner_up)):
        if other is None or other.comparison is None:
            continue
        comparison = other.comparison
        name = (other.method or "ssi") if other.is_baseline else other.label
        scale = winner.validation_estimate.mean
        lines.append(
            f"# {role}: {name}: {c.metric} = {format_estimate(other.validation_estimate)} over "
            f"{other.seeds} seeds, diverged {divergence(other)}; winner - {role} on "
            f"validation {format_race_difference(comparison.validation, scale)} (simultaneous "
            f"{100.0 * (1.0 - state.design.alpha):g}%): {outcome_words(comparison)}; on test "
            f"{format_race_difference(comparison.test, winner.test_estimate.mean)}"
        )
        if comparison.outcome == "worse":
            cautions.append(f"the {role} ({name}) is established better than the winner")
        elif comparison.outcome == "unresolved":
            cautions.append(
                f"the race did not resolve the winner against the {role} ({name}): "
                f"{comparison.reason or 'unresolved'}"
            )
    if not state.done:
        cautions.append(
            f"the race is still running: salsweep studies confirm {c.study_name} goes on"
        )
    lines += [f"# caution: {caution}" for caution in cautions]
    lines += [f"# verdict: {sentence}" for sentence in c.sentences()]
    return lines


def confirmation_markdown(c: Confirmation) -> str:
    """The table and the verdict as Markdown."""
    design = c.state.design
    lines = [
        f"# Confirmation of study {c.study_name}",
        "",
        f"A sequential paired t race on {c.metric} ({c.direction}): the winner chosen on "
        f"validation, {c.test_metric} on the test split reported only. Replicate s of every "
        f"contender shares its training seed and its scenes (data seed). Per contender: "
        f"mean ± 95% t-interval of its finite scores, with its diverged replicates beside "
        f"(the race counts each as the worst score of its seed plus {design.delta:g}); "
        f"winner - this: paired over shared seeds, simultaneous "
        f"{100.0 * (1.0 - design.alpha):g}% interval.",
        "",
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|" + "---|" * len(TABLE_HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(c)]
    lines += ["", *(f"- {sentence}" for sentence in c.sentences()), ""]
    return "\n".join(lines)


def confirmation_csv(c: Confirmation) -> str:
    """One row per contender, in numbers; ``val_<i>`` and ``test_<i>`` columns hold the
    replicates of seed index i."""
    indices = sorted({i for config in c.configs for i in config.validation})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "config",
            "params",
            "winner",
            "seeds",
            "diverged",
            "val_mean",
            "val_sd",
            "val_ci_low",
            "val_ci_high",
            "test_mean",
            "test_sd",
            "test_ci_low",
            "test_ci_high",
            "outcome",
            "reason",
            "vs_winner_n",
            "vs_winner_val_mean",
            "vs_winner_val_low",
            "vs_winner_val_high",
            "vs_winner_test_mean",
            "vs_winner_test_low",
            "vs_winner_test_high",
            *(f"val_{i}" for i in indices),
            *(f"test_{i}" for i in indices),
        ]
    )
    for config in c.configs:
        v, t, comparison = config.validation_estimate, config.test_estimate, config.comparison
        if comparison is None:
            against: list[Any] = ["", "", "", "", "", "", "", "", ""]
        else:
            val, test = comparison.validation, comparison.test
            against = [
                comparison.outcome,
                comparison.reason or "",
                val.n,
                val.mean,
                val.low,
                val.high,
                test.mean,
                test.low,
                test.high,
            ]
        writer.writerow(
            [
                config.key,
                json.dumps(config.params, sort_keys=True),
                config.key == c.state.winner,
                config.seeds,
                config.diverged,
                v.mean,
                v.sd,
                v.low,
                v.high,
                t.mean,
                t.sd,
                t.low,
                t.high,
                *against,
                *(config.validation.get(i, "") for i in indices),
                *(config.test.get(i, "") for i in indices),
            ]
        )
    return buffer.getvalue()


def confirmation_metrics(c: Confirmation) -> dict[str, float]:
    """``confirm/winner_mean``, ``_ci_low``, ``_ci_high`` (validation), ``_test_mean``,
    ``_diverged_rate``, ``confirm/baseline_mean`` and ``_test_mean``, and the race's
    ``confirm/looks``, ``confirm/runs`` and ``confirm/done`` (NaN where undefined; the
    tracker logs NaN as NaN)."""
    out: dict[str, float] = {
        "confirm/looks": float(c.state.looks),
        "confirm/runs": float(c.state.runs),
        "confirm/done": 1.0 if c.state.done else 0.0,
    }
    winner, baseline = c.winner, c.baseline
    if winner is not None:
        out["confirm/winner_mean"] = winner.validation_estimate.mean
        out["confirm/winner_ci_low"] = winner.validation_estimate.low
        out["confirm/winner_ci_high"] = winner.validation_estimate.high
        out["confirm/winner_test_mean"] = winner.test_estimate.mean
        out["confirm/winner_diverged_rate"] = winner.contender.divergence_rate
    if baseline is not None:
        out["confirm/baseline_mean"] = baseline.validation_estimate.mean
        out["confirm/baseline_test_mean"] = baseline.test_estimate.mean
    return out
