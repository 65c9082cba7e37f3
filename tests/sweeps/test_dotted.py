"""Dotted keys set in a copy of a user's config (sweeps.dotted)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sweeps.dotted import DottedKeyError, set_dotted, with_dotted
from trainer.errors import UserError

BASE: dict[str, Any] = {
    "model": {"loss": {"lambda_sg": 0.5, "num_scales": 4}, "layers": [1, 2]},
    "lr": 0.1,
    "empty": None,
}


def test_keys_are_set_in_a_copy_and_other_keys_kept() -> None:
    out = with_dotted(BASE, {"model.loss.lambda_sg": 0.25, "lr": 0.01, "seed": 3})
    assert out == {
        "model": {"loss": {"lambda_sg": 0.25, "num_scales": 4}, "layers": [1, 2]},
        "lr": 0.01,
        "empty": None,
        "seed": 3,
    }
    assert BASE["model"]["loss"]["lambda_sg"] == 0.5  # the base is not changed
    out["model"]["layers"].append(3)
    assert BASE["model"]["layers"] == [1, 2]  # deep copy


def test_missing_mappings_are_created() -> None:
    out = with_dotted(BASE, {"optim.sched.warmup": 10, "empty.x": True})
    assert out["optim"] == {"sched": {"warmup": 10}}
    assert out["empty"] == {"x": True}  # an empty section (null) becomes a mapping


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("model.layers.first", "cannot set model.layers.first: model.layers is a list"),
        ("lr.value", "cannot set lr.value: lr is a number in the base config, not a mapping"),
        ("model.loss.lambda_sg.x", "model.loss.lambda_sg is a number"),
    ],
)
def test_a_key_through_a_non_mapping_is_an_error(key: str, message: str) -> None:
    data = with_dotted(BASE, {})
    with pytest.raises(DottedKeyError, match=re.escape(message)) as info:
        set_dotted(data, key, 1)
    assert isinstance(info.value, UserError)
    assert data == BASE  # unchanged by the failed set
