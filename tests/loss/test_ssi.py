"""The SSI baseline against a brute-force numpy reference (median / MAD per image), and the
properties that make it learn: positive scale, no dependence on units, an inverted
prediction penalised and pushed towards the right sign."""

from __future__ import annotations

import copy
from types import ModuleType

import pytest
import torch

from loss import SSILoss
from loss.ssi import masked_median


def _check(out_metrics: dict[str, torch.Tensor], want: dict[str, float], rel: float) -> None:
    assert list(out_metrics) == list(want)
    for name, value in want.items():
        assert float(out_metrics[name]) == pytest.approx(value, rel=rel, abs=1e-12), name


@pytest.mark.parametrize("shape", [(3, 1, 16, 24), (2, 1, 13, 19)])
@pytest.mark.parametrize("num_scales", [1, 4, 5])
def test_dense_equals_reference(
    seed_ref: ModuleType, helpers: ModuleType, shape: tuple[int, int, int, int], num_scales: int
) -> None:
    pred = helpers.random_inv(shape, seed=1)
    gt = 3.0 * pred + 0.02 + 0.01 * helpers.random_inv(shape, seed=2)  # close to affine
    valid = torch.ones(shape, dtype=torch.bool)
    want = seed_ref.midas_ssi(pred, gt, valid, num_scales=num_scales)
    _check(SSILoss(num_scales=num_scales)(pred, gt).metrics, want, rel=1e-9)


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_equals_reference(
    seed_ref: ModuleType, helpers: ModuleType, with_mask: bool, dtype: torch.dtype
) -> None:
    shape = (3, 1, 20, 28)
    pred = helpers.random_inv(shape, seed=3, dtype=dtype)
    gt = helpers.random_inv(shape, seed=4, dtype=dtype, missing=0.7)
    gt[2] = 0.0  # no valid pixel: contributes nothing
    mask = helpers.random_inv(shape, seed=5, missing=0.2) > 0 if with_mask else None
    valid = gt > 0 if mask is None else (gt > 0) & mask
    want = seed_ref.midas_ssi(pred, gt, valid, alpha=0.3)
    out = SSILoss(alpha=0.3, sparse=True)(pred, gt, mask)
    _check(out.metrics, want, rel=1e-9 if dtype == torch.float64 else 1e-4)
    dense_masked = SSILoss(alpha=0.3)(pred, gt, valid)
    _check(dense_masked.metrics, want, rel=1e-9 if dtype == torch.float64 else 1e-4)


def test_hand_computed_value() -> None:
    # 1x5, one scale, alpha 1. pred [1,2,3,4,10]: median 3, MAD (2+1+0+1+7)/5 = 11/5, so
    # n(p) = [-10,-5,0,5,35]/11; gt [1,2,3,4,5]: median 3, MAD 6/5, n(g) = [-10,-5,0,5,10]/6.
    # r = [50,25,0,-25,100]/66: data = (200/66) / (2*5) = 10/33; neighbour differences
    # 25+25+25+125 = 200 -> (200/66) / 5 = 20/33; total 30/33.
    pred = torch.tensor([[[[1.0, 2.0, 3.0, 4.0, 10.0]]]], dtype=torch.float64)
    gt = torch.tensor([[[[1.0, 2.0, 3.0, 4.0, 5.0]]]], dtype=torch.float64)
    out = SSILoss(alpha=1.0, num_scales=1)(pred, gt)
    assert float(out.metrics["ssi/data"]) == pytest.approx(10 / 33, rel=1e-12)
    assert float(out.metrics["gradient/scale_1"]) == pytest.approx(20 / 33, rel=1e-12)
    assert out.total.item() == pytest.approx(30 / 33, rel=1e-12)


def test_masked_median_is_the_lower_median_of_valid_pixels() -> None:
    x = torch.tensor([[[[5.0, 1.0, 9.0, 3.0]]], [[[7.0, 2.0, 8.0, 4.0]]], [[[6.0, 6.0, 6.0, 6.0]]]])
    valid = torch.tensor(
        [[[[True, True, True, True]]], [[[True, False, True, True]]], [[[False] * 4]]]
    )
    count = valid.sum(dim=(2, 3), keepdim=True).to(x.dtype)
    got = masked_median(x, valid, count).flatten().tolist()
    assert got == [3.0, 7.0, 0.0]  # [1,3,5,9] -> 3; [4,7,8] -> 7; no valid pixel -> 0
    assert masked_median(x, None, torch.full_like(count, 4.0)).flatten().tolist() == [3.0, 4.0, 6.0]


@pytest.mark.parametrize(("a", "b"), [(5.0, 0.3), (80.0, 0.0), (0.01, 1.0)])
def test_invariant_to_positive_affine_maps_and_units(
    helpers: ModuleType, a: float, b: float
) -> None:
    shape = (2, 1, 17, 16)  # odd count per image: the median commutes with a p + b
    pred = helpers.random_inv(shape, seed=6)
    gt = helpers.random_inv(shape, seed=7)
    loss = SSILoss()
    before = loss(pred, gt).metrics
    assert float(before["total_loss"]) > 0
    for moved in (loss(a * pred + b, gt), loss(pred, a * gt + b), loss(a * pred, a * gt)):
        for name, value in before.items():
            assert float(moved.metrics[name]) == pytest.approx(float(value), rel=1e-9), name
    # An exactly positive-affine ground truth is matched perfectly.
    assert loss(pred, 2.0 * pred + 0.1).total.item() == pytest.approx(0.0, abs=1e-12)


def test_inverted_prediction_is_penalised_and_pushed_towards_the_right_sign(
    helpers: ModuleType,
) -> None:
    # MiDaS' least-squares fit took a negative scale and scored an inverted map 0. Here
    # n(c - a g) = -n(g) (odd count), so the data term is mean |2 n(g)| / 2 = 1 exactly.
    shape = (1, 1, 15, 15)
    gt = helpers.random_inv(shape, seed=8)
    inverted = (0.2 - 0.5 * gt).requires_grad_()
    out = SSILoss(alpha=0.0)(inverted, gt)
    assert float(out.metrics["ssi/data"]) == pytest.approx(1.0, rel=1e-12)
    # Gradient descent on the prediction turns it around: the correlation with the ground
    # truth, -1 at the start, becomes positive and the loss falls.
    pred = inverted.detach().clone().requires_grad_()
    optimiser = torch.optim.Adam([pred], lr=0.01)
    for _ in range(200):
        optimiser.zero_grad()
        SSILoss()(pred, gt).total.backward()
        optimiser.step()
        with torch.no_grad():
            pred.clamp_(min=1e-3)
    corr = torch.corrcoef(torch.stack([pred.detach().flatten(), gt.flatten()]))[0, 1]
    assert float(corr) > 0.5
    assert SSILoss()(pred, gt).total.item() < 0.5 * SSILoss()(inverted, gt).total.item()


def test_constant_prediction_scores_mean_abs_of_normalised_gt(helpers: ModuleType) -> None:
    shape = (1, 1, 8, 8)
    pred = torch.full(shape, 0.05, dtype=torch.float64, requires_grad=True)
    gt = helpers.random_inv(shape, seed=8)
    out = SSILoss(num_scales=1)(pred, gt)
    (grad,) = torch.autograd.grad(out.total, pred)
    # n(pred) = 0 (MAD 0), and mean |n(g)| = 1 by construction: data = 1/2.
    assert float(out.metrics["ssi/data"]) == pytest.approx(0.5, rel=1e-12)
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
    assert torch.all(grad[gt == 0] == 0)
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
