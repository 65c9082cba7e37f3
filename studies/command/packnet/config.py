"""The trial's packnet-sfm config: parsed by packnet-sfm's own ``parse_train_file``, checked,
and the scale-adaptive loss registered for its ``model.loss.supervised_method``.

packnet-sfm reads a run's YAML with yacs over ``configs/default_config.py``, which refuses
any key it does not declare. The loss's parameters (``lambda_sg``, ``use_inv_depth`` ...)
are new keys there: a fork declares them (``salsweep studies export --format packnet
--print-defaults``), or :func:`parse_config` declares, for this parse only, each loss
parameter that the file sets and the defaults lack, with the file's value (so with its
type). Any other unknown key is still refused by yacs, a misspelt loss parameter
included, and a parameter the file leaves out keeps the loss's default.

Where the metrics come from (packnet-sfm's ``ModelWrapper.validation_epoch_end`` and
``utils/reduce.create_dict``): ``<prefix>-<key><mode>`` for each validation data set,
``prefix`` its path's last part, split file stem, depth type (and camera), e.g.
``KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gt``; :func:`metric_names` lists them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from loss.names import LOSS_METHODS, LossMethod, method_params, packnet_method
from studies.command.packnet.errors import PacknetConfigError
from studies.command.packnet.imports import import_packnet

__all__ = [
    "LOSS_PARAMETERS",
    "METRICS_KEYS",
    "METRICS_MODES",
    "SUPERVISED_MODELS",
    "LossRegistration",
    "check_config",
    "declare_loss_keys",
    "metric_names",
    "parse_config",
    "prepare",
]

#: Every keyword parameter of any loss method: the keys that may be declared under model.loss.
LOSS_PARAMETERS: tuple[str, ...] = tuple(
    dict.fromkeys(p for m in LOSS_METHODS for p in method_params(m))
)
#: packnet-sfm's models that build a ``SupervisedLoss`` (``packnet_sfm/models/``).
SUPERVISED_MODELS = ("SemiSupModel", "SemiSupCompletionModel")
#: ``ModelWrapper.metrics_keys`` and ``metrics_modes`` (set in its ``__init__``).
METRICS_KEYS = ("abs_rel", "sqr_rel", "rmse", "rmse_log", "a1", "a2", "a3")
METRICS_MODES = ("", "_pp", "_gt", "_pp_gt")
_SCALARS = (bool, int, float, str)


def _loss_section(path: Path) -> Mapping[str, Any]:
    """``model.loss`` of the YAML file as written (empty when absent)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PacknetConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise PacknetConfigError(f"{path}: not YAML: {exc}") from None
    node: Any = data
    for key in ("model", "loss"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def declare_loss_keys(node: Any, section: Mapping[str, Any]) -> list[str]:
    """Declare in ``node`` (the defaults' ``model.loss``, a yacs ``CfgNode``) each loss
    parameter that ``section`` sets and ``node`` lacks, with ``section``'s value; returns
    the keys declared. Keys that are no loss parameter are left for yacs to refuse.

    Raises:
        PacknetConfigError: a loss parameter whose value is no number, bool or string.
    """
    declared = []
    for key, value in section.items():
        if key not in LOSS_PARAMETERS or key in node:
            continue
        if not isinstance(value, _SCALARS):
            raise PacknetConfigError(
                f"model.loss.{key}: expected a number, true/false or a name, "
                f"got {type(value).__name__}"
            )
        node[key] = value
        declared.append(key)
    return declared


def parse_config(path: Path) -> tuple[Any, Any]:
    """``(config, checkpoint)`` from packnet-sfm's ``parse_train_file(path)``, the loss's
    keys that ``path`` sets declared first (:func:`declare_loss_keys`). packnet-sfm must
    be on ``sys.path`` (`locate_packnet`).

    Raises:
        PacknetConfigError: not a ``.yaml`` file, or yacs or packnet-sfm refuse it (an
            undeclared key, a value of the wrong type, a failed check of packnet-sfm's).
    """
    if path.suffix != ".yaml":
        raise PacknetConfigError(f"{path}: the launcher takes a packnet-sfm .yaml config")
    if not path.is_file():
        raise PacknetConfigError(f"no such file: {path}")
    section = _loss_section(path)
    defaults: Any = import_packnet("configs.default_config", "packnet-sfm's default config")
    packnet_config = import_packnet("packnet_sfm.utils.config", "parse_train_file")
    original: Callable[[], Any] = defaults.get_cfg_defaults

    @functools.wraps(original)
    def get_cfg_defaults() -> Any:
        cfg = original()
        declare_loss_keys(cfg.model.loss, section)
        return cfg

    defaults.get_cfg_defaults = get_cfg_defaults
    try:
        config, checkpoint = packnet_config.parse_train_file(str(path))
    except KeyError as exc:  # yacs: "Non-existent config key: model.loss.lamda_sg"
        raise PacknetConfigError(f"{path}: {exc.args[0] if exc.args else exc}") from None
    except (ValueError, AssertionError) as exc:  # yacs' type checks; packnet's asserts
        raise PacknetConfigError(f"{path}: {exc}") from None
    finally:
        defaults.get_cfg_defaults = original
    return config, checkpoint


def check_config(config: Any) -> LossMethod:
    """The loss method of a parsed config that the launcher can run and report on:
    salsweep's loss as ``model.loss.supervised_method``, a model that builds a supervised
    loss, and at least one validation data set (the metrics' source).

    Raises:
        PacknetConfigError: naming the key.
    """
    try:
        method = packnet_method(config.model.loss.supervised_method)
    except ValueError as exc:
        raise PacknetConfigError(f"model.loss.supervised_method: {exc}") from None
    if config.model.name not in SUPERVISED_MODELS:
        raise PacknetConfigError(
            f"model.name: {config.model.name!r} builds no supervised loss, so the sweep's "
            f"loss would not train anything; use {' or '.join(SUPERVISED_MODELS)}"
        )
    if len(config.datasets.validation.path) == 0:
        raise PacknetConfigError(
            "datasets.validation.path: empty; the sweep's metrics are packnet-sfm's "
            "validation metrics, so at least one validation data set is needed"
        )
    return method


@dataclass(frozen=True)
class LossRegistration:
    """What :func:`prepare` registered: packnet-sfm's name, the loss method, its parameters."""

    name: str
    method: LossMethod
    params: Mapping[str, Any]

    def describe(self) -> str:
        """One line: ``salsweep-sparse-scale-adaptive lambda_sg=0.3 num_scales=2 ...``."""
        return " ".join([self.name, *(f"{k}={v!r}" for k, v in self.params.items())])


def prepare(config: Any, supervised_loss: ModuleType) -> LossRegistration:
    """Check ``config`` (:func:`check_config`) and register salsweep's loss in
    ``supervised_loss`` (packnet-sfm's ``packnet_sfm.losses.supervised_loss``) under its
    ``supervised_method``, with the parameters found in ``config.model.loss``. Call it
    before packnet-sfm builds its model (``SupervisedLoss`` looks the loss up then).

    Raises:
        PacknetConfigError: as :func:`check_config`, or a parameter out of range.
    """
    from loss.packnet import packnet_params, register_packnet_loss  # torch

    method = check_config(config)
    params = packnet_params(method, config.model.loss)
    try:
        name = register_packnet_loss(supervised_loss, method, **params)
    except ValueError as exc:
        raise PacknetConfigError(f"model.loss: {exc}") from None
    return LossRegistration(name, method, dict(params))


def metric_names(config: Any) -> list[str]:
    """The validation metrics ``ModelWrapper`` logs for ``config`` (parsed: its data set
    lists expanded), in its order: ``<prefix>-<key><mode>`` per validation data set."""
    logging = import_packnet("packnet_sfm.utils.logging", "the metrics' names")
    validation = config.datasets.validation
    names = []
    for n in range(len(validation.split)):  # as setup_dataset: one data set per split
        prefix = logging.prepare_dataset_prefix(validation, n)
        names += [f"{prefix}-{key}{mode}" for key in METRICS_KEYS for mode in METRICS_MODES]
    return names
