"""Shared pieces: range masking, resizing that never invents depth, the train/val split."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.config import DataConfig
from trainer.data import DataError, DatasetSplit, SyntheticScenes, build_datasets
from trainer.data.common import resize_depth, resize_rgb, split_indices, to_sample


def test_to_sample_scales_rgb_and_masks_depth() -> None:
    rgb = np.array([[[0, 128, 255], [255, 255, 255]]], dtype=np.uint8)  # [1,2,3]
    depth = np.array([[0.5, 3.0]])
    rgb_t, depth_t = to_sample(rgb, depth, height=1, width=2, min_depth=1.0, max_depth=80.0)
    assert rgb_t.shape == (3, 1, 2) and depth_t.shape == (1, 1, 2)
    assert rgb_t[:, 0, 0].tolist() == pytest.approx([0.0, 128 / 255, 1.0])
    assert depth_t.flatten().tolist() == [0.0, 3.0]  # 0.5 m < min_depth -> missing


def test_to_sample_marks_non_finite_and_far_depth_missing() -> None:
    rgb = np.zeros((1, 4, 3), dtype=np.float32)
    depth = np.array([[np.nan, np.inf, 90.0, 80.0]])
    _, depth_t = to_sample(rgb, depth, height=1, width=4, min_depth=1.0, max_depth=80.0)
    assert depth_t.flatten().tolist() == [0.0, 0.0, 0.0, 80.0]
    assert depth_t.dtype == torch.float32


def test_resize_depth_never_invents_values() -> None:
    gen = torch.Generator().manual_seed(0)
    depth = torch.rand(1, 37, 53, generator=gen) * 50 + 1
    depth[torch.rand(1, 37, 53, generator=gen) < 0.7] = 0.0  # sparse, like LiDAR
    for size in ((16, 24), (80, 100)):
        out = resize_depth(depth, *size)
        assert out.shape == (1, *size)
        assert torch.isin(out, depth).all()  # every value was measured (or 0)


def test_resize_rgb_downscale_averages() -> None:
    rgb = torch.zeros(3, 4, 4)
    rgb[:, :, ::2] = 1.0  # one-pixel stripes
    out = resize_rgb(rgb, 2, 2)
    assert out.shape == (3, 2, 2)
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=1e-6)
    up = resize_rgb(torch.rand(3, 5, 7), 20, 30)
    assert float(up.min()) >= 0.0 and float(up.max()) <= 1.0


def test_split_is_deterministic_disjoint_and_complete() -> None:
    train, val = split_indices(50, 0.2, seed=3, source="x")
    assert len(val) == 10 and len(train) == 40
    assert sorted(train + val) == list(range(50))
    assert split_indices(50, 0.2, seed=3, source="x") == (train, val)
    assert split_indices(50, 0.2, seed=4, source="x")[1] != val


def test_split_keeps_both_sides_non_empty() -> None:
    assert split_indices(2, 0.01, seed=0, source="x")[1] != []
    train, val = split_indices(3, 0.99, seed=0, source="x")
    assert len(train) == 1 and len(val) == 2
    with pytest.raises(DataError, match=r"^data\.mat: found 1 sample"):
        split_indices(1, 0.2, seed=0, source="data.mat")


def test_dataset_split_maps_indices() -> None:
    full = SyntheticScenes(4, seed=0, height=16, width=32)
    view = DatasetSplit(full, [3, 1])
    assert len(view) == 2
    assert torch.equal(view[0][0], full[3][0]) and torch.equal(view[1][1], full[1][1])


def test_datasets_survive_pickling_for_loader_workers() -> None:
    full = SyntheticScenes(2, seed=0, height=16, width=32)
    expected = full[1]
    copy = pickle.loads(pickle.dumps(DatasetSplit(full, [1])))
    assert torch.equal(copy[0][0], expected[0]) and torch.equal(copy[0][1], expected[1])


@pytest.mark.parametrize("kind", ["kitti", "nyu", "folder"])
def test_build_datasets_missing_path_names_it(tmp_path: Path, kind: str) -> None:
    cfg = DataConfig.model_validate({"kind": kind, "path": tmp_path / "absent"})
    with pytest.raises(DataError, match=r"absent: .*not found"):
        build_datasets(cfg, seed=0)
