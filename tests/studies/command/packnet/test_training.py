"""The launcher end to end on packnet-sfm's real ModelWrapper and SemiSupModel:
``main([config, "--trainer", "single"])`` parses, registers the loss, builds packnet-sfm's
model wrapper with the reporting logger, trains two epochs and validates after each, and
the sweep's metrics file holds packnet-sfm's validation metrics under its names.

What cannot run here and what stands in for it (named once, here):
- torchvision (no wheel for this torch here): a stub module whose every use raises
  (tests/packnet_helpers.py), enough for packnet-sfm's module-level imports; data
  augmentation and image writing, its only users, do not run.
- KITTI: ``ModelWrapper.prepare_datasets`` gives a few synthetic scenes (RGB, LiDAR-like
  depth in metres, ``idx``) instead of reading the config's paths; the data loaders,
  samplers and everything after them are packnet-sfm's.
- PackNet01 (76M parameters: tens of seconds a step on 2 CPU cores): a small depth
  network with PackNet's output contract (a list of inverse depths in training, one
  tensor in eval), registered as ``packnet_sfm.networks.depth.TinyDepth``.
- horovod and CUDA: ``--trainer single`` (the launcher's `SingleProcessTrainer`, on the
  CPU, with the one-process reduction); HorovodTrainer itself is not run.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from loss.packnet import PacknetLoss
from studies.command.metrics import JsonLinesTail
from studies.command.packnet import environment_aliases, list_eval_inv_depths, main
from tests.packnet_helpers import torchvision_stub
from tests.studies.command.packnet.conftest import Packnet

pytestmark = [
    pytest.mark.filterwarnings("ignore::SyntaxWarning"),
    pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning"),
]

ROOT = Path(__file__).resolve().parents[4]
TEMPLATE = ROOT / "sweeps" / "packnet-sfm" / "semisup_kitti.yaml"
OBJECTIVE = "KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gt"
H, W = 32, 64


class TinyDepth(nn.Module):
    """PackNet's contract: ``forward(rgb)`` -> ``{'inv_depths': [B,1,H,W] list}`` in
    training, one tensor in eval; inverse depth in [1/80, 1] 1/m."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1)
        )

    def forward(self, rgb: torch.Tensor) -> dict[str, Any]:
        inv = 1.0 / 80.0 + (1.0 - 1.0 / 80.0) * torch.sigmoid(self.net(rgb))
        return {"inv_depths": [inv]} if self.training else {"inv_depths": inv}


class Scenes(torch.utils.data.Dataset[dict[str, Any]]):
    """Synthetic KITTI-like samples: a vertical depth ramp (2-60 m) seen in the image's
    brightness, measured on every 4th row (LiDAR-like), 0 elsewhere."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        rows = torch.linspace(0.0, 1.0, H).view(1, 1, H, 1)
        self.depth = (
            (2.0 + 58.0 * rows * (0.5 + torch.rand(n, 1, 1, 1, generator=g)))
            .expand(n, 1, H, W)
            .clamp(1, 79)
        )
        self.rgb = (self.depth / 80.0).expand(n, 3, H, W) + 0.05 * torch.rand(
            n, 3, H, W, generator=g
        )
        self.depth = torch.where((torch.arange(H) % 4 == 0).view(1, 1, H, 1), self.depth, 0.0)

    def __len__(self) -> int:
        return self.rgb.shape[0]

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return {"rgb": self.rgb[idx].clone(), "depth": self.depth[idx].clone(), "idx": idx}


def fake_prepare_datasets(self: Any, validation_requirements: Any, test_requirements: Any) -> None:
    """ModelWrapper.prepare_datasets without KITTI: the lists it would set."""
    self.train_dataset = [Scenes(8, seed=0)]
    self.validation_dataset = [Scenes(4, seed=1)]
    self.test_dataset = None


def trial_config(tmp_path: Path) -> Path:
    """The shipped template as a trial would get it, with the stand-ins above and a
    trial's values (tiny data loaders: no worker processes)."""
    data = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    data["arch"].update({"seed": 7, "max_epochs": 2})
    data["model"]["depth_net"] = {"name": "TinyDepth"}
    data["model"]["params"]["crop"] = ""  # garg's crop is KITTI's full-size frame
    data["model"]["optimizer"]["depth"]["lr"] = 0.01
    data["model"]["loss"].update({"lambda_sg": 0.3, "num_scales": 2, "use_inv_depth": True})
    for split, size in (("train", 4), ("validation", 2)):
        data["datasets"][split].update({"batch_size": size, "num_workers": 0})
    data["datasets"]["train"]["repeat"] = [1]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def model_wrapper(packnet: Packnet, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """packnet-sfm's model_wrapper module, imported with the torchvision stub and the
    launcher's compat fixes (put back after the test), and TinyDepth registered."""
    torchvision_stub(monkeypatch)
    environment_aliases(functools.partial(monkeypatch.setattr, raising=False))
    module = types.ModuleType("packnet_sfm.networks.depth.TinyDepth")
    module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    module.TinyDepth = TinyDepth  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    wrapper = importlib.import_module("packnet_sfm.models.model_wrapper")
    yield wrapper


@pytest.mark.slow
def test_a_trial_trains_packnet_sfm_and_reports_its_metrics(
    packnet: Packnet,
    model_wrapper: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sfm = importlib.import_module("packnet_sfm.models.SfmModel")
    list_eval_inv_depths(sfm.SfmModel, monkeypatch.setattr)  # put back after the test
    ModelWrapper = model_wrapper.ModelWrapper
    monkeypatch.setattr(ModelWrapper, "prepare_datasets", fake_prepare_datasets)
    returned: list[dict[str, float]] = []
    wrappers: list[Any] = []
    validation_epoch_end = ModelWrapper.validation_epoch_end

    def recorded(self: Any, output: Any) -> Any:
        wrappers.append(self)
        returned.append(validation_epoch_end(self, output))
        return returned[-1]

    monkeypatch.setattr(ModelWrapper, "validation_epoch_end", recorded)
    metrics_file = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("SALSWEEP_METRICS_FILE", str(metrics_file))

    config = trial_config(tmp_path)
    args = [str(config), "--packnet-sfm", str(packnet.root), "--trainer", "single"]
    assert main([*args, "--objective", OBJECTIVE]) == 0, capsys.readouterr().err

    # packnet-sfm's model trained salsweep's loss with the trial's values
    supervised = wrappers[0].model._supervised_loss
    assert isinstance(supervised.loss_func, PacknetLoss)
    assert supervised.supervised_method == "salsweep-sparse-scale-adaptive"
    assert (supervised.loss_func.loss.lambda_sg, supervised.loss_func.loss.num_scales) == (0.3, 2)
    assert wrappers[0].logger is not None and wrappers[0].current_epoch == 2

    tail = JsonLinesTail(metrics_file)
    reports = tail.read(final=True)
    tail.close()
    assert tail.problems == []
    assert [r.step for r in reports] == [1, 2]
    for report, validation in zip(reports, returned, strict=True):
        # every validation metric, under packnet-sfm's name, every bit of its value
        assert {k: report.metrics[k] for k in validation} == validation
        assert len(validation) == 28 and OBJECTIVE in validation
        assert 0.0 < report.metrics[OBJECTIVE] < float("inf")
        assert {"avg_train-loss", "avg_train-supervised_loss", "depth_learning_rate"} <= set(
            report.metrics
        )
    assert "Epoch 1 | Avg.Loss" in capsys.readouterr().out


def test_packnet_sfms_validation_needs_the_eval_fix(
    packnet: Packnet, model_wrapper: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream's evaluate_depth takes inv_depths[0] of the eval output, one tensor for
    the PackNet and ResNet networks: it fails before any metric (issue #157). With
    list_eval_inv_depths it gives packnet-sfm's metrics."""
    from studies.command.packnet import parse_config, prepare

    config, _ = parse_config(trial_config(tmp_path))
    prepare(config, packnet.supervised_loss)
    wrapper = model_wrapper.ModelWrapper(config, load_datasets=False).eval()
    batch = {"rgb": Scenes(2, 0).rgb, "depth": Scenes(2, 0).depth, "idx": torch.tensor([0, 1])}
    with torch.no_grad(), pytest.raises(ValueError, match="not enough values to unpack"):
        wrapper.validation_step(dict(batch), 0)
    sfm = importlib.import_module("packnet_sfm.models.SfmModel")
    assert list_eval_inv_depths(sfm.SfmModel, monkeypatch.setattr)
    assert not list_eval_inv_depths(sfm.SfmModel, monkeypatch.setattr)  # once
    with torch.no_grad():
        output = wrapper.validation_step(dict(batch), 0)
    assert set(output) == {"idx", "depth", "depth_pp", "depth_gt", "depth_pp_gt"}
    assert output["depth_pp_gt"].shape == (7,) and torch.isfinite(output["depth_pp_gt"]).all()


def test_without_horovod_the_default_trainer_fails_before_the_data_loads(
    packnet: Packnet,
    model_wrapper: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--trainer horovod (train.py's HorovodTrainer) needs horovod: one line naming it
    and the way out, before ModelWrapper reads any data."""
    if importlib.util.find_spec("horovod") is not None:
        pytest.skip("horovod is installed here")
    sfm = importlib.import_module("packnet_sfm.models.SfmModel")
    list_eval_inv_depths(sfm.SfmModel, monkeypatch.setattr)
    loaded: list[bool] = []
    monkeypatch.setattr(
        model_wrapper.ModelWrapper, "prepare_datasets", lambda *a: loaded.append(True)
    )
    assert main([str(trial_config(tmp_path)), "--packnet-sfm", str(packnet.root)]) == 1
    assert capsys.readouterr().err == (
        "error: cannot import packnet_sfm.trainers.horovod_trainer (HorovodTrainer; without "
        "horovod: --trainer single): no module 'horovod'; install packnet-sfm's requirements "
        "in this environment (README: 'Sweeping packnet-sfm')\n"
    )
    assert loaded == []
