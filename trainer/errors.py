"""The base of every error a user can act on. Imports nothing, so that the CLI can tell
such an error from a bug without loading torch, Optuna or MLflow.

It lives in ``trainer/`` because every package that raises user-facing errors may import
it without turning the dependency direction (``cli -> studies -> trainer -> loss``,
``sweeps -> trainer``): a base in ``sweeps/`` or ``studies/`` could not be a base of the
trainer's ``ConfigError`` or ``DataError``.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """An error the user can act on: a bad file, an unknown study, a missing server.

    The CLI prints its message alone (one line, or one line per listed problem) and exits
    with code 1; any other exception is reported as unexpected. Subclasses also derive from
    the built-in type that fits (``ValueError``, ``RuntimeError``), so that callers that
    catch those keep working.
    """
