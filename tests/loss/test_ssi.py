"""The SSI baseline against a brute-force least-squares solve (numpy lstsq per image)."""

from __future__ import annotations

import copy
from types import ModuleType

import pytest
import torch

from loss import SSILoss


def _check(out_metrics: dict[str, torch.Tensor], want: dict[str, float], rel: float) -> None:
    assert list(out_metrics) == list(want)
    for name, value in want.items():
        assert float(out_metrics[name]) == pytest.approx(value, rel=rel, abs=1e-12), name


@pytest.mark.parametrize("shape", [(3, 1, 16, 24), (2, 1, 13, 19)])
@pytest.mark.parametrize("num_scales", [1, 4, 5])
def test_dense_equals_lstsq(
    seed_ref: ModuleType, helpers: ModuleType, shape: tuple[int, int, int, int], num_scales: int
) -> None:
    pred = helpers.random_inv(shape, seed=1)
    gt = 3.0 * pred + 0.02 + 0.01 * helpers.random_inv(shape, seed=2)  # close to affine
    valid = torch.ones(shape, dtype=torch.bool)
    want = seed_ref.lstsq_ssi(pred, gt, valid, num_scales=num_scales)
    _check(SSILoss(num_scales=num_scales)(pred, gt).metrics, want, rel=1e-9)


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_equals_lstsq(
    seed_ref: ModuleType, helpers: ModuleType, with_mask: bool, dtype: torch.dtype
) -> None:
    shape = (3, 1, 20, 28)
    pred = helpers.random_inv(shape, seed=3, dtype=dtype)
    gt = helpers.random_inv(shape, seed=4, dtype=dtype, missing=0.7)
    gt[2] = 0.0  # no valid pixel: contributes nothing
    mask = helpers.random_inv(shape, seed=5, missing=0.2) > 0 if with_mask else None
    valid = gt > 0 if mask is None else (gt > 0) & mask
    want = seed_ref.lstsq_ssi(pred, gt, valid, alpha=0.3)
    out = SSILoss(alpha=0.3, sparse=True)(pred, gt, mask)
    _check(out.metrics, want, rel=1e-9 if dtype == torch.float64 else 1e-4)
    dense_masked = SSILoss(alpha=0.3)(pred, gt, valid)
    _check(dense_masked.metrics, want, rel=1e-9 if dtype == torch.float64 else 1e-4)


def test_invariant_to_affine_prediction(helpers: ModuleType) -> None:
    shape = (2, 1, 16, 16)
    pred = helpers.random_inv(shape, seed=6)
    gt = helpers.random_inv(shape, seed=7, missing=0.3)
    loss = SSILoss(sparse=True)
    before = loss(pred, gt).total.item()
    assert before > 0
    assert loss(5.0 * pred + 0.3, gt).total.item() == pytest.approx(before, rel=1e-9)
    # An exactly affine ground truth is fitted perfectly.
    exact = torch.where(gt > 0, 2.0 * pred + 0.1, 0.0)
    assert loss(pred, exact).total.item() == pytest.approx(0.0, abs=1e-12)


def test_constant_prediction_fits_the_mean(helpers: ModuleType) -> None:
    shape = (1, 1, 8, 8)
    pred = torch.full(shape, 0.05, dtype=torch.float64, requires_grad=True)
    gt = helpers.random_inv(shape, seed=8)
    out = SSILoss(num_scales=1)(pred, gt)
    (grad,) = torch.autograd.grad(out.total, pred)
    want = float(((gt - gt.mean()) ** 2).sum()) / (2 * 64)  # fit = mean(g)
    assert float(out.metrics["ssi/data"]) == pytest.approx(want, rel=1e-9)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("sparse", [False, True])
def test_finite_with_95_percent_missing_and_no_valid_pixel(
    helpers: ModuleType, sparse: bool
) -> None:
    shape = (3, 1, 32, 40)
    p = helpers.random_inv(shape, seed=9, dtype=torch.float32).requires_grad_()
    gt = helpers.random_inv(shape, seed=10, dtype=torch.float32, missing=0.95)
    gt[0] = 0.0
    out = SSILoss(sparse=sparse)(p, gt, gt > 0)
    (grad,) = torch.autograd.grad(out.total, p)
    assert all(torch.isfinite(v) for v in out.metrics.values())
    assert torch.isfinite(grad).all() and torch.all(grad[0] == 0)
    empty = SSILoss(sparse=sparse)(p, torch.zeros_like(gt), torch.zeros_like(gt, dtype=torch.bool))
    assert empty.total.item() == 0.0


@pytest.mark.parametrize("sparse", [False, True])
def test_gradcheck(helpers: ModuleType, sparse: bool) -> None:
    shape = (2, 1, 6, 7)
    pred = helpers.random_inv(shape, seed=11).requires_grad_()
    gt = helpers.random_inv(shape, seed=12, missing=0.3 if sparse else 0.0)
    loss = SSILoss(sparse=sparse, num_scales=2)
    assert torch.autograd.gradcheck(lambda p: loss(p, gt).total, (pred,))


def test_metrics_and_state(helpers: ModuleType) -> None:
    shape = (2, 1, 16, 16)
    pred, gt = helpers.random_inv(shape, seed=13), helpers.random_inv(shape, seed=14)
    loss = SSILoss(num_scales=2)
    before = copy.deepcopy(loss)
    out = loss(pred, gt)
    assert loss == before
    assert list(out.metrics) == list(loss.metric_names(False))
    assert list(out.metrics) == [
        "ssi/data",
        "gradient/scale_1",
        "gradient/scale_2",
        "ssi/gradient",
        "total_loss",
    ]
    assert all(v.shape == () and not v.requires_grad for v in out.metrics.values())
    grad_sum = out.metrics["gradient/scale_1"] + out.metrics["gradient/scale_2"]
    assert float(out.metrics["ssi/gradient"]) == pytest.approx(float(grad_sum), rel=1e-12)
    total = out.metrics["ssi/data"] + 0.5 * out.metrics["ssi/gradient"]
    assert out.total.item() == pytest.approx(float(total), rel=1e-12)
    assert SSILoss().method == "ssi" and SSILoss(sparse=True).method == "sparse-ssi"
