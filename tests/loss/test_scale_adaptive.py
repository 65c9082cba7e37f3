"""The Scale-Adaptive Loss: agreement with the seed's formulas on dense inputs, DESIGN.md's
masked formulas elsewhere, and the properties DESIGN.md pins."""

from __future__ import annotations

import copy
import itertools
from types import ModuleType

import pytest
import torch

from loss import ScaleAdaptiveLoss

SHAPES = [(2, 1, 32, 48), (1, 1, 17, 23), (3, 1, 33, 65)]  # odd sizes: resizing floors
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("use_inv_depth", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_dense_equals_seed_formulas(
    seed_ref: ModuleType,
    helpers: ModuleType,
    shape: tuple[int, int, int, int],
    use_inv_depth: bool,
    dtype: torch.dtype,
) -> None:
    tol = TOLERANCE[dtype]
    gt = helpers.random_inv(shape, seed=1, dtype=dtype)
    for num_scales in range(1, 6):
        pred = helpers.random_inv(shape, seed=10 + num_scales, dtype=dtype)
        kwargs = {"lambda_sg": 0.7, "num_scales": num_scales, "use_inv_depth": use_inv_depth}
        # The seed's formulas in the loss's unit-free domain (default range 1-80 m).
        c = helpers.input_scale(use_inv_depth)
        p0 = pred.clone().requires_grad_()
        want, want_metrics = seed_ref.seed_scale_adaptive(p0 * c, gt * c, **kwargs)
        (want_grad,) = torch.autograd.grad(want, p0)
        p1 = pred.clone().requires_grad_()
        got, got_metrics = ScaleAdaptiveLoss(**kwargs)(p1, gt)
        (got_grad,) = torch.autograd.grad(got, p1)

        # The seed reports "absolute" = 0 without a mask; the design leaves it out.
        assert want_metrics.pop("scale_adaptive/absolute") == 0
        assert list(got_metrics) == list(want_metrics)
        for name, value in want_metrics.items():
            assert got_metrics[name].dtype == dtype
            # Relative error, except near 0: a 1x1 scale has no gradient, exactly 0 here
            # and rounding noise (1e-7) in the seed's convolution.
            want_value = float(value.detach())
            assert float(got_metrics[name]) == pytest.approx(want_value, rel=tol, abs=tol), (
                name,
                num_scales,
            )
        assert helpers.rel_err(got, want) < tol
        assert helpers.rel_err(got_grad, want_grad) < tol


def test_dense_with_all_true_mask_equals_seed_with_mask(
    seed_ref: ModuleType, helpers: ModuleType
) -> None:
    shape = (2, 1, 24, 40)
    pred, gt = helpers.random_inv(shape, seed=3), helpers.random_inv(shape, seed=4)
    mask = torch.ones(shape, dtype=torch.bool)
    c = helpers.input_scale(use_inv_depth=False)  # depth / 80 m
    _, want = seed_ref.seed_scale_adaptive(pred * c, gt * c, mask, num_scales=3)
    out = ScaleAdaptiveLoss(num_scales=3)(pred, gt, mask)
    assert list(out.metrics) == list(want)
    for name, value in want.items():
        assert helpers.rel_err(out.metrics[name], value) < 1e-9, name
    # The absolute term is the one in metres (depths of 9-100 m) over max_depth.
    _, metres = seed_ref.seed_scale_adaptive(pred, gt, mask, num_scales=3)
    assert float(metres["scale_adaptive/absolute"]) > 1.0
    absolute = float(metres["scale_adaptive/absolute"]) / 80.0
    assert float(out.metrics["scale_adaptive/absolute"]) == pytest.approx(absolute, rel=1e-10)


def test_hand_computed_value() -> None:
    # 2x2, inverse depth used directly, epsilon 0:
    # pred [[1,2],[3,4]]: mean 2.5, MAD 1   -> [[-1.5,-0.5],[0.5,1.5]]
    # gt   [[1,1],[1,5]]: mean 2,   MAD 1.5 -> [[-2/3,-2/3],[-2/3,2]]
    # r = [[-5/6,1/6],[7/6,-1/2]]: relative = (8/3)/4 = 2/3.
    # Replicate-padded Sobel: sum|gx| = sum|gy| = 32/3, so scale 1 = (64/3)/4 = 16/3.
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    gt = torch.tensor([[[[1.0, 1.0], [1.0, 5.0]]]], dtype=torch.float64)
    out = ScaleAdaptiveLoss(epsilon=0.0, num_scales=1, use_inv_depth=True)(pred, gt)
    assert float(out.metrics["scale_adaptive/relative"]) == pytest.approx(2 / 3, rel=1e-12)
    assert float(out.metrics["gradient/scale_1"]) == pytest.approx(16 / 3, rel=1e-12)
    assert out.total.item() == pytest.approx(2 / 3 + 0.5 * 16 / 3, rel=1e-12)


@pytest.mark.parametrize(
    ("sparse", "with_mask", "use_inv_depth"),
    list(itertools.product([True, False], [True, False], [True, False])),
)
def test_masked_equals_design_formulas(
    helpers: ModuleType, sparse: bool, with_mask: bool, use_inv_depth: bool
) -> None:
    shape = (3, 1, 16, 24)  # divisible by 2^(K-1): N_k = sum(m) / 4^(k-1) exactly
    pred = helpers.random_inv(shape, seed=5)
    gt = helpers.random_inv(shape, seed=6, missing=0.6)
    mask = helpers.random_inv(shape, seed=7, missing=0.3) > 0 if with_mask else None
    kwargs = {"num_scales": 4, "use_inv_depth": use_inv_depth, "lambda_sg": 0.3}
    want = helpers.design_reference(pred, gt, mask, sparse=sparse, **kwargs)
    out = ScaleAdaptiveLoss(sparse=sparse, **kwargs)(pred, gt, mask)
    assert tuple(out.metrics) == ScaleAdaptiveLoss(sparse=sparse, **kwargs).metric_names(with_mask)
    assert set(out.metrics) == set(want)
    for name, value in want.items():
        assert float(out.metrics[name]) == pytest.approx(value, rel=1e-10, abs=1e-12), name


@pytest.mark.parametrize("shape", [(2, 1, 16, 32), (2, 1, 19, 27)])
@pytest.mark.parametrize("use_inv_depth", [False, True])
def test_sparse_with_all_true_mask_equals_dense(
    helpers: ModuleType, shape: tuple[int, int, int, int], use_inv_depth: bool
) -> None:
    pred, gt = helpers.random_inv(shape, seed=8), helpers.random_inv(shape, seed=9)
    mask = torch.ones(shape, dtype=torch.bool)
    kwargs = {"num_scales": 4, "use_inv_depth": use_inv_depth}
    sparse = ScaleAdaptiveLoss(sparse=True, **kwargs)(pred, gt, mask)
    dense = ScaleAdaptiveLoss(sparse=False, **kwargs)(pred, gt, mask)
    assert list(sparse.metrics) == list(dense.metrics)
    for name, value in dense.metrics.items():
        assert float(sparse.metrics[name]) == pytest.approx(float(value), rel=1e-12), name
    # Without a mask the sparse method still counts only gt > 0 (all here): same terms,
    # and it adds the absolute term, which the dense method drops without a mask.
    unmasked = ScaleAdaptiveLoss(sparse=True, **kwargs)(pred, gt)
    assert unmasked.total.item() == pytest.approx(dense.total.item(), rel=1e-12)
    assert "scale_adaptive/absolute" not in ScaleAdaptiveLoss(**kwargs)(pred, gt).metrics


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("use_inv_depth", [False, True])
@pytest.mark.parametrize(("a", "b"), [(3.0, 0.0), (0.01, 2.5), (7.0, 40.0)])
def test_relative_and_gradient_invariant_to_affine_gt(
    helpers: ModuleType, sparse: bool, use_inv_depth: bool, a: float, b: float
) -> None:
    shape = (2, 1, 20, 28)
    pred = helpers.random_inv(shape, seed=11)
    gt = helpers.random_inv(shape, seed=12, missing=0.5 if sparse else 0.0)
    valid = gt > 0
    if use_inv_depth:
        moved = torch.where(valid, a * gt + b, 0.0)
    else:  # a * depth + b, back to inverse depth
        moved = torch.where(valid, 1.0 / (a / torch.where(valid, gt, 1.0) + b), 0.0)
    loss = ScaleAdaptiveLoss(epsilon=0.0, sparse=sparse, use_inv_depth=use_inv_depth)
    before, after = loss(pred, gt).metrics, loss(pred, moved).metrics
    names = ["scale_adaptive/relative", "loss_sg"] + [f"gradient/scale_{k}" for k in range(1, 5)]
    for name in names:
        assert float(after[name]) == pytest.approx(float(before[name]), rel=1e-9), name
    # The absolute term is not invariant, and must notice the change.
    if sparse:
        assert float(after["scale_adaptive/absolute"]) != pytest.approx(
            float(before["scale_adaptive/absolute"]), rel=1e-3
        )


@pytest.mark.parametrize("sparse", [False, True])
def test_invalid_pixels_do_not_matter(helpers: ModuleType, sparse: bool) -> None:
    shape = (2, 1, 16, 20)
    pred = helpers.random_inv(shape, seed=13)
    gt = helpers.random_inv(shape, seed=14, missing=0.4)
    mask = helpers.random_inv(shape, seed=15, missing=0.3) > 0
    valid = mask & (gt > 0) if sparse else mask
    loss = ScaleAdaptiveLoss(sparse=sparse)
    p = pred.clone().requires_grad_()
    out = loss(p, gt, mask)
    (grad,) = torch.autograd.grad(out.total, p)
    assert torch.all(grad[~valid] == 0)
    assert torch.all(grad[valid] != 0)
    # Other values at invalid pixels, prediction and (dense method) ground truth alike.
    other_pred = torch.where(valid, pred, 123.0)
    other_gt = torch.where(valid, gt, 0.5)
    again = loss(other_pred, other_gt if not sparse else gt, mask)
    for name, value in out.metrics.items():
        assert float(again.metrics[name]) == pytest.approx(float(value), rel=1e-12), name


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("use_inv_depth", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_with_95_percent_missing_and_empty_images(
    helpers: ModuleType, sparse: bool, use_inv_depth: bool, dtype: torch.dtype
) -> None:
    shape = (3, 1, 48, 64)
    pred = helpers.random_inv(shape, seed=16, dtype=dtype)
    gt = helpers.random_inv(shape, seed=17, dtype=dtype, missing=0.95)
    gt[1] = 0.0  # an image without any ground truth
    mask = gt > 0
    loss = ScaleAdaptiveLoss(sparse=sparse, use_inv_depth=use_inv_depth, epsilon=0.0)
    p = pred.clone().requires_grad_()
    out = loss(p, gt, mask)
    (grad,) = torch.autograd.grad(out.total, p)
    assert torch.isfinite(out.total)
    assert all(torch.isfinite(v) for v in out.metrics.values())
    assert torch.isfinite(grad).all()
    assert torch.all(grad[1] == 0)  # the empty image gets no gradient
    assert float(out.metrics["scale_adaptive/relative"]) > 0.1  # not collapsed (seed: ~1e-6)


def test_image_without_ground_truth_contributes_zero(helpers: ModuleType) -> None:
    shape = (1, 1, 16, 24)
    pred = helpers.random_inv(shape, seed=18)
    gt = helpers.random_inv(shape, seed=19, missing=0.7)
    empty_gt = torch.zeros_like(gt)
    loss = ScaleAdaptiveLoss(sparse=True)
    alone = loss(pred, gt)
    paired = loss(torch.cat([pred, pred.flip(-1)]), torch.cat([gt, empty_gt]))
    for name, value in alone.metrics.items():
        assert float(paired.metrics[name]) == pytest.approx(float(value), rel=1e-12), name


@pytest.mark.parametrize("sparse", [False, True])
def test_batch_without_any_valid_pixel_is_zero(helpers: ModuleType, sparse: bool) -> None:
    shape = (2, 1, 16, 16)
    p = helpers.random_inv(shape, seed=20).requires_grad_()
    gt = torch.zeros(shape, dtype=torch.float64)
    mask = torch.zeros(shape, dtype=torch.bool)
    out = ScaleAdaptiveLoss(sparse=sparse)(p, gt, mask)
    (grad,) = torch.autograd.grad(out.total, p)
    assert out.total.item() == 0.0
    assert all(float(v) == 0.0 for v in out.metrics.values())
    assert torch.all(grad == 0)


def test_constant_ground_truth_with_epsilon_zero_is_finite(helpers: ModuleType) -> None:
    shape = (2, 1, 12, 12)
    p = helpers.random_inv(shape, seed=21).requires_grad_()
    gt = torch.full(shape, 0.05, dtype=torch.float64)  # MAD 0, epsilon 0: no 0/0
    out = ScaleAdaptiveLoss(epsilon=0.0)(p, gt)
    (grad,) = torch.autograd.grad(out.total, p)
    assert torch.isfinite(out.total) and torch.isfinite(grad).all()
    # n(gt) = 0, so the relative term is the mean |n(pred)| = 1 (MAD-normalised).
    assert float(out.metrics["scale_adaptive/relative"]) == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(
    ("sparse", "use_inv_depth", "with_mask"),
    [(False, False, False), (False, True, True), (True, False, True), (True, True, False)],
)
def test_gradcheck(helpers: ModuleType, sparse: bool, use_inv_depth: bool, with_mask: bool) -> None:
    shape = (2, 1, 6, 7)
    pred = helpers.random_inv(shape, seed=22).requires_grad_()
    gt = helpers.random_inv(shape, seed=23, missing=0.3 if sparse else 0.0)
    mask = helpers.random_inv(shape, seed=24, missing=0.2) > 0 if with_mask else None
    loss = ScaleAdaptiveLoss(sparse=sparse, use_inv_depth=use_inv_depth, num_scales=2)
    assert torch.autograd.gradcheck(lambda p: loss(p, gt, mask).total, (pred,))


def test_call_changes_nothing(helpers: ModuleType) -> None:
    shape = (2, 1, 16, 16)
    pred = helpers.random_inv(shape, seed=25, dtype=torch.float32)
    gt = helpers.random_inv(shape, seed=26, dtype=torch.float32, missing=0.5)
    mask = (gt > 0).to(torch.uint8)
    inputs = [t.clone() for t in (pred, gt, mask)]
    loss = ScaleAdaptiveLoss(sparse=True, num_scales=3)
    before = copy.deepcopy(loss)
    first, second = loss(pred, gt, mask), loss(pred, gt, mask)
    assert loss == before
    assert all(torch.equal(a, b) for a, b in zip(inputs, (pred, gt, mask), strict=True))
    assert torch.equal(first.total, second.total)
    for name, value in first.metrics.items():
        assert value.shape == () and not value.requires_grad
        assert torch.equal(value, second.metrics[name])


def test_mask_dtypes_agree(helpers: ModuleType) -> None:
    shape = (2, 1, 16, 16)
    pred, gt = helpers.random_inv(shape, seed=27), helpers.random_inv(shape, seed=28)
    mask = helpers.random_inv(shape, seed=29, missing=0.5) > 0
    loss = ScaleAdaptiveLoss()
    want = loss(pred, gt, mask).total
    for dtype in (torch.uint8, torch.int64, torch.float32, torch.float64):
        assert torch.equal(loss(pred, gt, mask.to(dtype)).total, want), dtype


def test_metric_names_and_absolute_term(helpers: ModuleType) -> None:
    shape = (1, 1, 16, 16)
    pred, gt = helpers.random_inv(shape, seed=30), helpers.random_inv(shape, seed=31)
    mask = torch.ones(shape, dtype=torch.bool)
    base = ["scale_adaptive/relative"]
    tail = ["gradient/scale_1", "gradient/scale_2", "total_loss", "loss_sa", "loss_sg"]
    with_abs = [*base, "scale_adaptive/absolute", *tail]
    cases = [
        (ScaleAdaptiveLoss(num_scales=2), None, base + tail),
        (ScaleAdaptiveLoss(num_scales=2), mask, with_abs),
        (ScaleAdaptiveLoss(num_scales=2, sparse=True), None, with_abs),
        (ScaleAdaptiveLoss(num_scales=2, sparse=True, use_absolute=False), mask, base + tail),
    ]
    for loss, m, names in cases:
        out = loss(pred, gt, m)
        assert list(out.metrics) == names
        assert list(out.metrics) == list(loss.metric_names(m is not None))
        sa = out.metrics["scale_adaptive/relative"] + out.metrics.get(
            "scale_adaptive/absolute", torch.tensor(0.0, dtype=torch.float64)
        )
        assert float(out.metrics["loss_sa"]) == pytest.approx(float(sa), rel=1e-12)
        sg = (out.metrics["gradient/scale_1"] + out.metrics["gradient/scale_2"]) / 2
        assert float(out.metrics["loss_sg"]) == pytest.approx(float(sg), rel=1e-12)
        total = out.metrics["loss_sa"] + loss.lambda_sg * out.metrics["loss_sg"]
        assert out.total.item() == pytest.approx(float(total), rel=1e-12)
    assert ScaleAdaptiveLoss().method == "scale-adaptive"
    assert ScaleAdaptiveLoss(sparse=True).method == "sparse-scale-adaptive"


@pytest.mark.parametrize("use_inv_depth", [False, True])
def test_extreme_values_at_invalid_pixels_stay_out(
    helpers: ModuleType, use_inv_depth: bool
) -> None:
    # 1 / 1e-38 = 1e38 is finite in float32 but its square (the reciprocal's derivative)
    # is not: were invalid pixels computed with and masked afterwards, 0 * inf = NaN.
    shape = (2, 1, 16, 16)
    pred = helpers.random_inv(shape, seed=32, dtype=torch.float32)
    gt = helpers.random_inv(shape, seed=33, dtype=torch.float32, missing=0.5)
    invalid = gt == 0
    p = torch.where(invalid, 1e-38, pred).requires_grad_()
    loss = ScaleAdaptiveLoss(sparse=True, use_inv_depth=use_inv_depth)
    out = loss(p, gt)
    (grad,) = torch.autograd.grad(out.total, p)
    assert torch.isfinite(grad).all() and torch.all(grad[invalid] == 0)
    assert torch.equal(out.total, loss(pred, gt).total)


def test_gradient_normalization_hand_computed_dense() -> None:
    # 4x4, inverse depth used directly, epsilon 0, constant gt: n(gt) = 0 (MAD 0), so
    # r = n(pred); pred rows [1,1,3,3]: mean 2, MAD 1 -> r rows [-1,-1,1,1]; relative 1.
    # Scale 1: Sobel x per row [0,2,2,0] (replicate), smoothed x4 -> [0,8,8,0]; 4 rows:
    #   S_1 = 64, Sobel y = 0.  Scale 2 (2x2 block means): rows [-1,1] -> S_2 = 2 * 16 = 32.
    #   Scale 3 (1x1): the mean 0 -> S_3 = 0.
    # per-scale: (64/16 + 32/4 + 0/1) / 3 = 4;  full-resolution: (64 + 32 + 0) / 16 = 6.
    pred = torch.tensor([[1.0, 1.0, 3.0, 3.0]], dtype=torch.float64).expand(4, 4)[None, None]
    gt = torch.full((1, 1, 4, 4), 5.0, dtype=torch.float64)
    kwargs = {"epsilon": 0.0, "num_scales": 3, "use_inv_depth": True}
    per_scale = ScaleAdaptiveLoss(**kwargs)(pred, gt).metrics
    full = ScaleAdaptiveLoss(**kwargs, gradient_normalization="full-resolution")(pred, gt).metrics
    assert [float(per_scale[f"gradient/scale_{k}"]) for k in (1, 2, 3)] == [4.0, 8.0, 0.0]
    assert [float(full[f"gradient/scale_{k}"]) for k in (1, 2, 3)] == [4.0, 2.0, 0.0]
    assert float(per_scale["loss_sg"]) == pytest.approx(4.0, rel=1e-12)
    assert float(full["loss_sg"]) == pytest.approx(6.0, rel=1e-12)
    assert float(full["scale_adaptive/relative"]) == 1.0
    assert float(full["total_loss"]) == pytest.approx(1.0 + 0.5 * 6.0, rel=1e-12)


def test_gradient_normalization_hand_computed_sparse() -> None:
    # As above with the last row missing (gt 0): 12 valid pixels, r rows 0-2 [-1,-1,1,1],
    # row 3 zero. Scale 1: sum|Sobel x| = 16 + 16 + 12 + 4 = 48, sum|Sobel y| = 12 + 12
    # -> S_1 = 72. Scale 2: r_2 = [[-1,1],[-0.5,0.5]] -> |Sobel x| 14 + 10, |Sobel y| 2 + 2
    # -> S_2 = 28. per-scale: N_1 = 12, N_2 = 12/4 -> (6 + 28/3) / 2 = 23/3.
    # full-resolution: N_1 = 12 for both -> 6 + 28/12 = 25/3.
    pred = torch.tensor([[1.0, 1.0, 3.0, 3.0]], dtype=torch.float64).expand(4, 4)[None, None]
    gt = torch.full((1, 1, 4, 4), 5.0, dtype=torch.float64)
    gt[..., 3, :] = 0.0
    kwargs = {"epsilon": 0.0, "num_scales": 2, "use_inv_depth": True, "use_absolute": False}
    per_scale = ScaleAdaptiveLoss(**kwargs, sparse=True)(pred, gt).metrics
    full = ScaleAdaptiveLoss(**kwargs, sparse=True, gradient_normalization="full-resolution")(
        pred, gt
    ).metrics
    assert float(per_scale["gradient/scale_1"]) == pytest.approx(6.0, rel=1e-12)
    assert float(per_scale["gradient/scale_2"]) == pytest.approx(28 / 3, rel=1e-12)
    assert float(per_scale["loss_sg"]) == pytest.approx(23 / 3, rel=1e-12)
    assert float(full["gradient/scale_1"]) == pytest.approx(6.0, rel=1e-12)
    assert float(full["gradient/scale_2"]) == pytest.approx(7 / 3, rel=1e-12)
    assert float(full["loss_sg"]) == pytest.approx(25 / 3, rel=1e-12)
    assert float(full["total_loss"]) == pytest.approx(1.0 + 0.5 * 25 / 3, rel=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("shape", [(2, 1, 32, 48), (3, 1, 33, 65)])
def test_full_resolution_is_per_scale_times_area_summed(
    helpers: ModuleType, sparse: bool, shape: tuple[int, int, int, int]
) -> None:
    # g_k(full) = S_k / N_1 = g_k(per-scale) * h_k w_k / (H W); loss_sg the sum, not mean.
    pred = helpers.random_inv(shape, seed=34)
    gt = helpers.random_inv(shape, seed=35, missing=0.4 if sparse else 0.0)
    height, width = shape[2], shape[3]
    for num_scales in (1, 3, 5):
        kwargs = {"num_scales": num_scales, "sparse": sparse}
        per_scale = ScaleAdaptiveLoss(**kwargs)(pred, gt).metrics
        full = ScaleAdaptiveLoss(**kwargs, gradient_normalization="full-resolution")(pred, gt)
        want_sum = 0.0
        for k in range(1, num_scales + 1):
            area = (height // 2 ** (k - 1)) * (width // 2 ** (k - 1)) / (height * width)
            want = float(per_scale[f"gradient/scale_{k}"]) * area
            assert float(full.metrics[f"gradient/scale_{k}"]) == pytest.approx(want, rel=1e-12)
            want_sum += want
        assert float(full.metrics["loss_sg"]) == pytest.approx(want_sum, rel=1e-12)
        # The other terms do not depend on the normalisation.
        for name in ("scale_adaptive/relative", "loss_sa"):
            assert torch.equal(full.metrics[name], per_scale[name])
        if num_scales == 1:
            assert torch.equal(full.total, per_scale["total_loss"])
