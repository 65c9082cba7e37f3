"""A folder of rgb/*.png + depth/*.png|*.npy with a depth scale, and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.config import DataConfig
from trainer.data import DataError, DepthFolder, build_datasets


def folder(root: Path, depth_scale: float = 1.0) -> DepthFolder:
    return DepthFolder(
        root, depth_scale=depth_scale, height=16, width=24, min_depth=0.5, max_depth=50.0
    )


def write_rgb(root: Path, stem: str, seed: int, shape: tuple[int, int] = (16, 24)) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(root / "rgb" / f"{stem}.png")
    return rgb


def write_depth_png(root: Path, stem: str, millimetres: np.ndarray) -> Path:
    (root / "depth").mkdir(parents=True, exist_ok=True)
    path = root / "depth" / f"{stem}.png"
    Image.fromarray(millimetres.astype(np.uint16)).save(path)
    return path


def write_depth_npy(root: Path, stem: str, values: np.ndarray) -> Path:
    (root / "depth").mkdir(parents=True, exist_ok=True)
    path = root / "depth" / f"{stem}.npy"
    np.save(path, values)
    return path


def test_png_and_npy_round_trip_with_depth_scale(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mm = rng.integers(0, 60_000, size=(16, 24))  # 0-60 m in millimetres
    rgb_a = write_rgb(tmp_path, "a", seed=1)
    write_depth_png(tmp_path, "a", mm)
    rgb_b = write_rgb(tmp_path, "b", seed=2)
    write_depth_npy(tmp_path, "b", (mm * 2).astype(np.float32)[..., None])  # [H,W,1]
    data = folder(tmp_path, 1000.0)
    assert [rgb.stem for rgb, _ in data.pairs] == ["a", "b"]
    for (rgb_t, depth_t), rgb, scale in zip(
        (data[0], data[1]), (rgb_a, rgb_b), (1, 2), strict=True
    ):
        assert rgb_t.shape == (3, 16, 24) and depth_t.shape == (1, 16, 24)
        assert torch.allclose(rgb_t, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
        metres = mm * scale / 1000.0
        expected = np.where((metres >= 0.5) & (metres <= 50.0), metres, 0.0)
        assert np.allclose(depth_t[0].numpy(), expected, atol=1e-5)


def test_npy_nan_is_missing_and_integers_accepted(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=1)
    values = np.full((1, 16, 24), 2.5)  # [1,H,W]
    values[0, 0, 0] = np.nan
    write_depth_npy(tmp_path, "a", values)
    write_rgb(tmp_path, "b", seed=1)
    write_depth_npy(tmp_path, "b", np.full((16, 24), 7, dtype=np.int32))
    data = folder(tmp_path)
    depth_a, depth_b = data[0][1], data[1][1]
    assert float(depth_a[0, 0, 0]) == 0.0 and float(depth_a[0, 5, 5]) == 2.5
    assert torch.equal(depth_b, torch.full((1, 16, 24), 7.0))


def test_build_datasets_flat_folder_splits_by_file(tmp_path: Path) -> None:
    for i in range(5):
        write_rgb(tmp_path, f"{i:03d}", seed=i, shape=(32, 48))
        write_depth_png(tmp_path, f"{i:03d}", np.full((32, 48), 1000 * (i + 1)))
    cfg = DataConfig(kind="folder", path=tmp_path, height=16, width=24, depth_scale=1000.0)
    train, val, test = build_datasets(cfg)
    assert (len(train), len(val), len(test)) == (3, 1, 1)
    samples = [*(train[i] for i in range(3)), val[0], test[0]]
    depths = sorted(float(d[1].max()) for d in samples)
    assert depths == [1.0, 2.0, 3.0, 4.0, 5.0]  # every sample once, resized to 16x24
    assert val[0][0].shape == (3, 16, 24)
    assert folder(tmp_path).group_unit == "file"


def test_build_datasets_keeps_sequences_together(tmp_path: Path) -> None:
    # 20 sequences of 2 frames under rgb/<seq>/ and depth/<seq>/, metres = 100 s + f.
    for seq in range(20):
        for frame in range(2):
            stem = f"seq{seq:02d}/{frame:03d}"
            (tmp_path / "rgb" / f"seq{seq:02d}").mkdir(parents=True, exist_ok=True)
            write_rgb(tmp_path, stem, seed=seq * 2 + frame)
            (tmp_path / "depth" / f"seq{seq:02d}").mkdir(parents=True, exist_ok=True)
            write_depth_npy(tmp_path, stem, np.full((16, 24), 100.0 * seq + frame + 1))
    (tmp_path / "rgb" / ".cache").mkdir()
    write_rgb(tmp_path, ".cache/junk", seed=0)  # hidden: ignored, not an unpaired image
    data = DepthFolder(tmp_path, depth_scale=1.0, height=16, width=24, min_depth=0.5,
                       max_depth=5000.0)  # fmt: skip
    assert len(data) == 40 and data.group_unit == "sequence"
    assert data.groups()[:3] == ["seq00", "seq00", "seq01"]
    cfg = DataConfig(kind="folder", path=tmp_path, height=16, width=24, depth_scale=1.0,
                     max_depth=5000.0, seed=1)  # fmt: skip
    splits = build_datasets(cfg)
    assert [len(part) for part in splits] == [28, 8, 4]
    sides = []
    for part in splits:
        seqs = {int(float(part[i][1].max()) - 1) // 100 for i in range(len(part))}
        sides.append(seqs)
    assert [len(side) for side in sides] == [14, 4, 2]
    assert len(set().union(*sides)) == 20  # no sequence on two sides


def test_unpaired_file_in_a_sequence(tmp_path: Path) -> None:
    (tmp_path / "rgb" / "s1").mkdir(parents=True)
    (tmp_path / "depth" / "s2").mkdir(parents=True)
    write_rgb(tmp_path, "s1/000", seed=0)
    write_depth_npy(tmp_path, "s2/000", np.ones((16, 24)))
    with pytest.raises(DataError, match=r"rgb/s1/000\.png: RGB image without a depth map"):
        folder(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope: data folder not found"):
        folder(tmp_path / "nope")


def test_missing_depth_subfolder(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0)
    with pytest.raises(DataError, match=r"depth: folder not found"):
        folder(tmp_path)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    with pytest.raises(DataError, match=r"rgb: no images"):
        folder(tmp_path)


def test_rgb_without_depth_names_the_image(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0)
    write_depth_png(tmp_path, "a", np.ones((16, 24)))
    write_rgb(tmp_path, "lonely", seed=0)
    with pytest.raises(DataError, match=r"rgb/lonely\.png: RGB image without a depth map"):
        folder(tmp_path)


def test_depth_without_rgb_names_the_depth_map(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0)
    write_depth_png(tmp_path, "a", np.ones((16, 24)))
    write_depth_npy(tmp_path, "extra", np.ones((16, 24)))
    with pytest.raises(DataError, match=r"depth/extra\.npy: depth map without an RGB image"):
        folder(tmp_path)


def test_two_depth_files_for_one_stem(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0)
    write_depth_png(tmp_path, "a", np.ones((16, 24)))
    write_depth_npy(tmp_path, "a", np.ones((16, 24)))
    with pytest.raises(DataError, match=r"depth/a\.png: two files share the stem 'a'"):
        folder(tmp_path)


def test_size_mismatch(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0, shape=(16, 24))
    write_depth_npy(tmp_path, "a", np.ones((16, 25)))
    data = folder(tmp_path)
    with pytest.raises(DataError, match=r"depth/a\.npy: depth map is 25x16 px but its image"):
        data[0]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (np.ones((16, 24), dtype=bool), "must be numeric"),
        (np.array([["x"] * 24] * 16), "must be numeric"),
        (np.ones((16, 24, 3)), r"must be \[H,W\], got shape \(16, 24, 3\)"),
    ],
)
def test_bad_npy_arrays(tmp_path: Path, values: np.ndarray, problem: str) -> None:
    write_rgb(tmp_path, "a", seed=0)
    write_depth_npy(tmp_path, "a", values)
    with pytest.raises(DataError, match=rf"depth/a\.npy: depth array {problem}"):
        folder(tmp_path)[0]


def test_corrupt_npy(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0)
    (tmp_path / "depth").mkdir()
    (tmp_path / "depth" / "a.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=r"depth/a\.npy: cannot read \.npy array"):
        folder(tmp_path)[0]


def test_corrupt_rgb_png(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0)
    write_depth_png(tmp_path, "a", np.ones((16, 24)))
    (tmp_path / "rgb" / "a.png").write_bytes(b"GIF89a truncated")
    with pytest.raises(DataError, match=r"rgb/a\.png: cannot decode image"):
        folder(tmp_path)[0]


def test_colour_depth_png_refused(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0)
    (tmp_path / "depth").mkdir()
    Image.fromarray(np.zeros((16, 24, 3), dtype=np.uint8)).save(tmp_path / "depth" / "a.png")
    with pytest.raises(DataError, match=r"depth/a\.png: expected a 16-bit grayscale depth PNG"):
        folder(tmp_path)[0]
