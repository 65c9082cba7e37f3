"""How tables show numbers: readable figures, 4 or 5 significant digits. Files that are
read back (configs, exports, ``confirmation.csv``) keep full precision; these are for
people reading a terminal or ``confirmation.md``.

Imports nothing heavy: the read-only commands draw their tables with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["decimals_for", "figure", "fixed", "setting", "settings"]

# Significant digits of an objective value in a table (0.35677, 12.346).
FIGURE_DIGITS = 5
# Of a searched setting's value (lambda_sg=0.3786, lr=0.0004225).
SETTING_DIGITS = 4
_MAX_DECIMALS = 12


def figure(value: float | None, digits: int = FIGURE_DIGITS) -> str:
    """``value`` with ``digits`` significant digits; ``-`` for None, ``NaN`` for NaN."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    return f"{value:.{digits}g}"


def setting(value: Any) -> str:
    """A setting's value: floats at `SETTING_DIGITS` significant digits, the rest as is."""
    return f"{value:.{SETTING_DIGITS}g}" if isinstance(value, float) else str(value)


def settings(params: Mapping[str, Any]) -> str:
    """``lambda_sg=0.3, num_scales=2``: the last part of each dotted name and its value."""
    return ", ".join(f"{k.split('.')[-1]}={setting(v)}" for k, v in params.items())


def decimals_for(*values: float) -> int:
    """Decimals that show the largest finite ``|value|`` with 4 significant digits below 1
    and 5 from 1 on (0.3850, 0.01234, 1.2345, 12.345): numbers printed together (a mean,
    its half-width and its interval) share them, so that they line up and read at one
    precision."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    largest = max(finite, default=0.0)
    if largest == 0.0:
        return 4
    exponent = math.floor(math.log10(largest))
    return min(_MAX_DECIMALS, 3 - exponent if exponent < 0 else max(0, 4 - exponent))


def fixed(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` decimals; ``n/a`` when it is not finite."""
    return f"{value:.{decimals}f}" if math.isfinite(value) else "n/a"
