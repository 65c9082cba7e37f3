"""The synthetic scenes: geometry against the pinhole model, determinism, sparsity, cues."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainer.config import DataConfig, TrainConfig
from trainer.data import SyntheticScenes, build_datasets
from trainer.data.render import render
from trainer.data.scene import Box, Camera, Material, Plane, Scene, Sphere, default_focal
from trainer.data.synthetic import (
    LIDAR_DENSITY,
    RenderCache,
    Split,
    render_sample,
    scan_line_rows,
)

H, W = 48, 160  # small scenes for quick tests
GREY = Material(colour=(0.5, 0.5, 0.5), checker_contrast=0.0)


def ground(cam_height: float, material: Material = GREY) -> Plane:
    return Plane((0.0, -1.0, 0.0), -cam_height, material)


def test_sample_shapes_dtypes_and_ranges() -> None:
    data = SyntheticScenes(3, seed=0)  # the default 96x320, 1-80 m
    for rgb, depth in (data[i] for i in range(len(data))):
        assert rgb.shape == (3, 96, 320) and rgb.dtype == torch.float32
        assert depth.shape == (1, 96, 320) and depth.dtype == torch.float32
        assert float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0
        valid = depth[depth > 0]
        assert float(valid.min()) >= 1.0 and float(valid.max()) <= 80.0
        # Dense: most pixels measured, the sky (top rows) not.
        assert 0.5 < valid.numel() / depth.numel() < 1.0
        assert float(rgb.std()) > 0.05  # not a flat image


def test_depth_range_is_clipped_to_missing() -> None:
    data = SyntheticScenes(4, seed=3, min_depth=8.0, max_depth=30.0, height=H, width=W)
    for rgb, depth in (data[i] for i in range(4)):
        measured = depth[depth > 0]
        assert float(measured.min()) >= 8.0 and float(measured.max()) <= 30.0
        # At 48x160 the ground in the bottom row is 5-7.5 m away: below min_depth, so it
        # must be marked missing, not clamped. Objects stand beyond min_depth.
        assert float((depth[0, -1] == 0).float().mean()) > 0.5
        assert rgb.shape == (3, 48, 160)


def test_same_seed_same_tensors_and_cache_matches_fresh_render() -> None:
    cache = RenderCache()
    first = SyntheticScenes(3, seed=7, height=H, width=W, cache=cache)
    second = SyntheticScenes(3, seed=7, height=H, width=W, cache=None)
    for i in range(3):
        a, b = first[i], second[i]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        again = first[i]  # from the cache now
        assert torch.equal(a[0], again[0]) and torch.equal(a[1], again[1])
    assert len(cache) == 3 and cache.hits == 3


def test_different_seeds_and_indices_differ() -> None:
    a = SyntheticScenes(2, seed=0, height=H, width=W)
    b = SyntheticScenes(2, seed=1, height=H, width=W)
    assert not torch.equal(a[0][0], b[0][0])
    assert not torch.equal(a[0][1], b[0][1])
    assert not torch.equal(a[0][0], a[1][0])


def test_items_are_copies_of_the_cache() -> None:
    data = SyntheticScenes(1, seed=0, height=H, width=W)
    rgb, depth = data[0]
    rgb.zero_()
    depth.fill_(5.0)
    rgb2, depth2 = data[0]
    assert float(rgb2.max()) > 0.0 and not torch.equal(depth2, depth)


def test_cache_is_bounded() -> None:
    sample_bytes = 16 * H * W
    cache = RenderCache(max_bytes=2 * sample_bytes)
    data = SyntheticScenes(5, seed=0, height=H, width=W, cache=cache)
    for i in range(5):
        data[i]
    assert len(cache) == 2 and cache.bytes == 2 * sample_bytes
    data[4]  # the most recent two are kept
    data[3]
    assert cache.hits == 2


def test_instances_share_a_cache_keyed_by_every_render_argument() -> None:
    cache = RenderCache()
    SyntheticScenes(2, seed=4, height=H, width=W, cache=cache)[1]
    again = SyntheticScenes(2, seed=4, height=H, width=W, cache=cache)[1]  # another trial
    assert cache.hits == 1 and len(cache) == 1
    other = SyntheticScenes(2, seed=4, height=H, width=W, sparse=True, cache=cache)[1]
    assert cache.hits == 1 and len(cache) == 2  # sparse is part of the key
    assert not torch.equal(again[1], other[1])


def test_index_bounds() -> None:
    data = SyntheticScenes(2, seed=0, height=H, width=W)
    assert torch.equal(data[-1][1], data[1][1])
    with pytest.raises(IndexError):
        data[2]


def test_build_datasets_sizes_and_disjoint_splits() -> None:
    cfg = DataConfig(num_train=4, num_val=3, num_test=2, height=H, width=W, seed=5)
    train, val, test = build_datasets(cfg)
    assert (len(train), len(val), len(test)) == (4, 3, 2)
    rgb = {name: [split[i][0] for i in range(len(split))] for name, split in
           (("train", train), ("val", val), ("test", test))}  # fmt: skip
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not any(torch.equal(x, y) for x in rgb[a] for y in rgb[b]), (a, b)
    again = build_datasets(cfg)
    assert torch.equal(again.train[2][1], train[2][1]) and torch.equal(again.val[1][0], val[1][0])
    assert torch.equal(again.test[1][1], test[1][1])
    # No split depends on the size of another.
    bigger = build_datasets(cfg.model_copy(update={"num_train": 9, "num_val": 5}))
    assert torch.equal(bigger.val[0][0], val[0][0]) and torch.equal(bigger.test[1][0], test[1][0])


def test_val_and_test_scenes_ignore_the_training_seed() -> None:
    data = {"num_train": 2, "num_val": 2, "num_test": 2, "height": H, "width": W, "seed": 3}
    first = TrainConfig.model_validate({"data": data, "seed": 0})
    second = TrainConfig.model_validate({"data": data, "seed": 17})
    a, b = build_datasets(first.data), build_datasets(second.data)
    for split in ("val", "test"):
        for i in range(2):
            x, y = getattr(a, split)[i], getattr(b, split)[i]
            assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    # The data seed, not the training seed, picks the scenes.
    other = build_datasets(first.data.model_copy(update={"seed": 4}))
    for split in ("train", "val", "test"):
        assert not torch.equal(getattr(other, split)[0][0], getattr(a, split)[0][0])


def test_test_split_is_its_own_random_stream() -> None:
    splits: tuple[Split, ...] = ("train", "val", "test")
    scenes = {
        split: render_sample(2, split, 0, height=H, width=W, min_depth=1.0, max_depth=80.0)
        for split in splits
    }
    data = SyntheticScenes(1, seed=2, split="test", height=H, width=W)
    assert torch.equal(data[0][0], scenes["test"][0]) and torch.equal(data[0][1], scenes["test"][1])
    assert not torch.equal(scenes["test"][0], scenes["train"][0])
    assert not torch.equal(scenes["test"][0], scenes["val"][0])
    with pytest.raises(ValueError, match="'train', 'val' or 'test'"):
        SyntheticScenes(1, seed=0, split="holdout")  # type: ignore[arg-type]


def test_sparse_ground_truth_lies_on_scan_lines() -> None:
    dense = SyntheticScenes(3, seed=2)
    sparse = SyntheticScenes(3, seed=2, sparse=True, scan_lines=24)
    rows = scan_line_rows(96, 24)
    assert len(rows) == 24
    off_lines = torch.ones(96, dtype=torch.bool)
    off_lines[torch.from_numpy(rows)] = False
    for i in range(3):
        rgb_d, depth_d = dense[i]
        rgb_s, depth_s = sparse[i]
        assert torch.equal(rgb_d, rgb_s)  # same scene, only the ground truth differs
        measured = depth_s[0] > 0
        assert not measured[off_lines].any()
        density = float(measured.float().mean())
        assert 0.01 < density <= LIDAR_DENSITY + 0.005
        # Sparse values are the dense ones, not resampled.
        assert torch.equal(depth_s[0][measured], depth_d[0][measured])
        # Several distinct scan lines carry points.
        assert int(measured.any(dim=1).sum()) >= 12


def test_few_scan_lines_keep_every_column() -> None:
    _, depth = render_sample(
        0, "train", 0, height=96, width=320, min_depth=1.0, max_depth=80.0,
        sparse=True, scan_lines=2,
    )  # fmt: skip
    bottom = depth[0, 95]
    assert int((bottom > 0).sum()) > 300  # the bottom row sees ground nearly everywhere
    assert int((depth[0] > 0).any(dim=1).sum()) <= 2


@pytest.mark.parametrize("pitch", [0.0, 0.04])
def test_ground_depth_matches_the_pinhole_model(pitch: float) -> None:
    h, width, height = 1.6, 320, 96
    camera = Camera(height=height, width=width, focal=default_focal(width), cam_height=h,
                    pitch=pitch)  # fmt: skip
    _, depth = render(Scene(camera=camera, planes=(ground(h),)))
    f = camera.focal
    for v in (60, 75, 95):
        y = (v + 0.5 - height / 2) / f
        # Ray (x, cos(p) y + sin(p), -sin(p) y + cos(p)) meets y = h at camera z = t.
        expected = h / (math.cos(pitch) * y + math.sin(pitch))
        assert depth[v, 17] == pytest.approx(expected, rel=1e-5)
        assert depth[v, 300] == pytest.approx(expected, rel=1e-5)  # z-depth: flat per row
    assert np.isinf(depth[10]).all()  # sky above the horizon


def test_wall_box_and_sphere_depths_match_geometry() -> None:
    camera = Camera(height=96, width=320, focal=default_focal(320), cam_height=1.0)
    wall = Plane((0.0, 0.0, 1.0), 30.0, GREY)  # frontal wall 30 m ahead
    box = Box(x=-4.0, z=10.0, size=(2.0, 2.0, 2.0), yaw=0.0, material=GREY)
    sphere = Sphere(centre=(4.0, 0.0, 10.0), radius=1.5, material=GREY)
    scene = Scene(camera=camera, planes=(ground(1.0), wall), boxes=(box,), spheres=(sphere,))
    _, depth = render(scene)
    f, cx = camera.focal, 160.0
    assert depth[20, 160] == pytest.approx(30.0, rel=1e-6)
    # The box's front face is the plane z = 9; its middle projects to column cx - 4 f / 9.
    u_box = int(cx + f * -4.0 / 9.0)
    assert depth[47, u_box] == pytest.approx(9.0, rel=1e-5)
    # The sphere: nearest point 10 - 1.5 m ahead, at column cx + 4 f / 10 (approximately).
    u_sphere = int(cx + f * 4.0 / 10.0)
    rays = np.array([(u_sphere + 0.5 - cx) / f, (47.5 - 48) / f, 1.0])
    c = np.array([4.0, 0.0, 10.0])
    b, a = rays @ c, rays @ rays
    expected = (b - math.sqrt(b * b - a * (c @ c - 1.5**2))) / a
    assert depth[47, u_sphere] == pytest.approx(expected, rel=1e-4)
    assert 8.5 < expected < 8.7  # the front of the sphere, 10 - 1.5 m ahead


def test_near_surfaces_are_brighter_than_far_ones() -> None:
    near_sum, far_sum = 0.0, 0.0
    data = SyntheticScenes(8, seed=11)
    for rgb, depth in (data[i] for i in range(8)):
        luminance = rgb.mean(dim=0)
        d = depth[0]
        near, far = (d > 0) & (d < 10), d > 40
        if near.any() and far.any():
            near_sum += float(luminance[near].mean())
            far_sum += float(luminance[far].mean())
    assert near_sum > 1.3 * far_sum


def test_texture_looks_finer_with_distance() -> None:
    checker = Material(colour=(0.8, 0.8, 0.8), checker_size=0.5, checker_contrast=0.9,
                       checker_offset=(0.25, 0.0, 0.25))  # fmt: skip
    camera = Camera(height=96, width=320, focal=default_focal(320), cam_height=1.6)
    rgb, depth = render(Scene(camera=camera, planes=(ground(1.6, checker),)))

    def transitions(row: int) -> int:
        line = rgb[row, :, 0]
        return int((np.abs(np.diff(line)) > 0.05).sum())

    near_row, far_row = 95, 72  # about 6 m and 12 m away
    assert depth[near_row, 0] < 7.0 and 11.0 < depth[far_row, 0] < 14.0
    # Cells are 0.5 m wide on the ground: their count across a row grows with depth.
    ratio = transitions(far_row) / transitions(near_row)
    assert ratio == pytest.approx(depth[far_row, 0] / depth[near_row, 0], rel=0.2)
