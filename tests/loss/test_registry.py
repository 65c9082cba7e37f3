"""get_loss and the quick check."""

from __future__ import annotations

import math

import pytest
import torch

import loss
from loss import (
    LOSS_METHODS,
    LossOutput,
    ScaleAdaptiveLoss,
    SSILoss,
    get_loss,
    method_params,
    quick_check,
)


def test_public_api() -> None:
    for name in ("get_loss", "ScaleAdaptiveLoss", "SSILoss", "LossOutput", "LOSS_METHODS"):
        assert name in loss.__all__
    assert "quick_check" in loss.__all__
    assert LOSS_METHODS == ("scale-adaptive", "sparse-scale-adaptive", "ssi", "sparse-ssi")


@pytest.mark.parametrize(
    ("method", "cls", "sparse"),
    [
        ("scale-adaptive", ScaleAdaptiveLoss, False),
        ("sparse-scale-adaptive", ScaleAdaptiveLoss, True),
        ("ssi", SSILoss, False),
        ("sparse-ssi", SSILoss, True),
    ],
)
def test_methods_resolve(method: str, cls: type, sparse: bool) -> None:
    fn = get_loss(method)
    assert type(fn) is cls
    assert fn.method == method
    assert fn.sparse is sparse  # type: ignore[attr-defined]
    assert fn == cls(sparse=sparse)  # every default


def test_parameters_are_passed_on() -> None:
    # The trainer's calls (trainer.config.LossConfig.loss_params()).
    params = {
        "lambda_sg": 0.3,
        "epsilon": 1e-6,
        "num_scales": 5,
        "use_absolute": False,
        "use_inv_depth": True,  # the seed's registration forgot this one
        "min_depth": 0.5,
        "max_depth": 10.0,
    }
    fn = get_loss("sparse-scale-adaptive", **params)
    assert fn == ScaleAdaptiveLoss(**params, sparse=True)
    assert get_loss("sparse-ssi", num_scales=2) == SSILoss(num_scales=2, sparse=True)
    assert get_loss("ssi", alpha=0.0).alpha == 0.0  # type: ignore[attr-defined]
    assert method_params("ssi") == ("alpha", "num_scales")
    assert set(method_params("scale-adaptive")) == {
        *params,
        "gradient_normalization",
        "gradient_window",
    }
    fn = get_loss("scale-adaptive", gradient_normalization="full-resolution")
    assert fn == ScaleAdaptiveLoss(gradient_normalization="full-resolution")
    fn = get_loss("sparse-scale-adaptive", gradient_window="valid")
    assert fn == ScaleAdaptiveLoss(gradient_window="valid", sparse=True)


@pytest.mark.parametrize("method", ["scale_adaptive", "l1", "", "SSI", "sparse-l1"])
def test_unknown_method_lists_valid_ones(method: str) -> None:
    with pytest.raises(ValueError, match="unknown loss method") as info:
        get_loss(method)
    for valid in LOSS_METHODS:
        assert valid in str(info.value)


@pytest.mark.parametrize(
    ("method", "params", "bad", "valid"),
    [
        ("ssi", {"lambda_sg": 0.5}, "lambda_sg", "alpha, num_scales"),
        ("sparse-ssi", {"num_scales": 2, "use_inv_depth": True}, "use_inv_depth", "num_scales"),
        ("sparse-ssi", {"gradient_window": "valid"}, "gradient_window", "alpha, num_scales"),
        ("scale-adaptive", {"alpha": 0.5}, "alpha", "lambda_sg, epsilon, num_scales"),
        ("sparse-scale-adaptive", {"sparse": False}, "sparse", "use_absolute, use_inv_depth"),
        ("scale-adaptive", {"lambda": 0.5, "scales": 2}, "lambda, scales", "lambda_sg"),
    ],
)
def test_unknown_parameter_lists_valid_ones(
    method: str, params: dict[str, object], bad: str, valid: str
) -> None:
    with pytest.raises(ValueError, match="unknown parameter") as info:
        get_loss(method, **params)
    assert bad in str(info.value) and valid in str(info.value)


def test_bad_value_through_get_loss() -> None:
    with pytest.raises(ValueError, match=r"num_scales must be an integer >= 1, got 0"):
        get_loss("ssi", num_scales=0)
    with pytest.raises(ValueError, match=r"lambda_sg must be a finite number >= 0"):
        get_loss("scale-adaptive", lambda_sg=-1.0)
    with pytest.raises(
        ValueError, match=r"gradient_normalization must be one of per-scale, full-resolution"
    ):
        get_loss("scale-adaptive", gradient_normalization="mean")
    with pytest.raises(ValueError, match=r"gradient_window must be one of zero-filled, valid"):
        get_loss("sparse-scale-adaptive", gradient_window="masked")


def test_quick_check() -> None:
    out = quick_check()
    assert isinstance(out, LossOutput)
    assert math.isfinite(out.total.item())
    assert list(out.metrics) == [
        "scale_adaptive/relative",
        "scale_adaptive/absolute",
        "gradient/scale_1",
        "gradient/scale_2",
        "gradient/scale_3",
        "gradient/scale_4",
        "total_loss",
        "loss_sa",
        "loss_sg",
    ]
    assert torch.equal(quick_check(0).total, out.total)
    assert quick_check(1).total.item() != out.total.item()
    # Seed 0's values (float32, CPU), pinned: a change to the loss's arithmetic shows here.
    # Uniform random inverse depths: MAD-normalised maps differ by about 1.3 on average.
    assert float(out.metrics["scale_adaptive/relative"]) == pytest.approx(1.314606, abs=1e-5)
    assert float(out.metrics["loss_sg"]) == pytest.approx(6.619266, rel=1e-5)
    # Depths of 9-100 m over the default max_depth 80: the absolute term in metres
    # (17.578850 before the loss had a depth range) / 80.
    assert float(out.metrics["scale_adaptive/absolute"]) == pytest.approx(17.578850 / 80, rel=1e-5)
    assert float(out.total) == pytest.approx(4.843974, rel=1e-5)
    dense = quick_check(method="scale-adaptive")
    assert "scale_adaptive/absolute" not in dense.metrics
    assert torch.equal(dense.metrics["loss_sg"], out.metrics["loss_sg"])
