"""Fixtures of the launcher's tests: packnet-sfm's real sources on ``sys.path``
(tests/packnet_helpers.py), and every attribute the launcher patches put back after each
test (packnet-sfm's ``get_loss_func``, ``get_cfg_defaults``, ``reduce_value``, ``sys.path``).

Missing (or missing its imports: opencv-python-headless, termcolor, yacs, in the dev
extras), the tests that need packnet-sfm skip with the reason, and fail under CI=true.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.packnet_helpers import missing_reason, packnet_root


class Packnet:
    """The checkout's root and its modules the tests use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.supervised_loss = importlib.import_module("packnet_sfm.losses.supervised_loss")
        self.default_config = importlib.import_module("configs.default_config")
        self.config = importlib.import_module("packnet_sfm.utils.config")
        self.reduce = importlib.import_module("packnet_sfm.utils.reduce")
        self.logging = importlib.import_module("packnet_sfm.utils.logging")

    def source(self, relative: str) -> str:
        return (self.root / relative).read_text(encoding="utf-8")


@pytest.fixture
def packnet(
    require_system: Callable[[str, bool, str], None], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Packnet]:
    root = packnet_root()
    require_system("packnet-sfm", root is not None, missing_reason())
    assert root is not None
    monkeypatch.setattr(sys, "path", [str(root), *sys.path])
    try:
        with warnings.catch_warnings():  # packnet-sfm compares strings with `is ''`
            warnings.simplefilter("ignore", SyntaxWarning)
            found = Packnet(root)
    except ImportError as exc:  # e.g. cv2 or termcolor not installed
        require_system("packnet-sfm", False, f"its imports fail: {exc} (make setup-dev)")
        raise  # not reached
    for module, name in (
        (found.supervised_loss, "get_loss_func"),
        (found.default_config, "get_cfg_defaults"),
        (found.reduce, "reduce_value"),
    ):
        monkeypatch.setattr(module, name, getattr(module, name))
    yield found
