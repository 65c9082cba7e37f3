"""EpochSelection: which epoch of a history is kept."""

from __future__ import annotations

import math

import pytest

from trainer import DEFAULT_SELECTION, EpochSelection

NAN = math.nan


def _history(*values: float, metric: str = "val/x") -> list[dict[str, float]]:
    return [{metric: v, "other": 0.0} for v in values]


def test_default_is_aligned_abs_rel_minimised_best() -> None:
    selection = DEFAULT_SELECTION
    assert (selection.metric, selection.direction, selection.reduce) == (
        "val/abs_rel_align",
        "minimize",
        "best",
    )


@pytest.mark.parametrize(
    ("selection", "values", "expected"),
    [
        (EpochSelection("val/x"), (0.5, 0.3, 0.4), 2),
        (EpochSelection("val/x"), (0.5, 0.3, 0.3), 2),  # ties keep the earliest
        (EpochSelection("val/x", "maximize"), (0.5, 0.9, 0.4), 2),
        (EpochSelection("val/x", "maximize"), (0.5, NAN, 0.4), 1),
        (EpochSelection("val/x"), (NAN, 0.7, math.inf), 2),  # inf is not finite
        (EpochSelection("val/x", reduce="last"), (0.1, 0.3, 0.5), 3),
        (EpochSelection("val/x", reduce="last"), (0.1, 0.3, NAN), 2),
        (EpochSelection("val/x", "maximize", "last"), (0.9, 0.3, NAN), 2),
        (EpochSelection("val/x"), (NAN, NAN, NAN), 3),  # none finite: the last epoch
        (EpochSelection("val/x"), (), 0),
    ],
)
def test_select(selection: EpochSelection, values: tuple[float, ...], expected: int) -> None:
    assert selection.select(_history(*values)) == expected


def test_missing_metric_counts_as_not_finite() -> None:
    history = [{"val/x": 0.2}, {}, {"val/x": 0.1}]
    assert EpochSelection("val/x", reduce="last").select(history) == 3
    assert EpochSelection("val/x", "maximize").select(history) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "minimise"}, "direction must be"),
        ({"reduce": "mean"}, "reduce must be"),
        ({"metric": "test/abs_rel_align"}, "cannot look at a test metric"),
    ],
)
def test_invalid_selection_is_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EpochSelection(**kwargs)  # type: ignore[arg-type]
