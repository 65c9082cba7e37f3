"""One short training run of a monocular depth network: config, data, model, loop, metrics.

The trainer knows nothing of Optuna or MLflow: `fit` takes a callback
``on_epoch_end(epoch, metrics)`` that may raise to stop the run.

Names load on first use (PEP 562): the loop imports torch (seconds), the configs pydantic;
``import trainer.errors`` (the base of user-facing errors) loads neither, and
``from trainer import TrainConfig`` loads the configs without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.config import DataConfig, LossConfig, LossMethod, ModelConfig, TrainConfig
    from trainer.errors import UserError
    from trainer.io import ConfigError, dump_train_config, load_train_config, parse_train_config
    from trainer.loop import NonFiniteLoss, RunResult, batch_loss, fit, resolve_device
    from trainer.metric_names import epoch_metric_names
    from trainer.selection import DEFAULT_SELECTION, EpochSelection
    from trainer.validation import describe_validation_error

# Public name -> the module that defines it (every name of __all__).
_NAMES: dict[str, str] = {
    "DEFAULT_SELECTION": "trainer.selection",
    "ConfigError": "trainer.io",
    "DataConfig": "trainer.config",
    "EpochSelection": "trainer.selection",
    "LossConfig": "trainer.config",
    "LossMethod": "trainer.config",
    "ModelConfig": "trainer.config",
    "NonFiniteLoss": "trainer.loop",
    "RunResult": "trainer.loop",
    "TrainConfig": "trainer.config",
    "UserError": "trainer.errors",
    "batch_loss": "trainer.loop",
    "describe_validation_error": "trainer.validation",
    "dump_train_config": "trainer.io",
    "epoch_metric_names": "trainer.metric_names",
    "fit": "trainer.loop",
    "load_train_config": "trainer.io",
    "parse_train_config": "trainer.io",
    "resolve_device": "trainer.loop",
}

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
    "UserError",
    "batch_loss",
    "describe_validation_error",
    "dump_train_config",
    "epoch_metric_names",
    "fit",
    "load_train_config",
    "parse_train_config",
    "resolve_device",
]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'trainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
