"""Finding packnet-sfm and importing its modules.

packnet-sfm is not a package on any registry: a checkout (its root holds ``packnet_sfm/``
and ``configs/``) is put on ``sys.path`` here, from ``--packnet-sfm DIR``, else
``$SALSWEEP_PACKNET_SFM``, else wherever ``PYTHONPATH`` already finds ``packnet_sfm``.
Its ``parse_train_file`` imports ``configs.default_config`` by that top-level name, so
the checkout's root (not only its package) must be importable, and no other ``configs``
may come first.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from studies.command.packnet.errors import PacknetSetupError

__all__ = ["PACKNET_ENV", "import_packnet", "locate_packnet"]

PACKNET_ENV = "SALSWEEP_PACKNET_SFM"
_MARKERS = ("packnet_sfm/__init__.py", "configs/default_config.py")
_WHERE_FROM = (
    f"pass --packnet-sfm DIR, set {PACKNET_ENV}=DIR, or put the checkout on PYTHONPATH "
    "(DIR: the folder that holds packnet_sfm/ and configs/)"
)


def _checkout(path: Path) -> Path:
    missing = [m for m in _MARKERS if not (path / m).is_file()]
    if missing:
        raise PacknetSetupError(
            f"{path} is no packnet-sfm checkout (no {' or '.join(missing)}): {_WHERE_FROM}"
        )
    return path.resolve()


def locate_packnet(folder: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The root of the packnet-sfm checkout, put first on ``sys.path`` (once): ``folder``,
    else ``env[SALSWEEP_PACKNET_SFM]`` (``env`` defaults to ``os.environ``), else the
    checkout that ``packnet_sfm`` is imported from now.

    Raises:
        PacknetSetupError: no checkout there, or none found.
    """
    env = os.environ if env is None else env
    named = folder if folder is not None else env.get(PACKNET_ENV) or None
    if named is not None:
        root = _checkout(Path(named).expanduser())
    else:
        spec = importlib.util.find_spec("packnet_sfm")
        if spec is None or spec.origin is None:
            raise PacknetSetupError(f"packnet-sfm is not importable: {_WHERE_FROM}")
        root = _checkout(Path(spec.origin).resolve().parent.parent)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    _check_configs(root)
    return root


def _check_configs(root: Path) -> None:
    """``configs.default_config`` is the checkout's (another ``configs`` package earlier
    on ``sys.path``, e.g. in the working folder, would shadow it)."""
    module = import_packnet("configs.default_config", "its parse_train_file")
    found = Path(getattr(module, "__file__", "") or "").resolve()
    if found != root / "configs" / "default_config.py":
        raise PacknetSetupError(
            f"configs.default_config is imported from {found}, not from the packnet-sfm "
            f"checkout {root}: run from another folder, or put {root} first on PYTHONPATH"
        )


def import_packnet(name: str, needed_by: str) -> ModuleType:
    """``importlib.import_module(name)`` for a packnet-sfm module; an import that fails
    (packnet-sfm's own requirements: torchvision, horovod, wandb, cv2 ...) is a
    `PacknetSetupError` naming what is missing and what needed it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing = f"no module {exc.name!r}" if exc.name else str(exc)
        raise PacknetSetupError(
            f"cannot import {name} ({needed_by}): {missing}; install packnet-sfm's "
            "requirements in this environment (README: 'Sweeping packnet-sfm')"
        ) from exc
