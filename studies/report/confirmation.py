"""The confirmation in words, tables and a plot: what the CLI prints, what the parent run
keeps (``confirmation.md``, ``confirmation.csv``, ``confirmation.png``) and what an export
says in its header."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies.confirmation import Confirmation, ConfirmedConfig, Estimate, Outcome
from studies.report.numbers import decimals_for, fixed, settings

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "TABLE_HEADER",
    "confirmation_csv",
    "confirmation_figure",
    "confirmation_markdown",
    "confirmation_metrics",
    "export_header_lines",
    "format_difference",
    "format_estimate",
    "format_params",
    "save_confirmation_plot",
    "table_rows",
    "verdict_sentence",
]

TABLE_HEADER = ("config", "params", "seeds", "mean ± 95% CI", "vs baseline ± 95% CI")


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


def format_params(params: dict[str, Any]) -> str:
    """``lambda_sg=0.3, num_scales=2`` (the last part of each dotted name)."""
    return settings(params)


def _seeds(c: ConfirmedConfig) -> str:
    e = c.estimate
    return f"{e.n} (+{e.n_excluded} NaN)" if e.n_excluded else str(e.n)


def table_rows(c: Confirmation) -> list[tuple[str, str, str, str, str]]:
    """One row per configuration, best mean first, under `TABLE_HEADER`."""
    rows = []
    for config in c.configs:
        label = config.label + (" (winner)" if config.key == c.verdict.winner else "")
        if config.is_baseline:
            diff = "-"
        elif config.vs_baseline is None:
            diff = "no baseline"
        else:
            diff = format_difference(config.vs_baseline, config.estimate.mean)
        rows.append(
            (
                label,
                format_params(config.params),
                _seeds(config),
                format_estimate(config.estimate),
                diff,
            )
        )
    return rows


def _against(
    other: str, d: Estimate | None, outcome: Outcome | None, scale: float | None = None
) -> str:
    if d is None or outcome is None:
        return ""
    shown = f"(difference {format_difference(d, scale)})"
    if outcome == "better":
        return f"beats {other} beyond noise {shown}"
    if outcome == "worse":
        return f"is beaten by {other} beyond noise {shown}"
    if outcome == "indistinguishable":
        return f"is not distinguishable from {other} {shown}"
    return f"cannot be compared with {other}: {d.n} shared seed{'s' if d.n != 1 else ''}"


def verdict_sentence(c: Confirmation) -> str:
    """One sentence: the winner, and whether it beats the baseline and the runner-up
    beyond noise, on how many seeds."""
    v = c.verdict
    winner = c.winner
    if winner is None:
        return "No confirmed configuration has a finite value yet."
    n = winner.estimate.n
    head = (
        f"The winner, {winner.label} ({c.metric} {format_estimate(winner.estimate)} "
        f"on {n} seed{'s' if n != 1 else ''})"
    )
    parts = []
    baseline = c.baseline
    scale = winner.estimate.mean
    if baseline is not None:
        parts.append(_against(f"the {baseline.label}", v.vs_baseline, v.vs_baseline_outcome, scale))
    runner = c.runner_up
    if runner is not None:
        parts.append(
            _against(
                f"the runner-up, {runner.label}", v.vs_runner_up, v.vs_runner_up_outcome, scale
            )
        )
    parts = [p for p in parts if p]
    if not parts:
        return head + ", has no baseline and no runner-up to be compared with."
    return f"{head}, {' and '.join(parts)}."


_PLAIN: dict[Outcome, str] = {
    "better": "the winner is better beyond noise",
    "worse": "the winner is WORSE beyond noise",
    "indistinguishable": "NOT distinguishable (the interval contains 0)",
    "unknown": "cannot tell (fewer than 2 shared seeds)",
}


def export_header_lines(c: Confirmation) -> list[str]:
    """Comment lines of an export of the confirmed winner: its mean, interval and seeds,
    the baseline's and the runner-up's, and a plain caution when the winner is not
    distinguishable from either."""
    winner = c.winner
    if winner is None:
        return ["# confirmed: no finite value among the confirmation's replicates"]
    v = c.verdict
    seeds = ", ".join(str(s) for s in winner.values)
    n, excluded = winner.estimate.n, winner.estimate.n_excluded
    counted = f"{n} training seed{'s' if n != 1 else ''}"
    if excluded:
        counted += f" ({seeds}; {excluded} without a finite value, left out)"
    else:
        counted += f" ({seeds})"
    lines = [
        f"# confirmed: {c.metric} = {format_estimate(winner.estimate)} (mean ± 95% CI, test "
        f"split) on {counted}"
    ]
    unclear, beaten = [], []
    others = [("baseline", c.baseline, v.vs_baseline, v.vs_baseline_outcome)]
    others.append(("runner-up", c.runner_up, v.vs_runner_up, v.vs_runner_up_outcome))
    for role, other, diff, outcome in others:
        if other is None or diff is None or outcome is None:
            continue
        name = (other.method or "ssi") if other.is_baseline else other.label
        lines.append(
            f"# {role}: {name}: {c.metric} = {format_estimate(other.estimate)} on "
            f"{other.estimate.n} seeds; winner - {role} = "
            f"{format_difference(diff, winner.estimate.mean)}: "
            f"{_PLAIN[outcome]}"
        )
        if outcome == "worse":
            beaten.append(f"the {role} ({name})")
        elif outcome != "better":
            unclear.append(f"the {role} ({name})")
    if beaten:
        lines.append(f"# caution: {' and '.join(beaten)} beats the winner beyond noise")
    if unclear:
        lines.append(
            f"# caution: the winner is not distinguishable from {' or '.join(unclear)} on "
            "these seeds; more seeds (salsweep studies confirm --seeds) may tell them apart"
        )
    lines.append(f"# verdict: {verdict_sentence(c)}")
    return lines


def confirmation_markdown(c: Confirmation) -> str:
    """The table and the verdict as Markdown."""
    lines = [
        f"# Confirmation of study {c.study_name}",
        "",
        f"{c.metric} ({c.direction}) on the test split, one training run per seed; "
        "95% t-intervals; differences are paired over shared seeds.",
        "",
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|" + "---|" * len(TABLE_HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(c)]
    lines += ["", verdict_sentence(c), ""]
    return "\n".join(lines)


def confirmation_csv(c: Confirmation) -> str:
    """One row per configuration, in numbers; ``seed_<k>`` columns hold the replicates."""
    seeds = sorted({s for config in c.configs for s in config.values})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "config",
            "params",
            "winner",
            "n",
            "n_nan",
            "mean",
            "sd",
            "ci_low",
            "ci_high",
            "vs_baseline_mean",
            "vs_baseline_ci_low",
            "vs_baseline_ci_high",
            "vs_baseline_n",
            *(f"seed_{s}" for s in seeds),
        ]
    )
    for config in c.configs:
        e, d = config.estimate, config.vs_baseline
        writer.writerow(
            [
                config.key,
                json.dumps(config.params, sort_keys=True),
                config.key == c.verdict.winner,
                e.n,
                e.n_excluded,
                e.mean,
                e.sd,
                e.low,
                e.high,
                *(["", "", "", ""] if d is None else [d.mean, d.low, d.high, d.n]),
                *(config.values.get(s, "") for s in seeds),
            ]
        )
    return buffer.getvalue()


def confirmation_metrics(c: Confirmation) -> dict[str, float]:
    """``confirm/winner_mean``, ``_ci_low``, ``_ci_high`` and ``confirm/baseline_mean`` (NaN
    where undefined; the tracker logs NaN as NaN)."""
    out: dict[str, float] = {}
    winner, baseline = c.winner, c.baseline
    if winner is not None:
        out["confirm/winner_mean"] = winner.estimate.mean
        out["confirm/winner_ci_low"] = winner.estimate.low
        out["confirm/winner_ci_high"] = winner.estimate.high
    if baseline is not None:
        out["confirm/baseline_mean"] = baseline.estimate.mean
    return out


def save_confirmation_plot(c: Confirmation, path: Path) -> Path:
    """Each configuration's per-seed values as points, its mean and 95% interval as a bar;
    best mean on the left. Returns ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    from studies.report.plots import save_figure

    figure = confirmation_figure(c)
    try:
        return save_figure(figure, path)
    finally:
        plt.close(figure)


def confirmation_figure(c: Confirmation) -> Figure:
    """The figure `save_confirmation_plot` saves (the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    # The default style whatever was drawn before (Optuna's plots switch to ggplot).
    with plt.style.context("default"):
        figure, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(c.configs) + 1.5), 4.0))
        try:
            _draw_confirmation(c, ax)
            figure.tight_layout()
        except BaseException:
            plt.close(figure)
            raise
    return figure


def _draw_confirmation(c: Confirmation, ax: Axes) -> None:
    for x, config in enumerate(c.configs):
        values = [v for v in config.values.values() if math.isfinite(v)]
        offsets = [0.08 * (i - (len(values) - 1) / 2) for i in range(len(values))]
        colour = "tab:grey" if config.is_baseline else "tab:blue"
        if config.key == c.verdict.winner:
            colour = "tab:green"
        ax.scatter([x + o for o in offsets], values, s=18, color=colour, alpha=0.6, zorder=2)
        e = config.estimate
        if e.n:
            err = e.half_width if e.has_interval else 0.0
            ax.errorbar(
                [x + 0.3],
                [e.mean],
                yerr=[[err], [err]],
                fmt="o",
                color=colour,
                capsize=5,
                zorder=3,
            )
    ax.set_xticks(range(len(c.configs)))
    ax.set_xticklabels([config.label for config in c.configs], rotation=20, ha="right")
    better = "lower" if c.direction == "minimize" else "higher"
    ax.set_ylabel(f"{c.metric} ({better} is better)")
    ax.set_title(f"study {c.study_name}\nper-seed values (points), mean and 95% CI (bar)")
    ax.grid(axis="y", alpha=0.3)
