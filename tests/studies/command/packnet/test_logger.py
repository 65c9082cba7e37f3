"""`ReporterLogger`: packnet-sfm's logger calls in, the sweep's metrics file out, read back
by salsweep's own reader (studies.command.metrics) at full precision."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from studies.command.metrics import JsonLinesTail, MetricReport
from studies.command.packnet import ReporterLogger, parse_config
from studies.command.packnet.config import METRICS_KEYS, METRICS_MODES
from tests.studies.command.packnet.conftest import Packnet

ROOT = Path(__file__).resolve().parents[4]
TEMPLATE = ROOT / "sweeps" / "packnet-sfm" / "semisup_kitti.yaml"
OBJECTIVE = "KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gt"


@pytest.fixture
def metrics_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("SALSWEEP_METRICS_FILE", str(path))
    return path


def read(path: Path) -> list[MetricReport]:
    tail = JsonLinesTail(path)
    try:
        reports = tail.read(final=True)
        assert tail.problems == []
        return reports
    finally:
        tail.close()


def epoch(
    logger: ReporterLogger, global_step: int, train: dict[str, Any], val: dict[str, Any]
) -> None:
    """What ModelWrapper logs in one epoch: training_epoch_end, then validation_epoch_end."""
    logger.log_metrics(train)
    logger.log_metrics({**val, "global_step": global_step})


def test_an_epochs_metrics_are_one_report_at_its_epoch(metrics_file: Path) -> None:
    logger = ReporterLogger()
    third = 1.0 / 3.0
    epoch(logger, 1, {"avg_train-loss": third, "depth_learning_rate": 2e-4}, {OBJECTIVE: 0.125})
    epoch(logger, 2, {"avg_train-loss": 0.25}, {OBJECTIVE: math.pi / 30, "x-a1": 0.9})
    reports = read(metrics_file)
    assert [r.step for r in reports] == [1, 2]
    assert reports[0].metrics == {
        "avg_train-loss": third,
        "depth_learning_rate": 2e-4,
        OBJECTIVE: 0.125,
    }
    assert reports[1].metrics == {"avg_train-loss": 0.25, OBJECTIVE: math.pi / 30, "x-a1": 0.9}
    assert reports[1].metrics[OBJECTIVE] == math.pi / 30  # every bit


def test_a_validation_before_training_is_step_0(metrics_file: Path) -> None:
    """arch.validate_first: packnet-sfm's global_step is 1 before the first epoch and
    after it; the report before training is step 0, so no step comes twice."""
    logger = ReporterLogger()
    logger.log_metrics({OBJECTIVE: 0.9, "global_step": 1})
    epoch(logger, 1, {"avg_train-loss": 0.5}, {OBJECTIVE: 0.4})
    epoch(logger, 2, {"avg_train-loss": 0.4}, {OBJECTIVE: 0.3})
    assert [(r.step, r.metrics[OBJECTIVE]) for r in read(metrics_file)] == [
        (0, 0.9),
        (1, 0.4),
        (2, 0.3),
    ]


def test_values_of_any_number_type_and_non_numbers(metrics_file: Path) -> None:
    warned: list[str] = []
    logger = ReporterLogger(warn=warned.append)
    half = torch.tensor(0.1, dtype=torch.float32)
    logger.log_metrics(
        {
            "t": half,
            "i": 3,
            "nan": float("nan"),
            "flag": True,
            "image": object(),
            "global_step": 1,
        }
    )
    logger.log_metrics({"image": object(), "v": 1.5, "global_step": 2})
    reports = read(metrics_file)
    assert reports[0].metrics["t"] == half.item() and reports[0].metrics["i"] == 3.0
    assert math.isnan(reports[0].metrics["nan"]) and "flag" not in reports[0].metrics
    assert reports[1].metrics == {"v": 1.5}
    assert warned == [
        "metric 'flag' is not a number (bool): not reported",
        "metric 'image' is not a number (object): not reported",
    ]  # once per name


def test_outside_a_sweep_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SALSWEEP_METRICS_FILE", raising=False)
    epoch(ReporterLogger(), 1, {"avg_train-loss": 0.5}, {OBJECTIVE: 0.4})
    assert list(tmp_path.iterdir()) == []


class Wandb:
    """What packnet-sfm's WandbLogger offers the launcher's logger (recorded)."""

    run_name = "fancy-run-1"
    run_url = "https://app.wandb.ai/e/p/runs/1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        self.calls.append(("log_metrics", metrics))

    def log_depth(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("log_depth", args))

    def log_config(self, config: Any) -> None:
        self.calls.append(("log_config", config))


def test_wandb_keeps_getting_everything(metrics_file: Path) -> None:
    inner = Wandb()
    logger = ReporterLogger(inner)
    assert (logger.run_name, logger.run_url) == (inner.run_name, inner.run_url)
    logger.log_config({"name": "x"})
    logger.log_depth("val", {"rgb": 1}, {}, (0,), None, 1, None)
    epoch(logger, 1, {"avg_train-loss": 0.5}, {OBJECTIVE: 0.4})
    assert [c[0] for c in inner.calls] == ["log_config", "log_depth", "log_metrics", "log_metrics"]
    assert inner.calls[-1][1] == {OBJECTIVE: 0.4, "global_step": 1}  # global_step kept
    assert read(metrics_file)[0].metrics == {"avg_train-loss": 0.5, OBJECTIVE: 0.4}
    alone = ReporterLogger()
    assert (alone.run_name, alone.run_url) == (None, None)
    alone.log_depth("val")
    alone.log_config({})


def test_packnet_sfms_validation_metrics_reach_the_file_at_full_precision(
    packnet: Packnet, metrics_file: Path
) -> None:
    """validation_epoch_end's path with packnet-sfm's own functions: all_reduce_metrics
    (horovod's allreduce as over one process: the value itself) and create_dict on the
    template's config, then the logger call it makes; read back by salsweep's reader."""
    config, _ = parse_config(TEMPLATE)
    packnet.reduce.reduce_value = lambda value, average, name: value
    g = torch.Generator().manual_seed(0)
    per_image = {
        f"depth{m}": torch.rand(4, 7, generator=g, dtype=torch.float32) for m in METRICS_MODES
    }
    batches = [
        {
            "idx": torch.tensor([2 * b, 2 * b + 1]),
            **{k: v[2 * b : 2 * b + 2] for k, v in per_image.items()},
        }
        for b in range(2)
    ]
    # one output per image, as ModelWrapper.validation_step returns (idx and metrics)
    outputs = [
        {"idx": batch["idx"][i : i + 1], **{k: v[i] for k, v in batch.items() if k != "idx"}}
        for batch in batches
        for i in range(2)
    ]
    data = packnet.reduce.all_reduce_metrics([outputs], [range(4)], "depth")
    metrics_dict = packnet.reduce.create_dict(
        data, METRICS_KEYS, METRICS_MODES, config.datasets.validation
    )
    logger = ReporterLogger()
    logger.log_metrics({"avg_train-loss": 0.5})
    logger.log_metrics({**metrics_dict, "global_step": 1})

    (report,) = read(metrics_file)
    assert report.step == 1
    assert report.metrics == {"avg_train-loss": 0.5, **metrics_dict}  # exact: every bit
    want = float(per_image["depth_pp_gt"][:, 0].mean())  # abs_rel: key 0, over the images
    assert report.metrics[OBJECTIVE] == pytest.approx(want, rel=1e-6)
