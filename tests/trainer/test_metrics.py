"""Depth metrics against values computed by hand on tiny images, and the scale-and-shift
alignment against an independent numpy least-squares implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainer.metrics import (
    METRIC_NAMES,
    Alignment,
    DepthMetricAccumulator,
    depth_metrics_per_image,
    garg_crop_mask,
    metric_keys,
)


def _t(rows: list[list[float]]) -> torch.Tensor:
    """One [1,1,H,W] float32 depth map."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def _expected(gt: list[float], pred: list[float]) -> list[float]:
    """The seven metrics of already-valid, already-clamped pixel lists, in plain Python."""
    n = len(gt)
    ratio = [max(g / p, p / g) for g, p in zip(gt, pred, strict=True)]
    return [
        sum(abs(g - p) / g for g, p in zip(gt, pred, strict=True)) / n,
        sum((g - p) ** 2 / g for g, p in zip(gt, pred, strict=True)) / n,
        math.sqrt(sum((g - p) ** 2 for g, p in zip(gt, pred, strict=True)) / n),
        math.sqrt(sum(math.log(g / p) ** 2 for g, p in zip(gt, pred, strict=True)) / n),
        sum(r < 1.25 for r in ratio) / n,
        sum(r < 1.25**2 for r in ratio) / n,
        sum(r < 1.25**3 for r in ratio) / n,
    ]


def _metrics(
    pred: torch.Tensor, gt: torch.Tensor, *, garg_crop: bool = False, alignment: Alignment = "none"
) -> list[float]:
    values, valid = depth_metrics_per_image(
        pred, gt, min_depth=1.0, max_depth=80.0, garg_crop=garg_crop, alignment=alignment
    )
    assert values.dtype == torch.float64
    assert valid.tolist() == [True] * len(valid)
    return values[0].tolist()


# gt 0 (missing) and 100 (> max_depth) are not evaluated; 2 m and 4 m are.
GT = _t([[2.0, 4.0], [0.0, 100.0]])
PRED = _t([[1.8, 7.0], [5.0, 5.0]])


def test_raw_metrics_by_hand() -> None:
    got = _metrics(PRED, GT)
    # abs_rel = (0.2/2 + 3/4) / 2; sq_rel = (0.04/2 + 9/4) / 2; rmse = sqrt((0.04 + 9) / 2);
    # ratios 1.11 and 1.75: a1 = a2 = 1/2, a3 = 1.
    hand = [0.425, 1.135, math.sqrt(4.52), None, 0.5, 0.5, 1.0]
    rmse_log = math.sqrt((math.log(2 / 1.8) ** 2 + math.log(4 / 7) ** 2) / 2)
    hand[3] = rmse_log
    assert got == pytest.approx(hand, rel=1e-6)
    assert got == pytest.approx(_expected([2.0, 4.0], [1.8, 7.0]), rel=1e-6)


def test_median_scaling_uses_the_lower_median_as_packnet() -> None:
    # torch.median of [2, 4] is 2 and of [1.8, 7] is 1.8: pred *= 2 / 1.8.
    scaled = [1.8 * 2 / 1.8, 7.0 * 2 / 1.8]
    got = _metrics(PRED, GT, alignment="median")
    assert got == pytest.approx(_expected([2.0, 4.0], scaled), rel=1e-6)
    assert got[0] == pytest.approx((0 + (7 * 2 / 1.8 - 4) / 4) / 2, rel=1e-6)


def test_prediction_is_clamped_after_median_scaling() -> None:
    gt, pred = _t([[2.0, 50.0]]), _t([[0.5, 200.0]])
    # Raw: clamped to [1, 80].
    assert _metrics(pred, gt) == pytest.approx(_expected([2.0, 50.0], [1.0, 80.0]), rel=1e-6)
    assert _metrics(pred, gt)[0] == pytest.approx((0.5 + 0.6) / 2)
    # Scaled by 2 / 0.5 = 4 to [2, 800], then clamped to [2, 80]: abs_rel = (0 + 0.6) / 2.
    # (Clamping first would give [1, 80] * 2 = [2, 160] and abs_rel 1.1.)
    got = _metrics(pred, gt, alignment="median")
    assert got == pytest.approx(_expected([2.0, 50.0], [2.0, 80.0]), rel=1e-6)
    assert got[0] == pytest.approx(0.3)


def test_prediction_is_resized_bilinearly_with_aligned_corners() -> None:
    # [[1, 2], [3, 4]] -> 4 x 4 with align_corners=True: 1 + i/3 + 2j/3 at row j, column i
    # (align_corners=False would give 1, 1.25, 1.75, 2 along the first row).
    pred = _t([[1.0, 2.0], [3.0, 4.0]])
    resized = [1.0 + i / 3 + 2 * j / 3 for j in range(4) for i in range(4)]
    gt = torch.tensor(resized).reshape(1, 1, 4, 4) + 0.5
    values, valid = depth_metrics_per_image(pred, gt, min_depth=0.5, max_depth=10.0)
    assert valid.tolist() == [True]
    expected = _expected([r + 0.5 for r in resized], resized)
    assert values[0].tolist() == pytest.approx(expected, rel=1e-6)
    exact, _ = depth_metrics_per_image(pred, gt - 0.5, min_depth=0.5, max_depth=10.0)
    assert exact[0].tolist() == pytest.approx([0, 0, 0, 0, 1, 1, 1], abs=1e-6)


def test_garg_crop_bounds() -> None:
    # 10 x 30: rows int(4.08)=4 .. int(9.92)=9 (exclusive), cols int(1.08)=1 .. int(28.92)=28.
    mask = garg_crop_mask(10, 30)
    hand = torch.zeros(10, 30, dtype=torch.bool)
    hand[4:9, 1:28] = True
    assert torch.equal(mask, hand)
    # KITTI's 375 x 1242: rows int(153.04) .. int(371.96) = 153..370 inclusive, columns
    # int(44.65) .. int(1197.35) = 44..1196 inclusive.
    rows, cols = torch.nonzero(garg_crop_mask(375, 1242), as_tuple=True)
    bounds = (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()))
    assert bounds == (153, 370, 44, 1196)


def test_garg_crop_restricts_the_evaluated_pixels() -> None:
    gt = torch.full((1, 1, 10, 30), 10.0)
    pred = torch.full((1, 1, 10, 30), 20.0)
    pred[..., 4:9, 1:28] = 10.0  # exact inside the crop, 100 % off outside it
    cropped = _metrics(pred, gt, garg_crop=True)
    assert cropped == pytest.approx([0, 0, 0, 0, 1, 1, 1], abs=1e-12)
    outside = 300 - 5 * 27
    assert _metrics(pred, gt)[0] == pytest.approx(outside / 300)


def test_image_without_valid_pixels_is_flagged_not_averaged() -> None:
    gt = torch.cat([GT, _t([[0.0, 0.0], [80.0, 0.5]])])  # 80 and 0.5 are outside (1, 80)
    pred = torch.cat([PRED, _t([[5.0, 5.0], [5.0, 5.0]])])
    values, valid = depth_metrics_per_image(pred, gt, min_depth=1.0, max_depth=80.0)
    assert valid.tolist() == [True, False]
    assert torch.isnan(values[1]).all()
    assert values[0].tolist() == pytest.approx(_expected([2.0, 4.0], [1.8, 7.0]), rel=1e-6)

    acc = DepthMetricAccumulator(1.0, 80.0)
    acc.update(pred, gt)
    result = acc.compute()
    assert result["num_images"] == 1.0
    assert [result[n] for n in METRIC_NAMES] == pytest.approx(values[0].tolist())


def test_accumulator_averages_images_over_batches_raw_and_median() -> None:
    acc = DepthMetricAccumulator(1.0, 80.0)
    acc.update(PRED, GT)
    acc.update(_t([[0.5, 200.0]]), _t([[2.0, 50.0]]))
    result = acc.compute()
    assert list(result) == list(metric_keys())
    assert set(result) == {
        *METRIC_NAMES,
        *(n + "_med" for n in METRIC_NAMES),
        *(n + "_align" for n in METRIC_NAMES),
        *(n + "_align_depth" for n in METRIC_NAMES),
        "num_images",
    }
    assert result["num_images"] == 2.0
    first, second = _expected([2.0, 4.0], [1.8, 7.0]), _expected([2.0, 50.0], [1.0, 80.0])
    for name, a, b in zip(METRIC_NAMES, first, second, strict=True):
        assert result[name] == pytest.approx((a + b) / 2, rel=1e-6), name
    first_med = _expected([2.0, 4.0], [2.0, 7.0 * 2 / 1.8])
    second_med = _expected([2.0, 50.0], [2.0, 80.0])
    for name, a, b in zip(METRIC_NAMES, first_med, second_med, strict=True):
        assert result[name + "_med"] == pytest.approx((a + b) / 2, rel=1e-6), name
    assert result["abs_rel"] == pytest.approx((0.425 + 0.55) / 2, rel=1e-6)

    acc.reset()
    assert acc.num_images == 0
    assert math.isnan(acc.compute()["abs_rel"])


def test_no_valid_image_at_all_gives_nan_and_zero_count() -> None:
    acc = DepthMetricAccumulator(1.0, 80.0, garg_crop=True)
    assert all(math.isnan(v) for k, v in acc.compute().items() if k != "num_images")
    gt = torch.full((2, 1, 10, 30), 5.0)
    gt[..., 4:9, 1:28] = 0.0  # measurements only outside the crop
    acc.update(torch.full_like(gt, 5.0), gt)
    result = acc.compute()
    assert result["num_images"] == 0.0
    assert all(math.isnan(v) for k, v in result.items() if k != "num_images")


@pytest.mark.parametrize(
    ("pred_shape", "gt_shape", "message"),
    [
        ((2, 2), (1, 1, 2, 2), "pred_depth must be"),
        ((1, 1, 2, 2), (1, 2, 2, 2), "gt_depth must be"),
        ((2, 1, 2, 2), (1, 1, 2, 2), "different batch sizes"),
    ],
)
def test_wrong_shapes_raise(
    pred_shape: tuple[int, ...], gt_shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        depth_metrics_per_image(
            torch.ones(pred_shape), torch.ones(gt_shape), min_depth=1.0, max_depth=80.0
        )


# --- scale-and-shift alignment (MiDaS / DPT) against numpy's least squares -----------------


def _numpy_aligned_metrics(
    pred: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float
) -> np.ndarray:
    """[B,7] metrics of [B,H,W] depths after the DPT alignment, written independently:
    np.linalg.lstsq per image on [1/pred, 1] -> 1/gt over min_depth < gt < max_depth (a
    negative scale refitted as the constant mean(1/gt), the best fit with scale >= 0),
    aligned inverse depth capped below at 1/max_depth, inverted, clipped. NaN rows for
    images without a valid pixel."""
    rows = []
    for p, g in zip(pred, gt, strict=True):
        valid = (g > min_depth) & (g < max_depth)
        if not valid.any():
            rows.append([math.nan] * 7)
            continue
        x, y = 1.0 / p[valid], 1.0 / g[valid]
        design = np.stack([x, np.ones_like(x)], axis=1)
        (s, t), *_ = np.linalg.lstsq(design, y, rcond=None)
        if s < 0:
            s, t = 0.0, float(np.mean(y))
        aligned = np.maximum(s * x + t, 1.0 / max_depth)
        depth = np.clip(1.0 / aligned, min_depth, max_depth)
        rows.append(_expected(g[valid].tolist(), depth.tolist()))
    return np.array(rows)


def _aligned(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """[B,7] scale-and-shift aligned metrics of [B,1,H,W] depths, range (1, 80)."""
    values, _ = depth_metrics_per_image(
        pred, gt, min_depth=1.0, max_depth=80.0, alignment="scale_shift"
    )
    return values


def test_aligned_metrics_match_numpy_lstsq_on_random_images() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 90.0, size=(4, 6, 7))  # some pixels outside (1, 80)
    gt[0, :2] = 0.0  # missing measurements
    pred = gt * rng.uniform(0.5, 2.0, size=gt.shape) + rng.uniform(0.0, 5.0, size=gt.shape)
    got = _aligned(torch.from_numpy(pred)[:, None], torch.from_numpy(gt)[:, None])
    expected = _numpy_aligned_metrics(pred, gt, 1.0, 80.0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)
    # The alignment changed something: not the raw metrics.
    raw, _ = depth_metrics_per_image(
        torch.from_numpy(pred)[:, None],
        torch.from_numpy(gt)[:, None],
        min_depth=1.0,
        max_depth=80.0,
    )
    assert not np.allclose(raw.numpy(), expected)


def test_affine_in_inverse_depth_aligns_exactly() -> None:
    """pred_inv = a * gt_inv + b with a > 0: the aligned prediction is the ground truth.
    With a < 0 (a network that learned depth upside down) the scale is held at 0: the
    inverted map scores as the flat mean, never as a perfect one."""
    rng = np.random.default_rng(1)
    gt = rng.uniform(1.5, 70.0, size=(2, 8, 8))
    gt_inv = 1.0 / gt
    pred_inv = np.stack([0.3 * gt_inv[0] + 0.05, -2.0 * gt_inv[1] + 2.0])
    assert (pred_inv > 0).all()
    pred = torch.from_numpy(1.0 / pred_inv)[:, None]
    got = _aligned(pred, torch.from_numpy(gt)[:, None])
    assert float(got[0, 0].abs()) < 1e-9  # abs_rel_align
    assert float(got[0, 2].abs()) < 1e-9  # rmse_align
    assert got[0, 4:].tolist() == [1.0, 1.0, 1.0]  # a1..a3
    flat = np.full((1, 8, 8), 1.0 / gt_inv[1].mean())
    expected_flat = _aligned(torch.from_numpy(flat)[:, None], torch.from_numpy(gt[1:])[:, None])
    assert got[1].tolist() == pytest.approx(expected_flat[0].tolist(), rel=1e-9)
    assert float(got[1, 0]) > 0.3  # the inverted map is far from the ground truth
    raw, _ = depth_metrics_per_image(
        pred, torch.from_numpy(gt)[:, None], min_depth=1.0, max_depth=80.0
    )
    assert (raw[:, 0] > 0.3).all()  # far off before alignment


def test_negative_scale_fits_flat_and_matches_numpy() -> None:
    """A prediction anti-correlated with the ground truth: the least-squares scale is
    negative, so the fit is the flat mean (scale held at 0)."""
    rng = np.random.default_rng(3)
    gt = rng.uniform(1.2, 10.0, size=(1, 5, 9))
    gt[0, 0, :3] = 75.0  # far pixels, whose noisy aligned inverse depth may go below 1/80
    pred_inv = 1.0 / gt + 0.1 * rng.standard_normal(gt.shape)
    pred_inv = 1.5 - pred_inv  # reversed order: negative scale
    assert (pred_inv > 0).all()
    pred = 1.0 / pred_inv
    x, y = pred_inv.ravel(), 1.0 / gt.ravel()
    (s, _), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
    assert s < 0
    got = _aligned(torch.from_numpy(pred)[:, None], torch.from_numpy(gt)[:, None])
    np.testing.assert_allclose(got.numpy(), _numpy_aligned_metrics(pred, gt, 1.0, 80.0), rtol=1e-9)


def test_cap_at_max_depth_matches_numpy() -> None:
    """Far pixels whose noisy aligned inverse depth falls below 1/max_depth are capped."""
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.2, 10.0, size=(1, 5, 9))
    gt[0, 0, :4] = 78.0
    pred_inv = 1.0 / gt + 0.05 * rng.standard_normal(gt.shape)
    pred_inv = np.abs(pred_inv) + 1e-3
    x, y = pred_inv.ravel(), 1.0 / gt.ravel()
    (s, t), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
    assert s > 0 and (s * x + t < 1.0 / 80.0).any(), "the case must exercise the cap"
    pred = 1.0 / pred_inv
    got = _aligned(torch.from_numpy(pred)[:, None], torch.from_numpy(gt)[:, None])
    np.testing.assert_allclose(got.numpy(), _numpy_aligned_metrics(pred, gt, 1.0, 80.0), rtol=1e-9)


def test_constant_prediction_aligns_to_the_mean_inverse_depth() -> None:
    gt = np.array([[[2.0, 4.0], [0.0, 8.0]]])
    pred = np.full_like(gt, 3.0)
    got = _aligned(torch.from_numpy(pred)[:, None], torch.from_numpy(gt)[:, None])
    mean_inv = (1 / 2 + 1 / 4 + 1 / 8) / 3
    expected = _expected([2.0, 4.0, 8.0], [1 / mean_inv] * 3)
    assert got[0].tolist() == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(got.numpy(), _numpy_aligned_metrics(pred, gt, 1.0, 80.0), rtol=1e-9)


def test_aligned_skips_images_without_valid_pixels() -> None:
    gt = torch.tensor([[[2.0, 4.0], [8.0, 0.0]], [[0.0, 0.0], [90.0, 0.5]]])[:, None]
    pred = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[5.0, 5.0], [5.0, 5.0]]])[:, None]
    values, valid = depth_metrics_per_image(
        pred, gt, min_depth=1.0, max_depth=80.0, alignment="scale_shift"
    )
    assert valid.tolist() == [True, False]
    assert torch.isnan(values[1]).all()
    first = _numpy_aligned_metrics(
        pred[:1, 0].double().numpy(), gt[:1, 0].double().numpy(), 1.0, 80.0
    )
    np.testing.assert_allclose(values[:1].numpy(), first, rtol=1e-6)

    acc = DepthMetricAccumulator(1.0, 80.0)
    acc.update(pred, gt)
    result = acc.compute()
    assert result["num_images"] == 1.0
    assert [result[n + "_align"] for n in METRIC_NAMES] == pytest.approx(
        first[0].tolist(), rel=1e-6
    )


# --- scale-and-shift alignment in depth ------------------------------------------------------


def _aligned_in(alignment: Alignment, pred: np.ndarray, gt: np.ndarray) -> torch.Tensor:
    """[B,7] metrics of [B,H,W] depths under ``alignment``, range (1, 80)."""
    values, _ = depth_metrics_per_image(
        torch.from_numpy(pred)[:, None],
        torch.from_numpy(gt)[:, None],
        min_depth=1.0,
        max_depth=80.0,
        alignment=alignment,
    )
    return values


def test_depth_alignment_hand_computed() -> None:
    """gt [2, 4, 6], pred [1, 3, 2]: centred pred [-1, 1, 0], centred gt [-2, 0, 2],
    s = sum(xc yc) / sum(xc^2) = 2 / 2 = 1, t = 4 - 1 * 2 = 2: aligned [3, 5, 4]."""
    gt = np.array([[[2.0, 4.0, 6.0]]])
    got = _aligned_in("scale_shift_depth", np.array([[[1.0, 3.0, 2.0]]]), gt)
    assert got[0].tolist() == pytest.approx(_expected([2.0, 4.0, 6.0], [3.0, 5.0, 4.0]))
    assert float(got[0, 0]) == pytest.approx((1 / 2 + 1 / 4 + 2 / 6) / 3, rel=1e-12)
    # Reversed order: the fitted scale would be -1; held at 0, the fit is mean(gt) = 4.
    got = _aligned_in("scale_shift_depth", np.array([[[3.0, 1.0, 2.0]]]), gt)
    assert got[0].tolist() == pytest.approx(_expected([2.0, 4.0, 6.0], [4.0, 4.0, 4.0]))
    assert float(got[0, 0]) == pytest.approx((2 / 2 + 0 + 2 / 6) / 3, rel=1e-12)


def test_depth_alignment_clamps_to_the_range_and_skips_invalid_pixels() -> None:
    """gt [2, 10] and an out-of-range pixel (0: missing); pred [1, 2]: the fit maps 1 -> 2
    and 2 -> 10 (s = 8, t = -6) exactly; the missing pixel's prediction (1000) never
    enters the fit. A constant prediction fits as mean(gt)."""
    gt = np.array([[[2.0, 10.0, 0.0]]])
    got = _aligned_in("scale_shift_depth", np.array([[[1.0, 2.0, 1000.0]]]), gt)
    assert got[0].tolist() == pytest.approx(_expected([2.0, 10.0], [2.0, 10.0]), abs=1e-12)
    # s = 8, t = -14 would take pixel 1 to -6 m: clamped to min_depth (1 m).
    gt = np.array([[[1.5, 2.0, 10.0]]])
    got = _aligned_in("scale_shift_depth", np.array([[[1.0, 2.0, 3.0]]]), gt)
    x, y = np.array([1.0, 2.0, 3.0]), gt.ravel()
    (s, t), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
    aligned = np.clip(s * x + t, 1.0, 80.0)
    assert s * x[0] + t < 1.0, "the case must exercise the clamp"
    assert got[0].tolist() == pytest.approx(_expected(y.tolist(), aligned.tolist()), rel=1e-12)
    flat = _aligned_in("scale_shift_depth", np.full((1, 1, 3), 7.0), gt)
    assert flat[0].tolist() == pytest.approx(_expected(y.tolist(), [y.mean()] * 3), rel=1e-12)


def test_each_alignment_forgives_its_own_affine_error_only() -> None:
    """A depth-affine error (a shift of 1 m and a scale) scores 0 in depth, not in inverse
    depth; an inverse-affine one (what an inverse-domain loss leaves) the other way round."""
    rng = np.random.default_rng(5)
    gt = rng.uniform(1.5, 40.0, size=(2, 8, 8))
    depth_affine = np.stack([gt[0] + 1.0, 0.5 * gt[1] + 3.0])
    inverse_affine = 1.0 / (0.3 / gt + 0.05)
    in_depth = _aligned_in("scale_shift_depth", depth_affine, gt)
    assert in_depth[:, 0].abs().max() < 1e-9 and in_depth[:, 2].abs().max() < 1e-9
    assert in_depth[:, 4:].tolist() == [[1.0, 1.0, 1.0]] * 2
    assert (_aligned_in("scale_shift", depth_affine, gt)[:, 0] > 0.01).all()
    in_inverse = _aligned_in("scale_shift", inverse_affine[:1], gt[:1])
    assert float(in_inverse[0, 0].abs()) < 1e-9
    assert float(_aligned_in("scale_shift_depth", inverse_affine[:1], gt[:1])[0, 0]) > 0.01


def test_depth_alignment_matches_numpy_lstsq_on_random_images() -> None:
    rng = np.random.default_rng(2)
    gt = rng.uniform(0.5, 90.0, size=(3, 5, 6))  # some pixels outside (1, 80)
    gt[1, :2] = 0.0
    pred = gt * rng.uniform(0.5, 2.0, size=gt.shape) + rng.uniform(-3.0, 5.0, size=gt.shape)
    pred = np.abs(pred) + 0.1
    rows = []
    for p, g in zip(pred, gt, strict=True):
        valid = (g > 1.0) & (g < 80.0)
        x, y = p[valid], g[valid]
        (s, t), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
        if s < 0:
            s, t = 0.0, float(np.mean(y))
        rows.append(_expected(y.tolist(), np.clip(s * x + t, 1.0, 80.0).tolist()))
    got = _aligned_in("scale_shift_depth", pred, gt)
    np.testing.assert_allclose(got.numpy(), np.array(rows), rtol=1e-9, atol=1e-12)
