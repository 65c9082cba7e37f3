"""`SingleProcessTrainer`: packnet-sfm's ``HorovodTrainer`` loop in one process, without
horovod, on one device (CUDA when there is one, else the CPU).

``scripts/train.py`` trains with ``HorovodTrainer``, which needs horovod (and CUDA) even
on one GPU, and packnet-sfm's metric reduction (``utils/reduce.py``) calls horovod's
``allreduce`` whenever it runs. This trainer repeats ``HorovodTrainer.fit``, ``train`` and
``validate`` step for step (same order of training, validation, checkpoint, epoch count
and scheduler step; the same ``ModelWrapper`` calls), with the optimizer itself in place
of horovod's ``DistributedOptimizer``; without horovod installed,
:func:`one_process_reduce` makes the reduction what ``allreduce`` is over one process:
the value itself (its mean over one rank). Validation runs under ``torch.no_grad()``
(``HorovodTrainer.validate`` builds graphs it never uses; the values are the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from studies.command.packnet.compat import Patch
from studies.command.packnet.imports import import_packnet

__all__ = ["SingleProcessTrainer", "one_process_reduce", "to_device"]


def _reduce_one_process(value: Any, average: bool, name: str) -> Any:
    """horovod's ``allreduce(value, average, name)`` over a single process."""
    del average, name
    return value


def one_process_reduce(patch: Patch = setattr) -> bool:
    """Without horovod, make packnet-sfm's ``utils.reduce.reduce_value`` the one-process
    reduction (else it fails on the missing ``hvd``); returns whether it patched."""
    horovod = import_packnet("packnet_sfm.utils.horovod", "the trainer")
    if horovod.HAS_HOROVOD:
        return False
    reduce = import_packnet("packnet_sfm.utils.reduce", "the metrics' reduction")
    patch(reduce, "reduce_value", _reduce_one_process)
    return True


def to_device(data: Any, device: torch.device) -> Any:
    """packnet-sfm's ``sample_to_cuda`` for any device: tensors in dicts and lists moved,
    strings kept."""
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        return {key: to_device(value, device) for key, value in data.items()}
    if isinstance(data, list):
        return [to_device(value, device) for value in data]
    return data.to(device) if isinstance(data, torch.Tensor) else data


class SingleProcessTrainer:
    """``HorovodTrainer(**config.arch, checkpoint=...)``'s interface and loop, one process."""

    def __init__(
        self,
        min_epochs: int = 0,
        max_epochs: int = 50,
        validate_first: bool = False,
        checkpoint: Any = None,
        device: str | torch.device | None = None,
        **kwargs: Any,  # the rest of config.arch (seed), as HorovodTrainer takes it
    ) -> None:
        del kwargs
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.validate_first = validate_first
        self.checkpoint = checkpoint
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as HorovodTrainer

    proc_rank = 0
    world_size = 1
    is_rank_0 = True

    def check_and_save(self, module: Any, output: Any) -> None:
        if self.checkpoint:
            self.checkpoint.check_and_save(module, output)

    def fit(self, module: Any) -> None:
        """Train ``module`` (a ``ModelWrapper``) for its remaining epochs."""
        config_utils = import_packnet("packnet_sfm.utils.config", "the trainer")
        logging = import_packnet("packnet_sfm.utils.logging", "the trainer")
        module.trainer = self
        config_utils.prep_logger_and_checkpoint(module)
        logging.print_config(module.config)
        module = module.to(self.device)
        module.configure_optimizers()
        optimizer, scheduler = module.optimizer, module.scheduler
        train_dataloader = module.train_dataloader()
        val_dataloaders = module.val_dataloader()
        if self.validate_first:
            self.check_and_save(module, self.validate(val_dataloaders, module))
        for _ in range(module.current_epoch, self.max_epochs):
            self.train(train_dataloader, module, optimizer)
            validation_output = self.validate(val_dataloaders, module)
            self.check_and_save(module, validation_output)
            module.current_epoch += 1
            scheduler.step()

    def train(self, dataloader: Iterable[Any], module: Any, optimizer: Any) -> Any:
        """One training epoch; returns ``module.training_epoch_end(outputs)``."""
        module.train()
        set_epoch = getattr(getattr(dataloader, "sampler", None), "set_epoch", None)
        if callable(set_epoch):  # a distributed sampler shuffles per epoch
            set_epoch(module.current_epoch)
        outputs = []
        for i, batch in enumerate(dataloader):
            optimizer.zero_grad()
            output = module.training_step(to_device(batch, self.device), i)
            output["loss"].backward()
            optimizer.step()
            output["loss"] = output["loss"].detach()
            outputs.append(output)
        if outputs:
            mean = float(torch.stack([o["loss"].sum() for o in outputs]).mean())
            print(f"Epoch {module.current_epoch} | Avg.Loss {mean:.4f}", flush=True)
        return module.training_epoch_end(outputs)

    @torch.no_grad()
    def validate(self, dataloaders: Iterable[Iterable[Any]], module: Any) -> Any:
        """Every validation data set; returns ``module.validation_epoch_end(outputs)``."""
        module.eval()
        all_outputs = []
        for n, dataloader in enumerate(dataloaders):
            outputs = [
                module.validation_step(to_device(batch, self.device), i, n)
                for i, batch in enumerate(dataloader)
            ]
            all_outputs.append(outputs)
        return module.validation_epoch_end(all_outputs)
