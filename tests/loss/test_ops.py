"""Building blocks: the hand-written Sobel against conv2d, inv2depth, safe division."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

from loss.ops import downscale, inv2depth, safe_divide, sobel_l1, sobel_l1_conv


@pytest.mark.parametrize(
    "shape", [(2, 1, 9, 13), (1, 1, 1, 1), (1, 1, 1, 6), (3, 1, 5, 1), (2, 1, 2, 2)]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sobel_l1_equals_conv2d(
    helpers: ModuleType, shape: tuple[int, int, int, int], dtype: torch.dtype
) -> None:
    g = torch.Generator().manual_seed(sum(shape))
    r = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    weight = helpers.SOBEL.to(dtype)
    want = F.conv2d(F.pad(r, (1, 1, 1, 1), mode="replicate"), weight).abs().sum()
    got = sobel_l1(r)
    (want_grad,) = torch.autograd.grad(want, r)
    (got_grad,) = torch.autograd.grad(got, r)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    assert got.item() == pytest.approx(want.item(), rel=tol, abs=tol)
    # Signs of exact zeros (the 1x1 map has no gradient) agree too: |x|' at 0 is 0.
    assert torch.allclose(got_grad, want_grad, rtol=0, atol=tol)


@pytest.mark.parametrize("shape", [(2, 1, 9, 13), (1, 1, 1, 1), (3, 1, 5, 1)])
def test_sobel_l1_conv_equals_the_slices(shape: tuple[int, int, int, int]) -> None:
    # The CUDA path of sobel_l1, run here on the CPU: value and gradient of one formula.
    r = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    r.requires_grad_()
    want, got = sobel_l1(r), sobel_l1_conv(r)
    (want_grad,) = torch.autograd.grad(want, r)
    (got_grad,) = torch.autograd.grad(got, r)
    assert got.item() == pytest.approx(want.item(), rel=1e-13)
    assert torch.allclose(got_grad, want_grad, rtol=0, atol=1e-13)


def test_sobel_l1_conv_ignores_autocast() -> None:
    r = torch.randn(1, 1, 6, 7, generator=torch.Generator().manual_seed(4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = sobel_l1_conv(r)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(sobel_l1(r).item(), rel=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
def test_sobel_l1_on_cuda_matches_the_cpu() -> None:
    r = torch.randn(2, 1, 9, 13, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    cpu = r.clone().requires_grad_()
    gpu = r.cuda().requires_grad_()
    want, got = sobel_l1(cpu), sobel_l1(gpu)
    (want_grad,) = torch.autograd.grad(want, cpu)
    (got_grad,) = torch.autograd.grad(got, gpu)
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert torch.allclose(got_grad.cpu(), want_grad, rtol=0, atol=1e-12)


def test_sobel_l1_gradcheck() -> None:
    r = torch.randn(2, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sobel_l1, (r,))


def test_sobel_l1_known_value() -> None:
    # A horizontal ramp x: Sobel x = 8 inside, 4 at the replicated left/right borders
    # (one-sided difference of 1 over the 1-2-1 weights); Sobel y = 0 everywhere.
    r = torch.arange(5, dtype=torch.float64).repeat(3, 1).view(1, 1, 3, 5)
    assert sobel_l1(r).item() == pytest.approx(3 * (8 * 3 + 4 * 2))


def test_downscale_matches_interpolate() -> None:
    r = torch.randn(2, 1, 37, 51, dtype=torch.float64)
    assert downscale(r, 1) is r
    for k in (2, 3, 4):
        want = F.interpolate(r, scale_factor=1 / 2 ** (k - 1), mode="bilinear")
        assert torch.equal(downscale(r, k), want)
        assert downscale(r, k).shape[-2:] == (37 // 2 ** (k - 1), 51 // 2 ** (k - 1))


def test_inv2depth_and_safe_divide() -> None:
    x = torch.tensor([0.5, 0.0, -1.0, 4.0], requires_grad=True)
    d = inv2depth(x)
    assert d.tolist() == [2.0, 0.0, 0.0, 0.25]
    (grad,) = torch.autograd.grad(d.sum(), x)
    assert torch.isfinite(grad).all() and grad.tolist() == [-4.0, 0.0, 0.0, -1.0 / 16]
    num = torch.tensor([3.0, 0.0])
    assert safe_divide(num, torch.tensor([2.0, 0.0])).tolist() == [1.5, 0.0]
