"""One short training run of a monocular depth network: config, data, model, loop, metrics.

The trainer knows nothing of Optuna or MLflow: `fit` takes a callback
``on_epoch_end(epoch, metrics)`` that may raise to stop the run.
"""

from __future__ import annotations

from trainer.config import DataConfig, LossConfig, LossMethod, ModelConfig, TrainConfig
from trainer.io import ConfigError, dump_train_config, load_train_config, parse_train_config
from trainer.loop import BEST_METRIC, NonFiniteLoss, RunResult, fit, resolve_device
from trainer.validation import describe_validation_error

__all__ = [
    "BEST_METRIC",
    "ConfigError",
    "DataConfig",
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
    "parse_train_config",
    "resolve_device",
]
