"""The built-in data set: procedurally rendered street-like scenes.

Scene ``index`` of split ``split`` under ``seed`` is drawn from its own random stream
``SeedSequence([seed, split_id, index])`` (train = 0, val = 1): the same triple always gives
the same tensors, the validation scenes never repeat training ones, and neither split
depends on the size of the other. Scenes are rendered on first access and kept in an
in-memory LRU cache bounded in bytes.

Ground truth is the z-depth of the nearest surface, 0 where there is none (sky) or it lies
outside ``[min_depth, max_depth]``. With ``sparse``, only pixels on ``scan_lines`` rows
(from just above the horizon to the bottom row, like KITTI's Velodyne) keep their depth,
every few columns, about :data:`LIDAR_DENSITY` of the image in all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import numpy as np
import numpy.typing as npt

from trainer.config import DataConfig
from trainer.data.common import DepthDataset, Sample, to_sample
from trainer.data.render import render
from trainer.data.scene import sample_scene

__all__ = [
    "LIDAR_DENSITY",
    "Split",
    "SyntheticScenes",
    "lidar_mask",
    "render_sample",
    "scan_line_rows",
]

Split = Literal["train", "val"]
_SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1}
LIDAR_DENSITY = 0.05
"""Fraction of all pixels a sparse ground truth samples (before sky and range losses)."""


def scan_line_rows(height: int, scan_lines: int) -> npt.NDArray[np.int64]:
    """Rows ``[L]`` (sorted, unique, ``L <= scan_lines``) the simulated LiDAR scans.

    Evenly spaced from 40 % of the height (just above the horizon) to the bottom row.
    """
    top = round(0.4 * (height - 1))
    return np.unique(np.round(np.linspace(top, height - 1, scan_lines)).astype(np.int64))


def lidar_mask(
    rng: np.random.Generator, height: int, width: int, scan_lines: int
) -> npt.NDArray[np.bool_]:
    """Pixels ``[H,W]`` a LiDAR-like sensor measures: every ``step``-th column on each row.

    ``step`` makes the mask cover about :data:`LIDAR_DENSITY` of the image (every column
    when there are too few rows for that); each row starts at a random column.
    """
    rows = scan_line_rows(height, scan_lines)
    keep = min(1.0, LIDAR_DENSITY * height / len(rows))
    step = max(1, round(1.0 / keep))
    mask = np.zeros((height, width), dtype=bool)
    for row, phase in zip(rows, rng.integers(0, step, size=len(rows)), strict=True):
        mask[row, phase::step] = True
    return mask


def render_sample(
    seed: int,
    split: Split,
    index: int,
    *,
    height: int,
    width: int,
    min_depth: float,
    max_depth: float,
    sparse: bool = False,
    scan_lines: int = 24,
) -> Sample:
    """Render scene ``index`` of ``split`` -> ``(rgb [3,H,W], depth [1,H,W])``.

    A pure function of its arguments; ``depth`` in metres, 0 = missing.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_IDS[split], index]))
    scene = sample_scene(rng, height=height, width=width, min_depth=min_depth, max_depth=max_depth)
    rgb, depth = render(scene)
    if sparse:
        depth = np.where(lidar_mask(rng, height, width, scan_lines), depth, np.float32(0.0))
    return to_sample(
        rgb, depth, height=height, width=width, min_depth=min_depth, max_depth=max_depth
    )


class SyntheticScenes(DepthDataset):
    """``num_scenes`` rendered scenes of one split; items ``(rgb [3,H,W], depth [1,H,W])``.

    ``cache_bytes`` bounds the memory of rendered samples kept (least recently used out).
    Items are copies, so changing one in place never changes the cache.
    """

    def __init__(
        self,
        num_scenes: int,
        *,
        seed: int,
        split: Split = "train",
        height: int = 96,
        width: int = 320,
        min_depth: float = 1.0,
        max_depth: float = 80.0,
        sparse: bool = False,
        scan_lines: int = 24,
        cache_bytes: int = 1 << 30,
    ) -> None:
        if num_scenes < 1:
            raise ValueError(f"num_scenes must be >= 1, got {num_scenes}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not 0.0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.num_scenes = num_scenes
        self.seed = seed
        self.split: Split = split
        self.height, self.width = height, width
        self.min_depth, self.max_depth = min_depth, max_depth
        self.sparse, self.scan_lines = sparse, scan_lines
        sample_bytes = 4 * 4 * height * width  # rgb (3 channels) + depth (1), float32
        self._capacity = max(0, cache_bytes // sample_bytes)
        self._cache: OrderedDict[int, Sample] = OrderedDict()

    @classmethod
    def from_config(cls, cfg: DataConfig, seed: int, split: Split) -> SyntheticScenes:
        """The ``split`` of ``cfg``: ``cfg.num_train`` or ``cfg.num_val`` scenes."""
        return cls(
            cfg.num_train if split == "train" else cfg.num_val,
            seed=seed,
            split=split,
            height=cfg.height,
            width=cfg.width,
            min_depth=cfg.min_depth,
            max_depth=cfg.max_depth,
            sparse=cfg.sparse,
            scan_lines=cfg.scan_lines,
        )

    def __len__(self) -> int:
        return self.num_scenes

    def __getitem__(self, index: int) -> Sample:
        if index < 0:
            index += self.num_scenes
        if not 0 <= index < self.num_scenes:
            raise IndexError(f"scene {index} out of range (0..{self.num_scenes - 1})")
        sample = self._cache.get(index)
        if sample is None:
            sample = render_sample(
                self.seed,
                self.split,
                index,
                height=self.height,
                width=self.width,
                min_depth=self.min_depth,
                max_depth=self.max_depth,
                sparse=self.sparse,
                scan_lines=self.scan_lines,
            )
            if self._capacity:
                self._cache[index] = sample
                if len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        rgb, depth = sample
        return rgb.clone(), depth.clone()

    def cached(self) -> int:
        """Number of scenes currently held in the cache."""
        return len(self._cache)
