"""fit(): reproducibility, callbacks, stopping, checkpoints, learning."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from trainer import NonFiniteLoss, TrainConfig, fit, resolve_device

TINY = {
    "data": {"height": 32, "width": 64, "num_train": 8, "num_val": 4},
    "model": {"base_channels": 4, "num_stages": 2},
    "loss": {"num_scales": 2},
    "epochs": 2,
    "steps_per_epoch": 2,
    "batch_size": 2,
    "device": "cpu",
}


def tiny(**updates: object) -> TrainConfig:
    data = {**TINY, **updates}
    return TrainConfig.model_validate(data)


def test_same_config_same_metrics() -> None:
    first = fit(tiny())
    second = fit(tiny())
    assert len(first.history) == 2
    for a, b in zip(first.history, second.history, strict=True):
        for key in a:
            if key in ("epoch_time_s", "samples_per_s", "peak_memory_mb"):
                continue
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key


def test_other_seed_other_metrics() -> None:
    a = fit(tiny(seed=0)).final["train/total_loss"]
    b = fit(tiny(seed=1)).final["train/total_loss"]
    assert a != pytest.approx(b, rel=1e-4)


def test_epoch_metrics_and_callback() -> None:
    seen: list[tuple[int, dict[str, float]]] = []
    result = fit(tiny(), lambda epoch, metrics: seen.append((epoch, metrics)))
    assert [epoch for epoch, _ in seen] == [1, 2]
    metrics = seen[-1][1]
    for key in (
        "train/total_loss",
        "train/loss_sa",
        "train/loss_sg",
        "train/gradient/scale_1",
        "train/gradient/scale_2",
        "val/abs_rel",
        "val/abs_rel_med",
        "val/rmse",
        "val/a1",
        "val/total_loss",
        "lr",
        "epoch_time_s",
        "samples_per_s",
        "peak_memory_mb",
    ):
        assert key in metrics, key
        assert math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["val/a1"] <= 1.0
    assert metrics["samples_per_s"] > 0
    # total = loss_sa + lambda_sg * loss_sg holds for each step, so for the epoch means too.
    expected = metrics["train/loss_sa"] + 0.5 * metrics["train/loss_sg"]
    assert metrics["train/total_loss"] == pytest.approx(expected, rel=1e-5)
    assert result.history[-1] == metrics
    # cosine schedule: the rate falls over the run.
    assert seen[1][1]["lr"] < seen[0][1]["lr"] <= 1e-3


def test_callback_exception_stops_run() -> None:
    class Stop(Exception):
        pass

    calls: list[int] = []

    def stop_after_first(epoch: int, _metrics: dict[str, float]) -> None:
        calls.append(epoch)
        raise Stop

    with pytest.raises(Stop):
        fit(tiny(epochs=3), stop_after_first)
    assert calls == [1]


def test_non_finite_loss_names_step() -> None:
    """Inject a NaN into the network's 3rd forward pass (a real forward hook, no mock)."""
    calls = {"n": 0}

    def poison(module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> object:
        if type(module).__name__ != "DepthNet":
            return None
        calls["n"] += 1
        return output * math.nan if calls["n"] == 3 else None

    handle = torch.nn.modules.module.register_module_forward_hook(poison)
    try:
        with pytest.raises(NonFiniteLoss, match="epoch 1, step 3") as info:
            fit(tiny(steps_per_epoch=5))
    finally:
        handle.remove()
    assert (info.value.epoch, info.value.step) == (1, 3)
    assert math.isnan(info.value.value)


def test_previews_and_checkpoint(tmp_path: Path) -> None:
    result = fit(tiny(output_dir=tmp_path / "run"))
    assert [p.name for p in result.previews] == ["epoch_001.png", "epoch_002.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in result.previews)
    assert result.checkpoint == tmp_path / "run" / "best.pt"
    state = torch.load(result.checkpoint, weights_only=True)
    assert any(k.endswith("weight") for k in state)
    assert 1 <= result.best_epoch <= 2
    best = min(h["val/abs_rel"] for h in result.history)
    assert result.best["val/abs_rel"] == best


def test_cuda_requested_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


@pytest.mark.parametrize("method", ["scale-adaptive", "sparse-scale-adaptive"])
def test_it_learns(method: str) -> None:
    """Validation abs_rel after a few seconds of training is clearly below the untrained one."""
    base = {
        "data": {"height": 48, "width": 96, "num_train": 1000, "num_val": 32},
        "model": {"base_channels": 8, "num_stages": 3},
        "loss": {"method": method, "num_scales": 3},
        "batch_size": 4,
        "lr": 2e-3,
        "device": "cpu",
    }
    untrained = fit(
        TrainConfig.model_validate({**base, "epochs": 1, "steps_per_epoch": 1, "lr": 1e-9})
    )
    trained = fit(TrainConfig.model_validate({**base, "epochs": 5, "steps_per_epoch": 40}))
    before = untrained.final["val/abs_rel"]
    after = min(h["val/abs_rel"] for h in trained.history)
    assert after < 0.8 * before, (before, after)
