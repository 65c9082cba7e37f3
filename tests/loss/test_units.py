"""The loss's depth range: a unit-free working domain (loss.units), checked values."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch

from loss import ScaleAdaptiveLoss, get_loss
from loss.units import DEFAULT_MAX_DEPTH, DEFAULT_MIN_DEPTH, input_scale
from tests.process_helpers import PythonChild


def test_input_scale_and_defaults() -> None:
    assert (DEFAULT_MIN_DEPTH, DEFAULT_MAX_DEPTH) == (1.0, 80.0)
    assert input_scale(False, 0.5, 40.0) == 40.0  # 1 / (40 x) = depth / 40
    assert input_scale(True, 0.5, 40.0) == 0.5  # 0.5 x = inverse depth x min_depth
    loss = ScaleAdaptiveLoss()
    assert (loss.min_depth, loss.max_depth) == (1.0, 80.0)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("use_inv_depth", [False, True])
def test_same_loss_in_any_unit(helpers: ModuleType, sparse: bool, use_inv_depth: bool) -> None:
    """Depths in millimetres with the range in millimetres: the loss of the same scene in
    metres, value and gradient (with respect to the prediction in its own unit, so the
    gradient scales by the unit: d/d(x/1000) = 1000 d/dx)."""
    shape = (2, 1, 16, 24)
    pred = helpers.random_inv(shape, seed=40)
    gt = helpers.random_inv(shape, seed=41, missing=0.4 if sparse else 0.0)
    mask = gt > 0
    kwargs = {"sparse": sparse, "use_inv_depth": use_inv_depth, "num_scales": 3}
    metres = ScaleAdaptiveLoss(**kwargs, min_depth=0.5, max_depth=40.0)
    millimetres = ScaleAdaptiveLoss(**kwargs, min_depth=500.0, max_depth=40_000.0)
    p_m = pred.clone().requires_grad_()
    p_mm = (pred / 1000).requires_grad_()
    out_m, out_mm = metres(p_m, gt, mask), millimetres(p_mm, gt / 1000, mask)
    (g_m,) = torch.autograd.grad(out_m.total, p_m)
    (g_mm,) = torch.autograd.grad(out_mm.total, p_mm)
    assert list(out_mm.metrics) == list(out_m.metrics)
    assert "scale_adaptive/absolute" in out_m.metrics
    for name, value in out_m.metrics.items():
        assert float(out_mm.metrics[name]) == pytest.approx(float(value), rel=1e-12), name
    assert helpers.rel_err(g_mm, 1000 * g_m) < 1e-12


@pytest.mark.parametrize("use_inv_depth", [False, True])
def test_absolute_term_follows_the_range_and_nothing_else_does(
    helpers: ModuleType, use_inv_depth: bool
) -> None:
    """epsilon 0: relative and gradient terms do not depend on the range at all; the
    absolute term is the one in metres (inverse metres) over max_depth (times min_depth)."""
    shape = (2, 1, 16, 24)
    pred, gt = helpers.random_inv(shape, seed=42), helpers.random_inv(shape, seed=43)
    mask = torch.ones(shape, dtype=torch.bool)
    kwargs = {"use_inv_depth": use_inv_depth, "epsilon": 0.0, "num_scales": 2}
    wide = ScaleAdaptiveLoss(**kwargs, min_depth=2.0, max_depth=100.0)(pred, gt, mask).metrics
    narrow = ScaleAdaptiveLoss(**kwargs, min_depth=0.5, max_depth=10.0)(pred, gt, mask).metrics
    for name in ("scale_adaptive/relative", "gradient/scale_1", "gradient/scale_2"):
        assert float(wide[name]) == pytest.approx(float(narrow[name]), rel=1e-12), name
    ratio = float(wide["scale_adaptive/absolute"] / narrow["scale_adaptive/absolute"])
    assert ratio == pytest.approx(4.0 if use_inv_depth else 0.1, rel=1e-12)


def test_default_range_balances_the_terms(helpers: ModuleType) -> None:
    """The seed's quick-check depths (9-100 m): in metres the absolute term is about 13
    times the relative one; over the default range a sixth of it (issue 7.3a)."""
    shape = (2, 1, 48, 64)
    pred, gt = helpers.random_inv(shape, seed=44), helpers.random_inv(shape, seed=45)
    mask = gt > 0
    scaled = get_loss("scale-adaptive")(pred, gt, mask).metrics
    metres = get_loss("scale-adaptive", min_depth=0.5, max_depth=1.0)(pred, gt, mask).metrics
    ratio = float(scaled["scale_adaptive/absolute"] / scaled["scale_adaptive/relative"])
    ratio_m = float(metres["scale_adaptive/absolute"] / metres["scale_adaptive/relative"])
    assert ratio_m > 10.0
    assert ratio < 0.2
    assert ratio == pytest.approx(ratio_m / 80, rel=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_depth": 0.0}, r"min_depth must be a finite number > 0 \(metres\), got 0.0"),
        ({"max_depth": -1.0}, r"max_depth must be a finite number > 0 \(metres\), got -1.0"),
        ({"max_depth": float("inf")}, r"max_depth must be a finite number > 0"),
        ({"min_depth": float("nan")}, r"min_depth must be a finite number > 0"),
        ({"min_depth": True}, r"min_depth must be a finite number > 0"),
        ({"max_depth": "80"}, r"max_depth must be a finite number > 0"),
        ({"min_depth": 80.0}, r"max_depth \(80.0\) must be larger than min_depth \(80.0\)"),
        ({"min_depth": 5, "max_depth": 2}, r"max_depth \(2.0\) must be larger than min_depth"),
    ],
)
def test_bad_range(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_loss("sparse-scale-adaptive", **params)


def test_range_is_normalised_to_floats() -> None:
    loss = ScaleAdaptiveLoss(min_depth=1, max_depth=80)
    assert type(loss.min_depth) is float and type(loss.max_depth) is float
    assert loss == ScaleAdaptiveLoss()


def test_units_module_does_not_import_torch(python_child: PythonChild) -> None:
    code = "import loss.units, sys; print('torch' in sys.modules)"
    result = python_child.run("-c", code)
    assert result.stdout.strip() == "False", result.stderr
