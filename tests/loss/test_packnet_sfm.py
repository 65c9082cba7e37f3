"""The losses inside packnet-sfm's real ``SupervisedLoss``: registered without editing its
files (loss.packnet), they give the value and gradient of salsweep's trainer on the same
batch.

packnet-sfm (TRI-ML/packnet-sfm, commit de53b31) is not a package on any registry; its
sources lie beside the project (``shared/third_party/packnet-sfm``, or the folder named by
``SALSWEEP_PACKNET_SFM``) and are put on ``sys.path`` here, never copied. Missing (or
missing its imports: opencv-python-headless, termcolor, yacs, in the dev extras), these
tests skip with the reason, and fail under CI=true.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from loss import get_loss
from loss.packnet import PacknetLoss, packnet_method, packnet_params, register_packnet_loss
from trainer import LossConfig, TrainConfig, batch_loss

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [
    ROOT / "shared" / "third_party" / "packnet-sfm",
    ROOT.parent / "shared" / "third_party" / "packnet-sfm",
    Path("/work/shared/third_party/packnet-sfm"),
]
REL_TOL = 1e-5


def searched() -> list[Path]:
    """Where packnet-sfm is looked for: SALSWEEP_PACKNET_SFM when set, else CANDIDATES."""
    named = os.environ.get("SALSWEEP_PACKNET_SFM")
    return [Path(named)] if named else list(dict.fromkeys(CANDIDATES))


def packnet_root() -> Path | None:
    for path in searched():
        if (path / "packnet_sfm" / "losses" / "supervised_loss.py").is_file():
            return path
    return None


@pytest.fixture
def packnet(
    require_system: Callable[[str, bool, str], None], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, ModuleType]]:
    """packnet-sfm's ``supervised_loss`` and ``utils.image`` modules; ``get_loss_func``
    is restored after the test."""
    root = packnet_root()
    require_system(
        "packnet-sfm",
        root is not None,
        "no packnet_sfm/losses/supervised_loss.py in "
        + ", ".join(str(p) for p in searched())
        + " (SALSWEEP_PACKNET_SFM names the folder)",
    )
    assert root is not None
    monkeypatch.syspath_prepend(str(root))
    try:
        supervised = importlib.import_module("packnet_sfm.losses.supervised_loss")
        image = importlib.import_module("packnet_sfm.utils.image")
    except ImportError as exc:  # e.g. cv2 or termcolor not installed
        require_system("packnet-sfm", False, f"its imports fail: {exc} (make setup-dev)")
        raise  # not reached
    monkeypatch.setattr(supervised, "get_loss_func", supervised.get_loss_func)
    yield supervised, image


def depth2inv(depth: torch.Tensor) -> torch.Tensor:
    """packnet_sfm.utils.depth.depth2inv, literally (that module imports torchvision)."""
    inv_depth = 1.0 / depth.clamp(min=1e-6)
    inv_depth[depth <= 0.0] = 0.0
    return inv_depth


def batch(sparse: bool, size: tuple[int, int] = (48, 64)) -> tuple[torch.Tensor, torch.Tensor]:
    """A prediction as packnet-sfm's depth networks give it, inverse depth in 1/m within
    [1/80, 1] [2,1,H,W], and ground-truth depth in metres at twice the resolution (as
    KITTI's projected LiDAR is larger than the network's input), with LiDAR-like scan
    lines and gaps when ``sparse``."""
    g = torch.Generator().manual_seed(7)
    h, w = size
    pred_inv = 1.0 / (1.0 + 79.0 * torch.rand(2, 1, h, w, generator=g))
    rows = torch.linspace(0.0, 1.0, 2 * h).view(1, 1, -1, 1)
    depth = (2.0 + 60.0 * rows + 5.0 * torch.rand(2, 1, 2 * h, 2 * w, generator=g)).clamp(1, 80)
    if sparse:
        lines = (torch.arange(2 * h) % 4 == 0).view(1, 1, -1, 1)
        gaps = torch.rand(2, 1, 2 * h, 2 * w, generator=g) < 0.3
        depth = torch.where(lines & ~gaps, depth, 0.0)
    return pred_inv, depth


def register_from_section(supervised: ModuleType, section: dict[str, Any]) -> None:
    """What a launcher does at start-up with the packnet export's ``model.loss``."""
    method = packnet_method(section["supervised_method"])
    register_packnet_loss(supervised, method, **packnet_params(method, section))


def export_section(loss: LossConfig, supervised_num_scales: int = 1) -> dict[str, Any]:
    """``model.loss`` as the packnet export writes it, with the ``salsweep-`` name."""
    return {
        "supervised_method": "salsweep-" + loss.method,
        "supervised_num_scales": supervised_num_scales,
        "supervised_loss_weight": 1.0,
        **loss.loss_params(),
    }


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    num = torch.linalg.vector_norm((a - b).double())
    return float(num / torch.linalg.vector_norm(b.double()))


CASES = [
    ({}, True),  # the default config: sparse-scale-adaptive, depth mode, 1-80 m
    ({"method": "scale-adaptive"}, False),
    ({"method": "sparse-scale-adaptive", "use_inv_depth": True, "lambda_sg": 0.3}, True),
    ({"max_depth": 50.0, "min_depth": 0.5, "num_scales": 3}, True),
    ({"method": "sparse-ssi"}, True),
]


@pytest.mark.parametrize(("loss_update", "sparse"), CASES)
def test_packnet_sfm_gives_the_trainers_loss(
    packnet: tuple[ModuleType, ModuleType], loss_update: dict[str, Any], sparse: bool
) -> None:
    supervised, image = packnet
    config = TrainConfig.model_validate({"loss": loss_update}).loss
    section = export_section(config)
    register_from_section(supervised, section)

    pred_inv, depth = batch(sparse)
    # packnet-sfm: SemiSupModel builds SupervisedLoss(**cfg.model.loss) and calls it with
    # the network's inverse depths and depth2inv(batch['depth']).
    criterion = supervised.SupervisedLoss(**section)
    assert isinstance(criterion.loss_func, PacknetLoss)
    p_packnet = pred_inv.clone().requires_grad_()
    out = criterion([p_packnet], depth2inv(depth))
    assert out["loss"].shape == (1,)
    (g_packnet,) = torch.autograd.grad(out["loss"].sum(), p_packnet)

    # The trainer on the same batch: the ground truth packnet-sfm resized (nearest) to the
    # prediction, as depth in metres, and the trainer's loss call.
    gt_inv = image.match_scales(depth2inv(depth), [pred_inv], 1, mode="nearest", align_corners=None)
    resized = gt_inv[0]
    assert torch.equal(resized, depth2inv(F.interpolate(depth, size=pred_inv.shape[-2:])))
    trainer_depth = torch.where(resized > 0, 1.0 / resized.clamp(min=1e-12), 0.0)
    loss_fn = get_loss(config.method, **config.loss_params())
    p_trainer = pred_inv.clone().requires_grad_()
    want = batch_loss(loss_fn, p_trainer, trainer_depth)
    (g_trainer,) = torch.autograd.grad(want.total, p_trainer)

    total = float(want.total.detach())
    assert total > 0
    assert abs(float(out["loss"].detach()) - total) <= REL_TOL * total
    assert rel_err(g_packnet, g_trainer) <= REL_TOL
    assert float(criterion.metrics["supervised_loss"].detach()) == pytest.approx(total, rel=REL_TOL)


def test_packnet_sfm_averages_its_supervised_scales(packnet: tuple[ModuleType, ModuleType]) -> None:
    """supervised_num_scales 2: packnet-sfm's mean of the loss at the full- and the
    half-resolution output, the ground truth resized (nearest) to each."""
    supervised, _ = packnet
    config = LossConfig(num_scales=3)
    section = export_section(config, supervised_num_scales=2)
    register_from_section(supervised, section)
    pred_inv, depth = batch(sparse=True)
    half = F.avg_pool2d(pred_inv, 2)
    out = supervised.SupervisedLoss(**section)([pred_inv, half], depth2inv(depth))
    loss_fn = get_loss(config.method, **config.loss_params())
    terms = []
    for p in (pred_inv, half):
        resized = F.interpolate(depth, size=p.shape[-2:], mode="nearest")
        terms.append(float(batch_loss(loss_fn, p, resized).total))
    assert float(out["loss"].detach()) == pytest.approx(sum(terms) / 2, rel=REL_TOL)


def test_sparse_names_are_flattened_by_packnet_sfm(packnet: tuple[ModuleType, ModuleType]) -> None:
    """Why the registered names start with ``salsweep-``: under a name that starts with
    ``sparse``, SupervisedLoss hands its loss 1-D vectors of the pixels with ground truth,
    on which no per-image normalisation or Sobel gradient can run."""
    supervised, _ = packnet
    seen: list[tuple[int, ...]] = []

    def recorder(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(pred.shape))
        return (pred - gt).abs().mean()

    original = supervised.get_loss_func
    supervised.get_loss_func = lambda name: recorder if "scale-adaptive" in name else original(name)
    pred_inv, depth = batch(sparse=True)
    supervised.SupervisedLoss("sparse-scale-adaptive", 1)([pred_inv], depth2inv(depth))
    supervised.SupervisedLoss("salsweep-sparse-scale-adaptive", 1)([pred_inv], depth2inv(depth))
    assert len(seen[0]) == 1  # flattened
    assert seen[1] == tuple(pred_inv.shape)  # whole images
    # packnet-sfm's own losses still resolve beside the registered ones.
    register_packnet_loss(supervised, "sparse-scale-adaptive")
    assert isinstance(supervised.get_loss_func("sparse-l1"), torch.nn.L1Loss)
