"""Names of the losses and of their parameters: the one place they are written out.

No torch here (nor anywhere this module imports), so that configuration code and the
read-only CLI commands can check a method name or list its parameters without loading
torch: ``import loss.names`` stays light (``loss/__init__`` loads its torch modules on
first use).

As in packnet-sfm, a ``sparse-`` method means "ground truth is sparse (LiDAR): only pixels
with ``gt_inv > 0`` count"; without the prefix every pixel (or the mask) counts.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "GRADIENT_NORMALIZATIONS",
    "GRADIENT_WINDOWS",
    "LOSS_METHODS",
    "PACKNET_PREFIX",
    "SCALE_ADAPTIVE_METHODS",
    "SCALE_ADAPTIVE_PARAMS",
    "SSI_METHODS",
    "SSI_PARAMS",
    "GradientNormalization",
    "GradientWindow",
    "LossMethod",
    "check_method",
    "is_sparse_method",
    "is_ssi_method",
    "loss_metric_names",
    "method_params",
    "packnet_method",
    "packnet_name",
    "ssi_counterpart",
]

#: A loss method name (a ``typing.Literal``, so pydantic fields can use it as their type).
LossMethod = Literal["scale-adaptive", "sparse-scale-adaptive", "ssi", "sparse-ssi"]
#: How the scale-adaptive loss divides each scale's Sobel sum (see ScaleAdaptiveLoss).
GradientNormalization = Literal["per-scale", "full-resolution"]

#: Which 3x3 windows the scale-adaptive gradient term sees (see ScaleAdaptiveLoss):
#: "zero-filled" (the seed's: every window of the residual zeroed at invalid pixels) or
#: "valid" (only windows whose nine pixels are valid; coarse scales average valid pixels).
GradientWindow = Literal["zero-filled", "valid"]

#: Every valid method name, in declaration order.
LOSS_METHODS: tuple[LossMethod, ...] = get_args(LossMethod)
#: Every valid ``gradient_normalization`` value; the first is the default.
GRADIENT_NORMALIZATIONS: tuple[GradientNormalization, ...] = get_args(GradientNormalization)
#: Every valid ``gradient_window`` value; the first is the default.
GRADIENT_WINDOWS: tuple[GradientWindow, ...] = get_args(GradientWindow)

_SPARSE_PREFIX = "sparse-"
_SSI_FAMILY = "ssi"

#: The MiDaS baseline's methods: ``ssi`` and ``sparse-ssi``.
SSI_METHODS: tuple[LossMethod, ...] = tuple(
    m for m in LOSS_METHODS if m.removeprefix(_SPARSE_PREFIX) == _SSI_FAMILY
)
#: The Scale-Adaptive Loss's methods: ``scale-adaptive`` and ``sparse-scale-adaptive``.
SCALE_ADAPTIVE_METHODS: tuple[LossMethod, ...] = tuple(
    m for m in LOSS_METHODS if m not in SSI_METHODS
)

#: Keyword parameters of ``get_loss`` for the scale-adaptive methods (ScaleAdaptiveLoss).
SCALE_ADAPTIVE_PARAMS: tuple[str, ...] = (
    "lambda_sg",
    "epsilon",
    "num_scales",
    "use_absolute",
    "use_inv_depth",
    "gradient_normalization",
    "gradient_window",
    "min_depth",
    "max_depth",
)
#: Keyword parameters of ``get_loss`` for the SSI methods (SSILoss).
SSI_PARAMS: tuple[str, ...] = ("alpha", "num_scales")


def check_method(name: object) -> LossMethod:
    """``name`` if it is a loss method, else ``ValueError`` listing the valid ones."""
    for method in LOSS_METHODS:
        if name == method:
            return method
    raise ValueError(f"unknown loss method {name!r}; valid: {', '.join(LOSS_METHODS)}")


def is_ssi_method(name: object) -> bool:
    """Whether ``name`` is one of the SSI baseline's methods (False for unknown names)."""
    return name in SSI_METHODS


def is_sparse_method(name: object) -> bool:
    """Whether ``name`` is a ``sparse-`` loss method (False for unknown names)."""
    return name in LOSS_METHODS and str(name).startswith(_SPARSE_PREFIX)


def method_params(name: str) -> tuple[str, ...]:
    """The keyword parameters ``get_loss(name, ...)`` accepts, in a fixed order.

    Raises:
        ValueError: ``name`` is not a loss method.
    """
    return SSI_PARAMS if is_ssi_method(check_method(name)) else SCALE_ADAPTIVE_PARAMS


def loss_metric_names(
    method: str, *, num_scales: int, use_absolute: bool = True, with_mask: bool = True
) -> tuple[str, ...]:
    """The names of the metrics ``get_loss(method, num_scales=..., use_absolute=...)``
    returns from a call with (``with_mask``) or without a mask, in the loss's order: what
    `ScaleAdaptiveLoss.metric_names` and `SSILoss.metric_names` return (written here, with
    no torch, so that a sweep spec's objective can be checked without loading torch).

    Raises:
        ValueError: ``method`` is not a loss method.
    """
    scales = tuple(f"gradient/scale_{k}" for k in range(1, num_scales + 1))
    if is_ssi_method(check_method(method)):
        return ("ssi/data", *scales, "ssi/gradient", "total_loss")
    # The absolute term is active with a mask, or always for the sparse method.
    absolute = use_absolute and (with_mask or is_sparse_method(method))
    return (
        "scale_adaptive/relative",
        *(("scale_adaptive/absolute",) if absolute else ()),
        *scales,
        "total_loss",
        "loss_sa",
        "loss_sg",
    )


def ssi_counterpart(name: str) -> LossMethod:
    """The SSI baseline that matches method ``name``: ``sparse-ssi`` for the ``sparse-``
    methods, else ``ssi``.

    Raises:
        ValueError: ``name`` is not a loss method.
    """
    sparse = is_sparse_method(check_method(name))
    return next(m for m in SSI_METHODS if is_sparse_method(m) == sparse)


#: Prefix of the names under which the losses are registered in packnet-sfm.
PACKNET_PREFIX = "salsweep-"


def packnet_name(method: str) -> str:
    """packnet-sfm's ``supervised_method`` for loss ``method``:
    ``sparse-scale-adaptive`` -> ``salsweep-sparse-scale-adaptive``.

    Raises:
        ValueError: ``method`` is not a loss method (the message lists the valid ones).
    """
    return PACKNET_PREFIX + check_method(method)


def packnet_method(supervised_method: str) -> LossMethod:
    """The loss method of a packnet-sfm ``supervised_method`` written by :func:`packnet_name`.

    Raises:
        ValueError: not such a name; a bare method name is refused with the reason
            (a ``sparse-`` one would be flattened by packnet-sfm).
    """
    if supervised_method in LOSS_METHODS:
        raise ValueError(
            f"supervised_method {supervised_method!r}: in packnet-sfm write "
            f"{packnet_name(supervised_method)!r} (packnet-sfm flattens the maps of every "
            "method whose name starts with 'sparse', and the losses need whole images)"
        )
    valid = ", ".join(PACKNET_PREFIX + m for m in LOSS_METHODS)
    if not supervised_method.startswith(PACKNET_PREFIX):
        raise ValueError(f"unknown supervised_method {supervised_method!r}; valid: {valid}")
    try:
        return check_method(supervised_method.removeprefix(PACKNET_PREFIX))
    except ValueError:
        raise ValueError(
            f"unknown supervised_method {supervised_method!r}; valid: {valid}"
        ) from None
