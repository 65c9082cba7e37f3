"""The loss and a training epoch on a CUDA GPU: ours against the seed's formulas, float32
against bf16 autocast.

    python benchmarks/gpu_bench.py [--repeats 50] [--steps 150]

Run on a machine with a GPU (this project's CI has none). Same process, same inputs
(batch 4, 192x640 unless told). For each loss case: median time of forward + backward over
``--repeats`` interleaved pairs (seed and ours alternate), timed with CUDA events after
warm-up; the peak of CUDA memory allocated during one forward + backward
(``torch.cuda.max_memory_allocated``, inputs excluded). Then one training epoch of the
default sweep's base config (``sweeps/default.yaml``) on ``cuda`` (bf16 autocast) and on
the CPU, scenes rendered beforehand as in a sweep's later trials: seconds of the second
epoch, and the final ``val/abs_rel_align``.
Prints Markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loss_bench import (  # noqa: E402
    autograd_sobel_l1,
    conv_sobel_l1,
    load_seed_reference,
    with_variant,
)
from loss import ScaleAdaptiveLoss, get_loss  # noqa: E402

Step = Callable[[torch.Tensor], Any]


def timed_ms(fn: Callable[[], None]) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return float(start.elapsed_time(end))


def fwd_bwd(step: Step, pred: torch.Tensor, bf16: bool) -> Callable[[], None]:
    def run() -> None:
        p = pred.detach().clone().requires_grad_(True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            total = step(p)[0]
        total.float().backward()

    return run


def peak_mb(fn: Callable[[], None]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def loss_table(args: argparse.Namespace) -> None:
    seed_ref = load_seed_reference()
    gen = torch.Generator(device="cuda").manual_seed(0)
    shape = (args.batch, 1, args.height, args.width)
    gt = torch.rand(shape, generator=gen, device="cuda") * 0.9 + 0.1
    pred = torch.rand(shape, generator=gen, device="cuda") * 0.9 + 0.1
    sparse_gt = torch.where(torch.rand(shape, generator=gen, device="cuda") < 0.3, 0.0, gt)
    mask = sparse_gt > 0
    cases: list[tuple[str, Step, Step]] = [
        (
            "scale-adaptive, defaults, no mask",
            lambda p: tuple(ScaleAdaptiveLoss()(p, gt)),
            lambda p: seed_ref.seed_scale_adaptive(p, gt),
        ),
        (
            "sparse-scale-adaptive, 30% missing, mask",
            lambda p: tuple(get_loss("sparse-scale-adaptive")(p, sparse_gt, mask)),
            lambda p: seed_ref.seed_scale_adaptive(p, sparse_gt, mask),
        ),
    ]
    if args.variants:
        default = cases[0][1]
        cases += [
            (
                "variant: fused conv2d Sobel, defaults",
                with_variant(default, conv_sobel_l1),
                cases[0][2],
            ),
            (
                "variant: autograd slices, defaults",
                with_variant(default, autograd_sobel_l1),
                cases[0][2],
            ),
        ]
    print(f"\nGPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, shape {shape}\n")
    print("| case | precision | seed ms | ours ms | ratio (seed/ours) | seed MB | ours MB |")
    print("|---|---|---|---|---|---|---|")
    for label, ours, seed in cases:
        for bf16 in (False, True):
            a, b = fwd_bwd(seed, pred, bf16), fwd_bwd(ours, pred, bf16)
            for _ in range(5):
                a(), b()
            seed_ms, ours_ms, ratios = [], [], []
            for i in range(args.repeats):
                first, second = (a, b) if i % 2 == 0 else (b, a)
                t1, t2 = timed_ms(first), timed_ms(second)
                s, o = (t1, t2) if i % 2 == 0 else (t2, t1)
                seed_ms.append(s)
                ours_ms.append(o)
                ratios.append(s / o)
            print(
                f"| {label} | {'bf16 autocast' if bf16 else 'float32'} "
                f"| {statistics.median(seed_ms):.3f} | {statistics.median(ours_ms):.3f} "
                f"| {statistics.median(ratios):.2f} | {peak_mb(a):.1f} | {peak_mb(b):.1f} |"
            )


def train_table(args: argparse.Namespace) -> None:
    from sweeps import load_spec
    from trainer import fit
    from trainer.data import build_datasets

    spec = load_spec(ROOT / "sweeps" / "default.yaml")
    # Render every scene first (a sweep's later trials read them from the process's cache).
    for split in build_datasets(spec.config_for({}).data):
        for i in range(len(split)):
            split[i]
    print("\n| training, the default spec's base config | device | s/epoch | val/abs_rel_align |")
    print("|---|---|---|---|")
    for device in ("cuda", "cpu"):
        config = spec.config_for({}).model_copy(
            update={"device": device, "epochs": 2, "steps_per_epoch": args.steps, "previews": False}
        )
        stamps: list[float] = []

        def on_epoch(epoch: int, metrics: dict[str, float], _s: list[float] = stamps) -> None:
            torch.cuda.synchronize()  # a no-op wait on the CPU run
            _s.append(time.perf_counter())

        result = fit(config, on_epoch)
        value = result.history[-1].get("val/abs_rel_align", float("nan"))
        print(
            f"| {args.steps} steps x batch {config.batch_size}, {config.data.height}x"
            f"{config.data.width} | {device} | {stamps[1] - stamps[0]:.2f} | {value:.4f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--variants", action="store_true", help="also time Sobel variants")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: run this on a GPU machine")
    loss_table(args)
    if not args.no_train:
        train_table(args)


if __name__ == "__main__":
    main()
