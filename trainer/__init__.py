"""One short training run of a monocular depth network: config, data, model, loop, metrics.

The trainer knows nothing of Optuna or MLflow: `fit` takes a callback
``on_epoch_end(epoch, metrics)`` that may raise to stop the run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trainer.config import DataConfig, LossConfig, LossMethod, ModelConfig, TrainConfig
from trainer.io import ConfigError, dump_train_config, load_train_config, parse_train_config
from trainer.selection import DEFAULT_SELECTION, EpochSelection
from trainer.validation import describe_validation_error

if TYPE_CHECKING:
    from trainer.loop import NonFiniteLoss, RunResult, fit, loss_input_scale, resolve_device

# The loop imports torch (seconds); configs and YAML do not. Load the loop on first use so
# that `salsweep sweep validate` and other config-only work stay fast.
_LOOP_NAMES = frozenset({"NonFiniteLoss", "RunResult", "fit", "loss_input_scale", "resolve_device"})


def __getattr__(name: str) -> Any:
    if name in _LOOP_NAMES:
        return getattr(importlib.import_module("trainer.loop"), name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")


__all__ = [
    "DEFAULT_SELECTION",
    "ConfigError",
    "DataConfig",
    "EpochSelection",
    "LossConfig",
    "LossMethod",
    "ModelConfig",
    "NonFiniteLoss",
    "RunResult",
    "TrainConfig",
    "describe_validation_error",
    "dump_train_config",
    "fit",
    "load_train_config",
    "loss_input_scale",
    "parse_train_config",
    "resolve_device",
]
