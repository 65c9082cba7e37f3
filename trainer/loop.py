"""One short, reproducible training run: `fit(config, on_epoch_end) -> RunResult`.

The loop knows nothing of Optuna or MLflow. After each epoch it calls
``on_epoch_end(epoch, metrics)``; that callback may raise any exception to stop the run
(a pruned trial does), and the exception reaches the caller unchanged.

``fit`` is set-up (:func:`_setup` -> :class:`_Run`), then per epoch
:func:`_train_epoch` and :func:`_evaluate` on the validation split, the epoch selection
(:class:`_Selected`), and optionally one :func:`_evaluate` of the selected weights on the
test split.
"""

from __future__ import annotations

import contextlib
import io
import math
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from loss import LossFunction, LossOutput, get_loss
from trainer.config import TrainConfig
from trainer.data import DataSplits, DepthDataset, Sample, build_datasets
from trainer.errors import UserError
from trainer.io import make_output_dir, write_output
from trainer.metrics import Alignment, DepthMetricAccumulator, alignment_of
from trainer.model import DepthNet
from trainer.previews import save_preview
from trainer.selection import DEFAULT_SELECTION, EpochSelection

__all__ = [
    "EpochCallback",
    "NonFiniteLoss",
    "RunResult",
    "StepCallback",
    "batch_loss",
    "fit",
    "resolve_device",
]

EpochCallback = Callable[[int, dict[str, float]], None]
StepCallback = Callable[[int, int], None]

StateDict = dict[str, torch.Tensor]


class NonFiniteLoss(UserError, RuntimeError):
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
    """What one run produced. ``history[i]`` holds the metrics of epoch ``i + 1``.

    ``best_epoch`` is the epoch ``selection`` picked; ``checkpoint`` (``best.pt``) holds its
    weights. ``test`` holds ``test/<metric>`` of those weights on the test split, or is
    empty when the run was not asked to evaluate it.
    """

    config: TrainConfig
    device: str
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    checkpoint: Path | None = None
    previews: list[Path] = field(default_factory=list)
    selection: EpochSelection = DEFAULT_SELECTION
    test: dict[str, float] = field(default_factory=dict)

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


def batch_loss(loss_fn: LossFunction, pred_inv: torch.Tensor, depth: torch.Tensor) -> LossOutput:
    """The trainer's loss call: ``loss_fn(pred_inv, gt_inv, mask = depth > 0)``.

    pred_inv: [B,1,H,W] inverse depth (1/m) as the network predicts it; depth: [B,1,H,W]
    ground truth in metres, 0 = missing. Plain units: the loss's own depth range
    (``LossConfig.min_depth`` / ``max_depth``) makes its absolute term unit-free. The mask
    is every pixel with ground truth, so the absolute term is on for the dense method too
    (the table in ``loss.scale_adaptive``); packnet-sfm's adapter (``loss.packnet``)
    makes the same call.
    """
    return loss_fn(pred_inv, _inverse(depth), depth > 0)


@dataclass
class _Run:
    """Everything one run holds, built once by :func:`_setup`."""

    config: TrainConfig
    device: torch.device
    splits: DataSplits
    model: DepthNet
    loss_fn: LossFunction
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    train_loader: DataLoader[Sample]
    val_loader: DataLoader[Sample]

    def loss(self, pred_inv: torch.Tensor, depth: torch.Tensor) -> LossOutput:
        """Loss of pred_inv [B,1,H,W] (1/m) against depth [B,1,H,W] metres (0 = missing):
        :func:`batch_loss`."""
        return batch_loss(self.loss_fn, pred_inv, depth)


def _setup(config: TrainConfig) -> _Run:
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    splits = build_datasets(config.data)
    data_cfg = config.data

    model = DepthNet(config.model, data_cfg.min_depth, data_cfg.max_depth).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    order = torch.Generator().manual_seed(config.seed)
    sampler = RandomSampler(
        splits.train,
        replacement=False,
        num_samples=config.steps_per_epoch * config.batch_size,
        generator=order,
    )
    train_loader: DataLoader[Sample] = DataLoader(
        splits.train,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=config.num_workers,
    )
    return _Run(
        config=config,
        device=device,
        splits=splits,
        model=model,
        loss_fn=get_loss(config.loss.method, **config.loss.loss_params()),
        optimizer=optimizer,
        scheduler=_scheduler(config, optimizer),
        train_loader=train_loader,
        val_loader=_eval_loader(splits.val, config),
    )


@dataclass
class _Selected:
    """The epoch chosen so far by an :class:`EpochSelection`, with an in-memory copy of its
    weights (and ``best.pt`` in ``out_dir`` when there is one)."""

    selection: EpochSelection
    out_dir: Path | None
    epoch: int = 0
    value: float | None = None  # None: no epoch with a finite value yet
    state: StateDict = field(default_factory=dict)
    checkpoint: Path | None = None

    def offer(self, epoch: int, metrics: dict[str, float], model: torch.nn.Module) -> None:
        """Consider the epoch just validated; keep its weights when it is selected."""
        metric = self.selection.metric
        if metric not in metrics:
            raise ValueError(
                f"the epoch selection metric {metric!r} is not among the epoch's metrics: "
                f"{', '.join(sorted(metrics))}"
            )
        value = metrics[metric]
        if not self.selection.prefers(value, self.value):
            return
        self.epoch = epoch
        self.value = value if math.isfinite(value) else None
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if self.out_dir is not None:
            # Serialised in memory, then written whole: a full disk is an OutputSpaceError
            # naming the folder (torch.save to a file fails with a bare RuntimeError) and
            # leaves the previous epoch's best.pt intact.
            buffer = io.BytesIO()
            torch.save(self.state, buffer)
            self.checkpoint = write_output(self.out_dir / "best.pt", buffer.getvalue())


def fit(
    config: TrainConfig,
    on_epoch_end: EpochCallback | None = None,
    *,
    on_step: StepCallback | None = None,
    select: EpochSelection = DEFAULT_SELECTION,
    evaluate_test: bool = False,
) -> RunResult:
    """Train ``config.epochs`` x ``config.steps_per_epoch`` steps, validating every epoch.

    Per epoch the metrics hold

    - ``train/<loss component>`` averaged over the epoch's steps (the loss's own names:
      ``train/total_loss``, ``train/loss_sa``, ``train/loss_sg``, ``train/gradient/scale_k``
      ...), of :func:`batch_loss` (the loss's depth range makes them unit-free);
    - ``val/<depth metric>`` for ``abs_rel, sq_rel, rmse, rmse_log, a1, a2, a3``: raw
      (``val/abs_rel``), median-scaled (``val/abs_rel_med``), least-squares scale and
      shift aligned in inverse depth (``val/abs_rel_align``) and in depth
      (``val/abs_rel_align_depth``), see :mod:`trainer.metrics`; ``val/num_images`` and
      ``val/total_loss``;
    - ``lr``, ``epoch_time_s``, ``samples_per_s``, ``peak_memory_mb``.

    ``select`` picks the epoch whose weights are kept (``best.pt`` under
    ``config.output_dir``, ``RunResult.best_epoch``); its metric must be one of the above.
    With ``evaluate_test``, those weights are evaluated once on the whole test split after
    the last epoch: ``RunResult.test`` holds ``test/<depth metric>`` (the same names as
    ``val/``) and ``test/total_loss``. Selection never sees the test split.

    ``on_step(step, steps_per_epoch)`` is called after every optimiser step (progress).
    """
    run = _setup(config)
    out_dir = config.output_dir
    if out_dir is not None:
        make_output_dir(out_dir)
    history: list[dict[str, float]] = []
    previews: list[Path] = []
    selected = _Selected(select, out_dir)
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)

    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        metrics = _train_epoch(run, epoch, on_step)
        val = _evaluate(run, run.val_loader, config.val_batches)
        metrics.update({f"val/{k}": v for k, v in val.items()})
        metrics["lr"] = run.optimizer.param_groups[0]["lr"]
        metrics["epoch_time_s"] = time.perf_counter() - start
        metrics["peak_memory_mb"] = _peak_memory_mb(run.device)
        history.append(metrics)
        selected.offer(epoch, metrics, run.model)
        if out_dir is not None and config.previews:
            previews.append(_preview(run, out_dir, epoch, alignment_of(select.metric)))
        if on_epoch_end is not None:
            on_epoch_end(epoch, dict(metrics))

    test: dict[str, float] = {}
    if evaluate_test:
        run.model.load_state_dict(selected.state)
        test_loader = _eval_loader(run.splits.test, config)
        test = {f"test/{k}": v for k, v in _evaluate(run, test_loader, 0).items()}
    return RunResult(
        config=config,
        device=str(run.device),
        history=history,
        best_epoch=selected.epoch,
        checkpoint=selected.checkpoint,
        previews=previews,
        selection=select,
        test=test,
    )


def _train_epoch(run: _Run, epoch: int, on_step: StepCallback | None) -> dict[str, float]:
    """``config.steps_per_epoch`` optimiser steps: ``train/<loss metric>`` epoch means and
    ``samples_per_s``. Raises :class:`NonFiniteLoss` when the run diverges."""
    config = run.config
    start = time.perf_counter()
    run.model.train()
    sums: dict[str, float] = {}
    steps = 0
    for step, (rgb, depth) in enumerate(_batches(run.train_loader, run.device), start=1):
        with _autocast(run.device):
            pred_inv = run.model(rgb)
        pred_inv = pred_inv.float()
        # A diverged network gives NaN predictions, which the loss refuses as bad input:
        # report it as what it is, a run that stopped being finite at this step.
        if not bool(torch.isfinite(pred_inv).all()):
            raise NonFiniteLoss(epoch, step, math.nan)
        out = run.loss(pred_inv, depth)
        value = float(out.total.detach())
        if not math.isfinite(value):
            raise NonFiniteLoss(epoch, step, value)
        run.optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        run.optimizer.step()
        if run.scheduler is not None:
            run.scheduler.step()
        for name, metric in out.metrics.items():
            sums[name] = sums.get(name, 0.0) + float(metric)
        steps += 1
        if on_step is not None:
            on_step(step, config.steps_per_epoch)
    train_time = time.perf_counter() - start
    metrics = {f"train/{k}": v / max(steps, 1) for k, v in sums.items()}
    metrics["samples_per_s"] = steps * config.batch_size / max(train_time, 1e-9)
    return metrics


@torch.no_grad()
def _evaluate(run: _Run, loader: DataLoader[Sample], max_batches: int) -> dict[str, float]:
    """Depth metrics (``trainer.metrics.metric_keys()``) and ``total_loss`` (mean over
    batches) of the current weights on ``loader``; ``max_batches`` 0 = all of it."""
    run.model.eval()
    data_cfg = run.config.data
    acc = DepthMetricAccumulator(
        data_cfg.min_depth, data_cfg.max_depth, garg_crop=data_cfg.garg_crop
    )
    loss_sum, batches = 0.0, 0
    for i, (rgb, depth) in enumerate(_batches(loader, run.device)):
        if max_batches and i >= max_batches:
            break
        with _autocast(run.device):
            pred_inv = run.model(rgb).float()
        loss_sum += float(run.loss(pred_inv, depth).total)
        batches += 1
        acc.update(1.0 / pred_inv, depth)
    metrics = acc.compute()
    metrics["total_loss"] = loss_sum / max(batches, 1)
    return metrics


def _eval_loader(dataset: DepthDataset, config: TrainConfig) -> DataLoader[Sample]:
    return DataLoader(
        dataset, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers
    )


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


@torch.no_grad()
def _preview(run: _Run, out_dir: Path, epoch: int, alignment: Alignment) -> Path:
    """The epoch's preview of the first validation image; the prediction aligned as the
    objective's metric aligns it (``alignment``)."""
    run.model.eval()
    rgb, depth = run.splits.val[0]
    with _autocast(run.device):
        pred_inv = run.model(rgb.unsqueeze(0).to(run.device)).float()
    return save_preview(
        out_dir / "previews" / f"epoch_{epoch:03d}.png",
        rgb,
        depth,
        (1.0 / pred_inv[0]).cpu(),
        min_depth=run.config.data.min_depth,
        max_depth=run.config.data.max_depth,
        title=f"epoch {epoch}",
        alignment=alignment,
        garg_crop=run.config.data.garg_crop,
    )
