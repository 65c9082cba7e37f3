"""loss.names: the one list of methods and parameters, importable without torch."""

from __future__ import annotations

import typing

import pytest

import loss
from loss import names
from tests.process_helpers import PythonChild
from trainer.config import LossConfig


def test_methods_come_from_the_literal() -> None:
    assert typing.get_args(names.LossMethod) == names.LOSS_METHODS
    assert names.LOSS_METHODS == ("scale-adaptive", "sparse-scale-adaptive", "ssi", "sparse-ssi")
    assert names.SSI_METHODS == ("ssi", "sparse-ssi")
    assert names.SCALE_ADAPTIVE_METHODS == ("scale-adaptive", "sparse-scale-adaptive")
    assert names.GRADIENT_NORMALIZATIONS == ("per-scale", "full-resolution")
    # The trainer's config uses the same Literal, not a copy of it.
    assert LossConfig.model_fields["method"].annotation is names.LossMethod


@pytest.mark.parametrize(
    ("method", "ssi", "sparse", "counterpart"),
    [
        ("scale-adaptive", False, False, "ssi"),
        ("sparse-scale-adaptive", False, True, "sparse-ssi"),
        ("ssi", True, False, "ssi"),
        ("sparse-ssi", True, True, "sparse-ssi"),
    ],
)
def test_predicates(method: str, ssi: bool, sparse: bool, counterpart: str) -> None:
    assert names.is_ssi_method(method) is ssi
    assert names.is_sparse_method(method) is sparse
    assert names.ssi_counterpart(method) == counterpart
    assert names.check_method(method) == method


@pytest.mark.parametrize("name", ["sparse-l1", "SSI", "", "scale_adaptive", None, 3])
def test_unknown_names(name: object) -> None:
    assert names.is_ssi_method(name) is False
    assert names.is_sparse_method(name) is False
    with pytest.raises(ValueError, match="unknown loss method") as info:
        names.method_params(name)  # type: ignore[arg-type]
    assert "scale-adaptive, sparse-scale-adaptive, ssi, sparse-ssi" in str(info.value)
    with pytest.raises(ValueError, match="unknown loss method"):
        names.ssi_counterpart(name)  # type: ignore[arg-type]


def test_method_params_are_what_get_loss_accepts() -> None:
    for method in names.LOSS_METHODS:
        params = names.method_params(method)
        fn = loss.get_loss(method)
        # Every name is a field of the loss class, and the class has no other parameter
        # than these and `sparse` (set from the method name).
        fields = set(type(fn).__dataclass_fields__)  # type: ignore[attr-defined]
        assert fields == {*params, "sparse"}, method


def test_loss_config_sets_every_parameter_but_alpha() -> None:
    # A new loss parameter without a LossConfig field would be silently unconfigurable.
    every = {p for m in names.LOSS_METHODS for p in names.method_params(m)}
    assert every - set(LossConfig.model_fields) == {"alpha"}
    assert LossConfig(method="sparse-ssi").loss_params() == {"num_scales": 4}
    config = LossConfig(method="scale-adaptive", gradient_normalization="full-resolution")
    assert config.loss_params() == {
        "lambda_sg": 0.5,
        "epsilon": 1e-8,
        "num_scales": 4,
        "use_absolute": True,
        "use_inv_depth": False,
        "gradient_normalization": "full-resolution",
        "gradient_window": "zero-filled",
        "min_depth": 1.0,
        "max_depth": 80.0,
    }
    assert loss.get_loss(config.method, **config.loss_params()) == loss.ScaleAdaptiveLoss(
        gradient_normalization="full-resolution"
    )


def test_names_do_not_import_torch(python_child: PythonChild) -> None:
    code = (
        "import sys\n"
        "import loss.names\n"
        "from loss import LOSS_METHODS, method_params\n"
        "import trainer.config\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
        "import loss\n"
        "loss.get_loss\n"  # the lazy attribute loads the losses, and torch with them
        "assert 'torch' in sys.modules\n"
    )
    result = python_child.run("-c", code)
    assert result.returncode == 0, result.stderr


def test_lazy_attributes() -> None:
    for name in loss.__all__:
        assert getattr(loss, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        loss.nope  # noqa: B018
