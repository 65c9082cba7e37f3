"""The reporter a user's program imports: standard library only, the JSON-lines format."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studies.command import reporter
from studies.command.metrics import parse_metrics_line

ROOT = Path(__file__).resolve().parents[3]

# Imports `studies.command.reporter` in a fresh interpreter and prints the modules that
# the import added.
NEW_MODULES = """
import json, sys
before = set(sys.modules)
import studies.command.reporter
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_importing_the_reporter_loads_only_the_standard_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NEW_MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    added = json.loads(done.stdout)
    ours = {m for m in added if m.split(".")[0] in ("studies", "loss")}
    # The two package faces, the lazy-face helper they share (loss.lazy) and loss's light
    # names (loss/__init__ imports them): each imports the standard library only.
    assert ours == {
        "studies",
        "studies.command",
        "studies.command.reporter",
        "loss",
        "loss.lazy",
        "loss.names",
    }
    foreign = [m for m in added if m not in ours and m.split(".")[0] not in sys.stdlib_module_names]
    assert foreign == []


def test_importtime_of_the_reporter_is_small() -> None:
    """``python -X importtime``: no heavy or configuration module, and a few ms in all."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import studies.command.reporter"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    names = {row[2].strip() for row in rows[1:]}
    assert not names & {"pydantic", "yaml", "torch", "optuna", "mlflow", "sweeps", "trainer"}
    cumulative = {row[2].strip(): int(row[1]) for row in rows[1:]}
    assert cumulative["studies.command.reporter"] < 200_000  # microseconds; json and a few


def test_the_reporter_works_as_a_copied_file(tmp_path: Path) -> None:
    """A project without salsweep installed copies the one file."""
    shutil.copy(ROOT / "studies" / "command" / "reporter.py", tmp_path / "salsweep_reporter.py")
    metrics = tmp_path / "m.jsonl"
    code = "import salsweep_reporter as r; r.report(1, loss=0.5); print(r.should_stop())"
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],  # -S: no site-packages, so no salsweep
        cwd=tmp_path,
        env={"SALSWEEP_METRICS_FILE": str(metrics), "SALSWEEP_STOP_FILE": str(tmp_path / "S")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "False"
    assert json.loads(metrics.read_text()) == {"step": 1, "metrics": {"loss": 0.5}}


def test_report_appends_one_json_line_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(reporter.METRICS_ENV, str(path))
    reporter.report(1, **{"val/loss": 0.5, "train/loss": 1})
    reporter.report(2, loss=float("nan"), up=float("inf"), down=-math.inf)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 1, "metrics": {"val/loss": 0.5, "train/loss": 1.0}},
        {"step": 2, "metrics": {"loss": "NaN", "up": "Infinity", "down": "-Infinity"}},
    ]
    # Strict JSON (no bare NaN) that salsweep's reader takes back.
    second = parse_metrics_line(lines[1])
    assert math.isnan(second.metrics["loss"]) and second.metrics["up"] == math.inf
    assert second.metrics["down"] == -math.inf


def test_report_takes_numbers_of_any_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from decimal import Decimal
    from fractions import Fraction

    path = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(reporter.METRICS_ENV, str(path))
    reporter.report(0, a=Decimal("0.25"), b=Fraction(1, 4), step=3)  # step: a metric name too
    assert json.loads(path.read_text()) == {
        "step": 0,
        "metrics": {"a": 0.25, "b": 0.25, "step": 3.0},
    }


@pytest.mark.parametrize(
    ("step", "metrics", "error", "message"),
    [
        (1.0, {"a": 1.0}, TypeError, "cannot be interpreted as an integer"),
        (True, {"a": 1.0}, TypeError, "step must be an integer"),
        (-1, {"a": 1.0}, ValueError, "step must be >= 0"),
        (1, {}, ValueError, "at least one metric"),
        (1, {"a": "0.5"}, TypeError, "metric 'a': '0.5' is not a number"),
        (1, {"a": None}, TypeError, "metric 'a': None is not a number"),
        (1, {"a": True}, TypeError, "is not a number"),
        (1, {"": 1.0}, ValueError, "a metric name must be a non-empty string"),
    ],
)
def test_bad_reports_raise_even_outside_a_sweep(
    monkeypatch: pytest.MonkeyPatch,
    step: object,
    metrics: dict[str, object],
    error: type,
    message: str,
) -> None:
    monkeypatch.delenv(reporter.METRICS_ENV, raising=False)
    with pytest.raises(error, match=message):
        reporter.report(step, **metrics)  # type: ignore[arg-type]


def test_outside_a_sweep_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(reporter.METRICS_ENV, raising=False)
    monkeypatch.delenv(reporter.STOP_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    reporter.report(1, loss=0.5)
    assert list(tmp_path.iterdir()) == []
    assert reporter.should_stop() is False


def test_should_stop_follows_the_stop_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop = tmp_path / "STOP"
    monkeypatch.setenv(reporter.STOP_ENV, str(stop))
    assert reporter.should_stop() is False
    stop.touch()
    assert reporter.should_stop() is True
    monkeypatch.setenv(reporter.STOP_ENV, "")
    assert reporter.should_stop() is False
