"""objective.metric names: the built-in trainer's (val/abs_rel_align) and a command
program's own, such as packnet-sfm's ``<path>-<split>-<depth type>-<metric>``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sweeps import ObjectiveSpec


@pytest.mark.parametrize(
    "metric",
    [
        "val/abs_rel_align",
        "val/a1",
        "loss",
        "KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gt",
        "DDAD_tiny-ddad_tiny-lidar-CAMERA_01-a1_gt",
        "val/KITTI_raw-eigen_val_files-velodyne-abs_rel",
        "train.loss",
    ],
)
def test_metric_names_that_are_accepted(metric: str) -> None:
    assert ObjectiveSpec(metric=metric).metric == metric


@pytest.mark.parametrize("metric", ["", "-abs_rel", ".loss", "val//a1", "val/", "a b", "/val"])
def test_metric_names_that_are_refused(metric: str) -> None:
    with pytest.raises(ValidationError):
        ObjectiveSpec(metric=metric)
