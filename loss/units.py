"""Units of the scale-adaptive loss: the depth range that makes its absolute term unit-free.

No torch here, so that configuration code can share the defaults and the rule.

The relative and gradient terms normalise each image by its own mean and mean absolute
deviation, so they do not depend on units. The absolute term ``mean |pred_d - gt_d|``
does: in metres it was 7-10 times the relative term at initialisation, in raw inverse
depth (1/m) a small fraction of it (issue 7.3a). The loss therefore works in a unit-free
domain of its own, given the depth range ``[min_depth, max_depth]`` (metres) of the data:

- depth mode (``use_inv_depth`` False): ``d = depth / max_depth``;
- inverse-depth mode: ``d = inverse depth * min_depth`` (inverse depth over its largest
  value ``1 / min_depth``).

Both lie in ``[min_depth / max_depth, 1]`` for depths inside the range, as the
G2-MonoDepth authors scale depth to ``[0, 1]``. The inputs stay inverse depth in 1/m; the
loss multiplies them by :func:`input_scale` before it converts them, so that
``get_loss(...)`` called with the same parameters computes the same number in salsweep's
trainer, a user's trainer and packnet-sfm.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MIN_DEPTH", "input_scale"]

#: Default depth range of the loss (m): KITTI's evaluation range and salsweep's data default.
DEFAULT_MIN_DEPTH = 1.0
DEFAULT_MAX_DEPTH = 80.0


def input_scale(use_inv_depth: bool, min_depth: float, max_depth: float) -> float:
    """Factor ``c`` by which the loss multiplies its inverse-depth inputs (1/m) before its
    working domain: ``max_depth`` in depth mode (``1 / (c x)`` is depth / max_depth),
    ``min_depth`` in inverse-depth mode (``c x`` is inverse depth x min_depth)."""
    return min_depth if use_inv_depth else max_depth
