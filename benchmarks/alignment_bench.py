"""Does the objective's alignment decide the comparison? Depth against inverse depth, and the
scale-adaptive loss against SSI, scored after a least-squares fit in inverse depth
(``_align``) and in depth (``_align_depth``).

Two measurements of the proxy task (CPU, synthetic scenes, the default spec's base), each
printed as Markdown tables for docs/BENCHMARKS.md:

- ``probe``: what each alignment forgives. The validation scenes' own ground truth, spoiled
  in known ways (a shift in depth, an affine map in depth, an affine map in inverse
  depth), scored under both alignments: no network involved.
- ``compare`` (default): the SSI baseline and the scale-adaptive loss in depth and in
  inverse depth, each trained with the same training seeds; per configuration the mean
  and 95% t-interval over seeds of the final epoch's validation and test scores under both
  alignments (and median scaling); per comparison the paired difference over seeds; then
  the noise apart: training noise (sd over training seeds) and validation noise (sd of one
  trained network's score over disjoint validation sets of the same size, other data
  seeds), for each configuration and for each paired difference.

The final epoch's weights are scored (``reduce: last``), so that neither alignment picks
the epoch the other is scored on.

    .venv/bin/python benchmarks/alignment_bench.py probe
    .venv/bin/python benchmarks/alignment_bench.py compare --seeds 4 --val-sets 3 --threads 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

# A network's metrics over a data set: proxy_bench's (this folder is on sys.path when run).
from proxy_bench import score

from studies.confirmation.stats import Estimate, estimate
from sweeps import load_spec
from trainer import EpochSelection, TrainConfig, fit
from trainer.data import build_datasets
from trainer.metrics import DepthMetricAccumulator
from trainer.model import DepthNet

CONFIGS: dict[str, dict[str, Any]] = {
    "ssi (baseline)": {"method": "ssi"},
    "sa depth (lambda 0.5, K 4)": {"lambda_sg": 0.5, "num_scales": 4, "use_inv_depth": False},
    "sa inverse (lambda 0.5, K 4)": {"lambda_sg": 0.5, "num_scales": 4, "use_inv_depth": True},
}
# (A, B): A - B is reported; negative = A's error is lower.
COMPARISONS = [
    ("sa inverse (lambda 0.5, K 4)", "sa depth (lambda 0.5, K 4)"),
    ("sa depth (lambda 0.5, K 4)", "ssi (baseline)"),
    ("sa inverse (lambda 0.5, K 4)", "ssi (baseline)"),
]
METRICS = ("abs_rel_align", "abs_rel_align_depth", "abs_rel_med")
LAST = EpochSelection(metric="val/abs_rel_align", reduce="last")


def _fmt(e: Estimate) -> str:
    return f"{e.mean:.4f} [{e.low:.4f}, {e.high:.4f}]"


# --- probe: what each alignment forgives ------------------------------------------------------


def _spoilers(
    min_depth: float, max_depth: float
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    return {
        "exact": lambda d: d,
        "depth + 1 m": lambda d: d + 1.0,
        "depth + 3 m": lambda d: d + 3.0,
        "depth x 1.3 + 2 m (affine in depth)": lambda d: 1.3 * d + 2.0,
        "1 / (0.5 / depth + 0.02) (affine in inverse depth)": lambda d: 1.0 / (0.5 / d + 0.02),
        "1 / (1 / depth + 0.05) (a shift in inverse depth)": lambda d: 1.0 / (1.0 / d + 0.05),
    }


def cmd_probe(args: argparse.Namespace) -> None:
    base = load_spec(args.spec).base
    cfg = base.data
    val = build_datasets(cfg).val
    depth = torch.stack([val[i][1] for i in range(len(val))])  # [N,1,H,W] metres, 0 = none
    filled = torch.where(depth > 0, depth, cfg.max_depth)  # any positive value where none
    print(
        f"| prediction ({len(val)} validation scenes, {cfg.height}x{cfg.width}) "
        "| abs_rel_align (inverse) | abs_rel_align_depth | abs_rel_med | abs_rel |"
    )
    print("|---|---|---|---|---|")
    for name, spoil in _spoilers(cfg.min_depth, cfg.max_depth).items():
        acc = DepthMetricAccumulator(cfg.min_depth, cfg.max_depth)
        acc.update(spoil(filled.double()), depth.double())
        m = acc.compute()
        print(
            f"| {name} | {m['abs_rel_align']:.3f} | {m['abs_rel_align_depth']:.3f} "
            f"| {m['abs_rel_med']:.3f} | {m['abs_rel']:.3f} |"
        )


# --- compare: the losses under both alignments ------------------------------------------------


def _train(config: TrainConfig) -> tuple[dict[str, float], dict[str, float], torch.nn.Module]:
    """Final-epoch validation metrics, test metrics and network of ``config``."""
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(
            config.model_copy(update={"output_dir": Path(tmp)}), select=LAST, evaluate_test=True
        )
        if result.checkpoint is None:
            raise RuntimeError("the run kept no checkpoint")
        model = DepthNet(config.model, config.data.min_depth, config.data.max_depth)
        model.load_state_dict(torch.load(result.checkpoint, weights_only=True))
    val = {k.removeprefix("val/"): v for k, v in result.final.items() if k.startswith("val/")}
    test = {k.removeprefix("test/"): v for k, v in result.test.items()}
    return val, test, model


def cmd_compare(args: argparse.Namespace) -> None:
    spec = load_spec(args.spec)
    base = spec.base.model_copy(update={"previews": False})
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    other_data = [
        base.data.model_copy(update={"seed": base.data.seed + 1000 + i})
        for i in range(1, args.val_sets + 1)
    ]
    other_val = [build_datasets(d).val for d in other_data]
    # [config][seed] -> metrics; val_sets[config][seed] -> metrics per extra val set
    val: dict[str, dict[int, dict[str, float]]] = {c: {} for c in CONFIGS}
    test: dict[str, dict[int, dict[str, float]]] = {c: {} for c in CONFIGS}
    extra: dict[str, dict[int, list[dict[str, float]]]] = {c: {} for c in CONFIGS}
    t0 = time.perf_counter()
    for seed in seeds:
        for name, loss in CONFIGS.items():
            cfg = base.model_copy(update={"seed": seed, "loss": base.loss.model_copy(update=loss)})
            v, t, model = _train(cfg)
            val[name][seed], test[name][seed] = v, t
            extra[name][seed] = [
                score(model, d, c) for d, c in zip(other_val, other_data, strict=True)
            ]
            print(
                f"seed {seed} {name}: val "
                + " ".join(f"{m} {v[m]:.4f}" for m in METRICS)
                + f" ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

    for split, table in (("val", val), ("test", test)):
        print(f"\n| configuration ({split}, {len(seeds)} seeds) | " + " | ".join(METRICS) + " |")
        print("|---|" + "---|" * len(METRICS))
        for name in CONFIGS:
            cells = [_fmt(estimate(table[name][s][m] for s in seeds)) for m in METRICS]
            print(f"| {name} | " + " | ".join(cells) + " |")

    for split, table in (("val", val), ("test", test)):
        print(
            f"\n| difference A - B ({split}, paired over {len(seeds)} seeds; < 0: A better) | "
            + " | ".join(METRICS)
            + " |"
        )
        print("|---|" + "---|" * len(METRICS))
        for a, b in COMPARISONS:
            cells = [
                _fmt(estimate(table[a][s][m] - table[b][s][m] for s in seeds)) for m in METRICS
            ]
            print(f"| {a} - {b} | " + " | ".join(cells) + " |")

    print(
        f"\n| noise (sd; val: {base.data.num_val} scenes, {args.val_sets} disjoint extra val "
        f"sets) | " + " | ".join(METRICS) + " |"
    )
    print("|---|" + "---|" * len(METRICS))
    for name in CONFIGS:
        print(f"| {name}: training (over seeds) | " + _sd_cells(val[name], seeds) + " |")
        print(f"| {name}: validation (over val sets) | " + _val_sd_cells(extra[name]) + " |")
    for a, b in COMPARISONS:
        diff = {s: _minus(val[a][s], val[b][s]) for s in seeds}
        diff_extra = {
            s: [_minus(xa, xb) for xa, xb in zip(extra[a][s], extra[b][s], strict=True)]
            for s in seeds
        }
        print(f"| {a} - {b}: training | " + _sd_cells(diff, seeds) + " |")
        print(f"| {a} - {b}: validation | " + _val_sd_cells(diff_extra) + " |")
    print(
        f"\nseeds {seeds}; {time.perf_counter() - t0:.0f} s; "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def _minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {m: a[m] - b[m] for m in METRICS}


def _sd_cells(by_seed: dict[int, dict[str, float]], seeds: list[int]) -> str:
    """Training noise: the sd over training seeds of each metric."""
    return " | ".join(f"{statistics.stdev(by_seed[s][m] for s in seeds):.4f}" for m in METRICS)


def _val_sd_cells(by_seed: dict[int, list[dict[str, float]]]) -> str:
    """Validation noise: per seed the sd over the extra validation sets, mean over seeds."""
    return " | ".join(
        f"{statistics.fmean(statistics.stdev(x[m] for x in sets) for sets in by_seed.values()):.4f}"
        for m in METRICS
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("mode", choices=["probe", "compare"], nargs="?", default="compare")
    parser.add_argument("--spec", type=Path, default=Path("sweeps/default.yaml"))
    parser.add_argument("--seeds", type=int, default=4, help="training seeds per configuration")
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--val-sets", type=int, default=3, help="disjoint extra val sets")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    {"probe": cmd_probe, "compare": cmd_compare}[args.mode](args)


if __name__ == "__main__":
    main()
