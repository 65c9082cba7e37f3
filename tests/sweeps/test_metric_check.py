"""The objective's metric is checked against the metrics the built-in trainer reports
(`trainer.metric_names.epoch_metric_names`), before anything is created; a command spec's
metric is its program's own, so it is not checked."""

from __future__ import annotations

from typing import Any

import pytest

from sweeps import SpecError, parse_spec
from trainer.config import TrainConfig
from trainer.metric_names import epoch_metric_names


def problems(data: Any) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data, "spec.yaml")
    return {p.path: p.message for p in info.value.problems}


def test_a_typo_is_refused_with_a_suggestion(good: dict[str, Any]) -> None:
    good["objective"] = {"metric": "val/absrel"}
    message = problems(good)["objective.metric"]
    assert message.startswith(
        "'val/absrel' is not a metric of the built-in trainer (did you mean 'val/abs_rel'?); "
        "its metrics: val/a1, "
    )
    # Every metric a run reports is listed, validation metrics first.
    listed = message.split("its metrics: ")[1].split(", ")
    assert listed[0].startswith("val/") and "val/abs_rel_align" in listed
    assert "train/total_loss" in listed and "lr" in listed


def test_no_suggestion_for_a_name_nothing_resembles(good: dict[str, Any]) -> None:
    good["objective"] = {"metric": "zzz"}
    assert "did you mean" not in problems(good)["objective.metric"]


@pytest.mark.parametrize(
    "metric",
    ["val/abs_rel", "val/abs_rel_med", "val/a1_align", "val/total_loss", "train/total_loss"],
)
def test_every_reported_metric_is_accepted(good: dict[str, Any], metric: str) -> None:
    good["objective"] = {
        "metric": metric,
        "direction": "maximize" if "a1" in metric else "minimize",
    }
    assert parse_spec(good, "spec.yaml").objective.metric == metric


def test_a_metric_only_some_trials_report_is_refused(good: dict[str, Any]) -> None:
    # loss.num_scales is searched from 1: a one-scale trial has no gradient/scale_2.
    good["objective"] = {"metric": "train/gradient/scale_2"}
    assert problems(good) == {
        "objective.metric": "train/gradient/scale_2 is not reported by every run: not by the "
        "trials with loss.num_scales=1 (a run's train/ metrics are its loss's terms)"
    }
    good["search"]["loss.num_scales"] = {"low": 2, "high": 4}
    assert parse_spec(good, "spec.yaml").objective.metric == "train/gradient/scale_2"


def test_a_metric_the_baseline_does_not_report_is_refused(good: dict[str, Any]) -> None:
    good["objective"] = {"metric": "train/loss_sa"}
    assert parse_spec(good, "spec.yaml").objective.metric == "train/loss_sa"
    good["baseline"] = True  # the SSI loss has no loss_sa
    assert problems(good) == {
        "objective.metric": "train/loss_sa is not reported by every run: not by the SSI "
        "baseline (sparse-ssi; baseline: true) (a run's train/ metrics are its loss's terms)"
    }


def test_a_fixed_loss_setting_decides_the_names(good: dict[str, Any]) -> None:
    good["objective"] = {"metric": "train/scale_adaptive/absolute"}
    assert parse_spec(good, "spec.yaml").objective.metric == "train/scale_adaptive/absolute"
    good["search"]["loss.use_absolute"] = False  # fixed for every trial: no absolute term
    assert "did you mean" in problems(good)["objective.metric"]


def test_a_command_specs_metric_is_its_own(tmp_path: Any) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("lr: 0.1\n")
    spec = parse_spec(
        {
            "name": "mine",
            "command": {
                "argv": ["python", "-c", "pass", "{config}"],
                "base_config": str(config),
                "keys": {"lr": "lr"},
                "seed_key": "seed",
            },
            "search": {"lr": {"low": 0.01, "high": 0.1}},
            "objective": {"metric": "val/absrel"},
        },
        "spec.yaml",
    )
    assert spec.objective.metric == "val/absrel"


def test_the_names_follow_the_loss() -> None:
    sa = TrainConfig.model_validate({"loss": {"method": "scale-adaptive", "num_scales": 2}})
    names = epoch_metric_names(sa)
    assert "train/gradient/scale_2" in names and "train/gradient/scale_3" not in names
    assert "train/scale_adaptive/absolute" in names  # the trainer always passes a mask
    ssi = TrainConfig.model_validate({"loss": {"method": "ssi", "num_scales": 3}})
    assert {n for n in epoch_metric_names(ssi) if n.startswith("train/")} == {
        "train/ssi/data",
        "train/gradient/scale_1",
        "train/gradient/scale_2",
        "train/gradient/scale_3",
        "train/ssi/gradient",
        "train/total_loss",
    }
