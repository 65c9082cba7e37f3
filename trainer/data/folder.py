"""A plain folder of images and depth maps, paired by path without suffix::

    <root>/rgb/[<sequence>/]<name>.png     8-bit RGB (.jpg / .jpeg also read)
    <root>/depth/[<sequence>/]<name>.png   16-bit grayscale PNG, or
    <root>/depth/[<sequence>/]<name>.npy   a 2-D numeric array ([H,W], [H,W,1] or [1,H,W])

Stored value / ``depth_scale`` = metres; 0 = missing (an all-zero map is a valid sample
without measurements: the loss gives it no weight and the metrics skip it). Every RGB
file needs exactly one depth file at the same relative path and vice versa: an unpaired
file is an error, not silently skipped. Hidden files and folders (name starting with
``.``) are ignored.

A file that cannot be used raises :class:`DataError` naming it when its item is read (the
pairing is checked when the data set is built; reading every header up front would cost
about 0.4 ms a pair, longer than a short trial's reads on a KITTI-sized folder): an image
that does not decode (truncated, not an image), a depth map whose size differs from its
image's, a ``.npy`` that is not a 2-D numeric array or that holds NaN or infinity (store 0
where there is no measurement: a NaN is more often a bug in the export than a convention).

Splits keep a group together: a file inside a sub-folder of ``rgb/`` belongs to the group
named by its first sub-folder level (a "sequence": frames of one recording are near
duplicates, so a sequence is never split across train / validation / test); a file
directly in ``rgb/`` is a group of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from trainer.data.common import (
    DataError,
    PairedFiles,
    read_depth_png16,
)

__all__ = ["DepthFolder", "find_folder_pairs", "read_depth_npy", "sequence_of"]

RGB_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_SUFFIXES = (".png", ".npy")


def _by_key(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Files under ``folder`` (any depth) by relative path without suffix, e.g. ``seq/000``."""
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if not path.is_file() or path.suffix.lower() not in suffixes:
            continue
        key = relative.with_suffix("").as_posix()
        if key in found:
            raise DataError(path, f"two files share the stem {key!r}: {found[key]}")
        found[key] = path
    return found


def sequence_of(key: str) -> str:
    """The split group of a file keyed ``key``: its first sub-folder, else the file itself."""
    return key.split("/", 1)[0]


def find_folder_pairs(root: Path) -> list[tuple[Path, Path]]:
    """``(rgb, depth)`` pairs of ``root``, sorted by relative path; see the module docstring."""
    if not root.is_dir():
        raise DataError(root, "data folder not found")
    rgb = _by_key(root / "rgb", RGB_SUFFIXES)
    depth = _by_key(root / "depth", DEPTH_SUFFIXES)
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
    """A ``.npy`` depth map -> ``[H,W]`` stored values as float64 (not yet scaled).

    Raises :class:`DataError` naming the file when it is not a 2-D numeric array or holds
    NaN or infinity.
    """
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
    values = values.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            path,
            f"depth array holds {int(bad.sum())} NaN or infinite value(s), the first at row "
            f"{row}, column {col}; store 0 where there is no measurement",
        )
    return values


class DepthFolder(PairedFiles):
    """Pairs of ``rgb/`` and ``depth/`` files (PNG or ``.npy``, matched by relative path).

    ``group_unit`` names what :meth:`groups` returns: ``"sequence"`` when any image lies in
    a sub-folder of ``rgb/``, else ``"file"``.
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
        self.root = Path(root)
        super().__init__(
            find_folder_pairs(self.root),
            depth_scale=depth_scale,
            height=height,
            width=width,
            min_depth=min_depth,
            max_depth=max_depth,
        )
        nested = any(len(rgb.relative_to(self.root / "rgb").parts) > 1 for rgb, _ in self.pairs)
        self.group_unit = "sequence" if nested else "file"

    def groups(self) -> list[str]:
        """The sequence (first sub-folder of ``rgb/``) or file of every item ``[N]``."""
        rgb_root = self.root / "rgb"
        return [
            sequence_of(rgb.relative_to(rgb_root).with_suffix("").as_posix())
            for rgb, _ in self.pairs
        ]

    def read_depth(self, path: Path) -> npt.NDArray[np.float64]:
        if path.suffix.lower() == ".npy":
            return read_depth_npy(path)
        return read_depth_png16(path)
