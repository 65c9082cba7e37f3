"""Several trials sharing one GPU: does ``sweep launch --workers N`` on one GPU pay off?

    python benchmarks/gpu_workers_bench.py [--workers 1 2 4 8] [--steps 150] [--epochs 2]
    python benchmarks/gpu_workers_bench.py --device cpu --workers 1 2 --steps 5  # a smoke test

Run on a machine with a GPU (this project's CI has none). For each N, N processes start
together (spawn, as local workers do), each with ``cores // N`` CPU threads (as
studies.workers.plan gives them) and the same GPU. Each renders the default spec's scenes
first (untimed: a sweep's later trials read them from the process's cache), waits at a
barrier, then trains the default spec's base config on ``cuda`` (bf16 autocast) as one
trial does: ``--epochs`` epochs of ``--steps`` steps, each with its validation. Timed: from
the barrier to the last process's end. Prints Markdown for docs/BENCHMARKS.md: the wall
time, trials per minute, and the throughput as a ratio to N = 1 of the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studies.workers.plan import cpu_count, threads_per_worker  # noqa: E402


def _trial(index: int, threads: int, args: dict[str, Any], barrier: Barrier, out: Any) -> None:
    """One worker: render, wait for the others, train one trial; sends (index, end, value)."""
    import torch

    from sweeps import load_spec
    from trainer import fit
    from trainer.data import build_datasets

    torch.set_num_threads(threads)
    spec = load_spec(ROOT / "sweeps" / "default.yaml")
    base = spec.config_for({})
    for split in build_datasets(base.data):
        for i in range(len(split)):
            split[i]
    config = base.model_copy(
        update={
            "device": args["device"],
            "epochs": args["epochs"],
            "steps_per_epoch": args["steps"],
            "previews": False,
            "seed": index,
        }
    )
    cuda = args["device"] == "cuda"
    if cuda:
        torch.zeros(1, device="cuda")  # the CUDA context, before the clock starts
    barrier.wait()
    result = fit(config, lambda _epoch, _metrics: None)
    if cuda:
        torch.cuda.synchronize()
    value = result.history[-1].get("val/abs_rel_align", float("nan"))
    out.put((index, time.monotonic(), float(value)))


def run(workers: int, args: dict[str, Any]) -> tuple[float, list[float]]:
    """Wall seconds from the barrier to the last end of ``workers`` concurrent trials, and
    their final val/abs_rel_align."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    out = ctx.Queue()
    threads = threads_per_worker(cpu_count(), workers)
    procs = [
        ctx.Process(target=_trial, args=(i, threads, args, barrier, out)) for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=600)
    start = time.monotonic()
    ends = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        if proc.exitcode != 0:
            raise SystemExit(f"a worker exited with {proc.exitcode}")
    return max(end for _, end, _ in ends) - start, [v for _, _, v in sorted(ends)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parsed = parser.parse_args()
    import torch

    cuda = parsed.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("no CUDA device: run this on a GPU machine (or pass --device cpu)")
    args = {"steps": parsed.steps, "epochs": parsed.epochs, "device": parsed.device}
    print(
        f"\n{torch.cuda.get_device_name(0) if cuda else 'CPU'}, torch {torch.__version__}, "
        f"{cpu_count()} CPU cores; one trial = {parsed.epochs} epochs x {parsed.steps} "
        f"steps{' (bf16 autocast)' if cuda else ''} with validation\n"
    )
    print("| workers on one device | wall s | trials/min | vs row 1 | val/abs_rel_align |")
    print("|---|---|---|---|---|")
    first: float | None = None
    for workers in parsed.workers:
        wall, values = run(workers, args)
        rate = workers / wall * 60.0
        first = rate if first is None else first
        shown = ", ".join(f"{v:.4f}" for v in values)
        print(
            f"| {workers} | {wall:.1f} | {rate:.1f} | x{rate / first:.2f} | {shown} |", flush=True
        )


if __name__ == "__main__":
    main()
