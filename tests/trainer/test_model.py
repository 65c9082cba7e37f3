"""DepthNet: shapes, the bounded inverse-depth head, gradients, determinism, input checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.config import ModelConfig
from trainer.model import DepthNet

SMALL = ModelConfig(base_channels=8, num_stages=3)


def _model(seed: int = 0, cfg: ModelConfig = SMALL, lo: float = 1.0, hi: float = 80.0) -> DepthNet:
    torch.manual_seed(seed)
    return DepthNet(cfg, lo, hi)


def _rgb(batch: int = 2, height: int = 32, width: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("cfg", "height", "width"),
    [(SMALL, 32, 64), (ModelConfig(base_channels=4, num_stages=2), 8, 12), (ModelConfig(), 32, 48)],
)
def test_output_shape_and_strict_range(cfg: ModelConfig, height: int, width: int) -> None:
    model = _model(cfg=cfg, lo=0.5, hi=10.0)
    with torch.no_grad():
        out = model(_rgb(3, height, width))
    assert out.shape == (3, 1, height, width)
    assert out.dtype == torch.float32
    assert float(out.min()) > 1 / 10.0
    assert float(out.max()) < 1 / 0.5


def test_head_maps_zero_logits_to_the_middle_and_saturates_at_the_bounds() -> None:
    model = _model(lo=2.0, hi=50.0)
    nn.init.zeros_(model.head.out.weight)
    assert model.head.out.bias is not None
    with torch.no_grad():
        model.head.out.bias.fill_(0.0)
        mid = model(_rgb())
        model.head.out.bias.fill_(100.0)
        top = model(_rgb())
        model.head.out.bias.fill_(-100.0)
        bottom = model(_rgb())
    # sigmoid(0) = 1/2: halfway between 1/50 and 1/2 in log inverse depth, 1/10.
    torch.testing.assert_close(mid, torch.full_like(mid, 1 / 10))
    torch.testing.assert_close(top, torch.full_like(top, 1 / 2))
    torch.testing.assert_close(bottom, torch.full_like(bottom, 1 / 50))
    assert float(bottom.min()) > 0


def test_gradients_reach_every_parameter() -> None:
    model = _model()
    model(_rgb()).log().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert float(param.grad.abs().sum()) > 0, name


def test_same_seed_same_weights_and_output() -> None:
    a, b, c = _model(seed=3), _model(seed=3), _model(seed=4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    x = _rgb()
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))


def test_output_does_not_depend_on_the_rest_of_the_batch() -> None:
    # GroupNorm normalises each image on its own: unlike BatchNorm, an image's prediction
    # is the same alone or in a batch, in training and in evaluation mode.
    model = _model()
    x = _rgb(batch=3)
    for train in (True, False):
        model.train(train)
        torch.testing.assert_close(model(x[:1]), model(x)[:1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 32, 64), r"\[B,3,H,W\], got \[3, 32, 64\]"),
        ((2, 1, 32, 64), r"\[B,3,H,W\], got \[2, 1, 32, 64\]"),
        ((2, 3, 36, 64), "multiples of 8, got 36x64"),
        ((2, 3, 32, 60), "multiples of 8, got 32x60"),
    ],
)
def test_wrong_input_shape_raises(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _model()(torch.rand(*shape))


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 10.0), (5.0, 5.0), (10.0, 1.0)])
def test_bad_depth_range_raises(lo: float, hi: float) -> None:
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        DepthNet(SMALL, lo, hi)


def test_head_parameters() -> None:
    # The head: 1x1 conv 8 -> 4 (no bias) and 3x3 conv (4 + 3) -> 1 with bias.
    head = 8 * 4 + (4 + 3) * 9 + 1
    assert sum(p.numel() for p in _model().head.parameters()) == head
