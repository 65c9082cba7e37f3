"""Data sets of ``(rgb [3,H,W] float32 in [0,1], depth [1,H,W] float32 metres)`` samples.

Depth 0 means "no measurement"; so does any depth outside ``[min_depth, max_depth]``.
``build_datasets(cfg, seed)`` is the entry point: it returns the training and validation
sets of the kind ``cfg.kind`` names.

- ``synthetic`` (default): :class:`SyntheticScenes`, procedurally rendered, dense or
  LiDAR-like sparse ground truth; ``cfg.num_train`` and ``cfg.num_val`` scenes.
- ``kitti``: :class:`KittiDepth` (layout in :mod:`trainer.data.kitti`).
- ``nyu``: :class:`NyuDepthV2`, the labelled ``.mat`` file.
- ``folder``: :class:`DepthFolder`, ``rgb/`` + ``depth/`` with ``cfg.depth_scale``.

The file-based kinds hold out ``cfg.val_fraction`` of the samples, chosen by ``seed``.
Problems with the files raise :class:`DataError` (a ``ValueError``) naming the file.
"""

from __future__ import annotations

from pathlib import Path

from trainer.config import DataConfig
from trainer.data.common import (
    DataError,
    DatasetSplit,
    DepthDataset,
    Sample,
    split_indices,
)
from trainer.data.folder import DepthFolder
from trainer.data.kitti import KittiDepth
from trainer.data.nyu import NyuDepthV2
from trainer.data.synthetic import SyntheticScenes

__all__ = [
    "DataError",
    "DatasetSplit",
    "DepthDataset",
    "DepthFolder",
    "KittiDepth",
    "NyuDepthV2",
    "Sample",
    "SyntheticScenes",
    "build_datasets",
]


def _file_dataset(cfg: DataConfig, path: Path) -> KittiDepth | NyuDepthV2 | DepthFolder:
    h, w, lo, hi = cfg.height, cfg.width, cfg.min_depth, cfg.max_depth
    if cfg.kind == "kitti":
        return KittiDepth(path, height=h, width=w, min_depth=lo, max_depth=hi)
    if cfg.kind == "nyu":
        return NyuDepthV2(path, height=h, width=w, min_depth=lo, max_depth=hi)
    return DepthFolder(
        path, depth_scale=cfg.depth_scale, height=h, width=w, min_depth=lo, max_depth=hi
    )


def build_datasets(cfg: DataConfig, seed: int) -> tuple[DepthDataset, DepthDataset]:
    """``(train, val)`` data sets for ``cfg``; the same ``(cfg, seed)`` gives the same data.

    Raises :class:`DataError` when the files of a kitti / nyu / folder data set are
    missing, empty or unpaired (corrupt contents are reported when an item is read).
    """
    if cfg.kind == "synthetic":
        return (
            SyntheticScenes.from_config(cfg, seed, "train"),
            SyntheticScenes.from_config(cfg, seed, "val"),
        )
    if cfg.path is None:  # DataConfig refuses this already; kept for direct callers
        raise DataError("<no path>", f"data kind {cfg.kind!r} needs a path")
    full = _file_dataset(cfg, cfg.path)
    train, val = split_indices(len(full), cfg.val_fraction, seed, source=cfg.path)
    return DatasetSplit(full, train), DatasetSplit(full, val)
