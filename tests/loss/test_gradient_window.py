"""The scale-adaptive gradient term over valid windows only (``gradient_window="valid"``):
hand-computed values, agreement with the zero-filled term on dense data away from the
border, scan lines without scan-line edges, and the loss's contract (DESIGN.md)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from loss import ScaleAdaptiveLoss
from loss.ops import downscale, masked_downscale, normalise, sobel_l1, valid_window_sobel_l1

VALID: dict[str, Any] = {"gradient_window": "valid"}


def sobel_map(r: torch.Tensor, helpers: ModuleType) -> torch.Tensor:
    """[B,1,h,w] -> [B,2,h,w]: Sobel x and y with replicate padding (the zero-filled term)."""
    return F.conv2d(F.pad(r, (1, 1, 1, 1), mode="replicate"), helpers.SOBEL.to(r.dtype))


def scan_line_mask(height: int, width: int, *, seed: int, step: int = 8) -> torch.Tensor:
    """[1,1,H,W] LiDAR-like mask: rows 40 %..100 % of the height about 1.6 apart, every
    ``step``-th column from a random phase per row (as trainer.data.synthetic draws it)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(1, 1, height, width, dtype=torch.bool)
    rows = torch.linspace(0.4 * (height - 1), height - 1, 24).round().long().unique()
    for row in rows.tolist():
        phase = int(torch.randint(0, step, (1,), generator=g))
        mask[0, 0, row, phase::step] = True
    return mask


# --- the building blocks, by hand -----------------------------------------------------------


def test_valid_window_sobel_hand_computed() -> None:
    """4x4 map r[i, j] = j on columns 0-2, column 3 invalid (zeroed). Window centres
    (1,1), (1,2), (2,1), (2,2); those in column 2 reach column 3: left out. At (1,1) and
    (2,1): Sobel x = [1,2,1] . (r[:, 2] - r[:, 0]) = 4 * 2 = 8, Sobel y = 0."""
    r = torch.tensor([[0.0, 1.0, 2.0, 0.0]] * 4, dtype=torch.float64).view(1, 1, 4, 4)
    weight = torch.ones_like(r)
    weight[..., 3] = 0.0
    total, count = valid_window_sobel_l1(r, weight)
    assert (float(total), float(count)) == (16.0, 2.0)
    # The zero-filled term sees the fake edge at column 3: (0 - 1) * 4 at (1,2) and (2,2)
    # and more at the border rows.
    assert float(sobel_l1(r)) > 16.0 + 8.0
    # Every pixel valid: all four interior windows, no padding.
    total, count = valid_window_sobel_l1(r, None)
    assert (float(total), float(count)) == (8.0 * 2 + 4.0 * 2, 4.0)
    # Maps smaller than 3x3 have no window: 0 of 0, with a gradient of 0.
    small = torch.ones(1, 1, 2, 5, dtype=torch.float64, requires_grad=True)
    total, count = valid_window_sobel_l1(small, None)
    assert (total.item(), count.item()) == (0.0, 0.0)
    (grad,) = torch.autograd.grad(total, small)
    assert torch.all(grad == 0)


def test_masked_downscale_averages_valid_pixels_only() -> None:
    """Blocks of 2x2: [[1, -], [3, -]] -> mean of the valid pixels 2 (avg_pool gives 1);
    an empty block is 0 and invalid."""
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    weight = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    r_k, weight_k = masked_downscale(r.view(1, 1, 2, 4), weight.view(1, 1, 2, 4), 2)
    assert r_k.flatten().tolist() == [2.0, 0.0]
    assert weight_k is not None and weight_k.flatten().tolist() == [1.0, 0.0]
    # Scale 1 is the map itself; without a mask, plain area means.
    same, w1 = masked_downscale(r.view(1, 1, 2, 4), weight.view(1, 1, 2, 4), 1)
    assert torch.equal(same, r.view(1, 1, 2, 4)) and w1 is not None
    plain, none = masked_downscale(r.view(1, 1, 2, 4), None, 2)
    assert plain.flatten().tolist() == [1.0, 0.0] and none is None


def test_dense_blocks_agree_with_the_zero_filled_ones_away_from_the_border(
    helpers: ModuleType,
) -> None:
    r = helpers.random_inv((2, 1, 32, 48), seed=1) - 0.06
    ones = torch.ones_like(r)
    for weight in (ones, None):
        total, count = valid_window_sobel_l1(r, weight)
        interior = sobel_map(r, helpers)[..., 1:-1, 1:-1].abs().sum()
        assert float(total) == pytest.approx(float(interior), rel=1e-12)
        assert float(count) == 2 * 30 * 46
        # A 2x2 block mean is the bilinear half-size resize (even sizes).
        r_2, w_2 = masked_downscale(r, weight, 2)
        assert torch.allclose(r_2, downscale(r, 2), rtol=0, atol=1e-15)
        assert w_2 is None or bool((w_2 == 1).all())


def test_constant_residual_on_scan_lines_has_no_gradient() -> None:
    """A residual constant on the measured pixels: the zero-filled term responds at every
    scan-line point (about 16 |r| each), the valid-window term is 0 at every scale."""
    weight = scan_line_mask(64, 192, seed=0).to(torch.float64)
    r = 0.7 * weight
    points = float(weight.sum())
    for k in range(1, 5):
        r_k, weight_k = masked_downscale(r, weight, k)
        total, _ = valid_window_sobel_l1(r_k, weight_k)
        assert float(total) == pytest.approx(0.0, abs=1e-12), k
    # Zero-filled, full resolution: per measured point about 16 * 0.7 (less where two
    # points share a window).
    zero_filled = float(sobel_l1(r)) / points
    assert 0.7 * 12 < zero_filled <= 0.7 * 16 + 1e-9
    assert all(float(sobel_l1(downscale(r, k))) > 1.0 for k in range(2, 5))


# --- the loss ---------------------------------------------------------------------------------


def _residual(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """r = n(pred) - n(gt) in depth / 80 m, every pixel valid, epsilon 1e-8 (the defaults)."""
    pd, gd = 1.0 / (80.0 * pred), 1.0 / (80.0 * gt)
    count = torch.full((pred.shape[0], 1, 1, 1), float(pred.shape[2] * pred.shape[3]))
    count = count.to(pred.dtype)
    return normalise(pd, None, count, 1e-8) - normalise(gd, None, count, 1e-8)


@pytest.mark.parametrize("with_mask", [False, True])
def test_dense_equals_zero_filled_away_from_border(helpers: ModuleType, with_mask: bool) -> None:
    """Every pixel valid, K = 2, even sizes: scale k's term is the zero-filled Sobel map of
    the (bilinear) resized residual summed inside the border, over the interior count."""
    shape = (2, 1, 32, 48)
    pred, gt = helpers.random_inv(shape, seed=2), helpers.random_inv(shape, seed=3)
    mask = torch.ones(shape, dtype=torch.bool) if with_mask else None
    valid = ScaleAdaptiveLoss(num_scales=2, **VALID)(pred, gt, mask).metrics
    zero_filled = ScaleAdaptiveLoss(num_scales=2)(pred, gt, mask).metrics
    r = _residual(pred, gt)
    for k in (1, 2):
        r_k = downscale(r, k)
        h, w = r_k.shape[2:]
        want = sobel_map(r_k, helpers)[..., 1:-1, 1:-1].abs().sum() / (2 * (h - 2) * (w - 2))
        got = float(valid[f"gradient/scale_{k}"])
        assert got == pytest.approx(float(want), rel=1e-9), k
        # The same operator: the zero-filled term differs by its border rows only.
        assert got == pytest.approx(float(zero_filled[f"gradient/scale_{k}"]), rel=0.1)
    for name in ("scale_adaptive/relative", "scale_adaptive/absolute"):
        if name in zero_filled:
            assert float(valid[name]) == float(zero_filled[name]), name


def test_sparse_all_true_mask_equals_dense(helpers: ModuleType) -> None:
    shape = (2, 1, 24, 40)
    pred, gt = helpers.random_inv(shape, seed=4), helpers.random_inv(shape, seed=5)
    mask = torch.ones(shape, dtype=torch.bool)
    dense = ScaleAdaptiveLoss(num_scales=3, **VALID)(pred, gt, mask).metrics
    sparse = ScaleAdaptiveLoss(num_scales=3, sparse=True, **VALID)(pred, gt).metrics
    assert list(dense) == list(sparse)
    for name, value in dense.items():
        assert float(sparse[name]) == pytest.approx(float(value), rel=1e-12), name


def test_full_resolution_is_per_scale_times_area_summed(helpers: ModuleType) -> None:
    shape = (2, 1, 32, 48)
    pred = helpers.random_inv(shape, seed=6)
    gt = helpers.random_inv(shape, seed=7, missing=0.6)
    kwargs: dict[str, Any] = {"num_scales": 4, "sparse": True, **VALID}
    per = ScaleAdaptiveLoss(**kwargs)(pred, gt).metrics
    full = ScaleAdaptiveLoss(**kwargs, gradient_normalization="full-resolution")(pred, gt).metrics
    terms = []
    for k in range(1, 5):
        area = (32 // 2 ** (k - 1)) * (48 // 2 ** (k - 1)) / (32 * 48)
        want = float(per[f"gradient/scale_{k}"]) * area
        assert float(full[f"gradient/scale_{k}"]) == pytest.approx(want, rel=1e-12), k
        terms.append(want)
    assert float(full["loss_sg"]) == pytest.approx(sum(terms), rel=1e-12)
    assert float(per["loss_sg"]) == pytest.approx(
        sum(float(per[f"gradient/scale_{k}"]) for k in range(1, 5)) / 4, rel=1e-12
    )


def _smooth_scene(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth: a ground plane (depth grows towards the horizon) and a wall; the
    prediction: the same depth times a slowly varying factor (a smooth error)."""
    y = torch.linspace(0.0, 1.0, height, dtype=torch.float64).view(1, 1, -1, 1)
    x = torch.linspace(0.0, 1.0, width, dtype=torch.float64).view(1, 1, 1, -1)
    depth = 3.0 + 40.0 * (1.0 - y) ** 2 + 5.0 * (x > 0.6)
    pred_depth = depth * (1.0 + 0.3 * torch.sin(6.0 * x) * torch.cos(3.0 * y))
    return 1.0 / pred_depth, 1.0 / depth


def test_scan_lines_do_not_dominate_the_valid_window_term() -> None:
    """The same smooth error seen densely and on scan lines. Zero-filled, the scan lines
    triple L_sg (an edge at every point: scale 1 is about 16 x the relative term, so L_sg
    follows that term); with valid windows it stays what dense ground truth shows
    (0.61 against 0.66 here)."""
    pred, gt = _smooth_scene(64, 192)
    mask = scan_line_mask(64, 192, seed=1)
    sparse_gt = torch.where(mask, gt, 0.0)
    dense = ScaleAdaptiveLoss(sparse=True, **VALID)(pred, gt).metrics
    valid = ScaleAdaptiveLoss(sparse=True, **VALID)(pred, sparse_gt).metrics
    zero_filled = ScaleAdaptiveLoss(sparse=True)(pred, sparse_gt).metrics
    relative = float(zero_filled["scale_adaptive/relative"])
    assert float(valid["scale_adaptive/relative"]) == relative
    # Zero-filled: about 16 x relative at full resolution (isolated points).
    assert 12 * relative < float(zero_filled["gradient/scale_1"]) <= 16 * relative
    assert float(zero_filled["loss_sg"]) > 3 * float(dense["loss_sg"])
    # Valid windows: no full-resolution window on single scan lines; the coarse scales
    # see the smooth error, about as strongly as dense ground truth shows it.
    assert float(valid["gradient/scale_1"]) == 0.0
    assert float(valid["loss_sg"]) == pytest.approx(float(dense["loss_sg"]), rel=0.2)
    assert float(valid["gradient/scale_3"]) > 0 and float(valid["gradient/scale_4"]) > 0
    assert float(zero_filled["loss_sg"]) > 3 * float(valid["loss_sg"])


# --- the contract -----------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
def test_batch_without_any_valid_pixel_is_zero(helpers: ModuleType, sparse: bool) -> None:
    shape = (2, 1, 16, 16)
    p = helpers.random_inv(shape, seed=8).requires_grad_()
    gt = torch.zeros(shape, dtype=torch.float64)
    mask = torch.zeros(shape, dtype=torch.bool)
    out = ScaleAdaptiveLoss(sparse=sparse, **VALID)(p, gt, mask)
    (grad,) = torch.autograd.grad(out.total, p)
    assert out.total.item() == 0.0
    assert all(float(v) == 0.0 for v in out.metrics.values())
    assert torch.all(grad == 0)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_with_95_percent_missing_and_empty_images(
    helpers: ModuleType, sparse: bool, dtype: torch.dtype
) -> None:
    shape = (3, 1, 48, 64)
    pred = helpers.random_inv(shape, seed=9, dtype=dtype)
    gt = helpers.random_inv(shape, seed=10, dtype=dtype, missing=0.95)
    gt[1] = 0.0
    loss = ScaleAdaptiveLoss(sparse=sparse, epsilon=0.0, **VALID)
    p = pred.clone().requires_grad_()
    out = loss(p, gt, gt > 0)
    (grad,) = torch.autograd.grad(out.total, p)
    assert torch.isfinite(out.total) and all(torch.isfinite(v) for v in out.metrics.values())
    assert torch.isfinite(grad).all()
    assert torch.all(grad[1] == 0)
    assert torch.all(grad[gt == 0] == 0)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("use_inv_depth", [False, True])
def test_invariant_to_affine_gt(helpers: ModuleType, sparse: bool, use_inv_depth: bool) -> None:
    shape = (2, 1, 20, 28)
    pred = helpers.random_inv(shape, seed=11)
    gt = helpers.random_inv(shape, seed=12, missing=0.5 if sparse else 0.0)
    valid = gt > 0
    a, b = 7.0, 40.0
    if use_inv_depth:
        moved = torch.where(valid, a * gt + b, 0.0)
    else:
        moved = torch.where(valid, 1.0 / (a / torch.where(valid, gt, 1.0) + b), 0.0)
    loss = ScaleAdaptiveLoss(epsilon=0.0, sparse=sparse, use_inv_depth=use_inv_depth, **VALID)
    before, after = loss(pred, gt).metrics, loss(pred, moved).metrics
    names = ["scale_adaptive/relative", "loss_sg"] + [f"gradient/scale_{k}" for k in range(1, 5)]
    for name in names:
        assert float(after[name]) == pytest.approx(float(before[name]), rel=1e-9, abs=1e-12)


def test_invalid_pixels_do_not_matter(helpers: ModuleType) -> None:
    shape = (2, 1, 16, 20)
    pred = helpers.random_inv(shape, seed=13)
    gt = helpers.random_inv(shape, seed=14, missing=0.2)
    loss = ScaleAdaptiveLoss(sparse=True, num_scales=3, **VALID)
    out = loss(pred, gt)
    again = loss(torch.where(gt > 0, pred, 123.0), gt)
    for name, value in out.metrics.items():
        assert float(again.metrics[name]) == pytest.approx(float(value), rel=1e-12), name


@pytest.mark.parametrize(("sparse", "with_mask"), [(False, False), (False, True), (True, False)])
def test_gradcheck(helpers: ModuleType, sparse: bool, with_mask: bool) -> None:
    shape = (1, 1, 6, 7)
    pred = helpers.random_inv(shape, seed=15).requires_grad_()
    gt = helpers.random_inv(shape, seed=16, missing=0.15 if sparse else 0.0)
    mask = helpers.random_inv(shape, seed=17, missing=0.1) > 0 if with_mask else None
    loss = ScaleAdaptiveLoss(sparse=sparse, num_scales=2, **VALID)
    assert float(loss(pred, gt, mask).metrics["gradient/scale_1"]) > 0  # windows exist
    assert torch.autograd.gradcheck(lambda p: loss(p, gt, mask).total, (pred,))


def test_default_is_the_seeds_zero_filled_window(helpers: ModuleType) -> None:
    shape = (1, 1, 16, 24)
    pred, gt = helpers.random_inv(shape, seed=18), helpers.random_inv(shape, seed=19, missing=0.5)
    assert ScaleAdaptiveLoss().gradient_window == "zero-filled"
    default = ScaleAdaptiveLoss(sparse=True)(pred, gt).metrics
    named = ScaleAdaptiveLoss(sparse=True, gradient_window="zero-filled")(pred, gt).metrics
    assert all(torch.equal(default[k], named[k]) for k in default)
    with pytest.raises(ValueError, match="gradient_window must be one of zero-filled, valid"):
        ScaleAdaptiveLoss(gradient_window="dense")  # type: ignore[arg-type]
