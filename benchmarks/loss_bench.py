"""Forward + backward of the Scale-Adaptive Loss against the seed's formulas, on CPU.

    .venv/bin/python benchmarks/loss_bench.py [--repeats 30] [--variants] [--compile]

Same process, same inputs (batch 4, 192x640, float32 by default). For every case:

- outputs: every metric and the gradient w.r.t. the prediction are compared with the seed
  where the two must agree (dense input, no mask); a relative error of 1e-5 or more
  fails the run (exit status 1), except for the variants, which are only marked;
- time: median over ``--repeats`` interleaved pairs (seed and ours alternate, and which of
  the two runs first alternates too), and the median of the per-pair time ratios;
- peak memory: the highest sum of live CPU tensor bytes during one forward + backward,
  replayed from the allocation and free events that ``torch.profiler`` records with
  ``profile_memory=True`` (every allocation and free of the CPU allocator, which does not
  cache, so live bytes are exact). Inputs allocated beforehand are not counted; the
  copy of the prediction that each run makes, and its gradient, are (for both alike).

``--variants`` also times the alternatives that were tried for the Sobel step (a fused
2-output-channel conv2d; slices with plain autograd); ``--compile`` times
``torch.compile`` of the loss (compilation time reported separately). Prints a Markdown
table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import loss.scale_adaptive as sa_module  # noqa: E402
from loss import ScaleAdaptiveLoss, get_loss  # noqa: E402
from loss.ops import _smooth_diff  # noqa: E402

Step = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def load_seed_reference() -> ModuleType:
    """tests/loss/seed_reference.py, the literal seed formulas the tests also use."""
    path = ROOT / "tests" / "loss" / "seed_reference.py"
    spec = importlib.util.spec_from_file_location("seed_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Case:
    name: str
    ours: Step
    seed: Step
    compare: bool  # outputs must agree (dense input without mask)


def peak_bytes(fn: Callable[[], None]) -> int:
    """Peak of live CPU tensor bytes allocated while ``fn`` runs (see module docstring)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()  # negative for a free
        peak = max(peak, live)
    return peak


def check_peak_method() -> None:
    """The replay must see a known pattern: 4 MB live at most, in two 2 MB steps."""

    def pattern() -> None:
        a = torch.empty(2**21, dtype=torch.uint8)
        b = torch.empty(2**21, dtype=torch.uint8)
        del a
        c = torch.empty(2**20, dtype=torch.uint8)
        del b, c

    measured = peak_bytes(pattern)
    if measured != 2**22:
        raise SystemExit(f"peak-memory replay is broken: {measured} bytes instead of {2**22}")


def fwd_bwd(step: Step, pred: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        p = pred.detach().clone().requires_grad_()
        total, _ = step(p)
        total.backward()

    return run


def compare(case: Case, pred: torch.Tensor) -> str:
    results = []
    for step in (case.seed, case.ours):
        p = pred.detach().clone().requires_grad_()
        total, metrics = step(p)
        total.backward()
        results.append((metrics, p.grad))
    (seed_metrics, seed_grad), (our_metrics, our_grad) = results
    assert seed_grad is not None and our_grad is not None
    worst = float((our_grad - seed_grad).norm() / seed_grad.norm())
    for name, value in our_metrics.items():
        want = float(seed_metrics[name].detach())
        worst = max(worst, abs(float(value) - want) / max(abs(want), 1e-12))
    if worst >= 1e-5:
        return f"DIFFERENT (max rel. err. {worst:.1e})"
    return f"equal (max rel. err. {worst:.1e})"


def interleaved(
    a: Callable[[], None], b: Callable[[], None], repeats: int
) -> tuple[list[float], list[float]]:
    for _ in range(3):  # warm-up
        a()
        b()
    times_a, times_b = [], []
    for i in range(repeats):
        order = [(a, times_a), (b, times_b)]
        for fn, times in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return times_a, times_b


def conv_sobel_l1(r: torch.Tensor) -> torch.Tensor:
    """Variant: both Sobel kernels in one 2-output-channel conv2d, plain autograd."""
    weight = torch.tensor(
        [
            [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
            [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],
        ],
        dtype=r.dtype,
        device=r.device,
    ).view(2, 1, 3, 3)
    return F.conv2d(F.pad(r, (1, 1, 1, 1), mode="replicate"), weight).abs().sum()


def autograd_sobel_l1(r: torch.Tensor) -> torch.Tensor:
    """Variant: the same slices as loss.ops, differentiated by autograd."""
    p = F.pad(r, (1, 1, 1, 1), mode="replicate")
    return _smooth_diff(p, 2, 3).abs().sum() + _smooth_diff(p, 3, 2).abs().sum()


@contextmanager
def sobel_variant(fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    original = sa_module.sobel_l1
    sa_module.sobel_l1 = fn  # type: ignore[assignment]
    try:
        yield
    finally:
        sa_module.sobel_l1 = original


def with_variant(step: Step, fn: Callable[[torch.Tensor], torch.Tensor]) -> Step:
    def run(p: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with sobel_variant(fn):
            return step(p)

    return run


def build_cases(args: argparse.Namespace, seed_ref: ModuleType, gt: torch.Tensor) -> list[Case]:
    sparse_gt = torch.where(
        torch.rand(gt.shape, generator=torch.Generator().manual_seed(2)) < 0.3, 0.0, gt
    )
    mask = sparse_gt > 0

    def ours(loss: Any, target: torch.Tensor, m: torch.Tensor | None = None) -> Step:
        return lambda p: tuple(loss(p, target, m))  # type: ignore[return-value]

    def seed(target: torch.Tensor, m: torch.Tensor | None = None, **kw: Any) -> Step:
        return lambda p: seed_ref.seed_scale_adaptive(p, target, m, **kw)

    default = ScaleAdaptiveLoss()
    cases = [
        Case("scale-adaptive, defaults (depth, K=4), no mask", ours(default, gt), seed(gt), True),
        Case(
            "scale-adaptive, use_inv_depth, K=5, no mask",
            ours(ScaleAdaptiveLoss(num_scales=5, use_inv_depth=True), gt),
            seed(gt, num_scales=5, use_inv_depth=True),
            True,
        ),
        Case(
            "sparse-scale-adaptive, 30% missing, mask (the trainer's call)*",
            ours(get_loss("sparse-scale-adaptive"), sparse_gt, mask),
            seed(sparse_gt, mask),
            False,
        ),
    ]
    if args.variants:
        for label, fn in (
            ("fused conv2d Sobel", conv_sobel_l1),
            ("autograd slices", autograd_sobel_l1),
        ):
            cases.append(
                Case(
                    f"variant: {label}, defaults",
                    with_variant(ours(default, gt), fn),
                    seed(gt),
                    True,
                )
            )
    if args.compile:
        start = time.perf_counter()
        compiled = torch.compile(default.__call__)
        fwd_bwd(ours(compiled, gt), gt)()
        print(f"torch.compile: first call (compilation) {time.perf_counter() - start:.1f} s")
        cases.append(Case("variant: torch.compile, defaults", ours(compiled, gt), seed(gt), True))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--variants", action="store_true", help="also time Sobel variants")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    check_peak_method()
    seed_ref = load_seed_reference()
    shape = (args.batch, 1, args.height, args.width)
    generator = torch.Generator().manual_seed(0)
    pred = torch.rand(shape, generator=generator) * 0.1 + 0.01  # the seed's quick check
    gt = torch.rand(shape, generator=generator) * 0.1 + 0.01

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
        f"input {shape} float32, {args.repeats} interleaved repeats"
    )
    print()
    print("| case | seed ms | ours ms | speed-up | seed peak MB | ours peak MB | outputs |")
    print("|---|---:|---:|---:|---:|---:|---|")
    failed = []
    for case in build_cases(args, seed_ref, gt):
        outputs = compare(case, pred) if case.compare else "not compared*"
        if outputs.startswith("DIFFERENT") and not case.name.startswith("variant"):
            failed.append(case.name)
        seed_run, our_run = fwd_bwd(case.seed, pred), fwd_bwd(case.ours, pred)
        seed_times, our_times = interleaved(seed_run, our_run, args.repeats)
        ratio = statistics.median(s / o for s, o in zip(seed_times, our_times, strict=True))
        seed_peak, our_peak = peak_bytes(seed_run), peak_bytes(our_run)
        print(
            f"| {case.name} | {statistics.median(seed_times) * 1e3:.1f} "
            f"| {statistics.median(our_times) * 1e3:.1f} | {ratio:.2f}x "
            f"| {seed_peak / 2**20:.1f} | {our_peak / 2**20:.1f} | {outputs} |"
        )
    print()
    print("* the seed normalises over every pixel, so its value differs there by design.")
    if failed:
        raise SystemExit(f"outputs differ from the seed's (relative error >= 1e-5): {failed}")


if __name__ == "__main__":
    main()
