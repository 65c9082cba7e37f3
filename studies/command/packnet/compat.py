"""What packnet-sfm (TRI-ML, commit de53b31; upstream's 09ee0dc has the same code) needs
put right to run today, applied at start-up without editing its files. Each fix is
applied only where it is needed, and each restores a meaning, never changes one:

- Pillow 10 removed ``PIL.Image.ANTIALIAS`` (an alias of ``LANCZOS`` since Pillow 2.7);
  ``packnet_sfm/datasets/augmentations.py`` uses it as a default argument when it is
  imported. :func:`environment_aliases` puts the alias back.
- matplotlib 3.9 removed ``matplotlib.cm.get_cmap``; ``packnet_sfm/utils/depth.py``
  imports it. The alias is ``matplotlib.colormaps.get_cmap`` (same names, same maps).
- Validation crashes with the PackNet and ResNet depth networks (upstream issue #157):
  in eval mode they return ``inv_depths`` as one tensor, and
  ``ModelWrapper.evaluate_depth`` takes ``inv_depths[0]`` (the first image, [1,H,W])
  where it means the full-resolution map, then fails in ``post_process_inv_depth``
  (``ValueError: not enough values to unpack``) before any metric exists.
  :func:`list_eval_inv_depths` makes ``SfmModel.compute_depth_net`` hand a tensor over
  as a list of one map, as training mode and PackNetSAN01 already do.

``patch`` is how an attribute is set (``setattr``; tests pass ``monkeypatch.setattr`` so
that everything is put back).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["Patch", "environment_aliases", "list_eval_inv_depths"]

Patch = Callable[[Any, str, Any], None]


def environment_aliases(patch: Patch = setattr) -> list[str]:
    """Put back the names packnet-sfm imports that today's Pillow and matplotlib removed;
    returns those put back (none with the versions packnet-sfm pinned)."""
    done = []
    try:
        from PIL import Image
    except ImportError:  # packnet-sfm's own import then names Pillow
        pass
    else:
        if not hasattr(Image, "ANTIALIAS") and hasattr(Image, "LANCZOS"):
            patch(Image, "ANTIALIAS", Image.LANCZOS)
            done.append("PIL.Image.ANTIALIAS")
    try:
        import matplotlib
        import matplotlib.cm
    except ImportError:
        return done
    colormaps = getattr(matplotlib, "colormaps", None)
    if not hasattr(matplotlib.cm, "get_cmap") and colormaps is not None:
        patch(matplotlib.cm, "get_cmap", colormaps.get_cmap)
        done.append("matplotlib.cm.get_cmap")
    return done


def list_eval_inv_depths(sfm_model: type, patch: Patch = setattr) -> bool:
    """Make ``sfm_model.compute_depth_net`` (packnet-sfm's ``SfmModel``) return
    ``inv_depths`` as a list when the depth network gives one tensor (eval mode); returns
    whether it patched (False when already done)."""
    import torch

    original = sfm_model.compute_depth_net  # type: ignore[attr-defined]
    if getattr(original, "_salsweep_lists_inv_depths", False):
        return False

    @functools.wraps(original)
    def compute_depth_net(self: Any, batch: Any, force_flip: bool = False) -> Any:
        output = original(self, batch, force_flip=force_flip)
        if isinstance(output, dict) and isinstance(output.get("inv_depths"), torch.Tensor):
            output = {**output, "inv_depths": [output["inv_depths"]]}
        return output

    compute_depth_net._salsweep_lists_inv_depths = True  # type: ignore[attr-defined]
    patch(sfm_model, "compute_depth_net", compute_depth_net)
    return True
