"""The names of the metrics a run reports, written without torch: the depth metrics
(`trainer.metrics` computes them) and every per-epoch metric of `trainer.fit`.

Torch-free, so that a sweep spec's objective is checked (`salsweep sweep validate`, and
`sweep launch` before it creates anything) without loading the training loop. The depth
metrics' names and the loss's terms (``loss.names.loss_metric_names``) are the ones the
computing code itself uses; the few per-epoch figures `fit` adds (:data:`RUN_METRICS`) are
pinned by a test that compares :func:`epoch_metric_names` with the keys of a real run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from loss.names import loss_metric_names

if TYPE_CHECKING:
    from trainer.config import TrainConfig

__all__ = [
    "ALIGNMENTS",
    "METRIC_NAMES",
    "RUN_METRICS",
    "Alignment",
    "epoch_metric_names",
    "metric_keys",
]

METRIC_NAMES: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")

Alignment = Literal["none", "median", "scale_shift", "scale_shift_depth"]

# Each alignment and the suffix of its metric names.
ALIGNMENTS: dict[Alignment, str] = {
    "none": "",
    "median": "_med",
    "scale_shift": "_align",
    "scale_shift_depth": "_align_depth",
}

# What `fit` adds to each epoch beside the loss's terms and the depth metrics: the
# training throughput (`_train_epoch`), the learning rate, the epoch's time and memory.
RUN_METRICS: tuple[str, ...] = ("samples_per_s", "lr", "epoch_time_s", "peak_memory_mb")


def metric_keys() -> tuple[str, ...]:
    """Every key of ``DepthMetricAccumulator.compute()``: ``abs_rel`` .. ``a3``, the same
    with ``_med``, with ``_align`` and with ``_align_depth``, then ``num_images``."""
    keys = [name + suffix for suffix in ALIGNMENTS.values() for name in METRIC_NAMES]
    return (*keys, "num_images")


def epoch_metric_names(config: TrainConfig) -> tuple[str, ...]:
    """Every key of the metrics ``fit(config)`` reports each epoch (``on_epoch_end``,
    ``RunResult.history``): ``train/<loss term>`` (the loss is always called with a mask:
    `trainer.batch_loss`), ``val/<depth metric>`` and ``val/total_loss``, and
    :data:`RUN_METRICS`."""
    loss = config.loss
    terms = loss_metric_names(
        loss.method, num_scales=loss.num_scales, use_absolute=loss.use_absolute, with_mask=True
    )
    return (
        *(f"train/{name}" for name in terms),
        *(f"val/{key}" for key in metric_keys()),
        "val/total_loss",
        *RUN_METRICS,
    )
