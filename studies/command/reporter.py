"""Report metrics from your own training program to a salsweep sweep (standard library only).

In your program::

    from studies.command.reporter import report, should_stop

    for epoch in range(1, epochs + 1):
        train_one_epoch()
        report(epoch, **{"val/loss": val_loss, "val/acc": val_acc})   # any names
        if should_stop():          # salsweep pruned the trial, or the sweep is stopping
            break                  # (SIGTERM follows; SIGKILL after command.grace_s)

Outside a sweep (``SALSWEEP_METRICS_FILE`` unset) `report` checks its arguments and writes
nothing, and `should_stop` is False, so the program runs alone unchanged.

This module imports only Python's standard library and nothing of salsweep (``studies``
loads its modules on use), so importing it costs nothing and it works in any environment
that has salsweep installed; or copy this one file into your project.

The format (any language can write it)
--------------------------------------
``$SALSWEEP_METRICS_FILE`` is a JSON-lines file (UTF-8): one JSON object per line, each
line ended by ``\\n`` and appended with a single ``write`` (``O_APPEND``), e.g.::

    {"step": 1, "metrics": {"val/loss": 0.52, "train/loss": 0.61}}
    {"step": 2, "metrics": {"val/loss": 0.47}}

- ``step``: an integer >= 0 (e.g. the epoch); the pruner compares trials at equal steps.
- ``metrics``: a non-empty object, metric name -> number. A value that is not finite is
  written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (JSON has no such
  numbers); salsweep also reads the bare tokens ``NaN``/``Infinity`` that some JSON
  writers emit.
- No other keys. A step may be reported more than once (e.g. train metrics, then
  validation metrics); each line is taken as it comes.

salsweep reads the file while the program runs. It also reads ``$SALSWEEP_STOP_FILE``'s
existence as the request to stop (`should_stop`).
"""

from __future__ import annotations

import json
import math
import operator
import os

__all__ = ["METRICS_ENV", "STOP_ENV", "encode_line", "report", "should_stop"]

METRICS_ENV = "SALSWEEP_METRICS_FILE"
STOP_ENV = "SALSWEEP_STOP_FILE"


def _number(name: str, value: object) -> float | str:
    """``value`` as a JSON-safe number (non-finite values as their strings)."""
    if isinstance(value, bool | str | bytes) or value is None:  # "0.5" is no number here
        raise TypeError(f"metric {name!r}: {value!r} is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]  # ints, numpy and 0-d tensors too
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r}: {value!r} is not a number") from None
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def encode_line(step: int, metrics: dict[str, object]) -> bytes:
    """One line of the metrics file, ``\\n`` included. Raises ``TypeError`` or
    ``ValueError`` for a step that is not an integer >= 0, no metric, or a bad name or
    value."""
    if isinstance(step, bool):
        raise TypeError(f"step must be an integer, got {step!r}")
    step = operator.index(step)  # ints and numpy integers; TypeError for floats
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not metrics:
        raise ValueError("report() needs at least one metric, e.g. report(1, loss=0.5)")
    values: dict[str, float | str] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"a metric name must be a non-empty string, got {name!r}")
        values[name] = _number(name, value)
    text = json.dumps({"step": step, "metrics": values}, allow_nan=False, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def report(step: int, /, **metrics: float) -> None:
    """Append ``{"step": step, "metrics": {...}}`` to ``$SALSWEEP_METRICS_FILE``.

    Names that are no Python identifiers go through a mapping:
    ``report(3, **{"val/loss": 0.4})``. The line is written with one ``write`` on a file
    opened for appending, then flushed to disk (``fsync``), so a reader never sees half a
    line of a finished call and a crash after the call keeps it. Without the variable
    (the program runs outside a sweep) the arguments are checked and nothing is written.
    The fsync costs 0.1-5 ms a call depending on the disk: report per epoch or evaluation,
    not per training step.
    """
    line = encode_line(step, dict(metrics))
    path = os.environ.get(METRICS_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        while written < len(line):  # a regular file takes it whole; a short write goes on
            written += os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def should_stop() -> bool:
    """True when salsweep asks the program to stop (``$SALSWEEP_STOP_FILE`` exists): the
    trial was pruned or timed out, or the sweep is stopping. SIGTERM to the program's
    process group follows at once, SIGKILL after the spec's ``grace_s``: save what you
    need and exit."""
    path = os.environ.get(STOP_ENV)
    return path is not None and path != "" and os.path.exists(path)
