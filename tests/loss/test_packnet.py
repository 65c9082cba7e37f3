"""loss.packnet: names, parameters and the registration, on a stand-in module (packnet-sfm's
real one: test_packnet_sfm.py)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import torch

from loss import LOSS_METHODS, ScaleAdaptiveLoss, SSILoss, get_loss
from loss.packnet import (
    PACKNET_PREFIX,
    PacknetLoss,
    packnet_loss_func,
    packnet_method,
    packnet_name,
    packnet_params,
    register_packnet_loss,
)


def stand_in() -> ModuleType:
    """A module with packnet-sfm's ``get_loss_func`` contract (its l1 branch)."""
    module = ModuleType("supervised_loss")

    def get_loss_func(supervised_method: str) -> Any:
        if supervised_method.endswith("l1"):
            return torch.nn.L1Loss()
        raise ValueError(f"Unknown supervised loss {supervised_method}")

    module.get_loss_func = get_loss_func  # type: ignore[attr-defined]
    return module


def test_names_round_trip() -> None:
    for method in LOSS_METHODS:
        name = packnet_name(method)
        assert name == PACKNET_PREFIX + method
        # packnet-sfm flattens 'sparse*' names and dispatches on its own suffixes.
        assert not name.startswith("sparse")
        assert not name.endswith(("l1", "mse", "berhu", "silog", "abs_rel"))
        assert packnet_method(name) == method


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("sparse-scale-adaptive", r"write 'salsweep-sparse-scale-adaptive' \(packnet-sfm flattens"),
        ("scale-adaptive", r"write 'salsweep-scale-adaptive'"),
        ("salsweep-l1", r"unknown supervised_method 'salsweep-l1'; valid: salsweep-scale-adap"),
        ("sparse-l1", r"unknown supervised_method 'sparse-l1'; valid: .*salsweep-sparse-ssi"),
    ],
)
def test_bad_packnet_names(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        packnet_method(name)


def test_unknown_method_name() -> None:
    with pytest.raises(ValueError, match="unknown loss method 'l1'; valid: scale-adaptive"):
        packnet_name("l1")


def test_params_from_a_packnet_loss_section() -> None:
    # cfg.model.loss as the packnet export writes it, with upstream's other keys.
    section = {
        "supervised_method": "salsweep-sparse-scale-adaptive",
        "supervised_num_scales": 1,
        "num_scales": 2,
        "lambda_sg": 0.3,
        "max_depth": 50.0,
        "ssim_loss_weight": 0.85,
    }
    method = packnet_method(section["supervised_method"])  # type: ignore[arg-type]
    params = packnet_params(method, section)
    assert params == {"num_scales": 2, "lambda_sg": 0.3, "max_depth": 50.0}
    assert packnet_params("ssi", section) == {"num_scales": 2}
    assert packnet_loss_func(method, **params).loss == ScaleAdaptiveLoss(
        sparse=True, num_scales=2, lambda_sg=0.3, max_depth=50.0
    )


def test_loss_func_is_the_trainers_call(helpers: ModuleType) -> None:
    """``loss_func(pred, gt)`` = ``loss(pred, gt, gt > 0).total``: for the dense method too
    (its absolute term is on, as in salsweep's trainer)."""
    shape = (2, 1, 16, 24)
    pred = helpers.random_inv(shape, seed=50).requires_grad_()
    gt = helpers.random_inv(shape, seed=51, missing=0.3)
    for method in LOSS_METHODS:
        fn = packnet_loss_func(method, num_scales=2)
        loss = get_loss(method, num_scales=2)
        want = loss(pred, gt, gt > 0)
        assert torch.equal(fn(pred, gt), want.total)
        assert fn(pred, gt).requires_grad
        assert list(fn.output(pred, gt).metrics) == list(want.metrics)
    assert "scale_adaptive/absolute" in packnet_loss_func("scale-adaptive").output(pred, gt).metrics


def test_half_precision_is_computed_in_float32(helpers: ModuleType) -> None:
    shape = (1, 1, 16, 16)
    pred = helpers.random_inv(shape, seed=52, dtype=torch.float32)
    gt = helpers.random_inv(shape, seed=53, dtype=torch.float32, missing=0.5)
    fn = packnet_loss_func("sparse-scale-adaptive")
    half = fn(pred.half(), gt)
    assert half.dtype == torch.float32
    assert torch.equal(half, fn(pred.half().float(), gt))


def test_register_binds_parameters_and_keeps_packnets_losses() -> None:
    module = stand_in()
    name = register_packnet_loss(module, "sparse-scale-adaptive", lambda_sg=0.3, max_depth=50.0)
    assert name == "salsweep-sparse-scale-adaptive"
    fn = module.get_loss_func(name)
    assert isinstance(fn, PacknetLoss)
    assert fn.loss == ScaleAdaptiveLoss(sparse=True, lambda_sg=0.3, max_depth=50.0)
    assert isinstance(module.get_loss_func("sparse-l1"), torch.nn.L1Loss)
    with pytest.raises(ValueError, match="Unknown supervised loss salsweep-ssi"):
        module.get_loss_func("salsweep-ssi")  # not registered
    # A second method, then the first one rebound: the latest registration wins.
    register_packnet_loss(module, "ssi", alpha=0.2)
    register_packnet_loss(module, "sparse-scale-adaptive", lambda_sg=0.9)
    assert module.get_loss_func("salsweep-ssi").loss == SSILoss(alpha=0.2)
    assert module.get_loss_func(name).loss.lambda_sg == 0.9
    assert isinstance(module.get_loss_func("l1"), torch.nn.L1Loss)


def test_register_checks_at_once() -> None:
    module = stand_in()
    original = module.get_loss_func
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) for loss 'ssi': lambda_sg"):
        register_packnet_loss(module, "ssi", lambda_sg=0.5)
    with pytest.raises(ValueError, match=r"max_depth \(0.5\) must be larger than min_depth"):
        register_packnet_loss(module, "scale-adaptive", max_depth=0.5)
    assert module.get_loss_func is original  # nothing registered
    with pytest.raises(ValueError, match="has no get_loss_func: pass packnet-sfm's"):
        register_packnet_loss(ModuleType("elsewhere"), "scale-adaptive")
