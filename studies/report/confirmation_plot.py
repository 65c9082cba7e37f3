"""The confirmation's race as a plot (``confirmation.png`` on the parent run): each
contender's per-seed validation and test scores, their means and 95% intervals, its
divergence rate under its name."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from studies.confirmation import Confirmation
from studies.report.confirmation import divergence

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["confirmation_figure", "save_confirmation_plot"]


def save_confirmation_plot(c: Confirmation, path: Path) -> Path:
    """Each contender's per-seed validation and test scores as points, their means and 95%
    intervals as bars; the winner first. Returns ``path`` (PNG)."""
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
        figure, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(c.configs) + 2.0), 4.2))
        try:
            _draw_confirmation(c, ax)
            figure.tight_layout()
        except BaseException:
            plt.close(figure)
            raise
    return figure


def _draw_confirmation(c: Confirmation, ax: Axes) -> None:
    for x, config in enumerate(c.configs):
        colour = "tab:grey" if config.is_baseline else "tab:blue"
        if config.key == c.state.winner:
            colour = "tab:green"
        for split, values, e, shift, filled in (
            ("validation", config.validation, config.validation_estimate, -0.15, True),
            ("test", config.test, config.test_estimate, 0.15, False),
        ):
            finite = [v for v in values.values() if math.isfinite(v)]
            offsets = [0.04 * (i - (len(finite) - 1) / 2) for i in range(len(finite))]
            ax.scatter(
                [x + shift + o for o in offsets],
                finite,
                s=16,
                color=colour if filled else "none",
                edgecolors=colour,
                alpha=0.7,
                zorder=2,
                label=split if x == 0 else None,
            )
            if e.n:
                err = e.half_width if e.has_interval else 0.0
                ax.errorbar(
                    [x + shift + 0.09],
                    [e.mean],
                    yerr=[[err], [err]],
                    fmt="o" if filled else "s",
                    mfc=colour if filled else "white",
                    color=colour,
                    capsize=4,
                    zorder=3,
                )
    ax.set_xticks(range(len(c.configs)))
    ax.set_xticklabels(
        [f"{config.label}\n{divergence(config)} diverged" for config in c.configs],
        rotation=15,
        ha="right",
    )
    better = "lower" if c.direction == "minimize" else "higher"
    ax.set_ylabel(f"{c.metric} / {c.test_metric} ({better} is better)")
    ax.set_title(
        f"study {c.study_name}: race chosen on validation (filled), test reports (open)\n"
        "per-seed scores (points), mean and 95% CI (bars)"
    )
    ax.legend(loc="best", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
