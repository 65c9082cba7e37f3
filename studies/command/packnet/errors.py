"""Errors of the packnet-sfm launcher a user can act on (one line each, no traceback)."""

from __future__ import annotations

from trainer.errors import UserError

__all__ = ["PacknetConfigError", "PacknetSetupError"]


class PacknetSetupError(UserError, RuntimeError):
    """packnet-sfm cannot be found, or a part of it cannot be imported here (the message
    names the missing module and what needs it)."""


class PacknetConfigError(UserError, ValueError):
    """The trial's packnet-sfm config cannot run the scale-adaptive loss or report the
    sweep's objective (the message names the key)."""
