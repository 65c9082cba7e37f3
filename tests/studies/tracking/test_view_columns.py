"""What salsweep's runs show as columns of the sweep's view (studies.tracking.layout and
the view that studies.tracking.view makes): the configuration's label on every run,
the loss method, only the loss parameters the run's method takes."""

from __future__ import annotations

import pytest

from studies.run.runner import flatten_config
from studies.run.session import LOSS_CHART_METRICS
from studies.tracking.layout import (
    LABEL_TAG,
    ParamValue,
    child_tags,
    without_unused_loss_params,
)
from studies.tracking.view import VERDICT_COLUMN_PX, sweep_view_state_of
from trainer import TrainConfig
from trainer.metric_names import epoch_metric_names


def test_a_search_trial_run_is_labelled_with_its_configuration() -> None:
    tags = child_tags("p" * 32, "s", 3)
    assert tags[LABEL_TAG] == "trial 3"
    assert tags["optuna.trial"] == "3" and tags["mlflow.parentRunId"] == "p" * 32


def test_an_ssi_run_logs_only_the_parameters_of_its_loss() -> None:
    config = TrainConfig.model_validate({"loss": {"method": "ssi"}})
    params = flatten_config(config)
    loss = {k for k in params if k.startswith("loss.")}
    assert loss == {"loss.method", "loss.num_scales"}  # SSI_PARAMS that are config fields
    assert params["loss.method"] == "ssi"
    assert params["lr"] == config.lr and "data.max_depth" in params  # the rest is kept


def test_a_scale_adaptive_run_logs_every_parameter_of_its_loss() -> None:
    config = TrainConfig.model_validate({"loss": {"method": "sparse-scale-adaptive"}})
    params = flatten_config(config)
    for name in ("lambda_sg", "epsilon", "num_scales", "use_absolute", "use_inv_depth"):
        assert f"loss.{name}" in params
    assert params["loss.lambda_sg"] == config.loss.lambda_sg


def test_unknown_methods_and_parameters_are_kept() -> None:
    flat: dict[str, ParamValue] = {
        "loss.method": "ssi",
        "loss.lambda_sg": 0.5,
        "loss.future_option": 1,
        "lr": 0.1,
    }
    assert without_unused_loss_params(flat) == {
        "loss.method": "ssi",
        "loss.future_option": 1,  # no method's parameter: not ours to drop
        "lr": 0.1,
    }
    unknown: dict[str, ParamValue] = {"loss.method": "mine", "loss.lambda_sg": 0.5}
    assert without_unused_loss_params(unknown) == unknown
    assert without_unused_loss_params({"lr": 1}) == {"lr": 1}


def test_the_sweep_view_columns() -> None:
    state = sweep_view_state_of(["loss.lambda_sg"], "val/abs_rel_align", True)
    assert state["selectedColumns"] == [
        "tags.`salsweep.label`",
        "tags.`optuna.state`",  # PRUNED reads as pruned: its run ends FINISHED, not red
        "params.`loss.method`",
        "params.`loss.lambda_sg`",
        "metrics.`optuna.value`",
        "metrics.`val/abs_rel_align`",
    ]
    assert state["orderByKey"] == "metrics.`optuna.value`" and state["orderByAsc"] is True
    confirming = sweep_view_state_of(["loss.method"], "val/a1", False, confirming=True)
    columns = confirming["selectedColumns"]
    assert isinstance(columns, list)
    assert columns.count("params.`loss.method`") == 1  # a searched method: one column
    assert columns[-4:] == [
        "metrics.`confirm.value`",
        "tags.`confirm.winner`",
        "tags.`confirm.runner_up`",
        "tags.`confirm.baseline`",
    ]
    widths = confirming["columnWidths"]
    assert isinstance(widths, dict)
    assert widths["tags.`confirm.winner`"] == VERDICT_COLUMN_PX


def test_the_sweep_views_charts_start_with_the_objective() -> None:
    """The Chart tab: the objective's cards first, then train and validation loss on one
    chart; the UI's own cards for the other metrics come after them."""
    state = sweep_view_state_of(
        ["loss.lambda_sg"],
        "val/abs_rel_align",
        True,
        confirming=True,
        loss_metrics=LOSS_CHART_METRICS,
    )
    given = state["compareRunSections"]
    assert isinstance(given, list)
    sections = {s["uuid"]: s["name"] for s in given}
    assert list(sections.values()) == ["Objective", "Loss: train and validation"]
    charts = state["compareRunCharts"]
    assert isinstance(charts, list)
    shown = [
        (sections[c["metricSectionId"]], c["type"], c.get("selectedMetricKeys", [c["metricKey"]]))
        for c in charts
    ]
    assert shown == [
        ("Objective", "BAR", ["optuna.value"]),
        ("Objective", "LINE", ["val/abs_rel_align"]),
        ("Objective", "BAR", ["confirm.value"]),
        ("Loss: train and validation", "LINE", ["train/total_loss", "val/total_loss"]),
    ]
    # A command spec (no loss of ours) and no confirmation: the objective alone.
    plain = sweep_view_state_of(["lr"], "val/loss", True)["compareRunCharts"]
    assert isinstance(plain, list)
    assert [c["metricKey"] for c in plain] == ["optuna.value", "val/loss"]


@pytest.mark.parametrize("method", ["sparse-scale-adaptive", "scale-adaptive", "ssi", "sparse-ssi"])
def test_the_loss_chart_draws_metrics_every_run_reports(method: str) -> None:
    reported = epoch_metric_names(TrainConfig.model_validate({"loss": {"method": method}}))
    assert set(LOSS_CHART_METRICS) <= set(reported)
