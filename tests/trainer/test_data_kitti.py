"""KITTI depth: the annotated-depth layout written with real 16-bit PNGs, and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.config import DataConfig
from trainer.data import DataError, DatasetSplit, KittiDepth, build_datasets
from trainer.data.kitti import drive_of

DRIVE = "2011_09_26_drive_0001_sync"


def kitti(root: Path) -> KittiDepth:
    return KittiDepth(root, height=16, width=40, min_depth=1.0, max_depth=80.0)


def depth_dir(
    root: Path, drive: str = DRIVE, split: str = "train", camera: str = "image_02"
) -> Path:
    return root / split / drive / "proj_depth" / "groundtruth" / camera


def write_frame(
    root: Path,
    frame: str,
    seed: int,
    *,
    drive: str = DRIVE,
    raw_layout: bool = False,
    camera: str = "image_02",
) -> tuple[np.ndarray, np.ndarray]:
    """Write one frame (RGB [16,40,3] uint8, depth PNG uint16 = metres * 256)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(16, 40, 3), dtype=np.uint8)
    stored = (rng.uniform(0.5, 90.0, size=(16, 40)) * 256).astype(np.uint16)
    stored[rng.random((16, 40)) < 0.8] = 0  # sparse, as KITTI's ground truth is
    ddir = depth_dir(root, drive, camera=camera)
    ddir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(stored).save(ddir / f"{frame}.png")
    if raw_layout:
        rgb_dir = root / drive[:10] / drive / camera / "data"
    else:
        rgb_dir = root / "train" / drive / camera / "data"
    rgb_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(rgb_dir / f"{frame}.png")
    return rgb, stored


def test_round_trip_exact_at_native_size(tmp_path: Path) -> None:
    rgb, stored = write_frame(tmp_path, "0000000005", seed=0)
    data = kitti(tmp_path)
    assert len(data) == 1
    rgb_t, depth_t = data[0]
    assert rgb_t.shape == (3, 16, 40) and depth_t.shape == (1, 16, 40)
    assert torch.allclose(rgb_t, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    metres = stored / 256.0
    expected = np.where((metres >= 1.0) & (metres <= 80.0), metres, 0.0)
    assert np.allclose(depth_t[0].numpy(), expected, atol=1e-5)
    assert (depth_t > 0).any() and (depth_t == 0).any()


def test_raw_layout_rgb_and_resize(tmp_path: Path) -> None:
    write_frame(tmp_path, "0000000005", seed=0)
    other = "2011_09_26_drive_0002_sync"
    _, stored = write_frame(tmp_path, "0000000010", seed=1, drive=other, raw_layout=True)
    data = KittiDepth(tmp_path, height=8, width=20, min_depth=0.1, max_depth=100.0)
    # The first frame's RGB lies next to its depth, the second's in the raw layout.
    assert [rgb.parts[-5] for rgb, _ in data.pairs] == ["train", "2011_09_26"]
    rgb_t, depth_t = data[1]
    assert rgb_t.shape == (3, 8, 20) and depth_t.shape == (1, 8, 20)
    # Nearest resampling keeps every other stored value, never blends them.
    assert torch.isin(depth_t, torch.from_numpy(stored / 256.0).float()).all()


def drives(split: DatasetSplit) -> set[str]:
    assert isinstance(split.dataset, KittiDepth)
    return {drive_of(split.dataset.pairs[i][1]) for i in split.indices}


def test_build_datasets_splits_by_drive(tmp_path: Path) -> None:
    # 10 drives x 2 frames x 2 cameras; every drive's 4 items must stay on one side.
    for d in range(10):
        for f in range(2):
            for camera in ("image_02", "image_03"):
                drive = f"2011_09_26_drive_{d:04d}_sync"
                write_frame(tmp_path, f"{f:010d}", seed=d * 10 + f, drive=drive, camera=camera)
    cfg = DataConfig(kind="kitti", path=tmp_path, height=16, width=40, seed=0)
    splits = build_datasets(cfg)
    assert [len(part) for part in splits] == [28, 8, 4]  # 7, 2 and 1 drives
    sides = [drives(part) for part in splits if isinstance(part, DatasetSplit)]
    assert [len(side) for side in sides] == [7, 2, 1]
    assert len(set().union(*sides)) == 10  # no drive on two sides
    again = build_datasets(cfg)
    assert [drives(part) for part in again if isinstance(part, DatasetSplit)] == sides
    assert torch.equal(again.test[3][0], splits.test[3][0])
    other = [drives(part) for part in build_datasets(cfg.model_copy(update={"seed": 1}))
             if isinstance(part, DatasetSplit)]  # fmt: skip
    assert other != sides


def test_too_few_drives(tmp_path: Path) -> None:
    write_frame(tmp_path, "0000000005", seed=0)
    write_frame(tmp_path, "0000000005", seed=1, drive="2011_09_26_drive_0002_sync")
    cfg = DataConfig(kind="kitti", path=tmp_path, height=16, width=40)
    with pytest.raises(DataError, match=r"found 2 drive\(s\); train, validation and test"):
        build_datasets(cfg)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere: KITTI root folder not found"):
        kitti(tmp_path / "nowhere")


def test_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no KITTI depth maps found") as err:
        kitti(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_depth_without_rgb_names_the_depth_file(tmp_path: Path) -> None:
    write_frame(tmp_path, "0000000005", seed=0)
    (tmp_path / "train" / DRIVE / "image_02" / "data" / "0000000005.png").unlink()
    with pytest.raises(DataError, match=r"0000000005\.png: depth map without an RGB frame"):
        kitti(tmp_path)


def test_corrupt_depth_png(tmp_path: Path) -> None:
    write_frame(tmp_path, "0000000005", seed=0)
    bad = depth_dir(tmp_path) / "0000000005.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    data = kitti(tmp_path)
    with pytest.raises(DataError, match="cannot decode image") as err:
        data[0]
    assert str(bad) in str(err.value)


@pytest.mark.parametrize("which", ["depth", "rgb"])
def test_truncated_png_names_the_file(tmp_path: Path, which: str) -> None:
    """A PNG cut short (an interrupted download or extraction) is a one-line error naming
    the file, raised when its frame is read."""
    write_frame(tmp_path, "0000000005", seed=0)
    if which == "depth":
        bad = depth_dir(tmp_path) / "0000000005.png"
    else:
        bad = tmp_path / "train" / DRIVE / "image_02" / "data" / "0000000005.png"
    data = kitti(tmp_path)
    assert data[0][0].shape == (3, 16, 40)
    whole = bad.read_bytes()
    bad.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as err:
        data[0]
    assert str(err.value).startswith(f"{bad}: cannot decode image (")
    assert "\n" not in str(err.value) and err.value.path == bad


def test_eight_bit_depth_is_refused(tmp_path: Path) -> None:
    write_frame(tmp_path, "0000000005", seed=0)
    bad = depth_dir(tmp_path) / "0000000005.png"
    Image.fromarray(np.zeros((16, 40), dtype=np.uint8)).save(bad)
    with pytest.raises(DataError, match=r"0000000005\.png: expected a 16-bit .* mode 'L'"):
        kitti(tmp_path)[0]


def test_sixteen_bit_rgb_is_refused(tmp_path: Path) -> None:
    write_frame(tmp_path, "0000000005", seed=0)
    bad = tmp_path / "train" / DRIVE / "image_02" / "data" / "0000000005.png"
    Image.fromarray(np.zeros((16, 40), dtype=np.uint16)).save(bad)
    with pytest.raises(DataError, match="expected an 8-bit RGB image") as err:
        kitti(tmp_path)[0]
    assert str(bad) in str(err.value)


def test_size_mismatch_names_both_files(tmp_path: Path) -> None:
    write_frame(tmp_path, "0000000005", seed=0)
    rgb_file = tmp_path / "train" / DRIVE / "image_02" / "data" / "0000000005.png"
    Image.fromarray(np.zeros((17, 40, 3), dtype=np.uint8)).save(rgb_file)
    with pytest.raises(DataError, match=r"depth map is 40x16 px but its image .* 40x17") as e:
        kitti(tmp_path)[0]
    assert str(depth_dir(tmp_path) / "0000000005.png") in str(e.value)
    assert str(rgb_file) in str(e.value)
