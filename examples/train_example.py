"""A training program of your own, swept by salsweep as a command trial.

Plain PyTorch: a tiny encoder-decoder learns inverse depth from salsweep's synthetic street
scenes with the scale-adaptive loss. It runs alone::

    python examples/train_example.py examples/example.yaml

or as the trials of a sweep (``salsweep sweep launch examples/sweep-example.yaml``): each
trial gets a copy of the YAML with its values set, the program reports its validation
metrics every epoch (studies.command.reporter: nothing is written outside a sweep) and
stops early when salsweep asks (the trial was pruned, or the sweep is stopping).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import torch
import yaml
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from loss import get_loss
from studies.command.reporter import report, should_stop
from trainer.data import SyntheticScenes

MIN_DEPTH, MAX_DEPTH = 1.0, 80.0
# Settings the YAML may leave out.
DEFAULTS: dict[str, Any] = {
    "batch_size": 4,
    "height": 48,
    "width": 96,
    "num_train": 32,
    "num_val": 8,
}


class TinyDepthNet(nn.Module):
    """rgb [B,3,H,W] -> inverse depth [B,1,H,W] within [1/MAX_DEPTH, 1/MIN_DEPTH]."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(nn.Conv2d(2 * width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(width + 3, 1, 3, padding=1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = self.decoder(self.encoder(rgb))
        x = F.interpolate(x, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.head(torch.cat([x, rgb], dim=1))
        # A sigmoid in log inverse depth: positive, finite, within the depth range.
        span = math.log(MAX_DEPTH / MIN_DEPTH)
        return torch.exp(-math.log(MAX_DEPTH) + span * torch.sigmoid(logits))


def abs_rel_median_scaled(pred_inv: torch.Tensor, depth: torch.Tensor) -> list[float]:
    """Per image: mean |d - gt| / gt over measured pixels, prediction median-scaled."""
    out = []
    for inv, gt in zip(pred_inv, depth, strict=True):
        valid = gt > 0
        pred = 1.0 / inv[valid]
        pred = pred * gt[valid].median() / pred.median()
        out.append(float(((pred - gt[valid]).abs() / gt[valid]).mean()))
    return out


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        cfg = {**DEFAULTS, **yaml.safe_load(f)}
    torch.manual_seed(cfg["seed"])
    # The scenes depend on their data seed (0) only, never on the training seed.
    size = {"height": cfg["height"], "width": cfg["width"], "sparse": True}
    train = DataLoader(
        SyntheticScenes(cfg["num_train"], seed=0, split="train", **size),
        batch_size=cfg["batch_size"],
        shuffle=True,
        generator=torch.Generator().manual_seed(cfg["seed"]),
    )
    val = DataLoader(
        SyntheticScenes(cfg["num_val"], seed=0, split="val", **size), batch_size=cfg["batch_size"]
    )
    model = TinyDepthNet()
    loss_fn = get_loss(
        "sparse-scale-adaptive",
        lambda_sg=cfg["lambda_sg"],
        num_scales=cfg["num_scales"],
        use_inv_depth=cfg["use_inv_depth"],
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    for epoch in range(1, cfg["epochs"] + 1):
        model.train()
        losses = []
        for rgb, depth in train:
            gt_inv = torch.where(depth > 0, 1.0 / depth.clamp(min=MIN_DEPTH), 0.0)
            loss = loss_fn(model(rgb), gt_inv, depth > 0).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            errors = [e for rgb, depth in val for e in abs_rel_median_scaled(model(rgb), depth)]
        metrics = {
            "train/loss": sum(losses) / len(losses),
            "val/abs_rel_med": sum(errors) / len(errors),
        }
        print(f"epoch {epoch}: " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        report(epoch, **metrics)
        if should_stop():  # pruned, or the sweep is stopping: SIGTERM follows
            break


if __name__ == "__main__":
    main(sys.argv[1])
