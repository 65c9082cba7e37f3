"""The losses in packnet-sfm, without editing its files.

packnet-sfm's ``SupervisedLoss`` (``packnet_sfm/losses/supervised_loss.py``) builds its
loss with ``get_loss_func(supervised_method)``, a function of the method name alone, and
calls it as ``loss_func(inv_depth, gt_inv_depth) -> tensor`` once per supervised scale
(the ground truth resized to each output with ``match_scales(..., mode='nearest')``).
:func:`register_packnet_loss` replaces that module's ``get_loss_func`` by one that returns
this package's loss, bound to its parameters, for one more name and hands every other name
to the original. ``SupervisedLoss`` looks the function up in its module when it is built,
so registering once at start-up, before the model is built, is enough:

    import packnet_sfm.losses.supervised_loss as supervised_loss
    from loss.packnet import register_packnet_loss

    name = register_packnet_loss(supervised_loss, "sparse-scale-adaptive", lambda_sg=0.5)
    # name == "salsweep-sparse-scale-adaptive": the config's model.loss.supervised_method

Why a ``salsweep-`` prefix: ``SupervisedLoss.calculate_loss`` flattens prediction and
ground truth to 1-D vectors of the pixels with ground truth (boolean indexing) for every
method whose name starts with ``sparse``. The scale-adaptive loss normalises each image
and takes Sobel gradients of a [B,1,H,W] map, so it cannot run on those vectors; under
``salsweep-sparse-scale-adaptive`` packnet-sfm passes the maps, and the loss's own sparse
method keeps the pixels with ground truth, image by image. No registered name ends in one
of packnet-sfm's own suffixes (``l1``, ``mse``, ``berhu``, ``silog``, ``abs_rel``).

The registered loss is called as salsweep's trainer calls it: ``mask = gt_inv > 0`` and
the same parameters (depth range included), so the same numbers come out of both
(``tests/loss/test_packnet_sfm.py``). Nothing here imports packnet-sfm.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

from loss.names import PACKNET_PREFIX, method_params, packnet_method, packnet_name
from loss.output import LossOutput
from loss.registry import LossFunction, get_loss

__all__ = [
    "PACKNET_PREFIX",
    "PacknetLoss",
    "packnet_loss_func",
    "packnet_method",
    "packnet_name",
    "packnet_params",
    "register_packnet_loss",
]

_FLOAT_DTYPES = (torch.float32, torch.float64)


def packnet_params(method: str, loss_config: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword parameters of ``get_loss(method, ...)`` found in packnet-sfm's
    ``cfg.model.loss`` (a yacs node, or any mapping); keys it lacks keep their defaults.

    ``num_scales`` there is upstream's key (the photometric loss's scales, default 4): the
    loss reads it as its gradient term's K, as salsweep's packnet export writes it.
    """
    return {key: loss_config[key] for key in method_params(method) if key in loss_config}


def _as_float(x: torch.Tensor) -> torch.Tensor:
    # Mixed precision hands over half-precision maps; the loss sums over whole images in
    # float32 (it refuses float16, whose sums overflow), as salsweep's trainer does.
    return x if x.dtype in _FLOAT_DTYPES else x.float()


@dataclass(frozen=True)
class PacknetLoss:
    """packnet-sfm's ``loss_func`` contract around one loss: ``(inv_depth, gt_inv_depth)
    -> total`` with ``mask = gt_inv_depth > 0``, the call salsweep's trainer makes;
    :meth:`output` gives the metrics as well."""

    loss: LossFunction

    def output(self, inv_depth: torch.Tensor, gt_inv_depth: torch.Tensor) -> LossOutput:
        """inv_depth: [B,1,H,W] predicted inverse depth (1/m), > 0; gt_inv_depth: [B,1,H,W]
        ground-truth inverse depth (1/m), 0 = no measurement. The whole ``LossOutput``."""
        pred, gt = _as_float(inv_depth), _as_float(gt_inv_depth)
        return self.loss(pred, gt, gt > 0)

    def __call__(self, inv_depth: torch.Tensor, gt_inv_depth: torch.Tensor) -> torch.Tensor:
        """[] the total loss, with autograd history (what ``SupervisedLoss`` averages)."""
        return self.output(inv_depth, gt_inv_depth).total


def packnet_loss_func(method: str, **params: Any) -> PacknetLoss:
    """A packnet-sfm ``loss_func`` for ``get_loss(method, **params)``: the factory that
    binds the parameters, which ``get_loss_func(name)`` cannot pass.

    Raises:
        ValueError: as ``get_loss`` (unknown method or parameter, value out of range).
    """
    return PacknetLoss(get_loss(method, **params))


def register_packnet_loss(module: ModuleType, method: str, **params: Any) -> str:
    """Make ``module.get_loss_func`` (``module`` is packnet-sfm's
    ``packnet_sfm.losses.supervised_loss``) return the loss ``method`` with ``params`` for
    the name :func:`packnet_name` ``(method)``, which it returns; other names go to the
    function it replaces. Registering again adds another name, or rebinds the same one
    (the latest registration wins).

    Raises:
        ValueError: ``module`` has no ``get_loss_func``; or as ``get_loss`` (checked now,
            not when packnet-sfm builds its model).
    """
    original = getattr(module, "get_loss_func", None)
    if not callable(original):
        raise ValueError(
            f"{getattr(module, '__name__', module)!r} has no get_loss_func: pass packnet-sfm's "
            "packnet_sfm.losses.supervised_loss module"
        )
    loss_func = packnet_loss_func(method, **params)
    name = packnet_name(method)

    @functools.wraps(original)
    def get_loss_func(supervised_method: str) -> Callable[..., Any]:
        if supervised_method == name:
            return loss_func
        return original(supervised_method)

    setattr(module, "get_loss_func", get_loss_func)  # noqa: B010 (mypy: ModuleType)
    return name
