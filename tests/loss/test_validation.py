"""Every ValueError: the message names the parameter and the accepted range."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from loss import ScaleAdaptiveLoss, SSILoss

LOSSES: list[Callable[[], Any]] = [
    ScaleAdaptiveLoss,
    lambda: ScaleAdaptiveLoss(sparse=True),
    SSILoss,
    lambda: SSILoss(sparse=True),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (ScaleAdaptiveLoss, {"num_scales": 0}, "num_scales must be an integer >= 1, got 0"),
        (ScaleAdaptiveLoss, {"num_scales": -2}, "num_scales must be an integer >= 1"),
        (ScaleAdaptiveLoss, {"num_scales": 2.0}, "num_scales must be an integer >= 1"),
        (ScaleAdaptiveLoss, {"num_scales": True}, "num_scales must be an integer >= 1"),
        (ScaleAdaptiveLoss, {"num_scales": "4"}, "num_scales must be an integer >= 1"),
        (ScaleAdaptiveLoss, {"lambda_sg": -0.1}, "lambda_sg must be a finite number >= 0"),
        (ScaleAdaptiveLoss, {"lambda_sg": math.nan}, "lambda_sg must be a finite number >= 0"),
        (ScaleAdaptiveLoss, {"lambda_sg": math.inf}, "lambda_sg must be a finite number >= 0"),
        (ScaleAdaptiveLoss, {"lambda_sg": "0.5"}, "lambda_sg must be a finite number >= 0"),
        (ScaleAdaptiveLoss, {"epsilon": -1e-9}, "epsilon must be a finite number >= 0"),
        (ScaleAdaptiveLoss, {"epsilon": None}, "epsilon must be a finite number >= 0"),
        (ScaleAdaptiveLoss, {"use_absolute": 1}, "use_absolute must be True or False"),
        (ScaleAdaptiveLoss, {"use_inv_depth": "yes"}, "use_inv_depth must be True or False"),
        (ScaleAdaptiveLoss, {"sparse": None}, "sparse must be True or False"),
        (SSILoss, {"num_scales": 0}, "num_scales must be an integer >= 1"),
        (SSILoss, {"alpha": -0.5}, "alpha must be a finite number >= 0"),
        (SSILoss, {"alpha": True}, "alpha must be a finite number >= 0"),
    ],
)
def test_bad_parameters(cls: type, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_good_parameter_edges() -> None:
    loss = ScaleAdaptiveLoss(lambda_sg=0, epsilon=0, num_scales=1)
    assert loss.lambda_sg == 0.0 and isinstance(loss.lambda_sg, float)
    assert SSILoss(alpha=0).alpha == 0.0


def _inputs(shape: tuple[int, ...] = (2, 1, 8, 8)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(shape, generator=g) + 0.1, torch.rand(shape, generator=g) + 0.1


def _bad_inputs() -> list[tuple[str, tuple[Any, Any, Any], str]]:
    pred, gt = _inputs()
    mask = gt > 0.5
    with_value = lambda t, v: torch.where(mask, t, v)  # noqa: E731
    return [
        ("pred 3-D", (pred[:, 0], gt, None), r"pred_inv must have shape \[B,1,H,W\]"),
        ("pred 2 channels", (pred.expand(2, 2, 8, 8), gt, None), r"pred_inv must have shape"),
        ("pred empty", (pred[:0], gt[:0], None), r"pred_inv must have shape .* >= 1"),
        ("pred list", (pred.tolist(), gt, None), r"pred_inv must be a torch.Tensor"),
        ("gt shape", (pred, gt[:1], None), r"gt_inv must have the shape of pred_inv"),
        ("mask shape", (pred, gt, mask[..., :4]), r"mask must have the shape of pred_inv"),
        ("pred half", (pred.half(), gt.half(), None), "pred_inv dtype must be float32 or float64"),
        ("pred int", (pred.long(), gt.long(), None), "pred_inv dtype must be float32 or float64"),
        ("gt dtype", (pred, gt.double(), None), r"gt_inv dtype must be that of pred_inv"),
        ("mask complex", (pred, gt, mask.to(torch.complex64)), r"mask dtype must be bool"),
        ("pred zero", (with_value(pred, 0.0), gt, None), r"pred_inv must be finite and > 0"),
        ("pred negative", (with_value(pred, -1.0), gt, None), r"pred_inv must be finite and > 0"),
        ("pred nan", (with_value(pred, math.nan), gt, None), r"pred_inv must be finite and > 0"),
        ("pred inf", (with_value(pred, math.inf), gt, None), r"pred_inv must be finite and > 0"),
        ("gt negative", (pred, with_value(gt, -0.5), None), r"gt_inv must be finite and >= 0"),
        ("gt nan", (pred, with_value(gt, math.nan), None), r"gt_inv must be finite and >= 0"),
        ("gt inf", (pred, with_value(gt, math.inf), None), r"gt_inv must be finite and >= 0"),
        ("mask 2", (pred, gt, mask.long() * 2), r"mask values must be 0 or 1"),
        ("mask 0.5", (pred, gt, mask.float() * 0.5), r"mask values must be 0 or 1"),
        ("gt device", (pred, gt.to("meta"), None), r"gt_inv must be on pred_inv's device"),
        ("mask device", (pred, gt, mask.to("meta")), r"mask must be on pred_inv's device"),
    ]


@pytest.mark.parametrize("make_loss", LOSSES)
@pytest.mark.parametrize(
    ("case", "args", "message"), _bad_inputs(), ids=[c[0] for c in _bad_inputs()]
)
def test_bad_inputs(
    make_loss: Callable[[], Any], case: str, args: tuple[Any, Any, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_loss()(*args)


def test_num_scales_too_large_for_image() -> None:
    pred, gt = _inputs((1, 1, 7, 40))
    ScaleAdaptiveLoss(num_scales=3)(pred, gt)  # 7 // 4 = 1 row at scale 3
    with pytest.raises(ValueError, match=r"num_scales=4 is too large for 7x40 .* accepted 1..3"):
        ScaleAdaptiveLoss(num_scales=4)(pred, gt)
    # SSI subsamples with a stride, so every scale keeps at least one pixel.
    assert torch.isfinite(SSILoss(num_scales=6)(pred, gt).total)
