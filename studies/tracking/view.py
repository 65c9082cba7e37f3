"""The sweep's shared view of its MLflow runs table (studies.urls builds the JSON):
which columns it shows, in which order, and how its Chart tab starts. No request: the
client (studies.tracking.client) stores it on the experiment.
"""

from __future__ import annotations

from collections.abc import Sequence

from studies.tracking.layout import (
    CONFIRM_VALUE_METRIC,
    LABEL_TAG,
    METHOD_PARAM,
    STATE_TAG,
    VALUE_METRIC,
    VERDICT_TAGS,
)
from studies.urls import ChartCard, Column, charts_view_state, runs_view_state

__all__ = ["LOSS_SECTION", "VERDICT_COLUMN_PX", "sweep_charts", "sweep_view_state_of"]

# A verdict column's width: "trial 12: 0.1406 ± 0.0040 [0.1366, 0.1446], 5 seeds" at the
# table's 13 px font.
VERDICT_COLUMN_PX = 400


# The Chart tab's section of the training and validation loss.
LOSS_SECTION = "Loss: train and validation"


def sweep_charts(
    metric: str, *, confirming: bool = False, loss_metrics: Sequence[str] = ()
) -> list[ChartCard]:
    """The Chart tab's first cards (see :meth:`Client.share_sweep_view`)."""
    objective = "Objective"
    cards: list[ChartCard] = [(objective, [VALUE_METRIC]), (objective, [metric])]
    if confirming:
        cards.append((objective, [CONFIRM_VALUE_METRIC]))
    if loss_metrics:
        cards.append((LOSS_SECTION, list(loss_metrics)))
    return cards


def sweep_view_state_of(
    searched: Sequence[str],
    metric: str,
    ascending: bool,
    *,
    confirming: bool = False,
    loss_metrics: Sequence[str] = (),
) -> dict[str, object]:
    """The shared view that :meth:`Client.share_sweep_view` stores (see there)."""
    columns: list[Column] = [("tags", LABEL_TAG), ("tags", STATE_TAG), ("params", METHOD_PARAM)]
    columns += [("params", p) for p in searched]
    columns += [("metrics", VALUE_METRIC), ("metrics", metric)]
    widths: dict[str, int] = {}
    if confirming:
        columns.append(("metrics", CONFIRM_VALUE_METRIC))
        columns += [("tags", tag) for tag in VERDICT_TAGS]
        widths = dict.fromkeys(VERDICT_TAGS, VERDICT_COLUMN_PX)
    charts = sweep_charts(metric, confirming=confirming, loss_metrics=loss_metrics)
    bars = (VALUE_METRIC, CONFIRM_VALUE_METRIC)
    return {
        **runs_view_state(columns, VALUE_METRIC, ascending, widths),
        **charts_view_state(charts, bars=bars),
    }
