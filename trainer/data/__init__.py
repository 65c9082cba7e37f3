"""Data sets of ``(rgb [3,H,W] float32 in [0,1], depth [1,H,W] float32 metres)`` samples.

Depth 0 means "no measurement"; so does any depth outside ``[min_depth, max_depth]``.
``build_datasets(cfg)`` is the entry point: it returns the :class:`DataSplits`
``(train, val, test)`` of the kind ``cfg.kind`` names. Which samples exist and which are
validation and test depends on the data seed ``cfg.seed`` alone, never on the training
seed (``TrainConfig.seed``): every trial and replicate of a study sees the same
validation and test sets.

- ``synthetic`` (default): :class:`SyntheticScenes`, procedurally rendered, dense or
  LiDAR-like sparse ground truth; ``cfg.num_train``, ``cfg.num_val`` and ``cfg.num_test``
  scenes, each split drawn from its own random streams.
- ``kitti``: :class:`KittiDepth` (layout in :mod:`trainer.data.kitti`), split by drive.
- ``nyu``: :class:`NyuDepthV2`, the labelled ``.mat`` file, split by scene.
- ``folder``: :class:`DepthFolder`, ``rgb/`` + ``depth/`` with ``cfg.depth_scale``, split
  by sequence (first sub-folder of ``rgb/``) or, for flat folders, by file.

The file-based kinds hold out about ``cfg.val_fraction`` and ``cfg.test_fraction`` of the
samples in whole groups (:func:`split_groups`): near-duplicate frames of one drive, room
or sequence never sit on two sides. Problems with the files, or fewer than 3 groups,
raise :class:`DataError` (a ``ValueError``) naming the file.
"""

from __future__ import annotations

from pathlib import Path

from trainer.config import DataConfig
from trainer.data.common import (
    DataError,
    DatasetSplit,
    DataSplits,
    DepthDataset,
    Sample,
    split_groups,
)
from trainer.data.folder import DepthFolder
from trainer.data.kitti import KittiDepth
from trainer.data.nyu import NyuDepthV2
from trainer.data.synthetic import SyntheticScenes

__all__ = [
    "DataError",
    "DataSplits",
    "DatasetSplit",
    "DepthDataset",
    "DepthFolder",
    "KittiDepth",
    "NyuDepthV2",
    "Sample",
    "SyntheticScenes",
    "build_datasets",
    "split_groups",
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


def build_datasets(cfg: DataConfig) -> DataSplits:
    """``(train, val, test)`` data sets for ``cfg``; the same ``cfg`` gives the same data.

    Uses the data seed ``cfg.seed`` only. Raises :class:`DataError` when the files of a
    kitti / nyu / folder data set are missing, empty, unpaired, or hold fewer than 3
    groups (corrupt contents are reported when an item is read).
    """
    if cfg.kind == "synthetic":
        return DataSplits(
            SyntheticScenes.from_config(cfg, "train"),
            SyntheticScenes.from_config(cfg, "val"),
            SyntheticScenes.from_config(cfg, "test"),
        )
    if cfg.path is None:  # DataConfig refuses this already; kept for direct callers
        raise DataError("<no path>", f"data kind {cfg.kind!r} needs a path")
    full = _file_dataset(cfg, cfg.path)
    train, val, test = split_groups(
        full.groups(),
        cfg.val_fraction,
        cfg.test_fraction,
        cfg.seed,
        source=cfg.path,
        unit=full.group_unit,
    )
    return DataSplits(DatasetSplit(full, train), DatasetSplit(full, val), DatasetSplit(full, test))
