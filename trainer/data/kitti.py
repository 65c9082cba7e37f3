"""KITTI depth (the depth-completion / depth-prediction benchmark's annotated maps).

Folder layout (``data_depth_annotated.zip`` extracted under ``root``, optionally inside its
``train/`` and ``val/`` folders)::

    <root>/[train|val/]<drive>/proj_depth/groundtruth/image_02/<frame>.png   depth
    <root>/[train|val/]<drive>/image_02/data/<frame>.png                     RGB

``image_03`` (the right camera) is used the same way when present. When the RGB frame is
not next to the depth maps, it is looked up in the KITTI raw layout under the same root::

    <root>/<date>/<drive>/image_02/data/<frame>.png      (<date> = first 10 characters
                                                          of <drive>, e.g. 2011_09_26)

Depth maps are 16-bit grayscale PNGs holding ``metres * 256``, 0 = no measurement (KITTI's
convention). Raw RGB frames without a depth map (the first and last frames of every
drive) are simply not part of the data set; a depth map without an RGB frame is an error.

Splits are by drive (the ``<drive>`` folder name, e.g. ``2011_09_26_drive_0001_sync``):
consecutive frames of a drive are near duplicates, so both cameras and every frame of one
drive land on the same side of the train / validation / test split, wherever they lie
(``train/`` or ``val/``).
"""

from __future__ import annotations

from pathlib import Path

from trainer.data.common import (
    DataError,
    PairedFiles,
)

__all__ = ["KITTI_DEPTH_SCALE", "KittiDepth", "drive_of", "find_kitti_pairs"]

KITTI_DEPTH_SCALE = 256.0
"""Stored 16-bit value / 256 = metres."""

_DEPTH_DIRS = ("*/proj_depth/groundtruth/image_0[23]", "*/*/proj_depth/groundtruth/image_0[23]")


def _rgb_candidates(root: Path, depth_file: Path) -> list[Path]:
    camera_dir = depth_file.parent  # .../<drive>/proj_depth/groundtruth/image_02
    drive_dir = camera_dir.parent.parent.parent
    camera, drive = camera_dir.name, drive_dir.name
    return [
        drive_dir / camera / "data" / depth_file.name,
        root / drive[:10] / drive / camera / "data" / depth_file.name,
    ]


def find_kitti_pairs(root: Path) -> list[tuple[Path, Path]]:
    """All ``(rgb, depth)`` file pairs under ``root``, sorted by depth path.

    Raises :class:`DataError` when ``root`` is missing, holds no depth map, or a depth map
    has no RGB frame.
    """
    if not root.is_dir():
        raise DataError(root, "KITTI root folder not found")
    depth_dirs = sorted({d for pattern in _DEPTH_DIRS for d in root.glob(pattern) if d.is_dir()})
    depth_files = sorted(f for d in depth_dirs for f in d.glob("*.png"))
    if not depth_files:
        raise DataError(
            root,
            "no KITTI depth maps found (expected <drive>/proj_depth/groundtruth/image_02/*.png)",
        )
    pairs = []
    for depth_file in depth_files:
        candidates = _rgb_candidates(root, depth_file)
        rgb = next((c for c in candidates if c.is_file()), None)
        if rgb is None:
            raise DataError(
                depth_file,
                "depth map without an RGB frame (looked for "
                + " and ".join(str(c) for c in candidates)
                + ")",
            )
        pairs.append((rgb, depth_file))
    return pairs


def drive_of(depth_file: Path) -> str:
    """The drive folder name of ``<drive>/proj_depth/groundtruth/image_0X/<frame>.png``."""
    return depth_file.parents[3].name


class KittiDepth(PairedFiles):
    """KITTI frames with their annotated depth (16-bit PNG, metres x 256)."""

    group_unit = "drive"

    def __init__(
        self,
        root: Path,
        *,
        height: int,
        width: int,
        min_depth: float,
        max_depth: float,
    ) -> None:
        self.root = Path(root)
        super().__init__(
            find_kitti_pairs(self.root),
            depth_scale=KITTI_DEPTH_SCALE,
            height=height,
            width=width,
            min_depth=min_depth,
            max_depth=max_depth,
        )

    def groups(self) -> list[str]:
        """The drive of every item ``[N]``: items of one drive stay in one split."""
        return [drive_of(depth) for _, depth in self.pairs]
