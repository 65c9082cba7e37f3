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


def write_mat(
    path: Path,
    rgb: np.ndarray,
    depth: np.ndarray,
    scenes: list[str] | None = None,
    **overrides: object,
) -> Path:
    """Store like MATLAB v7.3 does: ``images [N,3,W,H]``, ``depths [N,W,H]`` and the cell
    array ``scenes [1,N]`` of references to ``uint16`` char columns under ``#refs#``."""
    with h5py.File(path, "w") as f:
        f["images"] = overrides.get("images", rgb.transpose(0, 3, 2, 1))
        f["depths"] = overrides.get("depths", depth.transpose(0, 2, 1).astype(np.float32))
        f["labels"] = np.zeros((len(rgb), 40, 32), dtype=np.uint16)  # ignored
        if scenes is not None:
            refs = []
            for i, name in enumerate(scenes):
                chars = np.array([[ord(c)] for c in name], dtype=np.uint16)  # [len,1]
                refs.append(f.create_dataset(f"#refs#/s{i}", data=chars).ref)
            f.create_dataset("scenes", data=np.array([refs], dtype=h5py.ref_dtype))
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
    scenes = ["bedroom_0001", "bedroom_0002", "kitchen_0003", "office_0004", "study_0005"]
    path = write_mat(tmp_path / "nyu.mat", rgb, depth, scenes)
    cfg = DataConfig(kind="nyu", path=path, height=16, width=20, min_depth=0.1, val_fraction=0.4)
    train, val, test = build_datasets(cfg)
    assert (len(train), len(val), len(test)) == (2, 2, 1)
    rgb_t, depth_t = val[0]
    assert rgb_t.shape == (3, 16, 20) and depth_t.shape == (1, 16, 20)
    assert isinstance(val, DatasetSplit)
    index = val.indices[0]
    # Area resampling of a 2x downscale is the mean of each 2x2 block.
    block = rgb[index, :2, :2, 0].astype(np.float64).mean() / 255
    assert float(rgb_t[0, 0, 0]) == pytest.approx(block, abs=1e-5)
    assert torch.isin(depth_t, torch.from_numpy(depth[index]).float()).all()


def test_split_by_scene(tmp_path: Path) -> None:
    # 40 images of 20 rooms, interleaved; "_0007a" and "_0007b" are one room.
    names = [f"room_{i % 20:04d}" for i in range(40)]
    names[7], names[27] = "room_0007a", "room_0007b"
    rgb, depth = make_arrays(40)
    path = write_mat(tmp_path / "nyu.mat", rgb, depth, names)
    assert NyuDepthV2(path, height=8, width=8, min_depth=0.5, max_depth=10.0).groups()[7] == (
        "room_0007"
    )
    cfg = DataConfig(kind="nyu", path=path, height=16, width=16, seed=2)
    splits = build_datasets(cfg)
    assert [len(part) for part in splits] == [28, 8, 4]
    rooms = []
    for part in splits:
        assert isinstance(part, DatasetSplit)
        rooms.append({names[i].rstrip("ab") for i in part.indices})
    assert [len(side) for side in rooms] == [14, 4, 2]
    assert len(set().union(*rooms)) == 20  # no room on two sides
    again = build_datasets(cfg)
    assert [part.indices for part in again if isinstance(part, DatasetSplit)] == [
        part.indices for part in splits if isinstance(part, DatasetSplit)
    ]


def test_scenes_as_plain_strings(tmp_path: Path) -> None:
    rgb, depth = make_arrays(3)
    path = write_mat(tmp_path / "nyu.mat", rgb, depth)
    with h5py.File(path, "a") as f:
        f["scenes"] = np.array(["a_0001", "b_0002", "c_0003"], dtype=h5py.string_dtype())
    assert nyu(path).groups() == ["a_0001", "b_0002", "c_0003"]


def test_split_needs_scenes(tmp_path: Path) -> None:
    rgb, depth = make_arrays(4)
    path = write_mat(tmp_path / "nyu.mat", rgb, depth)
    assert len(nyu(path)) == 4  # reading images needs no scenes
    cfg = DataConfig(kind="nyu", path=path, height=16, width=16)
    with pytest.raises(DataError, match=r"nyu\.mat: missing cell array 'scenes'"):
        build_datasets(cfg)
    wrong = write_mat(tmp_path / "short.mat", rgb, depth, ["a_0001", "b_0002"])
    with pytest.raises(DataError, match=r"short\.mat: 'scenes' names 2 images but .* holds 4"):
        nyu(wrong).groups()


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
