"""The report's figures are readable: contrast in the parallel coordinates, integer ticks
on integer settings, a caveat on importances from few trials, and no text cut off in any
saved PNG (the confirmation plot's title was)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import optuna
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.image import imread

from studies.confirmation import load_confirmation
from studies.report.confirmation_plot import confirmation_figure, save_confirmation_plot
from studies.report.plots import DPI, FEW_TRIALS, save_figure, study_figures
from studies.store import as_record
from tests.studies.confirm_helpers import add_replicate, add_search_baseline, set_race
from tests.studies.report.test_trials import add, p

optuna.logging.set_verbosity(optuna.logging.WARNING)

PARAMS = [(0.1, 1, True), (0.3, 2, False), (0.8, 3, True), (1.2, 4, False), (1.9, 2, True)]


def study_with(tmp_path: Path, n: int, direction: str = "minimize") -> optuna.Study:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db", study_name="r", direction=direction
    )
    study.set_user_attr("objective_metric", "val/abs_rel_align")
    for i in range(n):
        lam, scales, inv = PARAMS[i % len(PARAMS)]
        add(study, p(lam * (1 - i / 100), scales, inv), 0.2 + 0.05 * (i % 5) + 0.01 * scales)
    return study


def _luminance(colour: Any) -> float:
    channels = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in colour]
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def contrast(a: Any, b: Any) -> float:
    """WCAG contrast ratio of two colours (1 to 21; graphics need 3)."""
    high, low = sorted((_luminance(to_rgb(a)), _luminance(to_rgb(b))), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _texts_inside(figure: Figure, path: Path) -> None:
    """Every visible text of ``figure`` lies within the area the PNG at ``path`` holds: the
    figure's tight bounding box (what `save_figure` saves), whose size the PNG has."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    box = figure.get_tightbbox(renderer)  # inches
    height, width = imread(path).shape[:2]
    pad = 2 * 0.15 * DPI
    assert width == pytest.approx(box.width * DPI + pad, abs=2)
    assert height == pytest.approx(box.height * DPI + pad, abs=2)
    hidden = set()  # tick labels of ticks outside the axis' view are not drawn
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    hidden |= {id(tick.label1), id(tick.label2)}
    texts = [
        t
        for t in figure.findobj(matplotlib.text.Text)
        if t.get_visible() and t.get_text() and id(t) not in hidden
    ]
    assert texts
    for text in texts:
        extent = text.get_window_extent(renderer).transformed(figure.dpi_scale_trans.inverted())
        assert extent.x0 >= box.x0 - 0.01 and extent.x1 <= box.x1 + 0.01, text.get_text()
        assert extent.y0 >= box.y0 - 0.01 and extent.y1 <= box.y1 + 0.01, text.get_text()


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_parallel_coordinates_worst_trial_stands_out(tmp_path: Path, direction: str) -> None:
    study = study_with(tmp_path, 5, direction)
    figures = study_figures(as_record(study))
    try:
        ax = figures["parallel_coordinate"].axes[0]
        lines = ax.collections[0]
        values = list(lines.get_array())
        background = ax.get_facecolor()
        worst = max(values) if direction == "minimize" else min(values)
        best = min(values) if direction == "minimize" else max(values)
        worst_colour = lines.to_rgba(worst)
        assert contrast(worst_colour, background) >= 3.0
        # The best trial is the darkest line.
        assert _luminance(lines.to_rgba(best)[:3]) < _luminance(worst_colour[:3])
        assert "5 complete trials" in ax.get_title()
    finally:
        for figure in figures.values():
            plt.close(figure)


def test_integer_settings_get_integer_ticks(tmp_path: Path) -> None:
    figures = study_with(tmp_path, 5)
    drawn = study_figures(as_record(figures))
    try:
        figure = drawn["parallel_coordinate"]
        figure.canvas.draw()
        ax = figure.axes[0]
        labels = [label.get_text() for label in ax.get_xticklabels()]
        assert labels == [
            "val/abs_rel_align",
            "loss.lambda_sg",
            "loss.num_scales",
            "loss.use_inv_depth",
        ]
        twins = [a for a in figure.axes if a is not ax and a.get_shared_x_axes().joined(a, ax)]
        scales = twins[labels.index("loss.num_scales") - 1]
        low, high = scales.get_ylim()
        ticks = [t for t in scales.get_yticks() if low - 1e-9 <= t <= high + 1e-9]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert {float(t) for t in ticks} == {1.0, 2.0, 3.0, 4.0}
        # A log axis reads as plain numbers: no overlapping "2x10^-1" minor labels.
        lam = twins[labels.index("loss.lambda_sg") - 1]
        assert lam.get_yscale() == "log"
        shown = [t.get_text() for t in lam.get_yticklabels() if t.get_text()]
        assert shown and all("10^" not in t and "times" not in t for t in shown), shown
        assert not [t for t in lam.get_yticklabels(minor=True) if t.get_text()]
    finally:
        for figure in drawn.values():
            plt.close(figure)


@pytest.mark.parametrize(("n", "caveat"), [(5, True), (FEW_TRIALS, False)])
def test_importances_from_few_trials_say_so(tmp_path: Path, n: int, caveat: bool) -> None:
    figures = study_figures(as_record(study_with(tmp_path, n)))
    try:
        title = figures["param_importances"].axes[0].get_title(loc="left")
        assert title.startswith("Hyperparameter Importances")
        assert (f"from only {n} complete trials (fewer than 10)" in title) == caveat
    finally:
        for figure in figures.values():
            plt.close(figure)


def test_saved_figures_hold_all_their_text(tmp_path: Path) -> None:
    study = study_with(tmp_path, 5)
    add_search_baseline(study, 0.5)
    set_race(study, ["trial-0"], initial_seeds=3, max_seeds=3)
    for seed in (1, 2, 3):
        value = 0.2 + seed / 100
        add_replicate(study, "trial-0", seed, value, test=value + 0.01, params=p(0.1, 1, True))
        add_replicate(study, "baseline", seed, value + 0.1, test=value + 0.11)
    record = as_record(study)
    figures = study_figures(record)
    confirmation = load_confirmation(record)
    assert confirmation is not None
    figures["confirmation"] = confirmation_figure(confirmation)
    assert "study r" in figures["confirmation"].axes[0].get_title()
    try:
        for name, figure in figures.items():
            _texts_inside(figure, save_figure(figure, tmp_path / f"{name}.png"))
    finally:
        for figure in figures.values():
            plt.close(figure)
    png = save_confirmation_plot(confirmation, tmp_path / "out" / "confirmation.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_style_of_optunas_plots_stays_with_them(tmp_path: Path) -> None:
    """Optuna switches matplotlib's global style to ggplot; the report keeps it to its own
    figures (the confirmation plot was grey because the study plots ran first)."""
    before = dict(matplotlib.rcParams)
    for figure in study_figures(as_record(study_with(tmp_path, 5))).values():
        plt.close(figure)
    changed = {k for k, v in matplotlib.rcParams.items() if before.get(k) != v}
    assert not changed or changed <= {"backend"}, sorted(changed)[:5]
