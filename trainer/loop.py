"""One short, reproducible training run: `fit(config, on_epoch_end) -> RunResult`.

The loop knows nothing of Optuna or MLflow. After each epoch it calls
``on_epoch_end(epoch, metrics)``; that callback may raise any exception to stop the run
(a pruned trial does), and the exception reaches the caller unchanged.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from loss import LossFunction, get_loss
from trainer.config import TrainConfig
from trainer.data import DepthDataset, Sample, build_datasets
from trainer.metrics import DepthMetricAccumulator
from trainer.model import DepthNet
from trainer.previews import save_preview

__all__ = [
    "BEST_METRIC",
    "EpochCallback",
    "NonFiniteLoss",
    "RunResult",
    "StepCallback",
    "fit",
    "resolve_device",
]

EpochCallback = Callable[[int, dict[str, float]], None]
StepCallback = Callable[[int, int], None]

# The checkpoint kept is the epoch with the lowest validation abs_rel.
BEST_METRIC = "val/abs_rel"


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, value: float) -> None:
        self.epoch = epoch
        self.step = step
        self.value = value
        super().__init__(
            f"non-finite training loss ({value}) at epoch {epoch}, step {step}: "
            "lower the learning rate or check the ground truth"
        )


@dataclass(frozen=True)
class RunResult:
    """What one run produced. ``history[i]`` holds the metrics of epoch ``i + 1``."""

    config: TrainConfig
    device: str
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    checkpoint: Path | None = None
    previews: list[Path] = field(default_factory=list)

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}

    @property
    def best(self) -> dict[str, float]:
        return self.history[self.best_epoch - 1] if self.history else {}


def resolve_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is an error."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available here")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def _inverse(depth: torch.Tensor) -> torch.Tensor:
    """depth [B,1,H,W] metres (0 = missing) -> inverse depth, 0 where missing."""
    valid = depth > 0
    return torch.where(valid, 1.0 / torch.where(valid, depth, 1.0), 0.0)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is in KiB on Linux: the process's peak resident memory so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batches(loader: DataLoader[Sample], device: torch.device) -> Iterator[Sample]:
    for rgb, depth in loader:
        yield rgb.to(device, non_blocking=True), depth.to(device, non_blocking=True)


def _scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    total = config.epochs * config.steps_per_epoch
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.lr_schedule == "step":
        # Divide the rate by 10 at two thirds of the run.
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, 2 * total // 3))
    return None


def fit(
    config: TrainConfig,
    on_epoch_end: EpochCallback | None = None,
    *,
    on_step: StepCallback | None = None,
) -> RunResult:
    """Train ``config.epochs`` x ``config.steps_per_epoch`` steps, validating every epoch.

    Per epoch the metrics hold ``train/<loss component>`` (averaged over the epoch),
    ``val/<depth metric>`` (raw and ``_med``), ``val/total_loss``, ``lr``,
    ``epoch_time_s``, ``samples_per_s`` and ``peak_memory_mb``.
    ``on_step(step, steps_per_epoch)`` is called after every optimiser step (progress).
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    train_set, val_set = build_datasets(config.data, config.seed)
    data_cfg = config.data

    model = DepthNet(config.model, data_cfg.min_depth, data_cfg.max_depth).to(device)
    loss_fn = get_loss(config.loss.method, **config.loss.loss_params())
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = _scheduler(config, optimizer)

    order = torch.Generator().manual_seed(config.seed)
    sampler = RandomSampler(
        train_set,
        replacement=False,
        num_samples=config.steps_per_epoch * config.batch_size,
        generator=order,
    )
    train_loader: DataLoader[Sample] = DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=config.num_workers,
    )
    val_loader: DataLoader[Sample] = DataLoader(
        val_set, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers
    )

    out_dir = config.output_dir
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    previews: list[Path] = []
    best_epoch, best_value = 0, math.inf
    checkpoint: Path | None = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        steps = 0
        for step, (rgb, depth) in enumerate(_batches(train_loader, device), start=1):
            with _autocast(device):
                pred_inv = model(rgb)
            pred_inv = pred_inv.float()
            # A diverged network gives NaN predictions, which the loss refuses as bad input:
            # report it as what it is, a run that stopped being finite at this step.
            if not bool(torch.isfinite(pred_inv).all()):
                raise NonFiniteLoss(epoch, step, math.nan)
            out = loss_fn(pred_inv, _inverse(depth), depth > 0)
            value = float(out.total.detach())
            if not math.isfinite(value):
                raise NonFiniteLoss(epoch, step, value)
            optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            for name, metric in out.metrics.items():
                sums[name] = sums.get(name, 0.0) + float(metric)
            steps += 1
            if on_step is not None:
                on_step(step, config.steps_per_epoch)
        train_time = time.perf_counter() - start

        metrics = {f"train/{k}": v / max(steps, 1) for k, v in sums.items()}
        metrics.update(_validate(model, loss_fn, val_loader, config, device))
        metrics["lr"] = optimizer.param_groups[0]["lr"]
        metrics["epoch_time_s"] = time.perf_counter() - start
        metrics["samples_per_s"] = steps * config.batch_size / max(train_time, 1e-9)
        metrics["peak_memory_mb"] = _peak_memory_mb(device)
        history.append(metrics)

        current = metrics.get(BEST_METRIC, math.nan)
        improved = math.isfinite(current) and current < best_value
        if improved or best_epoch == 0:
            best_epoch = epoch
            best_value = current if improved else best_value
        if out_dir is not None:
            if config.previews:
                previews.append(_preview(model, val_set, config, device, out_dir, epoch))
            if improved:
                checkpoint = out_dir / "best.pt"
                torch.save(model.state_dict(), checkpoint)

        if on_epoch_end is not None:
            on_epoch_end(epoch, dict(metrics))

    return RunResult(
        config=config,
        device=str(device),
        history=history,
        best_epoch=best_epoch,
        checkpoint=checkpoint,
        previews=previews,
    )


@torch.no_grad()
def _validate(
    model: DepthNet,
    loss_fn: LossFunction,
    loader: DataLoader[Sample],
    config: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    model.eval()
    data_cfg = config.data
    acc = DepthMetricAccumulator(
        data_cfg.min_depth, data_cfg.max_depth, garg_crop=data_cfg.garg_crop
    )
    loss_sum, batches = 0.0, 0
    for i, (rgb, depth) in enumerate(_batches(loader, device)):
        if config.val_batches and i >= config.val_batches:
            break
        with _autocast(device):
            pred_inv = model(rgb).float()
        out = loss_fn(pred_inv, _inverse(depth), depth > 0)
        loss_sum += float(out.total)
        batches += 1
        acc.update(1.0 / pred_inv, depth)
    metrics = {f"val/{k}": v for k, v in acc.compute().items()}
    metrics["val/total_loss"] = loss_sum / max(batches, 1)
    return metrics


@torch.no_grad()
def _preview(
    model: DepthNet,
    val_set: DepthDataset,
    config: TrainConfig,
    device: torch.device,
    out_dir: Path,
    epoch: int,
) -> Path:
    model.eval()
    rgb, depth = val_set[0]
    with _autocast(device):
        pred_inv = model(rgb.unsqueeze(0).to(device)).float()
    return save_preview(
        out_dir / "previews" / f"epoch_{epoch:03d}.png",
        rgb,
        depth,
        (1.0 / pred_inv[0]).cpu(),
        min_depth=config.data.min_depth,
        max_depth=config.data.max_depth,
        title=f"epoch {epoch}",
    )
