"""A folder of rgb/*.png + depth/*.png|*.npy with a depth scale, and its errors."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from torch.utils.data import DataLoader

from cli import cli
from loss import get_loss
from trainer import TrainConfig, batch_loss, fit
from trainer.config import DataConfig, LossConfig
from trainer.data import DataError, DepthFolder, build_datasets
from trainer.metrics import DepthMetricAccumulator


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


def test_npy_shapes_and_integers_accepted(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=1)
    values = np.full((1, 16, 24), 2.5)  # [1,H,W]
    values[0, 0, 0] = 0.0
    write_depth_npy(tmp_path, "a", values)
    write_rgb(tmp_path, "b", seed=1)
    write_depth_npy(tmp_path, "b", np.full((16, 24), 7, dtype=np.int32))
    data = folder(tmp_path)
    depth_a, depth_b = data[0][1], data[1][1]
    assert float(depth_a[0, 0, 0]) == 0.0 and float(depth_a[0, 5, 5]) == 2.5
    assert torch.equal(depth_b, torch.full((1, 16, 24), 7.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npy_with_nan_or_inf_names_the_file_and_the_pixel(tmp_path: Path, bad: float) -> None:
    write_rgb(tmp_path, "a", seed=1)
    values = np.full((16, 24), 2.5, dtype=np.float32)
    values[3, 7] = bad
    values[9, 1] = bad
    write_depth_npy(tmp_path, "a", values)
    data = folder(tmp_path)  # built: the contents are read with the item
    with pytest.raises(DataError) as err:
        data[0]
    assert str(err.value) == (
        f"{tmp_path / 'depth' / 'a.npy'}: depth array holds 2 NaN or infinite value(s), the "
        "first at row 3, column 7; store 0 where there is no measurement"
    )
    assert err.value.path == tmp_path / "depth" / "a.npy"


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


@pytest.mark.parametrize("suffix", [".npy", ".png"])
def test_size_mismatch(tmp_path: Path, suffix: str) -> None:
    write_rgb(tmp_path, "a", seed=0, shape=(16, 24))
    if suffix == ".npy":
        write_depth_npy(tmp_path, "a", np.ones((16, 25)))
    else:
        write_depth_png(tmp_path, "a", np.ones((16, 25)))
    data = folder(tmp_path)
    with pytest.raises(DataError) as err:
        data[0]
    assert str(err.value) == (
        f"{tmp_path / 'depth' / ('a' + suffix)}: depth map is 25x16 px but its image "
        f"{tmp_path / 'rgb' / 'a.png'} is 24x16 px"
    )


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


# ---------------------------------------------------------------------------- bad files


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file short, as an interrupted copy or extraction leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("which", ["rgb/a.png", "depth/a.png", "depth/a.npy"])
def test_truncated_file_names_the_file(tmp_path: Path, which: str) -> None:
    write_rgb(tmp_path, "a", seed=0)
    mm = np.random.default_rng(0).integers(1, 60_000, size=(16, 24))
    if which.endswith(".npy"):
        write_depth_npy(tmp_path, "a", mm.astype(np.float32))
    else:
        write_depth_png(tmp_path, "a", mm)
    data = folder(tmp_path, 1000.0)
    assert data[0][1].shape == (1, 16, 24)  # whole, it reads
    truncate(tmp_path / which)
    with pytest.raises(DataError) as err:
        data[0]
    message = str(err.value)
    assert message.startswith(f"{tmp_path / which}: ")
    problem = "cannot read .npy array" if which.endswith(".npy") else "cannot decode image"
    assert err.value.problem.startswith(problem), message
    assert "\n" not in message and err.value.path == tmp_path / which


def test_all_zero_depth_map_is_a_sample_without_measurements(tmp_path: Path) -> None:
    write_rgb(tmp_path, "a", seed=0)
    write_depth_png(tmp_path, "a", np.zeros((16, 24)))
    rgb, depth = folder(tmp_path, 1000.0)[0]
    assert rgb.shape == (3, 16, 24) and torch.equal(depth, torch.zeros(1, 16, 24))


def good_and_empty_batch(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of two folder samples: ``[0]`` with ground truth, ``[1]`` an all-zero map."""
    mm = np.random.default_rng(3).integers(1_000, 40_000, size=(16, 24))
    write_rgb(root, "a", seed=1)
    write_depth_png(root, "a", mm)
    write_rgb(root, "b", seed=2)
    write_depth_png(root, "b", np.zeros((16, 24)))
    data = folder(root, 1000.0)
    rgb, depth = (torch.stack(t) for t in zip(data[0], data[1], strict=True))
    assert int((depth[0] > 0).sum()) == 16 * 24 and int((depth[1] > 0).sum()) == 0
    return rgb, depth


@pytest.mark.parametrize("method", ["scale-adaptive", "sparse-scale-adaptive", "ssi", "sparse-ssi"])
def test_all_zero_depth_map_gets_no_weight_in_the_loss(tmp_path: Path, method: str) -> None:
    """A training step on a batch holding an all-zero map: finite loss and gradients, no
    gradient reaches the empty sample's prediction; the sparse methods and SSI give the
    loss of the other sample alone (the dense method's gradient term divides by every
    pixel of the batch, as the seed's formula does)."""
    _, depth = good_and_empty_batch(tmp_path)
    config = TrainConfig(loss=LossConfig(method=method), data={"min_depth": 0.5, "max_depth": 50.0})
    pred_inv = torch.rand(depth.shape, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.1
    pred_inv.requires_grad_(True)
    loss = get_loss(method, **config.loss.loss_params())
    out = batch_loss(loss, pred_inv, depth)  # the trainer's call
    out.total.backward()
    total = float(out.total.detach())
    assert pred_inv.grad is not None
    assert math.isfinite(total) and total > 0
    assert bool(torch.isfinite(pred_inv.grad).all())
    assert float(pred_inv.grad[1].abs().max()) == 0.0
    assert float(pred_inv.grad[0].abs().max()) > 0.0
    alone = batch_loss(loss, pred_inv[:1].detach(), depth[:1])
    if method != "scale-adaptive":
        assert total == pytest.approx(float(alone.total), rel=1e-5)
    # A batch of empty maps only: nothing to learn from, a zero loss (never NaN).
    empty = batch_loss(loss, pred_inv[1:].detach(), depth[1:])
    assert float(empty.total) == 0.0


def test_all_zero_depth_map_is_skipped_by_the_metrics(tmp_path: Path) -> None:
    _, depth = good_and_empty_batch(tmp_path)
    pred = torch.full_like(depth, 10.0)
    both = DepthMetricAccumulator(0.5, 50.0)
    both.update(pred, depth)
    alone = DepthMetricAccumulator(0.5, 50.0)
    alone.update(pred[:1], depth[:1])
    metrics = both.compute()
    assert metrics["num_images"] == 1.0
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics == alone.compute()
    assert metrics["abs_rel"] > 0.1  # a constant 10 m is far from depths of 1-40 m


def write_sequences(root: Path, count: int, *, empty_frame: bool) -> None:
    """``count`` sequences of two frames; with ``empty_frame`` the second one's depth map
    is all zero."""
    rng = np.random.default_rng(7)
    for seq in range(count):
        for frame in range(2):
            stem = f"s{seq}/{frame}"
            (root / "rgb" / f"s{seq}").mkdir(parents=True, exist_ok=True)
            (root / "depth" / f"s{seq}").mkdir(parents=True, exist_ok=True)
            write_rgb(root, stem, seed=10 * seq + frame)
            mm = rng.integers(1_000, 40_000, size=(16, 24))
            write_depth_png(root, stem, mm * 0 if empty_frame and frame == 1 else mm)


def folder_run(root: Path, **updates: object) -> TrainConfig:
    base = {
        "data": {"kind": "folder", "path": str(root), "height": 16, "width": 24,
                 "depth_scale": 1000.0, "min_depth": 0.5, "max_depth": 50.0},
        "model": {"base_channels": 4, "num_stages": 2},
        "loss": {"num_scales": 2},
        "epochs": 1, "steps_per_epoch": 3, "batch_size": 2, "device": "cpu",
        "previews": False,
    }  # fmt: skip
    return TrainConfig.model_validate({**base, **updates})


def test_fit_with_all_zero_depth_maps_stays_finite(tmp_path: Path) -> None:
    """Half the frames of every sequence have no ground truth: the run trains and
    validates with finite numbers, and val/num_images counts the frames that have some."""
    write_sequences(tmp_path, 5, empty_frame=True)
    config = folder_run(tmp_path)
    val = build_datasets(config.data).val
    with_gt = sum(int(bool((val[i][1] > 0).any())) for i in range(len(val)))
    assert len(val) == 2 * with_gt and with_gt >= 1
    metrics = fit(config).final
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["val/num_images"] == with_gt
    assert metrics["train/total_loss"] > 0


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_worker_process_reports_the_file_in_one_line(tmp_path: Path, num_workers: int) -> None:
    """A DataLoader worker re-raises an item's error in the main process as
    ``type(message)`` with its whole traceback as the message: DataError keeps its own
    one line, path and problem."""
    write_rgb(tmp_path, "a", seed=0)
    write_depth_png(tmp_path, "a", np.ones((16, 24)))
    truncate(tmp_path / "rgb" / "a.png")
    with pytest.raises(DataError) as err:
        list(DataLoader(folder(tmp_path), batch_size=1, num_workers=num_workers))
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'rgb' / 'a.png'}: cannot decode image (")
    assert "\n" not in message and "Traceback" not in message
    assert err.value.path == tmp_path / "rgb" / "a.png"
    assert err.value.problem == message.split(": ", 1)[1]


def test_data_error_survives_pickling(tmp_path: Path) -> None:
    error = DataError(tmp_path / "x.png", "cannot decode image (broken: data)")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is DataError and str(copy) == str(error)
    assert (copy.path, copy.problem) == (error.path, error.problem)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_cli_train_names_a_truncated_image_in_one_line(tmp_path: Path, num_workers: int) -> None:
    """`salsweep train` on a folder whose images are truncated: exit 1, one error line that
    names the file, no traceback, with and without loader worker processes."""
    root = tmp_path / "data"
    write_sequences(root, 3, empty_frame=False)
    images = sorted((root / "rgb").rglob("*.png"))
    for image in images:
        truncate(image)
    config = tmp_path / "run.yaml"
    run = folder_run(root, num_workers=num_workers).model_dump(mode="json")
    config.write_text(yaml.safe_dump(run))
    result = CliRunner().invoke(cli, ["train", str(config)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    named = errors[0].removeprefix("Error: ").split(": cannot decode image (", 1)[0]
    assert Path(named) in images, errors[0]
