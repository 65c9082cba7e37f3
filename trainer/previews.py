"""Preview images: RGB, ground truth, prediction and error of one sample, in one PNG.

Every colour scale is fixed by the configured depth range, never by the data shown, so
that all previews of a sweep (every trial, every epoch) can be compared by eye:

- depth panels (ground truth, prediction): colormap ``DEPTH_CMAP`` on a logarithmic
  scale from ``min_depth`` to ``max_depth`` (a linear scale over 1..80 m would spend
  most colours on far depths and show a street scene's first 20 m in two shades);
- error panel: ``|prediction - ground truth|`` on a linear scale from 0 to
  ``max_depth * ERROR_RANGE_FRACTION`` (20 m for 80 m), colormap ``ERROR_CMAP``;
  larger errors saturate;
- pixels without ground truth (``gt <= 0`` or not finite) are ``MISSING_COLOR`` grey in
  the ground-truth and error panels, as are non-finite predictions.

With an ``alignment`` (the one of the objective's metric: ``val/abs_rel_align`` aligns
scale and shift in inverse depth, ``val/abs_rel_align_depth`` in depth, ``_med`` scales by
the medians), the prediction and error
panels show the prediction as that metric scores it, aligned to this image's ground truth
by trainer.metrics (:func:`trainer.metrics.aligned_depth`), and their labels say so: an
objective that ignores scale is judged on what it sees.

The figure is a ``matplotlib.figure.Figure`` drawn by the Agg canvas, not a pyplot
figure: it is never registered with pyplot, selects no backend, and is freed when this
module lets go of it, so thousands of previews leak nothing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, LogNorm, Normalize
from matplotlib.figure import Figure

from trainer.io import write_output
from trainer.metrics import Alignment, aligned_depth

__all__ = [
    "DEPTH_CMAP",
    "ERROR_CMAP",
    "ERROR_RANGE_FRACTION",
    "MISSING_COLOR",
    "PANEL_WIDTH",
    "PreviewLayout",
    "depth_norm",
    "error_norm",
    "panel_names",
    "preview_layout",
    "save_preview",
]

DEPTH_CMAP = "magma_r"  # near = bright, far = dark
ERROR_CMAP = "viridis"  # a different family, so an error panel is never read as depth
ERROR_RANGE_FRACTION = 0.25
MISSING_COLOR = (0.5, 0.5, 0.5)

PANEL_WIDTH = 640  # px; panel height follows the image's aspect ratio
_DPI = 100
_TITLE = 30  # px strip above everything (the title)
_LABEL = 22  # px strip above each panel (its name)
_MARGIN = 10  # px left, right of the panels, bottom
_COLORBAR = 14  # px wide colour bars
_TICKS = 56  # px right of a colour bar for its tick labels
_PANEL_NAMES = ("RGB", "ground truth (m)", "prediction (m)", "|prediction - ground truth| (m)")
# How the prediction and error panels name an aligned prediction.
_ALIGNED_NAMES: dict[Alignment, tuple[str, str]] = {
    "median": (
        "prediction x median(gt) / median(prediction) (m)",
        "|median-scaled prediction - ground truth| (m)",
    ),
    "scale_shift": (
        "prediction, scale and shift aligned to the ground truth in inverse depth (m)",
        "|aligned prediction - ground truth| (m)",
    ),
    "scale_shift_depth": (
        "prediction, scale and shift aligned to the ground truth in depth (m)",
        "|aligned prediction - ground truth| (m)",
    ),
}


def panel_names(alignment: Alignment = "none") -> tuple[str, str, str, str]:
    """The four panels' labels, top to bottom, for a preview with ``alignment``."""
    rgb, gt, pred, error = _PANEL_NAMES
    pred, error = _ALIGNED_NAMES.get(alignment, (pred, error))
    return rgb, gt, pred, error


@dataclass(frozen=True)
class PreviewLayout:
    """Pixel geometry of a preview PNG (origin top left, like the PNG's rows)."""

    width: int
    height: int
    panels: tuple[tuple[int, int, int, int], ...]
    """(left, top, right, bottom) of the RGB, ground-truth, prediction, error panels."""


def preview_layout(image_height: int, image_width: int) -> PreviewLayout:
    """Where the four panels of a preview of an ``image_height x image_width`` image lie.

    The panels are stacked vertically, each ``PANEL_WIDTH`` px wide and as high as the
    image's aspect ratio asks (at least 1 px); colour bars sit on the right.
    """
    if image_height < 1 or image_width < 1:
        raise ValueError(f"image size must be positive, got {image_height}x{image_width}")
    panel_height = max(1, round(PANEL_WIDTH * image_height / image_width))
    panels = []
    top = _TITLE
    for _ in _PANEL_NAMES:
        top += _LABEL
        panels.append((_MARGIN, top, _MARGIN + PANEL_WIDTH, top + panel_height))
        top += panel_height
    width = _MARGIN + PANEL_WIDTH + _MARGIN + _COLORBAR + _TICKS
    return PreviewLayout(width=width, height=top + _MARGIN, panels=tuple(panels))


def depth_norm(min_depth: float, max_depth: float) -> LogNorm:
    """The depth panels' scale: logarithmic, ``min_depth`` .. ``max_depth``."""
    return LogNorm(vmin=min_depth, vmax=max_depth, clip=False)


def error_norm(max_depth: float) -> Normalize:
    """The error panel's scale: linear, 0 .. ``max_depth * ERROR_RANGE_FRACTION``."""
    return Normalize(vmin=0.0, vmax=max_depth * ERROR_RANGE_FRACTION, clip=False)


def save_preview(
    path: Path,
    rgb: torch.Tensor,
    gt_depth: torch.Tensor,
    pred_depth: torch.Tensor,
    *,
    min_depth: float,
    max_depth: float,
    title: str = "",
    alignment: Alignment = "none",
    garg_crop: bool = False,
) -> Path:
    """Write one PNG with four panels: RGB, ground truth, prediction, absolute error.

    Args:
        path: PNG file to write (parent folders are created).
        rgb: [3,H,W] image in [0,1] (values outside are clipped).
        gt_depth: [1,H,W] ground-truth depth (m), 0 = missing.
        pred_depth: [1,H,W] predicted depth (m).
        min_depth, max_depth: the sweep's depth range; fixes every colour scale.
        title: text above the panels.
        alignment, garg_crop: show the prediction aligned to the ground truth as the
            metrics of that alignment score it (``none``: as predicted; ``garg_crop``:
            the metrics' crop, whose pixels the fit sees).

    Returns:
        ``path``. The image is ``preview_layout(H, W).width x .height`` pixels.
    """
    if not 0.0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth} and {max_depth}")
    if alignment != "none":
        pred_depth = aligned_depth(
            pred_depth.detach().unsqueeze(0),
            gt_depth.detach().to(pred_depth.device).unsqueeze(0),
            min_depth=min_depth,
            max_depth=max_depth,
            garg_crop=garg_crop,
            alignment=alignment,
        )[0]
    image, gt, pred = _to_numpy(rgb, gt_depth, pred_depth)
    layout = preview_layout(*gt.shape)

    measured = np.isfinite(gt) & (gt > 0)
    gt_shown = np.ma.masked_where(~measured, gt)
    pred_shown = np.ma.masked_invalid(pred)
    error = np.ma.masked_where(~(measured & np.isfinite(pred)), np.abs(pred - gt))

    d_norm, e_norm = depth_norm(min_depth, max_depth), error_norm(max_depth)
    d_cmap, e_cmap = _cmap(DEPTH_CMAP), _cmap(ERROR_CMAP)

    fig = Figure(figsize=(layout.width / _DPI, layout.height / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    if title:
        fig.text(0.5, 1 - (_TITLE / 2) / layout.height, title, ha="center", va="center")
    shown = (
        (image, None, None),
        (gt_shown, d_cmap, d_norm),
        (pred_shown, d_cmap, d_norm),
        (error, e_cmap, e_norm),
    )
    names = panel_names(alignment)
    for name, box, (data, cmap, norm) in zip(names, layout.panels, shown, strict=True):
        ax = fig.add_axes(_fraction(box, layout))
        ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
        ax.set_axis_off()
        ax.text(0.0, 1.0, name, transform=ax.transAxes, ha="left", va="bottom", fontsize=10)

    # Colour bars: one spanning both depth panels, one beside the error panel.
    right = _MARGIN + PANEL_WIDTH + _MARGIN
    for (top_box, bottom_box), cmap, norm in (
        ((layout.panels[1], layout.panels[2]), d_cmap, d_norm),
        ((layout.panels[3], layout.panels[3]), e_cmap, e_norm),
    ):
        box = (right, top_box[1], right + _COLORBAR, bottom_box[3])
        bar = fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), cax=fig.add_axes(_fraction(box, layout))
        )
        if isinstance(norm, LogNorm):
            ticks = _log_ticks(min_depth, max_depth)
            bar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
            bar.ax.minorticks_off()

    # Rendered in memory, then written whole (trainer.io.write_output): a full disk is an
    # OutputSpaceError naming the folder, and no truncated PNG is left behind.
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return write_output(Path(path), buffer.getvalue())


def _to_numpy(
    rgb: torch.Tensor, gt_depth: torch.Tensor, pred_depth: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[3,H,W], [1,H,W], [1,H,W] tensors -> [H,W,3] in [0,1], [H,W], [H,W] float arrays."""
    if rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"rgb must be [3,H,W], got {list(rgb.shape)}")
    size = tuple(rgb.shape[1:])
    for name, depth in (("gt_depth", gt_depth), ("pred_depth", pred_depth)):
        if depth.dim() != 3 or depth.shape[0] != 1 or tuple(depth.shape[1:]) != size:
            raise ValueError(f"{name} must be [1,{size[0]},{size[1]}], got {list(depth.shape)}")

    def array(x: torch.Tensor) -> np.ndarray:
        return x.detach().to("cpu", torch.float32).numpy()

    image = np.clip(array(rgb).transpose(1, 2, 0), 0.0, 1.0)
    return image, array(gt_depth)[0], array(pred_depth)[0]


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 steps between ``low`` and ``high``, both ends included: 1, 2, 5, 10, ..., 80."""
    ticks = [low, high]
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1.0, 2.0, 5.0):
            tick = mantissa * 10.0**exponent
            # Skip ticks crowding another (within 15% of the scale's length).
            crowded = any(abs(math.log(tick / t)) <= 0.15 * math.log(high / low) for t in ticks)
            if low < tick < high and not crowded:
                ticks.append(tick)
    return sorted(ticks)


def _cmap(name: str) -> Colormap:
    """A copy of the named colormap that paints masked pixels ``MISSING_COLOR``."""
    return colormaps[name].with_extremes(bad=MISSING_COLOR)


def _fraction(
    box: tuple[int, int, int, int], layout: PreviewLayout
) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) pixels -> matplotlib's (left, bottom, width, height)."""
    left, top, right, bottom = box
    return (
        left / layout.width,
        1 - bottom / layout.height,
        (right - left) / layout.width,
        (bottom - top) / layout.height,
    )
