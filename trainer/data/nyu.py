"""NYU Depth v2, the labelled subset: ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5).

Keys read (the rest of the file is ignored)::

    images  [N, 3, W, H] uint8     RGB, as MATLAB's column-major order stores [H, W, 3, N]
    depths  [N, W, H]    float     metres (in-painted, dense)
    scenes  [1, N]       cell      scene name of each image, e.g. 'bedroom_0001'
                                   (references to uint16 char arrays, as MATLAB stores
                                   strings; plain HDF5 strings are read too)

so image ``i`` is ``images[i].transpose(2, 1, 0)`` -> ``[H, W, 3]`` and its depth
``depths[i].T`` -> ``[H, W]``. ``scenes`` is read only to split the data set: images of one
scene (the same room, seconds apart; ``kitchen_0028a`` and ``kitchen_0028b`` count as one
room) always land in the same split. A file without
``scenes`` cannot be split honestly and is refused by :meth:`NyuDepthV2.groups`, rather
than guessed at with blocks of frames; reading images needs only ``images`` and
``depths``. The file is opened for each item (cheap: HDF5 reads only the requested slice),
which keeps the data set safe to send to DataLoader workers.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

from trainer.data.common import DataError, DepthDataset, Sample, to_sample

__all__ = ["NyuDepthV2", "check_nyu_file", "read_nyu_item", "read_nyu_scenes", "room_of"]


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise DataError(path, "NYU .mat file not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(
            path, f"not an HDF5 (MATLAB v7.3) file, cannot read it with h5py ({exc})"
        ) from exc


def check_nyu_file(path: Path) -> int:
    """Check keys, shapes and dtypes of a labelled NYU file; return its image count ``N``."""
    with _open(path) as f:
        for key in ("images", "depths"):
            if not isinstance(f.get(key), h5py.Dataset):
                raise DataError(path, f"missing data set {key!r} (found keys: {sorted(f.keys())})")
        images, depths = f["images"], f["depths"]
        if images.ndim != 4 or images.shape[1] != 3:
            raise DataError(path, f"'images' must be [N,3,W,H], got shape {images.shape}")
        if images.dtype != np.uint8:
            raise DataError(path, f"'images' must be uint8, got {images.dtype}")
        if depths.ndim != 3:
            raise DataError(path, f"'depths' must be [N,W,H], got shape {depths.shape}")
        if depths.dtype.kind != "f":
            raise DataError(path, f"'depths' must hold floats (metres), got {depths.dtype}")
        if depths.shape != (images.shape[0], *images.shape[2:]):
            raise DataError(
                path,
                f"'images' {images.shape} and 'depths' {depths.shape} disagree "
                "(expected [N,3,W,H] and [N,W,H])",
            )
        if images.shape[0] == 0:
            raise DataError(path, "holds no images")
        return int(images.shape[0])


def read_nyu_item(path: Path, index: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """Image ``index`` -> ``(rgb [H,W,3] uint8, depth [H,W] metres)``."""
    with _open(path) as f:
        try:
            rgb = np.asarray(f["images"][index]).transpose(2, 1, 0)
            depth = np.asarray(f["depths"][index], dtype=np.float64).T
        except (KeyError, OSError, ValueError, IndexError) as exc:
            raise DataError(path, f"cannot read image {index} ({exc})") from exc
    return np.ascontiguousarray(rgb, dtype=np.uint8), np.ascontiguousarray(depth)


def _scene_names(f: h5py.File, scenes: h5py.Dataset) -> list[str]:
    """Decode ``scenes``: a cell array of char arrays (MATLAB) or an array of strings."""
    if h5py.check_dtype(ref=scenes.dtype) is not None:
        names = []
        for ref in np.asarray(scenes[()]).ravel():
            chars = np.asarray(f[ref][()]).ravel()
            names.append("".join(chr(int(c)) for c in chars))
        return names
    if h5py.check_string_dtype(scenes.dtype) is not None:
        return [str(name) for name in np.asarray(scenes.asstr()[()]).ravel()]
    raise TypeError(f"'scenes' must hold strings or references to them, got {scenes.dtype}")


def read_nyu_scenes(path: Path, count: int) -> list[str]:
    """The scene name of each of the ``count`` images -> ``[N]`` strings."""
    with _open(path) as f:
        scenes = f.get("scenes")
        if not isinstance(scenes, h5py.Dataset):
            raise DataError(
                path,
                "missing cell array 'scenes' (the scene of each image), needed to split by "
                "scene: images of one room are near duplicates, so a split by image would "
                "test on training scenes",
            )
        try:
            names = _scene_names(f, scenes)
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise DataError(path, f"cannot read 'scenes' ({exc})") from exc
    if len(names) != count:
        raise DataError(path, f"'scenes' names {len(names)} images but the file holds {count}")
    return names


def room_of(scene: str) -> str:
    """``'kitchen_0028b'`` -> ``'kitchen_0028'``: the scene name without a session letter."""
    return re.sub(r"(?<=\d)[a-z]$", "", scene)


class NyuDepthV2(DepthDataset):
    """The labelled NYU Depth v2 images; items ``(rgb [3,H,W], depth [1,H,W])``."""

    group_unit = "scene"

    def __init__(
        self,
        path: Path,
        *,
        height: int,
        width: int,
        min_depth: float,
        max_depth: float,
    ) -> None:
        self.path = Path(path)
        self.count = check_nyu_file(self.path)
        self.height, self.width = height, width
        self.min_depth, self.max_depth = min_depth, max_depth

    def __len__(self) -> int:
        return self.count

    def groups(self) -> list[str]:
        """The room of every image ``[N]``: images of one room stay in one split.

        The room is the scene name without a session letter: ``kitchen_0028a`` and
        ``kitchen_0028b`` are two visits to one kitchen, so they count as one group.
        """
        return [room_of(scene) for scene in read_nyu_scenes(self.path, self.count)]

    def __getitem__(self, index: int) -> Sample:
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(f"image {index} out of range (0..{self.count - 1})")
        rgb, depth = read_nyu_item(self.path, index)
        return to_sample(
            rgb,
            depth,
            height=self.height,
            width=self.width,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
        )
