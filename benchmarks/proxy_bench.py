"""Does a trial's number mean something? Learning curves, training noise, validation noise.

Three measurements of the proxy task that every trial of a sweep trains (CPU, synthetic
scenes), each printed as a Markdown table for docs/BENCHMARKS.md:

- ``curve``: the objective (``val/abs_rel_align`` by default) against training seconds for
  the base config of a spec and for the round-1 defaults, validated 8 times along the
  same step budget (the cosine schedule runs per step, so the budget and schedule are the
  trial's own), next to the untrained network's value.
- ``noise``: training noise = the sd of the final objective over training seeds, the
  validation scenes fixed; validation noise = the sd of one trained network's score over
  disjoint validation sets of the spec's size (other data seeds), and the standard error
  of the mean over the spec's own validation scenes.
- ``configs``: per loss configuration (the SSI baseline and a few scale-adaptive settings)
  mean, sd over training seeds and 95% interval of the test objective, and the spread
  between the configurations' means: is one configuration's lead larger than seed noise?

    .venv/bin/python benchmarks/proxy_bench.py curve [--spec sweeps/default.yaml]
    .venv/bin/python benchmarks/proxy_bench.py noise --seeds 5 --val-sets 5
    .venv/bin/python benchmarks/proxy_bench.py configs --seeds 5
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from studies.confirmation.stats import estimate
from sweeps import load_spec
from trainer import DataConfig, EpochSelection, RunResult, TrainConfig, fit
from trainer.data import DepthDataset, build_datasets
from trainer.metrics import DepthMetricAccumulator
from trainer.model import DepthNet

# The round-1 defaults of sweeps/default.yaml's base (64x192, 3 x 25 steps of batch 4,
# lr 1e-3, 16 base channels): the "old" curve.
OLD_BASE: dict[str, Any] = {
    "loss": {"method": "scale-adaptive", "num_scales": 4},
    "data": {"kind": "synthetic", "height": 64, "width": 192, "num_val": 16},
    "model": {"base_channels": 16},
    "epochs": 3,
    "steps_per_epoch": 25,
    "batch_size": 4,
    "lr": 1e-3,
    "previews": False,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "ssi (baseline)": {"method": "ssi"},
    "sa lambda 0.5, K 4, depth": {"lambda_sg": 0.5, "num_scales": 4, "use_inv_depth": False},
    "sa lambda 0.1, K 1, inverse": {"lambda_sg": 0.1, "num_scales": 1, "use_inv_depth": True},
    "sa lambda 2.0, K 4, inverse": {"lambda_sg": 2.0, "num_scales": 4, "use_inv_depth": True},
    "sa lambda 0.5, K 2, inverse": {"lambda_sg": 0.5, "num_scales": 2, "use_inv_depth": True},
}


def _metric_of(accumulated: dict[str, float], metric: str) -> float:
    return accumulated[metric.split("/", 1)[1]]


@torch.no_grad()
def score(model: torch.nn.Module, data: DepthDataset, cfg: DataConfig) -> dict[str, float]:
    """Depth metrics of ``model`` over ``data`` (CPU, batches of 8)."""
    model.eval()
    acc = DepthMetricAccumulator(cfg.min_depth, cfg.max_depth, garg_crop=cfg.garg_crop)
    for rgb, depth in DataLoader(data, batch_size=8):
        acc.update(1.0 / model(rgb), depth)
    return acc.compute()


def untrained(config: TrainConfig, metric: str) -> float:
    """The objective of the network as initialised by ``fit`` (same seed), before training."""
    torch.manual_seed(config.seed)
    model = DepthNet(config.model, config.data.min_depth, config.data.max_depth)
    return _metric_of(score(model, build_datasets(config.data).val, config.data), metric)


def curve(config: TrainConfig, metric: str, points: int = 8) -> list[tuple[float, float]]:
    """(training seconds, objective) at ``points`` validations along the run's budget."""
    total = config.epochs * config.steps_per_epoch
    per = max(1, total // points)
    timed = config.model_copy(update={"epochs": total // per, "steps_per_epoch": per})
    out: list[tuple[float, float]] = []
    clock = {"train": 0.0}

    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        # epoch_time_s includes the validation: count only the training part.
        clock["train"] += per * timed.batch_size / metrics["samples_per_s"]
        out.append((clock["train"], metrics[metric]))

    fit(timed, on_epoch_end)
    return out


def cmd_curve(args: argparse.Namespace) -> None:
    spec = load_spec(args.spec)
    metric = spec.objective.metric
    runs = {"round 1 defaults": TrainConfig.model_validate(OLD_BASE), "new base": spec.base}
    print(f"| config | seed | untrained | {metric} at training seconds ... |")
    print("|---|---|---|---|")
    for name, base in runs.items():
        for seed in range(args.seeds):
            config = base.model_copy(update={"seed": seed, "previews": False})
            start = untrained(config, metric)
            points = curve(config, metric)
            shown = ", ".join(f"{v:.3f} @ {t:.1f}s" for t, v in points)
            print(f"| {name} | {seed} | {start:.3f} | {shown} |", flush=True)


def _selection(spec_metric: str, direction: str, reduce: str) -> EpochSelection:
    return EpochSelection(metric=spec_metric, direction=direction, reduce=reduce)  # type: ignore[arg-type]


def cmd_noise(args: argparse.Namespace) -> None:
    spec = load_spec(args.spec)
    obj = spec.objective
    select = _selection(obj.metric, obj.direction, obj.reduce)
    base = spec.base.model_copy(update={"previews": False})
    finals, untrained_values = [], []
    val_set_sd, sems, paired_sd = [], [], []
    best_is_last = []  # per run: did the best epoch (reduce best) fall on the last one?
    other_loss = CONFIGS[args.other]
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        config = base.model_copy(update={"seed": seed})
        untrained_values.append(untrained(config, obj.metric))
        result, model = _train(config, select)
        finals.append(result.best[obj.metric])
        # A second configuration, same seed: what a sweep compares.
        other_cfg = config.model_copy(update={"loss": config.loss.model_copy(update=other_loss)})
        other_result, other = _train(other_cfg, select)
        for run in (result, other_result):
            best_is_last.append(run.best_epoch == len(run.history))
        # Validation noise: the same trained networks on disjoint validation sets of the
        # spec's size (the val splits of other data seeds); for a comparison, what moves is
        # the difference between the two networks' scores on the same scenes.
        values, diffs = [], []
        for data_seed in range(1, args.val_sets + 1):
            data = config.data.model_copy(update={"seed": base.data.seed + 1000 + data_seed})
            val = build_datasets(data).val
            mine = _metric_of(score(model, val, data), obj.metric)
            values.append(mine)
            diffs.append(mine - _metric_of(score(other, val, data), obj.metric))
        val_set_sd.append(statistics.stdev(values))
        paired_sd.append(statistics.stdev(diffs))
        sems.append(_per_scene_sem(model, config, obj.metric))
        print(
            f"seed {seed}: untrained {untrained_values[-1]:.4f} final {finals[-1]:.4f} "
            f"val-set sd {val_set_sd[-1]:.4f} (difference {paired_sd[-1]:.4f}) "
            f"sem {sems[-1]:.4f} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    mean_untrained = statistics.fmean(untrained_values)
    s = estimate(finals)
    print()
    print(f"| quantity ({obj.metric}, {args.seeds} training seeds) | value |")
    print("|---|---|")
    print(f"| untrained network, mean | {mean_untrained:.4f} |")
    print(f"| end of trial, mean [95% CI] | {s.mean:.4f} [{s.low:.4f}, {s.high:.4f}] |")
    print(f"| end of trial / untrained | {s.mean / mean_untrained:.3f} |")
    print(f"| training noise: sd over training seeds | {s.sd:.4f} |")
    print(
        f"| validation noise: sd over {args.val_sets} disjoint val sets of "
        f"{base.data.num_val} scenes, mean over seeds | {statistics.fmean(val_set_sd):.4f} |"
    )
    print(
        f"| validation noise of a comparison: sd over the same val sets of the difference "
        f"to '{args.other}', mean over seeds | {statistics.fmean(paired_sd):.4f} |"
    )
    print(
        f"| validation noise: per-scene sd / sqrt({base.data.num_val}), mean over seeds "
        f"| {statistics.fmean(sems):.4f} |"
    )
    print(
        f"| runs whose best epoch is the last (reduce best = reduce last) "
        f"| {sum(best_is_last)} of {len(best_is_last)} |"
    )
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}")


def _train(config: TrainConfig, select: EpochSelection) -> tuple[RunResult, torch.nn.Module]:
    """Train ``config`` and load the network of its kept (selected) epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(config.model_copy(update={"output_dir": Path(tmp)}), select=select)
        model = DepthNet(config.model, config.data.min_depth, config.data.max_depth)
        if result.checkpoint is None:
            raise RuntimeError("the run kept no checkpoint")
        model.load_state_dict(torch.load(result.checkpoint))
    return result, model


def _per_scene_sem(model: torch.nn.Module, config: TrainConfig, metric: str) -> float:
    val = build_datasets(config.data).val
    per_scene = [
        _metric_of(score(model, _One(val, i), config.data), metric) for i in range(len(val))
    ]
    return statistics.stdev(per_scene) / math.sqrt(len(per_scene))


class _One(DepthDataset):
    """Item ``index`` of ``data`` alone."""

    def __init__(self, data: DepthDataset, index: int) -> None:
        self.data, self.index = data, index

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[self.index]


def cmd_configs(args: argparse.Namespace) -> None:
    spec = load_spec(args.spec)
    obj = spec.objective
    select = _selection(obj.metric, obj.direction, obj.reduce)
    test_metric = "test/" + obj.metric.split("/", 1)[1]
    base = spec.base.model_copy(update={"previews": False})
    means: dict[str, float] = {}
    print(f"| configuration | seeds | {test_metric} mean | sd | 95% CI |")
    print("|---|---|---|---|---|")
    for name, loss in CONFIGS.items():
        cfg = base.model_copy(update={"loss": base.loss.model_copy(update=loss)})
        values = []
        for seed in args.seed_list:
            result = fit(cfg.model_copy(update={"seed": seed}), select=select, evaluate_test=True)
            values.append(result.test[test_metric])
        s = estimate(values)
        means[name] = s.mean
        print(
            f"| {name} | {s.n} | {s.mean:.4f} | {s.sd:.4f} | [{s.low:.4f}, {s.high:.4f}] |",
            flush=True,
        )
    sa = [v for k, v in means.items() if not k.startswith("ssi")]
    print(
        f"\nspread between scale-adaptive configurations: range {max(sa) - min(sa):.4f}, "
        f"sd {statistics.stdev(sa):.4f}; seeds {list(args.seed_list)}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["curve", "noise", "configs"])
    parser.add_argument("--spec", type=Path, default=Path("sweeps/default.yaml"))
    parser.add_argument("--seeds", type=int, default=3, help="training seeds")
    parser.add_argument("--first-seed", type=int, default=100, help="configs: first seed")
    parser.add_argument("--val-sets", type=int, default=5, help="noise: disjoint val sets")
    parser.add_argument(
        "--other",
        default="sa lambda 0.1, K 1, inverse",
        choices=list(CONFIGS),
        help="noise: the configuration compared with the base",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.seed_list = range(args.first_seed, args.first_seed + args.seeds)
    {"curve": cmd_curve, "noise": cmd_noise, "configs": cmd_configs}[args.mode](args)


if __name__ == "__main__":
    main()
