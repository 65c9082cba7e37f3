"""A file cache of the boundary's simulated null distribution (studies.confirmation.boundary).

The simulation takes about 0.4 s a design (n0, n_max, rho) and every process that shows a
race's verdict (``studies show``, ``studies export``) would pay it again. Its result is a
pure function of the design, the simulation's seed and size, and numpy's generator, so it
is kept as a ``.npy`` file named by all of them:

```
<cache>/boundary-v1-<seed>-<paths>-<n0>-<n_max>-<rho x 1000>-numpy<version>.npy
```

``<cache>`` is ``SALSWEEP_CACHE``, else ``$XDG_CACHE_HOME/salsweep``, else
``~/.cache/salsweep``. A file that is missing, unreadable or of the wrong shape is
simulated again and rewritten (atomically: a temporary file, then a rename); a cache that
cannot be written is skipped. The values read back are the simulation's, bit for bit
(tests/studies/confirmation/test_boundary.py).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from studies.confirmation.tdist import FloatArray

__all__ = ["CACHE_ENV", "cache_dir", "cached_minima"]

CACHE_ENV = "SALSWEEP_CACHE"
_FORMAT = "v1"


def cache_dir() -> Path:
    """``SALSWEEP_CACHE``, else ``$XDG_CACHE_HOME/salsweep``, else ``~/.cache/salsweep``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "salsweep"


def _path(seed: int, paths: int, n0: int, n_max: int, rho: float) -> Path:
    key = f"{_FORMAT}-{seed}-{paths}-{n0}-{n_max}-{round(rho * 1000)}-numpy{np.__version__}"
    return cache_dir() / f"boundary-{key}.npy"


def _read(path: Path, paths: int) -> FloatArray | None:
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if values.dtype != np.float64 or values.shape != (paths,):
        return None
    return values


def _write(path: Path, values: FloatArray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                np.save(out, values, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a cache that cannot be written only costs the next process the simulation


def cached_minima(
    seed: int,
    paths: int,
    n0: int,
    n_max: int,
    rho: float,
    simulate: Callable[[], FloatArray],
) -> FloatArray:
    """The cached result of ``simulate()`` for this design, else ``simulate()`` stored for
    the next process. Read-only either way."""
    path = _path(seed, paths, n0, n_max, rho)
    values = _read(path, paths)
    if values is None:
        values = simulate()
        _write(path, values)
    values.flags.writeable = False
    return values
