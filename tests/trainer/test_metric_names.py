"""trainer.metric_names: the names the sweep spec's checks know are exactly the ones a real
run reports (the list cannot drift from `fit`)."""

from __future__ import annotations

from typing import Any

import pytest

from trainer import TrainConfig, epoch_metric_names, fit
from trainer.metric_names import metric_keys

TINY: dict[str, Any] = {
    "data": {"height": 32, "width": 64, "num_train": 4, "num_val": 2, "num_test": 2},
    "model": {"base_channels": 4, "num_stages": 2},
    "epochs": 1,
    "steps_per_epoch": 1,
    "batch_size": 2,
    "device": "cpu",
    "previews": False,
}


@pytest.mark.parametrize(
    "loss",
    [
        {"method": "sparse-scale-adaptive", "num_scales": 2},
        {"method": "scale-adaptive", "num_scales": 3, "use_absolute": False},
        {"method": "ssi", "num_scales": 1},
    ],
)
def test_the_names_are_those_of_a_real_run(loss: dict[str, Any]) -> None:
    config = TrainConfig.model_validate({**TINY, "loss": loss})
    epochs: list[dict[str, float]] = []
    result = fit(config, lambda _epoch, metrics: epochs.append(metrics), evaluate_test=True)
    names = epoch_metric_names(config)
    assert len(set(names)) == len(names)
    assert set(epochs[0]) == set(names)  # every reported name is known, and vice versa
    assert set(result.history[0]) == set(names)
    # The test split's metrics are the validation's depth metrics, renamed.
    assert set(result.test) == {f"test/{k}" for k in metric_keys()} | {"test/total_loss"}
