"""A plain folder of images and depth maps, paired by file stem::

    <root>/rgb/<name>.png          8-bit RGB (.jpg / .jpeg also read)
    <root>/depth/<name>.png        16-bit grayscale PNG, or
    <root>/depth/<name>.npy        a 2-D numeric array ([H,W], or [H,W,1] / [1,H,W])

Stored value / ``depth_scale`` = metres; 0 (and any non-finite value) = missing. Every RGB
file needs exactly one depth file and vice versa: an unpaired file is an error, not
silently skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from trainer.data.common import (
    DataError,
    DepthDataset,
    Sample,
    read_depth_png16,
    read_rgb_image,
    to_sample,
)

__all__ = ["DepthFolder", "find_folder_pairs", "read_depth_npy"]

RGB_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_SUFFIXES = (".png", ".npy")


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in suffixes:
            continue
        if path.stem in found:
            raise DataError(path, f"two files share the stem {path.stem!r}: {found[path.stem]}")
        found[path.stem] = path
    return found


def find_folder_pairs(root: Path) -> list[tuple[Path, Path]]:
    """``(rgb, depth)`` pairs of ``root``, sorted by stem; see the module docstring."""
    if not root.is_dir():
        raise DataError(root, "data folder not found")
    rgb = _by_stem(root / "rgb", RGB_SUFFIXES)
    depth = _by_stem(root / "depth", DEPTH_SUFFIXES)
    if not rgb:
        raise DataError(root / "rgb", f"no images ({', '.join(RGB_SUFFIXES)})")
    for stem, path in rgb.items():
        if stem not in depth:
            expected = " or ".join(f"{stem}{suffix}" for suffix in DEPTH_SUFFIXES)
            raise DataError(path, f"RGB image without a depth map ({expected} in {root / 'depth'})")
    for stem, path in depth.items():
        if stem not in rgb:
            raise DataError(path, f"depth map without an RGB image in {root / 'rgb'}")
    return [(rgb[stem], depth[stem]) for stem in sorted(rgb)]


def read_depth_npy(path: Path) -> npt.NDArray[np.float64]:
    """A ``.npy`` depth map -> ``[H,W]`` stored values as float64 (not yet scaled)."""
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(path, f"cannot read .npy array ({exc})") from exc
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
        kind = getattr(values, "dtype", type(values).__name__)
        raise DataError(path, f"depth array must be numeric (float or integer), got {kind}")
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    elif values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if values.ndim != 2:
        raise DataError(path, f"depth array must be [H,W], got shape {values.shape}")
    return values.astype(np.float64)


class DepthFolder(DepthDataset):
    """Pairs of ``rgb/`` and ``depth/`` files; items ``(rgb [3,H,W], depth [1,H,W])``.

    Pairing is checked when the data set is built; decoding, dtype and size checks
    happen on access and raise :class:`DataError` naming the file.
    """

    def __init__(
        self,
        root: Path,
        *,
        depth_scale: float,
        height: int,
        width: int,
        min_depth: float,
        max_depth: float,
    ) -> None:
        if depth_scale <= 0:
            raise ValueError(f"depth_scale must be > 0, got {depth_scale}")
        self.root = Path(root)
        self.pairs = find_folder_pairs(self.root)
        self.depth_scale = depth_scale
        self.height, self.width = height, width
        self.min_depth, self.max_depth = min_depth, max_depth

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        rgb_path, depth_path = self.pairs[index]
        rgb = read_rgb_image(rgb_path)
        if depth_path.suffix.lower() == ".npy":
            stored = read_depth_npy(depth_path)
        else:
            stored = read_depth_png16(depth_path)
        if rgb.shape[:2] != stored.shape:
            raise DataError(
                depth_path,
                f"depth map is {stored.shape[1]}x{stored.shape[0]} px but its image "
                f"{rgb_path} is {rgb.shape[1]}x{rgb.shape[0]} px",
            )
        return to_sample(
            rgb,
            stored / self.depth_scale,
            height=self.height,
            width=self.width,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
        )
