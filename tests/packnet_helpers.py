"""Where the tests find packnet-sfm's sources, and how they import its parts.

packnet-sfm (TRI-ML/packnet-sfm, commit de53b31) is not a package on any registry; its
sources lie beside the project (``shared/third_party/packnet-sfm``, or the folder named by
``SALSWEEP_PACKNET_SFM``) and tests put them on ``sys.path``, never copy them. What
imports here with the project's torch 2.13 CPU wheel and the dev extras (yacs, cv2,
termcolor): its config (``utils/config.py``, ``configs/default_config.py``), its losses,
``utils/reduce.py``, ``utils/logging.py``, ``trainers/base_trainer.py``. What does not:
``models/model_wrapper.py`` and every model (``utils/depth.py`` and
``datasets/augmentations.py`` import torchvision, which has no wheel for this torch
here), ``trainers/horovod_trainer.py`` (horovod), and the KITTI data its configs name.
:func:`torchvision_stub` lets ModelWrapper import without torchvision: any use of the
stub raises, so a test that passes never touched torchvision.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = [
    ROOT / "shared" / "third_party" / "packnet-sfm",
    ROOT.parent / "shared" / "third_party" / "packnet-sfm",
    Path("/work/shared/third_party/packnet-sfm"),
]
MISSING = "no packnet_sfm/ and configs/ in {where} (SALSWEEP_PACKNET_SFM names the folder)"


def searched() -> list[Path]:
    """Where packnet-sfm is looked for: SALSWEEP_PACKNET_SFM when set, else CANDIDATES."""
    named = os.environ.get("SALSWEEP_PACKNET_SFM")
    return [Path(named)] if named else list(dict.fromkeys(CANDIDATES))


def packnet_root() -> Path | None:
    """The first checkout found (with its package and its configs), or None."""
    for path in searched():
        if (path / "packnet_sfm" / "losses" / "supervised_loss.py").is_file() and (
            path / "configs" / "default_config.py"
        ).is_file():
            return path.resolve()
    return None


def missing_reason() -> str:
    return MISSING.format(where=", ".join(str(p) for p in searched()))


class _Stub(types.ModuleType):
    """A module whose every attribute use raises (import works, use fails loudly)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(f"torchvision is a test stub here: {self.__name__}.{name} was used")


def torchvision_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """``torchvision`` and ``torchvision.transforms`` as stubs for this test (packnet-sfm
    imports them at module level and uses them for data augmentation and image writing,
    neither of which the tests run)."""
    package = _Stub("torchvision")
    transforms = _Stub("torchvision.transforms")
    package.__dict__["transforms"] = transforms
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.transforms", transforms)
