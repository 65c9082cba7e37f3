"""Readers of a command trial's metrics: the JSON-lines file, stdout lines, MLflow points."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from studies.command.metrics import (
    MAX_PROBLEMS,
    JsonLinesTail,
    MetricLineError,
    MetricPoint,
    MetricReport,
    MlflowPoints,
    StdoutMatcher,
    parse_metrics_line,
)


def test_parse_metrics_line() -> None:
    line = '{"step": 2, "metrics": {"val/loss": 0.5, "n": 3, "x": "NaN", "y": Infinity}}'
    report = parse_metrics_line(line)
    assert report.step == 2 and report.metrics["val/loss"] == 0.5 and report.metrics["n"] == 3.0
    assert math.isnan(report.metrics["x"]) and report.metrics["y"] == math.inf


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "not JSON"),
        ("[1, 2]", "expected an object, got list"),
        ('{"step": 1, "metrics": {"a": 1}, "time": 3}', "unknown key(s) 'time'"),
        ('{"step": -1, "metrics": {"a": 1}}', "step must be an integer >= 0"),
        ('{"step": 1.5, "metrics": {"a": 1}}', "step must be an integer >= 0"),
        ('{"step": true, "metrics": {"a": 1}}', "step must be an integer >= 0"),
        ('{"metrics": {"a": 1}}', "step must be an integer >= 0, got None"),
        ('{"step": 1, "metrics": {}}', "metrics must be a non-empty object"),
        ('{"step": 1, "metrics": {"a": "0.5"}}', "metric 'a': '0.5' is not a number"),
        ('{"step": 1, "metrics": {"a": null}}', "metric 'a': None is not a number"),
        ('{"step": 1, "metrics": {"a": 1' + "0" * 400 + "}}", "is too large a number"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
)
def test_bad_lines(line: str, message: str) -> None:
    with pytest.raises(MetricLineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_metrics_line(line)


def test_tail_reads_appended_lines_and_keeps_half_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = JsonLinesTail(path)
    assert tail.read() == []  # no file yet
    with path.open("ab") as f:
        f.write(b'{"step": 1, "metrics": {"a": 1}}\n{"step": 2, "met')
        f.flush()
        assert tail.read() == [MetricReport(1, {"a": 1.0})]
        f.write(b'rics": {"a": 2}}\n\n')
        f.flush()
        assert tail.read() == [MetricReport(2, {"a": 2.0})]
        f.write(b"not json\n" + b'{"step": 3, "metrics": {"a": 3}}')  # no newline at the end
        f.flush()
        assert tail.read() == []
        assert tail.read(final=True) == [MetricReport(3, {"a": 3.0})]
    assert tail.problems == ["metrics.jsonl line 4: not JSON: Expecting value"]
    tail.close()


def test_tail_keeps_a_bounded_list_of_problems(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("x\n" * (MAX_PROBLEMS + 5))
    tail = JsonLinesTail(path)
    assert tail.read() == []
    assert len(tail.problems) == MAX_PROBLEMS + 1 and tail.problems[-1] == "... and 5 more"
    tail.close()


def test_stdout_matcher_with_step_and_name_groups() -> None:
    matcher = StdoutMatcher(r"(?P<name>[\w/]+)=(?P<value>[-+0-9.eE]+|nan)", "val/loss")
    assert matcher.feed("starting") == []
    assert matcher.feed("val/loss=0.5 val/acc=0.9") == [
        MetricReport(1, {"val/loss": 0.5, "val/acc": 0.9})
    ]
    assert matcher.feed("val/loss=0.25") == [MetricReport(2, {"val/loss": 0.25})]
    stepped = StdoutMatcher(r"epoch (?P<step>\d+)(?: [a-z]+)?: (?P<value>\S+)", "loss")
    assert stepped.feed("epoch 7 done: 0.1") == [MetricReport(7, {"loss": 0.1})]
    optional = StdoutMatcher(r"(?:step (?P<step>\d+) )?loss (?P<value>\S+)", "loss")
    assert optional.feed("loss 0.3") == [MetricReport(1, {"loss": 0.3})]
    assert optional.feed("step 5 loss x") == []
    assert optional.problems == ["stdout line 2: no number in 'step 5 loss x'"]


def test_mlflow_points_are_new_once_each() -> None:
    points = MlflowPoints()
    first = [MetricPoint("val/loss", 1, 0.5), MetricPoint("train/loss", 1, 0.7)]
    assert points.feed(first) == [MetricReport(1, {"val/loss": 0.5, "train/loss": 0.7})]
    later = [*first, MetricPoint("val/loss", 3, 0.3), MetricPoint("val/loss", 2, 0.4)]
    assert points.feed(later) == [
        MetricReport(2, {"val/loss": 0.4}),
        MetricReport(3, {"val/loss": 0.3}),
    ]
    assert points.feed(later) == []
