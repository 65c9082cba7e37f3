"""The built-in data set: procedurally rendered street-like scenes.

Scene ``index`` of split ``split`` under ``seed`` is drawn from its own random stream
``SeedSequence([seed, split_id, index])`` (train = 0, val = 1, test = 2), where ``seed`` is
the data seed (``DataConfig.seed``), never the training seed: the same triple always gives
the same tensors, so every trial and replicate of a study is validated and tested on the
same scenes; no split repeats another's scenes, and none depends on the size of another.
Scenes are rendered on first access and kept in a process-wide LRU cache bounded in bytes
(:data:`SHARED_CACHE`), so the trials of one sweep render each scene once.

Ground truth is the z-depth of the nearest surface, 0 where there is none (sky) or it lies
outside ``[min_depth, max_depth]``. With ``sparse``, only pixels on ``scan_lines`` rows
(from just above the horizon to the bottom row, like KITTI's Velodyne) keep their depth,
every few columns, about :data:`LIDAR_DENSITY` of the image in all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Literal

import numpy as np
import numpy.typing as npt

from trainer.config import DataConfig
from trainer.data.common import DepthDataset, Sample, to_sample
from trainer.data.render import render
from trainer.data.scene import sample_scene

__all__ = [
    "LIDAR_DENSITY",
    "SHARED_CACHE",
    "RenderCache",
    "Split",
    "SyntheticScenes",
    "lidar_mask",
    "render_sample",
    "scan_line_rows",
]

Split = Literal["train", "val", "test"]
_SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
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

    ``seed`` is the data seed. A pure function of its arguments; ``depth`` in metres,
    0 = missing.
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


class RenderCache:
    """Rendered samples by their render arguments, least recently used out past ``max_bytes``.

    Every trial of a sweep renders the same scenes (they depend on the data seed only, not
    on the training seed), so one cache per process means that only the first trial of a
    sweep pays for rendering (about 4 ms a scene at 64x192, as much as a training step).
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self._items: OrderedDict[Hashable, Sample] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Sample | None:
        sample = self._items.get(key)
        if sample is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return sample

    def put(self, key: Hashable, sample: Sample) -> None:
        size = sum(t.element_size() * t.nelement() for t in sample)
        if size > self.max_bytes or key in self._items:
            return
        self._items[key] = sample
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= sum(t.element_size() * t.nelement() for t in old)


SHARED_CACHE = RenderCache()
"""The process-wide cache of :class:`SyntheticScenes` (1 GiB: ~5000 scenes at 64x192)."""


class SyntheticScenes(DepthDataset):
    """``num_scenes`` rendered scenes of one split; items ``(rgb [3,H,W], depth [1,H,W])``.

    Rendered samples are kept in ``cache`` (by default :data:`SHARED_CACHE`, shared by
    every instance of this process; None = render every access). Items are copies, so
    changing one in place never changes the cache.
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
        cache: RenderCache | None = SHARED_CACHE,
    ) -> None:
        if num_scenes < 1:
            raise ValueError(f"num_scenes must be >= 1, got {num_scenes}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if not 0.0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.num_scenes = num_scenes
        self.seed = seed
        self.split: Split = split
        self.height, self.width = height, width
        self.min_depth, self.max_depth = min_depth, max_depth
        self.sparse, self.scan_lines = sparse, scan_lines
        self._cache = cache

    @classmethod
    def from_config(cls, cfg: DataConfig, split: Split) -> SyntheticScenes:
        """The ``split`` of ``cfg`` under the data seed ``cfg.seed``.

        ``cfg.num_train``, ``cfg.num_val`` or ``cfg.num_test`` scenes.
        """
        sizes = {"train": cfg.num_train, "val": cfg.num_val, "test": cfg.num_test}
        return cls(
            sizes[split],
            seed=cfg.seed,
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
        key = (self.seed, self.split, index, self.height, self.width, self.min_depth,
               self.max_depth, self.sparse, self.scan_lines)  # fmt: skip
        sample = None if self._cache is None else self._cache.get(key)
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
            if self._cache is not None:
                self._cache.put(key, sample)
        rgb, depth = sample
        return rgb.clone(), depth.clone()
