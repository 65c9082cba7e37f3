"""Preview PNGs: layout, and colours fixed by the depth range rather than by the data."""

from __future__ import annotations

import gc
import math
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

import trainer.previews as previews
from trainer.metrics import aligned_depth, alignment_of, depth_metrics_per_image
from trainer.previews import preview_layout, save_preview

H, W = 24, 80  # a small image with the aspect ratio of the default 96 x 320
MIN_DEPTH, MAX_DEPTH = 1.0, 80.0


def _depth_colour(depth: float) -> np.ndarray:
    """magma_r on a log scale over [1, 80] m, computed independently of the module."""
    t = math.log(depth / MIN_DEPTH) / math.log(MAX_DEPTH / MIN_DEPTH)
    return np.array(colormaps["magma_r"](t, bytes=True)[:3], dtype=int)


def _error_colour(error: float) -> np.ndarray:
    """viridis on a linear scale over [0, 80 / 4] m."""
    return np.array(colormaps["viridis"](error / (MAX_DEPTH / 4), bytes=True)[:3], dtype=int)


def _save(tmp_path: Path, name: str, pred: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
    rgb = torch.empty(3, H, W)
    rgb[0], rgb[1], rgb[2] = 0.2, 0.4, 0.6
    path = save_preview(
        tmp_path / "sub" / name, rgb, gt, pred, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH
    )
    assert path == tmp_path / "sub" / name
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"), dtype=int)


def _panel(png: np.ndarray, index: int, x: float, y: float) -> np.ndarray:
    """RGB of the pixel at fractions (x, y) of panel ``index`` (0 RGB .. 3 error)."""
    left, top, right, bottom = preview_layout(H, W).panels[index]
    return png[int(top + y * (bottom - top)), int(left + x * (right - left))]


def _gt() -> torch.Tensor:
    """10 m everywhere except the top quarter, which has no measurement."""
    gt = torch.full((1, H, W), 10.0)
    gt[:, : H // 4] = 0.0
    return gt


def test_layout_of_a_96_by_320_image() -> None:
    layout = preview_layout(96, 320)
    heights = {bottom - top for _, top, _, bottom in layout.panels}
    widths = {right - left for left, _, right, _ in layout.panels}
    assert heights == {192} and widths == {previews.PANEL_WIDTH}
    tops = [top for _, top, _, _ in layout.panels]
    assert tops == sorted(tops) and layout.panels[-1][3] < layout.height


def test_png_written_with_the_layout_size(tmp_path: Path) -> None:
    png = _save(tmp_path, "a.png", torch.full((1, H, W), 20.0), _gt())
    layout = preview_layout(H, W)
    assert png.shape == (layout.height, layout.width, 3)
    assert (tmp_path / "sub" / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_panel_colours_follow_the_fixed_scale(tmp_path: Path) -> None:
    png = _save(tmp_path, "a.png", torch.full((1, H, W), 20.0), _gt())
    assert np.abs(_panel(png, 0, 0.5, 0.5) - [51, 102, 153]).max() <= 1
    assert np.abs(_panel(png, 1, 0.5, 0.6) - _depth_colour(10.0)).max() <= 2
    assert np.abs(_panel(png, 2, 0.5, 0.6) - _depth_colour(20.0)).max() <= 2
    assert np.abs(_panel(png, 3, 0.5, 0.6) - _error_colour(10.0)).max() <= 2
    # No ground truth: neutral grey in the ground-truth and error panels.
    assert np.abs(_panel(png, 1, 0.5, 0.1) - [127, 127, 127]).max() <= 1
    assert np.abs(_panel(png, 3, 0.5, 0.1) - [127, 127, 127]).max() <= 1
    # The test can tell scales apart: a linear 1..80 m scale would paint 10 m elsewhere.
    linear = np.array(colormaps["magma_r"]((10.0 - 1) / 79, bytes=True)[:3], dtype=int)
    assert np.abs(linear - _depth_colour(10.0)).max() > 40


def test_previews_with_different_prediction_ranges_share_one_scale(tmp_path: Path) -> None:
    near = torch.full((1, H, W), 20.0)
    near[..., : W // 2] = 5.0  # 5..20 m
    far = torch.full((1, H, W), 20.0)
    far[..., : W // 2] = 60.0  # 20..60 m
    a = _save(tmp_path, "near.png", near, _gt())
    b = _save(tmp_path, "far.png", far, _gt())
    # 20 m (right half) has the same colour in both, the colour of 20 m on the fixed scale.
    assert np.array_equal(_panel(a, 2, 0.75, 0.5), _panel(b, 2, 0.75, 0.5))
    assert np.abs(_panel(a, 2, 0.75, 0.5) - _depth_colour(20.0)).max() <= 2
    assert np.abs(_panel(a, 2, 0.25, 0.5) - _depth_colour(5.0)).max() <= 2
    assert np.abs(_panel(b, 2, 0.25, 0.5) - _depth_colour(60.0)).max() <= 2
    # Errors: |5 - 10| and |60 - 10| (saturated at the top of 0..20 m).
    assert np.abs(_panel(a, 3, 0.25, 0.6) - _error_colour(5.0)).max() <= 2
    assert np.abs(_panel(b, 3, 0.25, 0.6) - _error_colour(20.0)).max() <= 2
    # Colour bars and every panel but the prediction and error are identical.
    rgb_gt_bottom = preview_layout(H, W).panels[1][3]
    assert np.array_equal(a[:rgb_gt_bottom], b[:rgb_gt_bottom])
    bars = slice(previews.PANEL_WIDTH + 20, None)
    assert np.array_equal(a[:, bars], b[:, bars])


def test_no_figure_outlives_the_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures: list[weakref.ref[Figure]] = []

    class TrackedFigure(Figure):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            figures.append(weakref.ref(self))

    monkeypatch.setattr(previews, "Figure", TrackedFigure)
    for i in range(3):
        _save(tmp_path, f"{i}.png", torch.full((1, H, W), 20.0), _gt())
    gc.collect()
    assert len(figures) == 3
    assert all(ref() is None for ref in figures)


@pytest.mark.parametrize(
    ("rgb", "gt", "pred", "message"),
    [
        ((1, H, W), (1, H, W), (1, H, W), "rgb must be"),
        ((3, H, W), (H, W), (1, H, W), "gt_depth must be"),
        ((3, H, W), (1, H, W), (1, H, W + 1), "pred_depth must be"),
    ],
)
def test_wrong_shapes_raise(
    tmp_path: Path,
    rgb: tuple[int, ...],
    gt: tuple[int, ...],
    pred: tuple[int, ...],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        save_preview(
            tmp_path / "x.png",
            torch.rand(rgb),
            torch.ones(gt),
            torch.ones(pred),
            min_depth=MIN_DEPTH,
            max_depth=MAX_DEPTH,
        )
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------- aligned previews


def _scene() -> tuple[torch.Tensor, torch.Tensor]:
    """(gt, far): ground truth rising from 4 to 40 m left to right, the top quarter without
    a measurement; ``far`` is 20 m, the depth drawn in that quarter."""
    columns = torch.linspace(4.0, 40.0, W)
    gt = columns.expand(1, H, W).clone()
    gt[:, : H // 4] = 0.0
    return gt, torch.full((1, H, W), 20.0)


def _off_in_inverse_depth(depth: torch.Tensor) -> torch.Tensor:
    """A prediction off by a scale and a shift in inverse depth: 1 / (0.25 / d + 0.05)."""
    return 1.0 / (0.25 / depth + 0.05)


def _save_aligned(
    tmp_path: Path, pred: torch.Tensor, gt: torch.Tensor, alignment: str
) -> np.ndarray:
    rgb = torch.full((3, H, W), 0.5)
    path = save_preview(
        tmp_path / f"{alignment}.png",
        rgb,
        gt,
        pred,
        min_depth=MIN_DEPTH,
        max_depth=MAX_DEPTH,
        alignment=alignment,  # type: ignore[arg-type]
    )
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=int)


def test_a_scale_and_shift_aligned_preview_shows_what_the_metric_scores(tmp_path: Path) -> None:
    gt, far = _scene()
    truth = torch.where(gt > 0, gt, far)  # the scene, measured or not
    pred = _off_in_inverse_depth(truth)
    aligned = _save_aligned(tmp_path, pred, gt, "scale_shift")
    raw = _save_aligned(tmp_path, pred, gt, "none")
    for x in (0.1, 0.5, 0.9):
        depth = float(gt[0, H - 1, int(x * W)])
        expected = _depth_colour(depth)
        assert np.abs(_panel(aligned, 2, x, 0.9) - expected).max() <= 3  # the ground truth's
        assert np.abs(_panel(raw, 2, x, 0.9) - expected).max() > 10  # as predicted: not
        assert np.abs(_panel(aligned, 3, x, 0.9) - _error_colour(0.0)).max() <= 3
    # The fit (on measured pixels) applies to the whole image: 20 m where nothing was
    # measured, as the prediction's scene has it.
    assert np.abs(_panel(aligned, 2, 0.5, 0.1) - _depth_colour(20.0)).max() <= 3


def test_a_preview_aligned_in_depth_applies_the_fit_to_every_pixel(tmp_path: Path) -> None:
    """A prediction off by a scale and a shift in depth (0.5 d + 3 m): aligned in depth it
    is the scene, measured or not (20 m in the unmeasured quarter)."""
    gt, far = _scene()
    pred = 0.5 * torch.where(gt > 0, gt, far) + 3.0
    aligned = _save_aligned(tmp_path, pred, gt, "scale_shift_depth")
    for x in (0.1, 0.5, 0.9):
        expected = _depth_colour(float(gt[0, H - 1, int(x * W)]))
        assert np.abs(_panel(aligned, 2, x, 0.9) - expected).max() <= 3
        assert np.abs(_panel(aligned, 3, x, 0.9) - _error_colour(0.0)).max() <= 3
    assert np.abs(_panel(aligned, 2, 0.5, 0.1) - _depth_colour(20.0)).max() <= 3


def test_a_median_scaled_preview(tmp_path: Path) -> None:
    gt, far = _scene()
    pred = 3.0 * torch.where(gt > 0, gt, far)
    png = _save_aligned(tmp_path, pred, gt, "median")
    assert np.abs(_panel(png, 2, 0.5, 0.9) - _depth_colour(float(gt[0, H - 1, W // 2]))).max() <= 3
    assert np.abs(_panel(png, 3, 0.5, 0.9) - _error_colour(0.0)).max() <= 3


def test_aligned_panels_say_so() -> None:
    assert previews.panel_names() == (
        "RGB",
        "ground truth (m)",
        "prediction (m)",
        "|prediction - ground truth| (m)",
    )
    _, _, pred, error = previews.panel_names("scale_shift")
    assert "scale and shift aligned" in pred and error.startswith("|aligned prediction")
    _, _, pred, error = previews.panel_names("scale_shift_depth")
    assert pred.endswith("aligned to the ground truth in depth (m)")
    assert error.startswith("|aligned prediction")
    _, _, pred, error = previews.panel_names("median")
    assert "median" in pred and error.startswith("|median-scaled prediction")


def test_the_aligned_depth_is_the_one_the_metrics_score() -> None:
    """trainer.metrics.aligned_depth: scored as it is (alignment none), it gives the
    aligned metrics; the previews reuse it."""
    generator = torch.Generator().manual_seed(0)
    gt = 1.0 + 60.0 * torch.rand(2, 1, H, W, generator=generator)
    gt[:, :, : H // 4] = 0.0
    pred = 2.0 + 30.0 * torch.rand(2, 1, H, W, generator=generator)
    for alignment in ("median", "scale_shift", "scale_shift_depth"):
        aligned = aligned_depth(
            pred, gt, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, alignment=alignment
        )
        assert aligned.shape == gt.shape and bool(torch.isfinite(aligned).all())
        scored, _ = depth_metrics_per_image(
            aligned, gt, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, alignment="none"
        )
        expected, _ = depth_metrics_per_image(
            pred, gt, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, alignment=alignment
        )
        torch.testing.assert_close(scored, expected, rtol=1e-12, atol=1e-12)


def test_the_alignment_of_a_metric() -> None:
    assert alignment_of("val/abs_rel_align") == "scale_shift"
    assert alignment_of("val/rmse_med") == "median"
    assert alignment_of("val/abs_rel") == "none"
    assert alignment_of("train/total_loss") == "none"
    assert alignment_of("val/a1_align") == "scale_shift"
    assert alignment_of("val/abs_rel_align_depth") == "scale_shift_depth"
    assert alignment_of("test/a3_align_depth") == "scale_shift_depth"
