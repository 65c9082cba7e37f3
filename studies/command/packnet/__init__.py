"""The packnet-sfm launcher: packnet-sfm's training as a command trial.

    python -m studies.command.packnet CONFIG.yaml [--trainer horovod|single]
        [--objective NAME] [--packnet-sfm DIR] [--dry-run]

runs what packnet-sfm's ``scripts/train.py`` runs on the trial's config, with salsweep's
loss registered in packnet-sfm's ``get_loss_func`` and every validation metric reported
to the sweep under packnet-sfm's own name (``<prefix>-abs_rel_pp_gt`` ...). The parts:

- `studies.command.packnet.imports`: finding the checkout; imports that name what is missing.
- `studies.command.packnet.config`: ``parse_train_file`` with the loss's keys declared,
  the checks, the loss's registration (`prepare`), the metric names.
- `studies.command.packnet.logger`: `ReporterLogger`, the logger ``ModelWrapper`` takes.
- `studies.command.packnet.compat`: fixes for today's Pillow and matplotlib, and for
  packnet-sfm's validation with PackNet depth networks.
- `studies.command.packnet.trainer`: `SingleProcessTrainer` (no horovod).
- `studies.command.packnet.launch`: `launch` and the command line.

Why here: the launcher is a user program's side of a command trial, like
studies.command.reporter, and needs salsweep's loss (loss/) and the reporter, which only
studies/ may both import. It imports neither Optuna, MLflow nor pydantic: it runs in
packnet-sfm's environment with salsweep's sources on ``PYTHONPATH``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.command.packnet.compat import (
        environment_aliases,
        list_eval_inv_depths,
    )
    from studies.command.packnet.config import (
        LossRegistration,
        check_config,
        declare_loss_keys,
        metric_names,
        parse_config,
        prepare,
    )
    from studies.command.packnet.errors import (
        PacknetConfigError,
        PacknetSetupError,
    )
    from studies.command.packnet.imports import (
        PACKNET_ENV,
        import_packnet,
        locate_packnet,
    )
    from studies.command.packnet.launch import (
        launch,
        main,
        make_logger,
        make_trainer,
    )
    from studies.command.packnet.logger import (
        ReporterLogger,
    )
    from studies.command.packnet.trainer import (
        SingleProcessTrainer,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.command.packnet.compat": ("environment_aliases", "list_eval_inv_depths"),
        "studies.command.packnet.config": (
            "LossRegistration",
            "check_config",
            "declare_loss_keys",
            "metric_names",
            "parse_config",
            "prepare",
        ),
        "studies.command.packnet.errors": ("PacknetConfigError", "PacknetSetupError"),
        "studies.command.packnet.imports": ("PACKNET_ENV", "import_packnet", "locate_packnet"),
        "studies.command.packnet.launch": ("launch", "main", "make_logger", "make_trainer"),
        "studies.command.packnet.logger": ("ReporterLogger",),
        "studies.command.packnet.trainer": ("SingleProcessTrainer",),
    },
)
