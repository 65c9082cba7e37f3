"""Run packnet-sfm's training as a command trial: ``python -m studies.command.packnet
CONFIG.yaml``.

The steps of packnet-sfm's ``scripts/train.py``, in its order, salsweep's parts marked:

1. packnet-sfm found and put on ``sys.path`` (``--packnet-sfm DIR``,
   ``$SALSWEEP_PACKNET_SFM``, or ``PYTHONPATH``); ``hvd_init()``.
2. The config parsed with packnet-sfm's ``parse_train_file`` (the loss's keys declared),
   then checked, and salsweep's loss registered in packnet-sfm's ``get_loss_func`` under
   ``model.loss.supervised_method`` with the parameters of ``model.loss`` (addition).
   ``--objective NAME`` (repeatable) fails here, before any training, when the
   validation data sets would not give that metric (addition).
3. The fixes of studies.command.packnet.compat applied (addition);
   ``ModelWrapper(config, resume=ckpt, logger=...)`` with a `ReporterLogger` (on rank 0;
   wrapping the ``WandbLogger`` that train.py would build when ``wandb.dry_run`` is
   false), so that every validation metric reaches ``$SALSWEEP_METRICS_FILE`` under
   packnet-sfm's own name (addition); the checkpoint callback as train.py builds it.
4. ``HorovodTrainer(**config.arch, checkpoint=...)`` (``--trainer horovod``, the default,
   as train.py), or `SingleProcessTrainer` (``--trainer single``: no horovod; one GPU
   or the CPU); ``trainer.fit(model_wrapper)``.

``--dry-run`` stops after step 2 and prints the registered loss and the metric names the
config's validation sets give (the objective's candidates): it needs packnet-sfm's config
and loss modules only, not torchvision or horovod.

Exit status: 0 done, 1 an error the user can act on (one line on standard error: no
packnet-sfm, a missing requirement, a config the launcher cannot run), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from studies.command.packnet.compat import environment_aliases, list_eval_inv_depths
from studies.command.packnet.config import metric_names, parse_config, prepare
from studies.command.packnet.errors import PacknetConfigError
from studies.command.packnet.imports import PACKNET_ENV, import_packnet, locate_packnet
from studies.command.packnet.logger import ReporterLogger
from trainer.errors import UserError

__all__ = [
    "TRAINERS",
    "TrainerKind",
    "launch",
    "main",
    "make_checkpoint",
    "make_logger",
    "make_trainer",
    "trainer_class",
]

TrainerKind = Literal["horovod", "single"]
TRAINERS: tuple[TrainerKind, ...] = ("horovod", "single")


def make_logger(config: Any) -> ReporterLogger | None:
    """The ModelWrapper's logger: None off rank 0 (as train.py), else a `ReporterLogger`
    around the ``WandbLogger`` train.py builds when ``wandb.dry_run`` is false."""
    horovod = import_packnet("packnet_sfm.utils.horovod", "the logger")
    if horovod.rank() > 0:
        return None
    inner = None
    if not config.wandb.dry_run:
        loggers = import_packnet("packnet_sfm.loggers", "wandb (wandb.dry_run: false)")
        load = import_packnet("packnet_sfm.utils.load", "the logger")
        inner = load.filter_args_create(loggers.WandbLogger, config.wandb)
    return ReporterLogger(inner)


def make_checkpoint(config: Any) -> Any:
    """packnet-sfm's ``ModelCheckpoint`` as train.py builds it (None without a filepath)."""
    horovod = import_packnet("packnet_sfm.utils.horovod", "the checkpoint")
    if config.checkpoint.filepath == "" or horovod.rank() > 0:
        return None
    checkpoint = import_packnet("packnet_sfm.models.model_checkpoint", "checkpoints")
    load = import_packnet("packnet_sfm.utils.load", "checkpoints")
    return load.filter_args_create(checkpoint.ModelCheckpoint, config.checkpoint)


def trainer_class(kind: TrainerKind) -> Callable[..., Any]:
    """packnet-sfm's ``HorovodTrainer`` (its import fails without horovod), or
    `SingleProcessTrainer` with packnet-sfm's reduction made the one-process one."""
    if kind == "single":
        from studies.command.packnet.trainer import SingleProcessTrainer, one_process_reduce

        one_process_reduce()
        return SingleProcessTrainer
    trainers = import_packnet(
        "packnet_sfm.trainers.horovod_trainer", "HorovodTrainer; without horovod: --trainer single"
    )
    return trainers.HorovodTrainer


def make_trainer(kind: TrainerKind, config: Any, checkpoint: Any) -> Any:
    """``HorovodTrainer(**config.arch, checkpoint=checkpoint)``, or the single-process one."""
    return trainer_class(kind)(**config.arch, checkpoint=checkpoint)


def launch(
    config_file: Path,
    *,
    packnet_sfm: Path | None = None,
    trainer: TrainerKind = "horovod",
    objectives: Sequence[str] = (),
    dry_run: bool = False,
    out: Callable[[str], None] = print,
) -> None:
    """Train packnet-sfm on ``config_file`` with salsweep's loss, reporting to the sweep.

    Raises:
        UserError: `PacknetSetupError` / `PacknetConfigError` (packnet-sfm's own errors
            during training pass through).
    """
    # packnet-sfm compares strings with `is ''`: Python warns as it compiles each module.
    warnings.filterwarnings("ignore", message=r'"is( not)?" with a literal', category=SyntaxWarning)
    locate_packnet(packnet_sfm)
    horovod = import_packnet("packnet_sfm.utils.horovod", "horovod's set-up")
    horovod.hvd_init()
    config, checkpoint_state = parse_config(config_file)
    supervised_loss = import_packnet("packnet_sfm.losses.supervised_loss", "the loss")
    registration = prepare(config, supervised_loss)
    names = metric_names(config)
    for name in objectives:
        if name not in names:
            raise PacknetConfigError(_unknown_metric(name, names, config_file))
    if dry_run:
        out(f"loss: {registration.describe()}")
        out("metrics (each validation epoch):")
        for name in names:
            out(f"  {name}")
        return
    environment_aliases()  # before packnet-sfm's model and data modules are imported
    wrapper = import_packnet("packnet_sfm.models.model_wrapper", "ModelWrapper")
    sfm_model = import_packnet("packnet_sfm.models.SfmModel", "ModelWrapper")
    list_eval_inv_depths(sfm_model.SfmModel)
    make = trainer_class(trainer)  # a missing horovod fails here, before the data loads
    load = import_packnet("packnet_sfm.utils.load", "set_debug")
    load.set_debug(config.debug)
    logger = make_logger(config)
    checkpoint = make_checkpoint(config)
    model_wrapper = wrapper.ModelWrapper(config, resume=checkpoint_state, logger=logger)
    make(**config.arch, checkpoint=checkpoint).fit(model_wrapper)


def _unknown_metric(name: str, names: Sequence[str], config_file: Path) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    prefixes = sorted({n.rsplit("-", 1)[0] for n in names})
    return (
        f"--objective {name}: the validation data sets of {config_file} give no such "
        f"metric ({hint}names: <prefix>-<metric>, prefix {' or '.join(prefixes)}; "
        "--dry-run lists them)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m studies.command.packnet",
        description="Train packnet-sfm (its scripts/train.py) with salsweep's loss, "
        "reporting its validation metrics to the sweep ($SALSWEEP_METRICS_FILE).",
    )
    parser.add_argument("config", type=Path, help="the trial's packnet-sfm .yaml config")
    parser.add_argument(
        "--packnet-sfm",
        type=Path,
        default=None,
        help=f"packnet-sfm checkout (default: ${PACKNET_ENV}, else PYTHONPATH)",
    )
    parser.add_argument(
        "--trainer",
        choices=TRAINERS,
        default="horovod",
        help="horovod: packnet-sfm's HorovodTrainer, as scripts/train.py (default); "
        "single: one process on one device, without horovod",
    )
    parser.add_argument(
        "--objective",
        action="append",
        default=[],
        metavar="NAME",
        help="a metric the sweep needs (e.g. the spec's objective): checked before training",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="parse, check and register the loss; print it and the metric names; no training",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        launch(
            args.config,
            packnet_sfm=args.packnet_sfm,
            trainer=args.trainer,
            objectives=args.objective,
            dry_run=args.dry_run,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0
