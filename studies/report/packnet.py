"""The packnet-sfm layout of an exported configuration, and the keys the fork declares.

packnet-sfm reads a run's YAML with yacs (``scripts/train.py``: ``merge_from_file`` over
``configs/default_config.py``), which refuses any key that ``default_config.py`` does not
declare. The export is a file to merge into the user's own packnet-sfm run config: it holds
what transfers from the proxy sweep to packnet-sfm, the loss and its parameters, and by
default nothing else. Where each setting goes (upstream TRI-ML/packnet-sfm,
``configs/default_config.py``):

- ``model.loss.supervised_method``, ``supervised_num_scales``, ``supervised_loss_weight``:
  the supervised loss. ``SemiSupModel`` hands every ``model.loss`` key to
  ``SupervisedLoss(**kwargs)``, so the scale-adaptive loss's own parameters belong there
  too, its depth range (``min_depth``, ``max_depth``) included. The sweep trains with
  ground truth only (weight 1.0: ``SemiSupModel`` then skips the photometric loss and the
  pose network) and supervises the single full-resolution output
  (``supervised_num_scales: 1``); the loss's ``num_scales`` is the gradient term's scales
  within that one output (the file says so beside both keys).
- ``model.name: SemiSupModel``: the model that builds a supervised loss and, at weight
  1.0, trains with ground truth only, as the sweep did (a self-supervised config merged
  with the export fails loudly for want of ground truth instead of never calling the loss).
- Not the run's ``name``: it names the user's checkpoint folder and wandb run, not the loss.
- With ``with_training`` only: the proxy run's optimiser (``model.optimizer.depth.lr`` /
  ``weight_decay``), ``arch.max_epochs`` and ``datasets.train.batch_size``. They were
  tuned for salsweep's small proxy network and short schedule, not for the user's network:
  left out by default, a merge keeps the user's own.
- The loss's parameters (``lambda_sg``, ``epsilon``, ``use_absolute``, ``use_inv_depth``,
  ...) are new keys: the fork declares them in ``default_config.py``
  (:data:`PACKNET_FORK_DECLARATIONS`). ``num_scales`` is already an upstream key (the
  photometric loss's scales, default 4): it needs no declaration, and the fork's loss
  reads it as its gradient term's K.

(The seed's YAML put the loss under ``model.params``, which upstream reserves for
evaluation settings: yacs rejects ``model.params.supervised_method``.)
"""

from __future__ import annotations

from typing import Any, get_args

from loss.names import packnet_name
from trainer.config import LossConfig, TrainConfig

__all__ = [
    "PACKNET_FORK_DECLARATIONS",
    "UPSTREAM_LOSS_KEYS",
    "annotate_packnet_yaml",
    "fork_loss_defaults",
    "packnet_config",
    "packnet_header_lines",
]

# Every key of cfg.model.loss in upstream's configs/default_config.py (commit 09ee0dc).
UPSTREAM_LOSS_KEYS = frozenset(
    {
        "num_scales",
        "progressive_scaling",
        "flip_lr_prob",
        "rotation_mode",
        "upsample_depth_maps",
        "ssim_loss_weight",
        "occ_reg_weight",
        "smooth_loss_weight",
        "C1",
        "C2",
        "photometric_reduce_op",
        "disp_norm",
        "clip_loss",
        "padding_mode",
        "automask_loss",
        "velocity_loss_weight",
        "supervised_method",
        "supervised_num_scales",
        "supervised_loss_weight",
    }
)
MODEL_NAME = "SemiSupModel"
OPTIMIZER_NAME = "AdamW"  # the trainer's optimiser; packnet-sfm takes any torch.optim name
# The sweep supervises with ground truth only, on the network's one full-resolution output.
SUPERVISED_LOSS_WEIGHT = 1.0
SUPERVISED_NUM_SCALES = 1


def _methods() -> tuple[str, ...]:
    """The loss methods LossConfig accepts (its ``method`` field's Literal)."""
    return tuple(str(m) for m in get_args(LossConfig.model_fields["method"].annotation))


def fork_loss_defaults() -> dict[str, Any]:
    """The keys the fork adds under ``model.loss``, with LossConfig's defaults: every
    loss parameter of any method that upstream's ``model.loss`` does not already have."""
    defaults: dict[str, Any] = {}
    for method in _methods():
        for key, value in LossConfig.model_validate({"method": method}).loss_params().items():
            if key not in UPSTREAM_LOSS_KEYS:
                defaults.setdefault(key, value)
    return defaults


def _declarations() -> str:
    assignments = {
        key: f"cfg.model.loss.{key} = {value!r}" for key, value in fork_loss_defaults().items()
    }
    width = max((len(a) for a in assignments.values()), default=0) + 2
    lines = ["# salsweep: the scale-adaptive loss's keys (model.loss.num_scales is upstream's)"]
    for key, assignment in assignments.items():
        field = LossConfig.model_fields.get(key)
        note = field.description if field is not None else None
        lines.append(f"{assignment:<{width}}# {note}" if note else assignment)
    return "\n".join(lines) + "\n"


PACKNET_FORK_DECLARATIONS: str = _declarations()
"""Python lines to paste into packnet-sfm's ``configs/default_config.py`` (after
``cfg.model.loss = CN()``) so that yacs accepts the exported loss parameters."""


def packnet_config(
    config: TrainConfig, name: str | None = None, *, with_training: bool = False
) -> dict[str, Any]:
    """``config`` as a packnet-sfm run configuration (a nested dict for ``yaml.safe_dump``)
    that yacs merges into upstream's defaults plus :data:`PACKNET_FORK_DECLARATIONS`: the
    loss; with ``with_training``, also the proxy run's optimiser, epochs and batch size.

    ``name``: the run's name (packnet-sfm's top-level ``name``, which names its checkpoint
    folder and its wandb run), written only when given: the export gives none, so that a
    merge keeps the user's run name (the header names the study and trial)."""
    loss = config.loss
    model: dict[str, Any] = {"name": MODEL_NAME}
    if with_training:
        model["optimizer"] = {
            "name": OPTIMIZER_NAME,
            "depth": {"lr": config.lr, "weight_decay": config.weight_decay},
        }
    model["loss"] = {
        # Registered under a name of its own (loss.packnet): a name that starts with
        # "sparse" would be flattened to 1-D by packnet-sfm's SupervisedLoss.
        "supervised_method": packnet_name(loss.method),
        "supervised_num_scales": SUPERVISED_NUM_SCALES,
        "supervised_loss_weight": SUPERVISED_LOSS_WEIGHT,
        **loss.loss_params(),
    }
    doc: dict[str, Any] = {} if name is None else {"name": name}
    doc["model"] = model
    if with_training:
        doc["datasets"] = {"train": {"batch_size": config.batch_size}}
        doc["arch"] = {"max_epochs": config.epochs}
    return doc


# Said beside the keys of model.loss that read alike or depend on the user's data.
_KEY_NOTES = {
    "supervised_num_scales": "packnet-sfm's outputs supervised: the full-resolution one only",
    "num_scales": "the loss's gradient scales within that one output (not outputs)",
    "min_depth": "the loss's depth range (m), the sweep data's: set your data's",
    "max_depth": "the loss's depth range (m), the sweep data's: set your data's",
}


def annotate_packnet_yaml(text: str) -> str:
    """``yaml.safe_dump`` text of :func:`packnet_config` with a comment beside the keys of
    ``model.loss`` that need one (:data:`_KEY_NOTES`); yacs reads it the same."""
    lines = []
    path: list[str] = []  # the keys leading to the line's key, by indent (2 spaces a level)
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        key = line.strip().split(":", 1)[0]
        path = [*path[: indent // 2], key]
        note = _KEY_NOTES.get(key)
        if note and path == ["model", "loss", key]:
            line = f"{line}  # {note}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def packnet_header_lines(study_name: str, *, with_training: bool = False) -> list[str]:
    """Comment lines of a packnet export's header: what the file holds, the one thing to do
    with it, and what packnet-sfm needs once for it."""
    if with_training:
        holds = (
            "# holds: the loss and its parameters (model.loss), and the proxy run's optimiser, "
            "epochs and batch size (--with-training: tuned for salsweep's small proxy network, "
            "not for yours)"
        )
    else:
        holds = (
            "# holds: the loss and its parameters (model.loss), what transfers from the sweep; "
            "not the proxy run's optimiser, epochs or batch size (tuned for salsweep's small "
            "proxy network; --with-training adds them)"
        )
    return [
        holds,
        "# to use: merge it into your packnet-sfm run config (the YAML you pass to "
        "scripts/train.py); your run name, depth_net, data sets and schedule stay yours",
        "# needs, once in your packnet-sfm copy: the loss registered at start-up, before the "
        'model is built (loss.packnet.register_packnet_loss; README, "Use the loss in your '
        'own trainer / in packnet-sfm"), and its keys declared in configs/default_config.py '
        f"(salsweep studies export {study_name} --format packnet --print-defaults)",
    ]
