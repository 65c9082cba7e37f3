"""`ReporterLogger`: the logger object packnet-sfm's ``ModelWrapper(config, logger=...)``
accepts, reporting its metrics to the sweep (studies.command.reporter).

What packnet-sfm calls on its logger (``models/model_wrapper.py``, ``utils/config.py``):

- ``log_metrics(metrics)`` at the end of each training epoch (``avg_train-loss``, the
  learning rates, ``progress`` ..., no ``global_step``) and of each validation
  (``{**metrics_dict, 'global_step': current_epoch + 1}``: every validation metric as a
  Python float, ``<prefix>-abs_rel_pp_gt`` ...). Like packnet-sfm's ``WandbLogger`` this
  logger keeps the metrics until a call brings ``global_step``, then sends them as one
  report, so an epoch's training and validation metrics arrive together.
- ``log_depth(mode, batch, output, ...)`` per validation batch (images for wandb): not
  reported.
- ``run_name``, ``run_url``, ``log_config(config)``: only with wandb on
  (``wandb.dry_run: false``), from ``prep_logger_and_checkpoint``.

Each of these is also handed to ``inner`` when given (packnet-sfm's ``WandbLogger``, as
``scripts/train.py`` builds it), so wandb keeps working beside the sweep.

The step of a report is the number of epochs trained: packnet-sfm's ``global_step`` after
a training epoch (epoch 1, 2, ...); a validation with no training epoch before it
(``arch.validate_first``) reports ``global_step - 1`` (0 from scratch), so that no step
is reported twice with different models. Values are reported as they are (Python floats
keep every bit of packnet-sfm's float32 metrics; the file holds them in full).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from studies.command import reporter

__all__ = ["GLOBAL_STEP", "ReporterLogger"]

GLOBAL_STEP = "global_step"


def _warn(message: str) -> None:
    print(f"salsweep: {message}", file=sys.stderr, flush=True)


def _number(value: Any) -> float | None:
    """``value`` as a float (ints, floats, numpy scalars, one-element tensors), else None."""
    if isinstance(value, bool | str | bytes) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of several values
        return None


class ReporterLogger:
    """packnet-sfm's logger protocol, reporting to ``$SALSWEEP_METRICS_FILE``.

    ``report`` is the reporter's ``report(step, **metrics)`` (replaceable for tests);
    ``warn`` gets one line for each metric name whose value is not a number (not reported).
    """

    def __init__(
        self,
        inner: Any = None,
        *,
        report: Callable[..., None] = reporter.report,
        warn: Callable[[str], None] = _warn,
    ) -> None:
        self.inner = inner
        self._report = report
        self._warn = warn
        self._pending: dict[str, float] = {}
        self._trained = False  # a training epoch's metrics came since the last report
        self._not_numbers: set[str] = set()

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Keep ``metrics``; with ``global_step``, report everything kept as one step."""
        if self.inner is not None:
            self.inner.log_metrics(dict(metrics))
        values = dict(metrics)
        global_step = values.pop(GLOBAL_STEP, None)
        for name, value in values.items():
            number = _number(value)
            if number is not None:
                self._pending[str(name)] = number
            elif name not in self._not_numbers:
                self._not_numbers.add(name)
                kind = type(value).__name__
                self._warn(f"metric {name!r} is not a number ({kind}): not reported")
        if global_step is None:
            self._trained = True
            return
        step = int(global_step) - (0 if self._trained else 1)
        self._trained = False
        if self._pending:
            pending, self._pending = self._pending, {}
            self._report(max(step, 0), **pending)

    def log_depth(self, *args: Any, **kwargs: Any) -> None:
        """Validation images: wandb's only (``inner``), the sweep takes numbers."""
        if self.inner is not None:
            self.inner.log_depth(*args, **kwargs)

    def log_config(self, config: Any) -> None:
        """The run's configuration: wandb's only (the trial folder holds config.yaml)."""
        if self.inner is not None:
            self.inner.log_config(config)

    @property
    def run_name(self) -> str | None:
        """The wandb run's name (packnet-sfm names its run and checkpoints after it)."""
        return None if self.inner is None else self.inner.run_name

    @property
    def run_url(self) -> str | None:
        """The wandb run's address."""
        return None if self.inner is None else self.inner.run_url
