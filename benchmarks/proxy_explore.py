"""What learns fastest per CPU second? One training run of the proxy task per call.

A bare loop (no validation per epoch, no tracking) over the synthetic scenes with the
scale-adaptive loss (lambda_sg 0.5, 4 scales, depth mode, unit-free inputs as the trainer
feeds them), scoring ``abs_rel_align`` on a fixed set of validation scenes at the given
steps. Prints one JSON line per seed: ``[step, training seconds, abs_rel_align]``. Used to
choose the default spec's image size, batch, width, normalisation, learning rate and head
(docs/BENCHMARKS.md, "Proxy task"); compare runs by step, and by seconds only within one
quiet run.

    .venv/bin/python benchmarks/proxy_explore.py '{"h": 64, "w": 192, "lr": 4e-3,
        "steps": 600, "batch": 4, "ch": 8, "evals": [300, 600], "seeds": [0, 1]}' 1

Keys: h, w, lr, steps, batch, ch (base channels), evals, seeds, sched (cosine |
onecycle), norm (gn8 = the model's GroupNorm, gn<g>, bn), head (log = the model's; linear
= the round-1 sigmoid linear in inverse depth). The last argument is the torch threads.
"""

from __future__ import annotations

import json
import math
import sys
import time
import types
from typing import Any

import torch
from torch import nn

import trainer.model as model_module
from loss import get_loss
from trainer.config import ModelConfig
from trainer.data.synthetic import SyntheticScenes
from trainer.metrics import depth_metrics_per_image


def _linear_head(net: model_module.DepthNet) -> None:
    """Round 1's output mapping: a sigmoid linear in inverse depth."""
    lo, hi = 1.0 / 80.0, 1.0

    def inverse_depth(self: model_module.DepthNet, logits: torch.Tensor) -> torch.Tensor:
        return lo + (hi - lo) * torch.sigmoid(logits)

    net.inverse_depth = types.MethodType(inverse_depth, net)  # type: ignore[method-assign]


def run(cfg: dict[str, Any], seed: int) -> list[tuple[int, float, float]]:
    h, w, batch, steps, lr = cfg["h"], cfg["w"], cfg["batch"], cfg["steps"], cfg["lr"]
    norm = cfg.get("norm", "gn8")
    if norm == "bn":
        model_module._norm = lambda c: nn.BatchNorm2d(c)  # type: ignore[assignment,return-value]
    else:
        groups = int(norm[2:])
        model_module._norm = lambda c: nn.GroupNorm(math.gcd(groups, c), c)
    torch.manual_seed(seed)
    train = SyntheticScenes(2000, seed=seed, split="train", height=h, width=w)
    val = SyntheticScenes(32, seed=12345, split="val", height=h, width=w)
    vx = torch.stack([val[i][0] for i in range(32)])
    vd = torch.stack([val[i][1] for i in range(32)])
    net = model_module.DepthNet(ModelConfig(base_channels=cfg["ch"], num_stages=4), 1.0, 80.0)
    if cfg.get("head", "log") == "linear":
        _linear_head(net)
    loss_fn = get_loss("scale-adaptive", lambda_sg=0.5, num_scales=4)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched: torch.optim.lr_scheduler.LRScheduler
    if cfg.get("sched", "cosine") == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    order = torch.Generator().manual_seed(seed)
    curve: list[tuple[int, float, float]] = []
    seconds = 0.0

    def evaluate(step: int) -> None:
        net.eval()
        with torch.no_grad():
            pred = net(vx)
        net.train()
        values, valid = depth_metrics_per_image(
            1.0 / pred, vd, min_depth=1.0, max_depth=80.0, alignment="scale_shift"
        )
        curve.append((step, round(seconds, 2), round(float(values[valid, 0].mean()), 4)))

    evaluate(0)
    for step in range(1, steps + 1):
        start = time.perf_counter()
        idx = torch.randint(0, len(train), (batch,), generator=order)
        items = [train[int(i)] for i in idx]
        rgb = torch.stack([a for a, _ in items])
        depth = torch.stack([b for _, b in items])
        gt_inv = torch.where(depth > 0, 1 / depth.clamp(min=1e-6), 0.0)
        out = loss_fn(net(rgb), gt_inv, depth > 0)  # the loss divides depth by max_depth 80
        opt.zero_grad()
        out.total.backward()
        opt.step()
        sched.step()
        seconds += time.perf_counter() - start
        if step in cfg["evals"]:
            evaluate(step)
    return curve


def main() -> None:
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    for seed in cfg.pop("seeds", [0]):
        print(json.dumps({"cfg": cfg, "seed": seed, "curve": run(cfg, seed)}), flush=True)


if __name__ == "__main__":
    main()
