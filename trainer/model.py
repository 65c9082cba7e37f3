"""A small U-Net-like encoder-decoder that predicts inverse depth from one RGB image.

The network is deliberately small: a sweep trains many short runs, on CPU when there is
no GPU, and the loss (not the architecture) is what is being tuned. Normalisation is
GroupNorm, which behaves identically in training and evaluation and for any batch size
(BatchNorm statistics would change with the batch size a trial happens to use).
Upsampling is nearest-neighbour, with convolutions on either side: its backward pass is
deterministic on CUDA, unlike bilinear interpolation's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import ModelConfig

__all__ = ["DepthNet"]

# ImageNet statistics: a fixed affine map that centres [0, 1] RGB around zero.
_RGB_MEAN = (0.485, 0.456, 0.406)
_RGB_STD = (0.229, 0.224, 0.225)


def _norm(channels: int) -> nn.GroupNorm:
    # Up to 8 groups, always a divisor of the channel count (base_channels may be odd).
    return nn.GroupNorm(math.gcd(8, channels), channels)


class _ConvBlock(nn.Sequential):
    """3x3 convolution, GroupNorm, ReLU. ``stride=2`` halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            _norm(out_channels),
            nn.ReLU(inplace=True),
        )


class _EncoderStage(nn.Sequential):
    """[B,Cin,H,W] -> [B,Cout,H/2,W/2]: a strided block then a plain block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            _ConvBlock(in_channels, out_channels, stride=2),
            _ConvBlock(out_channels, out_channels),
        )


class _DecoderStage(nn.Module):
    """[B,Cin,h,w] + skip [B,Cskip,2h,2w] -> [B,Cout,2h,2w].

    A 1x1 convolution reduces the channels before the nearest-neighbour upsampling (the
    two commute, and the convolution is 4x cheaper at the low resolution); one 3x3 block
    then fuses the upsampled features with the skip connection.
    """

    def __init__(
        self, in_channels: int, reduce_channels: int, skip_channels: int, out_channels: int
    ) -> None:
        super().__init__()
        # No bias: a constant per channel would be (all but) undone by the GroupNorm below.
        self.reduce = nn.Conv2d(in_channels, reduce_channels, 1, bias=False)
        self.fuse = _ConvBlock(reduce_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")
        return self.fuse(torch.cat([x, skip], dim=1))


class _FullResolutionHead(nn.Module):
    """[B,Cin,H/2,W/2] + normalised rgb [B,3,H,W] -> logits [B,1,H,W].

    Full-resolution convolutions with few channels are the slowest layers of this network
    on CPU (at 16 base channels, a GroupNorm block with 8 channels there took a third of a
    training step), so
    the last step is one linear 3x3 convolution over a few upsampled feature channels and
    the image itself, which lets edges in the image sharpen the upsampled prediction.
    """

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__()
        # No bias: the 3x3 convolution's own bias already adds a constant.
        self.reduce = nn.Conv2d(in_channels, hidden_channels, 1, bias=False)
        self.out = nn.Conv2d(hidden_channels + 3, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")
        return self.out(torch.cat([x, rgb], dim=1))


class DepthNet(nn.Module):
    """Encoder-decoder with skip connections; the head gives bounded inverse depth.

    Encoder stage ``i`` (``i = 0 .. num_stages-1``) halves the resolution and has
    ``base_channels * 2**i`` channels. Decoder stage ``j`` (``j = num_stages-1 .. 1``)
    doubles the resolution and fuses encoder stage ``j-1``'s output (the skip
    connection); the head returns to full resolution, fusing the input image itself.

    Output: ``inv = exp(log(1/max_depth) + log(max_depth/min_depth) * sigmoid(logits))``: a
    sigmoid in log inverse depth, so every value lies in ``[1/max_depth, 1/min_depth]``
    (strictly inside unless the sigmoid saturates in floating point, at logits of about
    +-20 in float32) and depth ``1/inv`` in ``[min_depth, max_depth]``: always positive
    and finite. The log scale gives every depth octave the same share of the logit range;
    a sigmoid linear in inverse depth (the first version) put 1-2 m in half of it and
    everything beyond 10 m in its saturated tail, and learned about 1.6x slower
    (docs/BENCHMARKS.md, "Proxy task").

    Args:
        cfg: channel width and number of stages.
        min_depth: smallest predictable depth (m), > 0.
        max_depth: largest predictable depth (m), > min_depth.
    """

    rgb_mean: torch.Tensor
    rgb_std: torch.Tensor

    def __init__(self, cfg: ModelConfig, min_depth: float, max_depth: float) -> None:
        super().__init__()
        if not 0.0 < min_depth < max_depth:
            raise ValueError(
                f"need 0 < min_depth < max_depth (got min_depth={min_depth}, max_depth={max_depth})"
            )
        self.num_stages = cfg.num_stages
        self.log_min_inv = -math.log(max_depth)
        self.log_inv_range = math.log(max_depth / min_depth)
        self.register_buffer("rgb_mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(_RGB_STD).view(1, 3, 1, 1), persistent=False)

        channels = [cfg.base_channels * 2**i for i in range(cfg.num_stages)]
        self.encoder = nn.ModuleList(
            _EncoderStage(c_in, c_out)
            for c_in, c_out in zip([3, *channels[:-1]], channels, strict=True)
        )
        # decoder[j - 1] is stage j: channels[j] in, channels[j-1] out (and skip).
        self.decoder = nn.ModuleList(
            _DecoderStage(channels[j], channels[j - 1], channels[j - 1], channels[j - 1])
            for j in range(1, cfg.num_stages)
        )
        self.head = _FullResolutionHead(channels[0], max(cfg.base_channels // 4, 4))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb: [B,3,H,W] in [0,1], H and W multiples of 2**num_stages.

        Returns: [B,1,H,W] inverse depth in [1/max_depth, 1/min_depth].
        """
        self._check_input(rgb)
        x = (rgb - self.rgb_mean) / self.rgb_std
        features = [x]
        for stage in self.encoder:
            features.append(stage(features[-1]))
        # features[i] has resolution 1/2^i: the image, then each encoder stage's output.
        y = features[-1]
        for j in reversed(range(1, self.num_stages)):
            y = self.decoder[j - 1](y, features[j])
        return self.inverse_depth(self.head(y, x))

    def inverse_depth(self, logits: torch.Tensor) -> torch.Tensor:
        """[B,1,H,W] logits -> inverse depth: a sigmoid in log inverse depth (see above)."""
        return torch.exp(self.log_min_inv + self.log_inv_range * torch.sigmoid(logits))

    def _check_input(self, rgb: torch.Tensor) -> None:
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise ValueError(f"DepthNet expects rgb of shape [B,3,H,W], got {list(rgb.shape)}")
        step = 2**self.num_stages
        height, width = rgb.shape[-2:]
        if height % step or width % step:
            raise ValueError(
                f"DepthNet with {self.num_stages} stages needs H and W to be multiples of "
                f"{step}, got {height}x{width}"
            )
