"""What every data set shares: the error type, file readers, resizing and the grouped split.

Samples are ``(rgb, depth)`` tuples: ``rgb [3,H,W]`` float32 in [0, 1] and
``depth [1,H,W]`` float32 metres, 0 = no measurement. Depth outside
``[min_depth, max_depth]`` (and any non-finite value) is marked missing, for every data
set alike, because the network cannot predict outside that range and the metrics ignore it.
(A folder's ``.npy`` reader refuses NaN and infinity before that: in a file they are more
often an export bug than a convention.) A sample without any measurement is valid: the
loss gives it no weight and the metrics skip it.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from trainer.errors import UserError

__all__ = [
    "DataError",
    "DataSplits",
    "DatasetSplit",
    "DepthDataset",
    "Sample",
    "read_depth_png16",
    "read_rgb_image",
    "resize_depth",
    "resize_rgb",
    "split_groups",
    "to_sample",
]

Sample = tuple[torch.Tensor, torch.Tensor]
"""``(rgb [3,H,W] float32 in [0,1], depth [1,H,W] float32 metres, 0 = missing)``."""

# Pillow opens a 16-bit grayscale PNG as one of these modes (version and byte order).
_DEPTH16_MODES = ("I;16", "I;16B", "I;16L", "I")


# The last line(s) of a formatted traceback that raised a DataError: "<module>.DataError: <msg>".
_RAISED_DATA_ERROR = re.compile(r"^(?:[\w.]+\.)?DataError: ", re.MULTILINE)


class DataError(UserError, ValueError):
    """A data set cannot be read: missing path, empty folder, corrupt or mismatched file.

    The message starts with the offending path, then says what is wrong with it:
    ``DataError(path, problem)`` -> ``"<path>: <problem>"``.

    ``DataError(message)`` (one argument) rebuilds an error from its message; that is how
    pickling does it, and how a DataLoader worker re-raises an item's error in the main
    process, with the worker's whole traceback as the message. Only the error's own
    ``"<path>: <problem>"`` is kept from such a traceback, so that the message stays one
    line wherever the item was read (the command line prints it as is).
    """

    def __init__(self, path: Path | str, problem: str | None = None) -> None:
        if problem is None:
            message = str(path)
            raised = list(_RAISED_DATA_ERROR.finditer(message))
            if raised:  # a traceback: keep what follows its last "...DataError: "
                message = message[raised[-1].end() :].rstrip()
            path, sep, problem = message.partition(": ")
            if not sep:
                path, problem = "", message
            self.path = Path(path)
            self.problem = problem
            super().__init__(message)
            return
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class DepthDataset(Dataset[Sample], ABC):
    """A sized map-style data set of samples: ``len(ds)`` and ``ds[i] -> (rgb, depth)``."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> Sample: ...


class DataSplits(NamedTuple):
    """The three disjoint splits ``(train, val, test)`` of one data set.

    Which item lands where is fixed by the data seed alone (``DataConfig.seed``), never by
    the training seed: every trial and replicate is scored on the same items.
    """

    train: DepthDataset
    val: DepthDataset
    test: DepthDataset


class DatasetSplit(DepthDataset):
    """The items ``indices`` of ``dataset``, in that order (a typed ``Subset``)."""

    def __init__(self, dataset: DepthDataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Sample:
        return self.dataset[self.indices[index]]


def _open_image(path: Path) -> Image.Image:
    """Open and decode an image file, turning every decoding failure into a DataError."""
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"cannot decode image ({exc})") from exc


def read_rgb_image(path: Path) -> npt.NDArray[np.uint8]:
    """Read an 8-bit colour (or grayscale / palette) image -> ``[H,W,3]`` uint8."""
    img = _open_image(path)
    if img.mode not in ("RGB", "RGBA", "L", "P", "LA"):
        raise DataError(path, f"expected an 8-bit RGB image, got pixel mode {img.mode!r}")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_depth_png16(path: Path) -> npt.NDArray[np.float64]:
    """Read a 16-bit grayscale PNG -> ``[H,W]`` stored values as float64 (not yet scaled)."""
    img = _open_image(path)
    if img.mode not in _DEPTH16_MODES:
        raise DataError(
            path, f"expected a 16-bit grayscale depth PNG (mode I;16), got pixel mode {img.mode!r}"
        )
    values = np.asarray(img).astype(np.float64)
    if values.ndim != 2:
        raise DataError(path, f"expected a 2-D depth image, got shape {values.shape}")
    return values


def resize_rgb(rgb: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``rgb [3,h,w]`` float -> ``[3,height,width]``: area when shrinking, bilinear when growing.

    Area resampling averages every source pixel a target pixel covers (no aliasing);
    an axis that grows is then interpolated bilinearly.
    """
    h, w = rgb.shape[-2:]
    out = rgb[None]
    if height < h or width < w:
        out = F.interpolate(out, size=(min(h, height), min(w, width)), mode="area")
    if out.shape[-2:] != (height, width):
        out = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=False)
    return out[0].clamp(0.0, 1.0)


def resize_depth(depth: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``depth [1,h,w]`` -> ``[1,height,width]`` by nearest neighbour.

    Never interpolate depth: averaging across an edge or a missing (0) pixel invents
    depths that were never measured.
    """
    if depth.shape[-2:] == (height, width):
        return depth
    return F.interpolate(depth[None], size=(height, width), mode="nearest-exact")[0]


def to_sample(
    rgb: npt.NDArray[np.generic],
    depth: npt.NDArray[np.generic],
    *,
    height: int,
    width: int,
    min_depth: float,
    max_depth: float,
) -> Sample:
    """Decoded arrays -> a sample of the requested size.

    ``rgb``: ``[h,w,3]`` uint8 (0..255) or float in [0,1]; ``depth``: ``[h,w]`` metres.
    Returns ``rgb [3,height,width]`` float32 in [0,1] and ``depth [1,height,width]``
    float32, 0 where missing, non-finite or outside ``[min_depth, max_depth]``.
    """
    if rgb.dtype == np.uint8:
        rgb_t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float() / 255.0
    else:  # a copy: decoders may hand out read-only buffers
        rgb_t = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)
        rgb_t = rgb_t.clamp(0.0, 1.0)
    d = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(d) & (d >= min_depth) & (d <= max_depth)
    d = np.where(valid, d, 0.0).astype(np.float32)
    depth_t = torch.from_numpy(d)[None]
    return resize_rgb(rgb_t.contiguous(), height, width), resize_depth(depth_t, height, width)


class PairedFiles(DepthDataset):
    """RGB files paired with depth files; items ``(rgb [3,H,W], depth [1,H,W])``.

    Pairing is checked when the data set is built; decoding, dtype and size checks happen
    on access and raise :class:`DataError` naming the file. Subclasses say how a depth
    file is read (``read_depth``); stored value / ``depth_scale`` = metres.
    """

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        *,
        depth_scale: float,
        height: int,
        width: int,
        min_depth: float,
        max_depth: float,
    ) -> None:
        if depth_scale <= 0:
            raise ValueError(f"depth_scale must be > 0, got {depth_scale}")
        self.pairs = pairs
        self.depth_scale = depth_scale
        self.height, self.width = height, width
        self.min_depth, self.max_depth = min_depth, max_depth

    def read_depth(self, path: Path) -> npt.NDArray[np.float64]:
        """Stored depth values [H,W] of one file (16-bit PNG unless overridden)."""
        return read_depth_png16(path)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        rgb_path, depth_path = self.pairs[index]
        rgb = read_rgb_image(rgb_path)
        stored = self.read_depth(depth_path)
        if rgb.shape[:2] != stored.shape:
            raise DataError(
                depth_path,
                f"depth map is {stored.shape[1]}x{stored.shape[0]} px but its image "
                f"{rgb_path} is {rgb.shape[1]}x{rgb.shape[0]} px",
            )
        return to_sample(
            rgb,
            stored / self.depth_scale,
            height=self.height,
            width=self.width,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
        )


def split_groups(
    groups: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    *,
    source: Path | str,
    unit: str = "group",
) -> tuple[list[int], list[int], list[int]]:
    """Split items into ``(train, val, test)`` item indices; a group never straddles two.

    ``groups[i]`` names the group of item ``i`` (a KITTI drive, an NYU scene, a folder
    sequence): frames of one group are near duplicates, so a group split across train and
    test would score memorisation. Groups are put in an order drawn from ``(seed, name)``
    alone (SHA-256 of both), so adding a group never reorders the others. Walking that
    order, a group joins test when it brings the test item count closer to
    ``test_fraction`` of all items (a group that would overshoot by more than it helps is
    passed over, so one big group cannot swallow the split); the groups left are walked the
    same way for ``val_fraction``; the rest is train. Each split gets at least one group; a
    tie keeps the held-out split smaller. Test is filled first, so changing
    ``val_fraction`` never changes the test set.

    Returns three sorted, disjoint lists covering every index; the same arguments always
    give the same split. Raises :class:`DataError` (naming ``source``) when there are fewer
    than 3 groups, ``ValueError`` when the fractions leave nothing to train on.
    """
    if not (0.0 < val_fraction < 1.0 and 0.0 < test_fraction < 1.0) or (
        val_fraction + test_fraction >= 1.0
    ):
        raise ValueError(
            f"need 0 < val_fraction, test_fraction and val_fraction + test_fraction < 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    members: dict[str, list[int]] = {}
    for index, name in enumerate(groups):
        members.setdefault(name, []).append(index)
    if len(members) < 3:
        raise DataError(
            source,
            f"found {len(members)} {unit}(s); train, validation and test splits need at "
            f"least 3, and a {unit} is never split across them",
        )

    def key(name: str) -> tuple[bytes, str]:
        return hashlib.sha256(f"{seed}\0{name}".encode()).digest(), name

    order = sorted(members, key=key)
    total = len(groups)

    def fill(candidates: list[str], target: float, keep: int) -> list[str]:
        """Groups of ``candidates`` whose items come nearest ``target``; ``keep`` left over."""
        taken: list[str] = []
        count = 0
        for name in candidates:
            if len(candidates) - len(taken) - 1 < keep:
                break
            size = len(members[name])
            if abs(count + size - target) < abs(count - target):
                taken.append(name)
                count += size
        return taken or candidates[:1]

    test = fill(order, test_fraction * total, keep=2)
    in_test = frozenset(test)
    rest = [name for name in order if name not in in_test]
    val = fill(rest, val_fraction * total, keep=1)
    in_val = frozenset(val)
    train = [name for name in rest if name not in in_val]

    def items(names: list[str]) -> list[int]:
        return sorted(i for name in names for i in members[name])

    return items(train), items(val), items(test)
