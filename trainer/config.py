"""Typed configuration of one training run.

Every model is frozen and forbids unknown keys, so that a typo in a YAML file is an error
with its key path instead of a silently ignored setting. Each field carries its bounds and
a one-line description (the JSON Schema of a sweep spec is generated from these).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loss.names import (
    LOSS_METHODS,
    GradientNormalization,
    GradientWindow,
    LossMethod,
    method_params,
)
from loss.units import DEFAULT_MAX_DEPTH, DEFAULT_MIN_DEPTH

__all__ = [
    "DataConfig",
    "LossConfig",
    "LossMethod",
    "ModelConfig",
    "TrainConfig",
]

DataKind = Literal["synthetic", "kitti", "nyu", "folder"]


def _no_nul(value: Path | None) -> Path | None:
    """A path without a NUL character (which no file name can hold)."""
    if value is not None and "\0" in str(value):
        raise ValueError("a path cannot contain a NUL character")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


# Depth bounds (m) shared by the data's and the loss's range: 1/depth stays a normal float32.
_MIN_DEPTH_BOUND = 1e-3
_MAX_DEPTH_BOUND = 1e5


class LossConfig(_Frozen):
    """Parameters of the supervised loss (see loss/ and DESIGN.md).

    ``min_depth`` / ``max_depth`` are the loss's depth range (``loss.units``): its working
    domain is depth / max_depth, or inverse depth x min_depth with ``use_inv_depth``, so
    that the absolute term is unit-free. A ``TrainConfig`` that leaves them out takes its
    data's ``min_depth`` / ``max_depth``; a ``LossConfig`` alone has 1 and 80 m.
    """

    method: LossMethod = Field(
        "sparse-scale-adaptive",
        description=f"Loss: {', '.join(LOSS_METHODS)} (sparse-: only pixels with ground truth).",
    )
    lambda_sg: float = Field(
        0.5, ge=0.0, le=100.0, description="Weight of the multi-scale gradient term L_sg."
    )
    epsilon: float = Field(
        1e-8, ge=0.0, le=1.0, description="Added to the mean absolute deviation before dividing."
    )
    num_scales: int = Field(
        4, ge=1, le=8, description="Number of scales K of the gradient term (1/2^(k-1) each)."
    )
    use_absolute: bool = Field(
        True,
        description="Add the masked mean absolute error of depth / max_depth (inverse depth "
        "x min_depth) to L_sa.",
    )
    use_inv_depth: bool = Field(
        False, description="Work on inverse depth directly instead of converting to depth."
    )
    gradient_normalization: GradientNormalization = Field(
        "per-scale",
        description="L_sg: per-scale = mean over scales of each scale's mean (the seed's); "
        "full-resolution = sum of scales over the full-resolution count (G2-MonoDepth's code).",
    )
    gradient_window: GradientWindow = Field(
        "zero-filled",
        description="L_sg's 3x3 windows: zero-filled = every window of the residual zeroed at "
        "missing pixels (the seed's); valid = only windows of valid pixels, coarse scales "
        "averaging valid pixels (for sparse ground truth).",
    )
    min_depth: float = Field(
        DEFAULT_MIN_DEPTH,
        ge=_MIN_DEPTH_BOUND,
        le=_MAX_DEPTH_BOUND,
        description="Loss depth range, low end (m): use_inv_depth works on inverse depth x "
        "min_depth (salsweep: data.min_depth unless set).",
    )
    max_depth: float = Field(
        DEFAULT_MAX_DEPTH,
        gt=0.0,
        le=_MAX_DEPTH_BOUND,
        description="Loss depth range, high end (m): depth mode works on depth / max_depth, "
        "so the absolute term is unit-free (salsweep: data.max_depth unless set).",
    )

    @model_validator(mode="after")
    def _check_range(self) -> LossConfig:
        if self.max_depth <= self.min_depth:
            raise ValueError(
                f"max_depth ({self.max_depth}) must be larger than min_depth ({self.min_depth})"
            )
        return self

    def loss_params(self) -> dict[str, Any]:
        """Keyword arguments for ``loss.get_loss(self.method, **params)``: the method's
        parameters (``loss.names.method_params``) that this config sets; the SSI loss's
        ``alpha`` is not one of them (it keeps MiDaS' 0.5)."""
        fields = type(self).model_fields
        return {name: getattr(self, name) for name in method_params(self.method) if name in fields}


class DataConfig(_Frozen):
    """Where the images and ground-truth depth come from."""

    kind: DataKind = Field(
        "synthetic", description="Data set: synthetic (built in), kitti, nyu or folder."
    )
    path: Path | None = Field(
        None, description="Root folder (kitti, folder) or .mat file (nyu); unused for synthetic."
    )
    height: int = Field(96, ge=16, le=4096, description="Image height fed to the network (px).")
    width: int = Field(320, ge=16, le=4096, description="Image width fed to the network (px).")
    # Bounded so that 1/depth stays a normal float32 (the network predicts inverse depth).
    min_depth: float = Field(
        DEFAULT_MIN_DEPTH,
        ge=_MIN_DEPTH_BOUND,
        description="Smallest depth evaluated and predicted (m); at least 1 mm.",
    )
    max_depth: float = Field(
        DEFAULT_MAX_DEPTH,
        gt=0.0,
        le=_MAX_DEPTH_BOUND,
        description="Largest depth evaluated and predicted (m); <= 100 km.",
    )
    sparse: bool = Field(
        False, description="Synthetic only: LiDAR-like sparse ground truth on scan lines."
    )
    scan_lines: int = Field(
        24, ge=1, le=512, description="Synthetic sparse ground truth: number of scan lines."
    )
    num_train: int = Field(1000, ge=1, le=100_000, description="Synthetic: training scenes.")
    num_val: int = Field(32, ge=1, le=100_000, description="Synthetic: validation scenes.")
    num_test: int = Field(64, ge=1, le=100_000, description="Synthetic: test scenes.")
    val_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="kitti/nyu/folder: fraction of samples for validation (whole groups).",
    )
    test_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description="kitti/nyu/folder: fraction of samples for test (whole groups).",
    )
    seed: int = Field(
        0,
        ge=0,
        description="Data seed: which scenes exist and which are validation and test; "
        "independent of the training seed.",
    )
    depth_scale: float = Field(
        256.0,
        gt=0.0,
        allow_inf_nan=False,
        description="folder: stored value / depth_scale = metres (PNG and .npy).",
    )
    garg_crop: bool = Field(False, description="Evaluate inside the Garg crop (KITTI protocol).")

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: Path | None) -> Path | None:
        return _no_nul(value)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.max_depth <= self.min_depth:
            raise ValueError(
                f"max_depth ({self.max_depth}) must be larger than min_depth ({self.min_depth})"
            )
        if self.kind != "synthetic" and self.path is None:
            raise ValueError(f"data kind {self.kind!r} needs a path")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction ({self.val_fraction}) + test_fraction ({self.test_fraction}) "
                "must be below 1: nothing would be left to train on"
            )
        return self


class ModelConfig(_Frozen):
    """Size of the small encoder-decoder depth network."""

    base_channels: int = Field(
        16, ge=4, le=256, description="Channels of the first encoder stage (doubles per stage)."
    )
    num_stages: int = Field(
        4, ge=2, le=6, description="Encoder stages; each halves the resolution."
    )


class TrainConfig(_Frozen):
    """One short, reproducible training run."""

    loss: LossConfig = Field(default_factory=LossConfig, description="The supervised loss.")
    data: DataConfig = Field(default_factory=DataConfig, description="The data set.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The network.")
    epochs: int = Field(5, ge=1, le=10_000, description="Number of epochs.")
    steps_per_epoch: int = Field(
        20, ge=1, le=1_000_000, description="Optimiser steps per epoch (batches drawn)."
    )
    batch_size: int = Field(4, ge=1, le=4096, description="Images per optimiser step.")
    val_batches: int = Field(
        0, ge=0, description="Validation batches per epoch; 0 = the whole validation split."
    )
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0, description="AdamW weight decay.")
    lr_schedule: Literal["none", "cosine", "step"] = Field(
        "cosine", description="Learning-rate schedule over the run's steps."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto = CUDA (bf16 autocast) when available, else CPU."
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        description="Training seed: model initialisation and sample order (not data).",
    )
    num_workers: int = Field(0, ge=0, le=64, description="DataLoader worker processes.")
    output_dir: Path | None = Field(
        None, description="Folder for previews and the best checkpoint; none = keep nothing."
    )
    previews: bool = Field(True, description="Save one preview PNG per validation.")

    @model_validator(mode="before")
    @classmethod
    def _loss_range_from_data(cls, values: Any) -> Any:
        """``loss.min_depth`` / ``loss.max_depth`` left out: the data's range (as the
        trainer scaled the loss's inputs before the range was the loss's parameter)."""
        return _with_loss_range(values)

    @field_validator("output_dir")
    @classmethod
    def _check_output_dir(cls, value: Path | None) -> Path | None:
        return _no_nul(value)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        # The gradient term downsamples the residual K-1 times and the network halves the
        # resolution once per stage: both need images large enough for that.
        smallest = min(self.data.height, self.data.width)
        if smallest // 2 ** (self.loss.num_scales - 1) < 2:
            raise ValueError(
                f"loss.num_scales={self.loss.num_scales} is too large for a "
                f"{self.data.height}x{self.data.width} image: the coarsest scale would be "
                "smaller than 2 px"
            )
        step = 2**self.model.num_stages
        if self.data.height % step or self.data.width % step:
            raise ValueError(
                f"data.height and data.width must be multiples of 2^model.num_stages = {step} "
                f"(got {self.data.height}x{self.data.width})"
            )
        return self


_RANGE_KEYS = ("min_depth", "max_depth")


def _valid_range(lo: object, hi: object) -> bool:
    """Whether ``(lo, hi)`` is a range the loss accepts (else the data's own error says so,
    and copying it would report the same problem twice)."""
    numbers = [v for v in (lo, hi) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) < 2 or not all(math.isfinite(v) for v in numbers):
        return False
    low, high = numbers
    return _MIN_DEPTH_BOUND <= low < high <= _MAX_DEPTH_BOUND


def _with_loss_range(values: Any) -> Any:
    """A TrainConfig's input with the loss's depth range filled from the data's where the
    loss section leaves it out; anything else unchanged (pydantic reports its errors)."""
    if not isinstance(values, Mapping):
        return values
    loss = values.get("loss", {})
    if isinstance(loss, LossConfig):
        loss = loss.model_dump(exclude_unset=True)
    data = values.get("data", {})
    if isinstance(data, DataConfig):
        data = data.model_dump()
    if not isinstance(loss, Mapping) or not isinstance(data, Mapping):
        return values
    missing = [key for key in _RANGE_KEYS if key not in loss]
    lo = data.get("min_depth", DEFAULT_MIN_DEPTH)
    hi = data.get("max_depth", DEFAULT_MAX_DEPTH)
    if not missing or not _valid_range(lo, hi):
        return values
    found = {"min_depth": lo, "max_depth": hi}
    return {**values, "loss": {**loss, **{key: found[key] for key in missing}}}
