"""Shared pieces: range masking, resizing that never invents depth, the grouped split."""

from __future__ import annotations

import pickle
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.config import DataConfig
from trainer.data import DataError, DatasetSplit, SyntheticScenes, build_datasets
from trainer.data.common import resize_depth, resize_rgb, split_groups, to_sample


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


def groups_of(split: list[int], groups: list[str]) -> set[str]:
    return {groups[i] for i in split}


def test_split_groups_meets_the_fractions_on_twenty_groups() -> None:
    # 20 drives of 3 frames, interleaved: item i belongs to drive i % 20.
    groups = [f"drive_{i % 20:02d}" for i in range(60)]
    train, val, test = split_groups(groups, 0.2, 0.1, seed=3, source="x")
    assert (len(train), len(val), len(test)) == (42, 12, 6)
    sides = [groups_of(part, groups) for part in (train, val, test)]
    assert [len(side) for side in sides] == [14, 4, 2]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sorted(train + val + test) == list(range(60))
    assert all(part == sorted(part) for part in (train, val, test))


def test_split_groups_is_fixed_by_its_seed() -> None:
    groups = [f"scene_{i // 4}" for i in range(80)]
    split = split_groups(groups, 0.2, 0.1, seed=3, source="x")
    assert split_groups(groups, 0.2, 0.1, seed=3, source="x") == split
    other = split_groups(groups, 0.2, 0.1, seed=4, source="x")
    assert other[1] != split[1] and other[2] != split[2]
    # Test is cut first: another val_fraction leaves the test set as it was.
    assert split_groups(groups, 0.3, 0.1, seed=3, source="x")[2] == split[2]


def test_split_groups_counts_items_not_groups() -> None:
    # One group of 50 items and 50 groups of 1: the fractions are of the 100 items, and
    # the big group, which would overshoot either target, always trains.
    groups = ["big"] * 50 + [f"small_{i}" for i in range(50)]
    for seed in range(10):
        train, val, test = split_groups(groups, 0.2, 0.1, seed=seed, source="x")
        assert (len(train), len(val), len(test)) == (70, 20, 10)
        assert set(range(50)) <= set(train)


def test_split_groups_gives_every_split_a_group() -> None:
    groups = ["a", "a", "b", "c", "c", "c"]
    train, val, test = split_groups(groups, 0.01, 0.01, seed=0, source="x")
    assert sorted(len(groups_of(part, groups)) for part in (train, val, test)) == [1, 1, 1]
    many = [f"g{i}" for i in range(10)]
    train, val, test = split_groups(many, 0.49, 0.49, seed=0, source="x")
    assert len(train) >= 1 and len(val) >= 1 and len(test) >= 1
    with pytest.raises(DataError, match=r"^data\.mat: found 2 scene\(s\); .* at least 3"):
        split_groups(["s1", "s2", "s1"], 0.2, 0.1, seed=0, source="data.mat", unit="scene")
    with pytest.raises(ValueError, match="val_fraction"):
        split_groups(many, 0.6, 0.4, seed=0, source="x")


def test_data_config_needs_room_to_train() -> None:
    with pytest.raises(ValueError, match=r"val_fraction \(0\.6\) \+ test_fraction \(0\.4\)"):
        DataConfig(val_fraction=0.6, test_fraction=0.4)
    cfg = DataConfig(val_fraction=0.5, test_fraction=0.3)
    assert (cfg.seed, cfg.num_test) == (0, 64)


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
        build_datasets(cfg)


def test_data_error_message_names_the_path_first(tmp_path: Path) -> None:
    error = DataError(tmp_path / "a.png", "cannot decode image (image file is truncated)")
    assert str(error) == f"{tmp_path / 'a.png'}: cannot decode image (image file is truncated)"
    assert error.path == tmp_path / "a.png" and isinstance(error, ValueError)


def test_data_error_rebuilt_from_a_chained_traceback(tmp_path: Path) -> None:
    """The one-argument form keeps only the error's own line of a formatted traceback (how
    a DataLoader worker hands an item's error to the main process)."""
    path = tmp_path / "seq: 1" / "a.npy"  # ": " inside the path: the message stays exact
    try:
        try:
            raise OSError("unexpected end of file")
        except OSError as exc:
            raise DataError(path, "cannot read .npy array (unexpected end of file)") from exc
    except DataError as raised:
        text = "".join(traceback.format_exception(raised))
    worker_style = f"Caught DataError in DataLoader worker process 0.\nOriginal {text}"
    rebuilt = DataError(worker_style)
    assert str(rebuilt) == f"{path}: cannot read .npy array (unexpected end of file)"
    plain = DataError(f"{tmp_path / 'b.png'}: no images (.png)")
    assert (plain.path, plain.problem) == (tmp_path / "b.png", "no images (.png)")
    assert str(DataError("no separator")) == "no separator"
