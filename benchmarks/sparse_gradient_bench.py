"""What does ``lambda_sg`` weigh on sparse ground truth? The scale-adaptive loss's gradient
term with ``gradient_window`` "zero-filled" (the seed's) and "valid", on the synthetic
scenes with LiDAR-like scan lines.

Per variant and training seed: the network as ``fit`` initialises it, and after a default
trial's training with that variant's loss, on a fixed set of training batches:

- ``|lambda grad L_sg| / |grad L_sa|``: the norms of the two terms' gradients with respect
  to the network's parameters (what the optimiser sees), ``lambda grad L_sg`` being the
  gradient of ``total`` minus that of ``L_sa``;
- ``cos(grad L_sg, grad rel)``: the cosine between the gradient term's gradient and the
  relative term's. Near 1, ``lambda_sg`` re-weights the relative term; lower, it weighs
  something of its own (the residual's gradients);
- ``L_sg / rel``: the values;
- the trained network's validation scores (final epoch): aligned in inverse depth, in
  depth, median-scaled.

    .venv/bin/python benchmarks/sparse_gradient_bench.py --seeds 3 --threads 2
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

from loss import LossFunction, get_loss
from sweeps import load_spec
from trainer import EpochSelection, TrainConfig, batch_loss, fit
from trainer.data import build_datasets
from trainer.model import DepthNet

# label -> (scan-line ground truth, gradient_window); the dense row is the reference: what
# the gradient term weighs when every pixel has ground truth.
VARIANTS: dict[str, tuple[bool, str]] = {
    "zero-filled": (True, "zero-filled"),
    "valid": (True, "valid"),
    "dense ground truth (reference)": (False, "zero-filled"),
}
LAST = EpochSelection(metric="val/abs_rel_align", reduce="last")
SCORES = ("abs_rel_align", "abs_rel_align_depth", "abs_rel_med")


def sparse_config(
    base: TrainConfig, variant: str, seed: int, lambda_sg: float, sparse: bool = True
) -> TrainConfig:
    """The default base on scan-line ground truth (or dense with ``sparse`` False) with the
    sparse scale-adaptive loss."""
    return base.model_copy(
        update={
            "seed": seed,
            "previews": False,
            "data": base.data.model_copy(update={"sparse": sparse}),
            "loss": base.loss.model_copy(
                update={
                    "method": "sparse-scale-adaptive",
                    "lambda_sg": lambda_sg,
                    "gradient_window": variant,
                }
            ),
        }
    )


def _flat_grad(model: torch.nn.Module, loss_fn: LossFunction, batches: list[Any]) -> torch.Tensor:
    """Gradient of the mean loss over ``batches`` with respect to every parameter, flat."""
    model.zero_grad(set_to_none=True)
    for rgb, depth in batches:
        (batch_loss(loss_fn, model(rgb), depth).total / len(batches)).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()).clamp(min=1e-30))


def measure(model: torch.nn.Module, config: TrainConfig, batches: list[Any]) -> dict[str, float]:
    """Gradient ratio, cosine and loss values of ``model`` on ``batches``."""
    model.train()  # as the optimiser sees it (the network has no dropout)
    params = config.loss.loss_params()
    total = get_loss(config.loss.method, **params)
    sa = get_loss(config.loss.method, **{**params, "lambda_sg": 0.0})
    rel = get_loss(config.loss.method, **{**params, "lambda_sg": 0.0, "use_absolute": False})
    g_total, g_sa, g_rel = (_flat_grad(model, f, batches) for f in (total, sa, rel))
    g_sg = g_total - g_sa  # lambda grad L_sg
    with torch.no_grad():
        outs = [batch_loss(total, model(rgb), depth).metrics for rgb, depth in batches]
    loss_sg = statistics.fmean(float(o["loss_sg"]) for o in outs)
    relative = statistics.fmean(float(o["scale_adaptive/relative"]) for o in outs)
    return {
        "ratio": float(g_sg.norm() / g_sa.norm()),
        "cos_rel": _cos(g_sg, g_rel),
        "sg_over_rel": loss_sg / relative,
    }


def run(
    config: TrainConfig, batches: list[Any]
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(measures at initialisation, after training, final validation scores)."""
    torch.manual_seed(config.seed)  # fit's initialisation
    model = DepthNet(config.model, config.data.min_depth, config.data.max_depth)
    start = measure(model, config, batches)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(config.model_copy(update={"output_dir": Path(tmp)}), select=LAST)
        assert result.checkpoint is not None
        model.load_state_dict(torch.load(result.checkpoint, weights_only=True))
    end = measure(model, config, batches)
    scores = {m: result.final[f"val/{m}"] for m in SCORES}
    return start, end, scores


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=Path("sweeps/default.yaml"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lambda-sg", type=float, default=0.5)
    parser.add_argument("--batches", type=int, default=8, help="fixed training batches measured")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = load_spec(args.spec).base
    t0 = time.perf_counter()
    rows: dict[str, list[tuple[dict[str, float], dict[str, float], dict[str, float]]]] = {}
    for label, (sparse, window) in VARIANTS.items():
        rows[label] = []
        for seed in range(args.seeds):
            config = sparse_config(base, window, seed, args.lambda_sg, sparse)
            train = build_datasets(config.data).train
            n = config.batch_size
            batches = [
                tuple(
                    torch.stack(x) for x in zip(*(train[i * n + j] for j in range(n)), strict=True)
                )
                for i in range(args.batches)
            ]
            start, end, scores = run(config, batches)
            rows[label].append((start, end, scores))
            print(
                f"{label} seed {seed}: init {start} trained {end} val {scores} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print(
        f"\n| gradient_window (lambda_sg {args.lambda_sg}, {args.seeds} seeds, mean ± sd) | when "
        "| lambda·grad L_sg / grad L_sa | cos(grad L_sg, grad rel) | L_sg / rel |"
    )
    print("|---|---|---|---|---|")
    for variant, results in rows.items():
        for when, index in (("initialisation", 0), ("after training", 1)):
            cells = [
                _mean_sd([r[index][k] for r in results])
                for k in ("ratio", "cos_rel", "sg_over_rel")
            ]
            print(f"| {variant} | {when} | " + " | ".join(cells) + " |")
    print("\n| gradient_window | " + " | ".join(f"val/{m}" for m in SCORES) + " |")
    print("|---|" + "---|" * len(SCORES))
    for variant, results in rows.items():
        cells = [_mean_sd([r[2][m] for r in results]) for m in SCORES]
        print(f"| {variant} | " + " | ".join(cells) + " |")
    print(
        f"\n{time.perf_counter() - t0:.0f} s; {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


if __name__ == "__main__":
    main()
