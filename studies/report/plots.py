"""A study's plots as PNG files (the parent run's ``plots/``), and how every figure of the
report is saved: nothing cut off, readable on its own.

The plots hand Optuna's matplotlib plot functions an in-memory copy of the record's search
trials (the SSI baseline is not one of them), then make them readable: the parallel
coordinates' lines from dark (best) to a mid tone that stands out on white (Optuna's
``Blues`` drew the worst trial near white on grey), integer ticks on integer settings,
plain numbers on log axes; the importances say when they come from few complete trials.
Every figure is saved with a tight bounding box: titles and tick labels are never cut off.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies import attrs
from studies.store import StudyRecord

if TYPE_CHECKING:
    import optuna
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from optuna.trial import FrozenTrial

__all__ = [
    "FEW_TRIALS",
    "PLOT_NAMES",
    "save_figure",
    "save_study_plots",
    "study_figures",
]

PLOT_NAMES = ("optimization_history", "param_importances", "parallel_coordinate")
# Below this many complete trials, parameter importances (a random forest's, fANOVA) are
# a rough indication: the title says so.
FEW_TRIALS = 10
# The parallel coordinates' colours: viridis from its darkest (the best trial) to 0.55,
# whose contrast with white is 3.4:1 (graphics need 3:1; Optuna's Blues end at 1.04:1).
_LINE_COLOURS = (0.0, 0.55)
DPI = 100
_log = logging.getLogger(__name__)


def save_figure(figure: Figure, path: Path) -> Path:
    """Save ``figure`` as a PNG at ``path`` with a tight bounding box: the file holds every
    title, label and tick label whole, however long (``tight_layout`` alone leaves a title
    wider than the figure cut off)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    return path


def _in_memory(record: StudyRecord) -> optuna.Study:
    """The record's search trials in an in-memory Optuna study, for Optuna's plots."""
    import optuna
    from optuna.distributions import json_to_distribution
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(
        study_name=record.study_name,
        direction="maximize" if record.direction == "maximize" else "minimize",
        storage=optuna.storages.InMemoryStorage(),
        sampler=optuna.samplers.RandomSampler(seed=0),  # never asked: no TPE built
    )
    for t in record.trials:
        state = TrialState[t.state]
        if state in (TrialState.RUNNING, TrialState.WAITING):
            continue  # create_trial takes finished trials; a plot shows none of these
        study.add_trial(
            create_trial(
                state=state,
                value=t.value if state == TrialState.COMPLETE else None,
                params=t.params,
                distributions={k: json_to_distribution(d) for k, d in t.distributions.items()},
                user_attrs=t.user_attrs,
            )
        )
    return study


def _varied_params(trials: list[FrozenTrial]) -> list[str]:
    names = sorted({name for t in trials for name in t.params})
    return [n for n in names if len({repr(t.params.get(n)) for t in trials}) > 1]


def _importances_title(ax: Axes, complete: int) -> None:
    """Optuna's title, with a caveat when the importances rest on few complete trials."""
    if complete < FEW_TRIALS:
        ax.set_title(
            f"Hyperparameter Importances\nfrom only {complete} complete trials (fewer than "
            f"{FEW_TRIALS}): a rough indication",
            loc="left",
        )


def _readable_parallel(ax: Axes, study: optuna.Study, complete: int) -> None:
    """Colours with contrast, integer ticks on integer settings, plain numbers on log axes,
    and a title that says which trials are drawn."""
    from matplotlib.colors import ListedColormap
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
    from optuna.distributions import IntDistribution

    base = _colormap("viridis")
    low, high = _LINE_COLOURS
    colours = base([low + (high - low) * i / 255 for i in range(256)])
    if study.direction.name == "MAXIMIZE":
        colours = colours[::-1]  # the best (largest) value darkest
    for collection in ax.collections:
        collection.set_cmap(ListedColormap(colours))
    ax.set_facecolor("white")
    ax.set_title(f"Parallel coordinates: the {complete} complete trials (darkest: best)", y=1.03)
    # Each setting has its own y axis, a twin of ``ax`` made in the order of the x labels
    # after the objective's.
    labels = [label.get_text() for label in ax.get_xticklabels()][1:]
    twins = [a for a in ax.figure.axes if a is not ax and a.get_shared_x_axes().joined(a, ax)]
    distributions: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        distributions.update(trial.distributions)
    plain = FuncFormatter(lambda value, _pos: f"{value:g}")
    for label, twin in zip(labels, twins, strict=False):
        distribution = distributions.get(label)
        if twin.get_yscale() == "log":
            twin.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            twin.yaxis.set_major_formatter(plain)
            twin.yaxis.set_minor_formatter(NullFormatter())
        elif isinstance(distribution, IntDistribution):
            twin.yaxis.set_major_locator(MaxNLocator(integer=True))


def _colormap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def study_figures(record: StudyRecord) -> dict[str, Figure]:
    """The optimisation history, parameter importances and parallel coordinates of
    ``record``'s search trials, drawn (the caller closes them); a plot the trials cannot
    give yet is left out."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as oplt

    study = _in_memory(record)
    metric = str(record.user_attrs.get(attrs.OBJECTIVE_METRIC, "Objective Value"))
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varied = _varied_params(complete)

    def importances() -> Axes:
        ax = oplt.plot_param_importances(study, params=varied, target_name=metric)
        _importances_title(ax, len(complete))
        return ax

    def parallel() -> Axes:
        ax = oplt.plot_parallel_coordinate(study, target_name=metric)
        _readable_parallel(ax, study, len(complete))
        return ax

    plots: dict[str, tuple[bool, Callable[[], Any]]] = {
        "optimization_history": (
            bool(complete),
            lambda: oplt.plot_optimization_history(study, target_name=metric),
        ),
        # Importances need two complete trials and a param that took two values.
        "param_importances": (len(complete) >= 2 and bool(varied), importances),
        "parallel_coordinate": (len(complete) >= 2 and bool(varied), parallel),
    }
    figures: dict[str, Figure] = {}
    for name, (possible, draw) in plots.items():
        if not possible:
            continue
        # Optuna's functions switch the global style to ggplot: keep it to this figure.
        with plt.style.context("default"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "experimental" notices
                    ax = draw()
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                # A degenerate study (e.g. every value equal): skip the plot, keep the others.
                _log.info("skipped %s: %s", name, exc)
                plt.close("all")
                continue
        figures[name] = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    return figures


def save_study_plots(record: StudyRecord, out_dir: Path) -> list[Path]:
    """Write the optimisation history, parameter importances and parallel coordinates as PNG
    files into ``out_dir``; a plot the trials cannot give yet is skipped. Returns the files
    written. The study holds the search's trials only (the baseline is not one of them).
    """
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in study_figures(record).items():
        try:
            written.append(save_figure(figure, out_dir / f"{name}.png"))
        finally:
            plt.close(figure)
    return written
