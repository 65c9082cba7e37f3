"""NYU Depth v2 labelled .mat: written with h5py in MATLAB's transposed layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from trainer.config import DataConfig
from trainer.data import DataError, DatasetSplit, NyuDepthV2, build_datasets


def nyu(path: Path) -> NyuDepthV2:
    return NyuDepthV2(path, height=32, width=40, min_depth=0.5, max_depth=10.0)


def make_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``rgb [N,32,40,3]`` uint8 and ``depth [N,32,40]`` metres, as a user sees them."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(n, 32, 40, 3), dtype=np.uint8)
    depth = rng.uniform(0.2, 12.0, size=(n, 32, 40))
    return rgb, depth


def write_mat(path: Path, rgb: np.ndarray, depth: np.ndarray, **overrides: object) -> Path:
    """Store like MATLAB v7.3 does: ``images [N,3,W,H]``, ``depths [N,W,H]``."""
    with h5py.File(path, "w") as f:
        f["images"] = overrides.get("images", rgb.transpose(0, 3, 2, 1))
        f["depths"] = overrides.get("depths", depth.transpose(0, 2, 1).astype(np.float32))
        f["labels"] = np.zeros((len(rgb), 40, 32), dtype=np.uint16)  # ignored
    return path


def test_round_trip_undoes_the_matlab_transpose(tmp_path: Path) -> None:
    rgb, depth = make_arrays(3)
    data = nyu(write_mat(tmp_path / "nyu.mat", rgb, depth))
    assert len(data) == 3
    for i in range(3):
        rgb_t, depth_t = data[i]
        assert rgb_t.shape == (3, 32, 40) and depth_t.shape == (1, 32, 40)
        assert torch.allclose(rgb_t, torch.from_numpy(rgb[i]).permute(2, 0, 1).float() / 255)
        expected = np.where((depth[i] >= 0.5) & (depth[i] <= 10.0), depth[i], 0.0)
        assert np.allclose(depth_t[0].numpy(), expected, atol=1e-6)
    assert torch.equal(data[-1][0], data[2][0])
    with pytest.raises(IndexError):
        data[3]


def test_resized_and_split(tmp_path: Path) -> None:
    rgb, depth = make_arrays(5)
    path = write_mat(tmp_path / "nyu.mat", rgb, depth)
    cfg = DataConfig(kind="nyu", path=path, height=16, width=20, min_depth=0.1, val_fraction=0.4)
    train, val = build_datasets(cfg, seed=1)
    assert (len(train), len(val)) == (3, 2)
    rgb_t, depth_t = val[0]
    assert rgb_t.shape == (3, 16, 20) and depth_t.shape == (1, 16, 20)
    assert isinstance(val, DatasetSplit)
    index = val.indices[0]
    # Area resampling of a 2x downscale is the mean of each 2x2 block.
    block = rgb[index, :2, :2, 0].astype(np.float64).mean() / 255
    assert float(rgb_t[0, 0, 0]) == pytest.approx(block, abs=1e-5)
    assert torch.isin(depth_t, torch.from_numpy(depth[index]).float()).all()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nyu\.mat: NYU \.mat file not found"):
        nyu(tmp_path / "nyu.mat")


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "old.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + bytes(100))
    with pytest.raises(DataError, match=r"old\.mat: not an HDF5 \(MATLAB v7\.3\) file"):
        nyu(path)


def test_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "nyu.mat"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((1, 3, 40, 32), dtype=np.uint8)
    with pytest.raises(DataError, match=r"nyu\.mat: missing data set 'depths'"):
        nyu(path)


def test_wrong_image_dtype(tmp_path: Path) -> None:
    rgb, depth = make_arrays(2)
    images = rgb.transpose(0, 3, 2, 1).astype(np.float32)
    path = write_mat(tmp_path / "nyu.mat", rgb, depth, images=images)
    with pytest.raises(DataError, match=r"nyu\.mat: 'images' must be uint8, got float32"):
        nyu(path)


def test_integer_depths_refused(tmp_path: Path) -> None:
    rgb, depth = make_arrays(2)
    path = write_mat(tmp_path / "nyu.mat", rgb, depth, depths=np.zeros((2, 40, 32), np.uint16))
    with pytest.raises(DataError, match=r"'depths' must hold floats"):
        nyu(path)


def test_shape_mismatch(tmp_path: Path) -> None:
    rgb, depth = make_arrays(2)
    untransposed = depth.astype(np.float32)  # [N,H,W] instead of [N,W,H]
    path = write_mat(tmp_path / "nyu.mat", rgb, depth, depths=untransposed)
    with pytest.raises(DataError, match=r"nyu\.mat: 'images' \(2, 3, 40, 32\) and 'depths'"):
        nyu(path)


def test_no_images(tmp_path: Path) -> None:
    rgb, depth = make_arrays(0)
    path = write_mat(tmp_path / "nyu.mat", rgb, depth)
    with pytest.raises(DataError, match=r"nyu\.mat: holds no images"):
        nyu(path)
