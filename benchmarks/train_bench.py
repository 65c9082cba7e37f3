"""How validation abs_rel and seconds per epoch move with image size and epochs.

One `fit` per image size on the synthetic scenes, CPU, the default loss
(sparse-scale-adaptive) and model; abs_rel is read after each epoch of that run.
Prints a Markdown table for docs/BENCHMARKS.md.

    .venv/bin/python benchmarks/train_bench.py [--epochs 6] [--sizes 48x160,96x320,128x416]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from trainer import TrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch")
    parser.add_argument("--sizes", default="48x160,96x320,128x416")
    args = parser.parse_args()

    checkpoints = sorted({1, max(1, args.epochs // 2), args.epochs})
    header = ["image", "s/epoch (median)", "samples/s"]
    header += [f"abs_rel @ {e} ep" for e in checkpoints] + ["abs_rel_med @ last"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor()}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.split("x"))
        config = TrainConfig.model_validate(
            {
                "data": {"height": height, "width": width},
                "epochs": args.epochs,
                "steps_per_epoch": args.steps,
                "device": "cpu",
            }
        )
        start = time.perf_counter()
        result = fit(config)
        total = time.perf_counter() - start
        times = sorted(h["epoch_time_s"] for h in result.history)
        speed = sorted(h["samples_per_s"] for h in result.history)
        row = [size, f"{times[len(times) // 2]:.2f}", f"{speed[len(speed) // 2]:.1f}"]
        row += [f"{result.history[e - 1]['val/abs_rel']:.3f}" for e in checkpoints]
        row += [f"{result.final['val/abs_rel_med']:.3f}"]
        print("| " + " | ".join(row) + f" |  <!-- run took {total:.0f}s -->", flush=True)


if __name__ == "__main__":
    main()
