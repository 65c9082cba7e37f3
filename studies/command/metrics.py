"""Metrics coming back from a command trial, as `MetricReport` s (step, name -> value).

Three sources, one reader each, fed as the data arrives; none does I/O on its own but the
file tail:

- `JsonLinesTail`: the JSON-lines file the program appends to (the format is in
  studies.command.reporter's docstring); read incrementally, half-written lines kept.
- `StdoutMatcher`: lines of standard output searched with the spec's pattern.
- `MlflowPoints`: the points of the trial's MLflow run's metric history, handed in by a
  poll (each point once).

A line or point that cannot be read is a problem (kept, at most `MAX_PROBLEMS`, for the
trial's reason), never a reason to stop reading.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

__all__ = [
    "MAX_PROBLEMS",
    "JsonLinesTail",
    "MetricLineError",
    "MetricPoint",
    "MetricReport",
    "MlflowPoints",
    "StdoutMatcher",
    "parse_metrics_line",
]

MAX_PROBLEMS = 20
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass(frozen=True)
class MetricReport:
    """The metrics of one step, as one report of the program (a step may come again)."""

    step: int
    metrics: Mapping[str, float]


class MetricPoint(NamedTuple):
    """One point of a metric's history (MLflow's ``Metric``: key, step, value)."""

    name: str
    step: int
    value: float


class MetricLineError(ValueError):
    """A line of the metrics file that is not ``{"step": int, "metrics": {name: number}}``."""


def _value(name: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise MetricLineError(f"metric {name!r}: {raw!r} is not a number")
    if isinstance(raw, str):
        if raw not in _NON_FINITE:
            raise MetricLineError(
                f"metric {name!r}: {raw!r} is not a number (strings: NaN, Infinity, -Infinity)"
            )
        return _NON_FINITE[raw]
    try:
        return float(raw)
    except OverflowError:  # an integer beyond a float's range
        raise MetricLineError(f"metric {name!r}: {raw} is too large a number") from None


def parse_metrics_line(text: str) -> MetricReport:
    """One line of the metrics file as a report; raises `MetricLineError`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetricLineError(f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise MetricLineError("not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise MetricLineError(f"expected an object, got {type(data).__name__}")
    unknown = sorted(set(data) - {"step", "metrics"})
    if unknown:
        raise MetricLineError(f"unknown key(s) {', '.join(map(repr, unknown))} (step, metrics)")
    step = data.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise MetricLineError(f"step must be an integer >= 0, got {step!r}")
    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise MetricLineError(f"metrics must be a non-empty object, got {metrics!r}")
    return MetricReport(step, {str(k): _value(str(k), v) for k, v in metrics.items()})


@dataclass
class _Problems:
    items: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, text: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(text)
        else:
            self.dropped += 1

    def listed(self) -> list[str]:
        more = [f"... and {self.dropped} more"] if self.dropped else []
        return [*self.items, *more]


class JsonLinesTail:
    """Reads the lines appended to a JSON-lines file since the last call.

    The file may not exist yet (the program has not reported). A line without its ``\\n``
    is kept for the next call, unless the call is ``final`` (the program has ended).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._rest = b""
        self._line = 0
        self._problems = _Problems()

    @property
    def problems(self) -> list[str]:
        return self._problems.listed()

    def read(self, *, final: bool = False) -> list[MetricReport]:
        """The reports of the complete lines appended since the last call."""
        if self._file is None:
            try:
                self._file = self.path.open("rb")
            except FileNotFoundError:
                return []
        data = self._rest + self._file.read()
        lines = data.split(b"\n")
        self._rest = lines.pop()
        if final and self._rest.strip():
            lines.append(self._rest)
            self._rest = b""
        out = []
        for raw in lines:
            self._line += 1
            if not raw.strip():
                continue
            try:
                out.append(parse_metrics_line(raw.decode("utf-8")))
            except (MetricLineError, UnicodeDecodeError) as exc:
                self._problems.add(f"{self.path.name} line {self._line}: {exc}")
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class StdoutMatcher:
    """Finds metrics in lines of standard output with a pattern (sweeps.command).

    Every match of a line gives one value: its name is the ``name`` group or
    ``default_name`` (the objective), its step the ``step`` group or the number of
    matching lines so far (from 1).
    """

    def __init__(self, pattern: str | re.Pattern[str], default_name: str) -> None:
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self.default_name = default_name
        self.lines_matched = 0
        self._line = 0
        self._problems = _Problems()

    @property
    def problems(self) -> list[str]:
        return self._problems.listed()

    def feed(self, line: str) -> list[MetricReport]:
        """The reports of one line (one per step it names; none when it does not match)."""
        self._line += 1
        matches = list(self.pattern.finditer(line))
        if not matches:
            return []
        self.lines_matched += 1
        by_step: dict[int, dict[str, float]] = {}
        groups = self.pattern.groupindex
        for match in matches:
            name = match.group("name") if "name" in groups else None
            name = name or self.default_name
            raw_step = match.group("step") if "step" in groups else None
            try:
                value = float(match.group("value"))
                step = self.lines_matched if raw_step is None else int(raw_step)
            except (TypeError, ValueError):
                shown = line.strip()[:120]
                self._problems.add(f"stdout line {self._line}: no number in {shown!r}")
                continue
            by_step.setdefault(step, {})[name] = value
        return [MetricReport(step, metrics) for step, metrics in by_step.items()]


class MlflowPoints:
    """The new points among those of a poll of the run's metric history, as reports (each
    (name, step) once; a poll may hand back everything so far)."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, int]] = set()

    def feed(self, points: Iterable[MetricPoint]) -> list[MetricReport]:
        by_step: dict[int, dict[str, float]] = {}
        for point in points:
            key = (point.name, int(point.step))
            if key in self._seen:
                continue
            self._seen.add(key)
            by_step.setdefault(key[1], {})[point.name] = float(point.value)
        return [MetricReport(step, by_step[step]) for step in sorted(by_step)]
