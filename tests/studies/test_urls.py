"""studies.urls: credentials never shown, free ports, the UI's runs page and shared view."""

from __future__ import annotations

import json
import socket

import pytest

from studies.urls import (
    charts_view_state,
    port_in_use,
    redact_text,
    redact_url,
    run_page_url,
    runs_page_url,
    runs_view_state,
    sweep_view_state,
)
from tests.port_helpers import free_port


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg2://alice:s3cret@db.example:5432/optuna",
            "postgresql+psycopg2://alice:***@db.example:5432/optuna",
        ),
        # A password may contain '/', ':' and URL-escaped characters.
        ("postgresql://bob:a/b:c%40d@10.0.0.2/optuna", "postgresql://bob:***@10.0.0.2/optuna"),
        ("mysql+pymysql://:only-password@host/db", "mysql+pymysql://***@host/db"),
        # A database user name alone is kept: it helps, and it is not a secret.
        ("postgresql://root@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test"),
        ("https://user:token@mlflow.example/", "https://user:***@mlflow.example/"),
        # A lone user part of an HTTP URL is usually a token.
        ("https://ghp_abcdef@mlflow.example", "https://***@mlflow.example"),
        (
            "postgresql://u@h/db?sslmode=require&password=hunter2",
            "postgresql://u@h/db?sslmode=require&password=***",
        ),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////tmp/a b/optuna.db", "sqlite:////tmp/a b/optuna.db"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("secret", ["s3cret", "a/b:c", "p@ss"])
def test_redacted_url_never_contains_the_password(secret: str) -> None:
    url = f"postgresql+psycopg2://alice:{secret}@db:5432/optuna"
    assert secret not in redact_url(url)
    assert "alice" in redact_url(url)


def test_redact_text_hides_every_url_in_a_message() -> None:
    text = "API request to http://u:pw1@h:5000/api failed; storage postgresql://v:pw2@db/x refused"
    shown = redact_text(text)
    assert "pw1" not in shown and "pw2" not in shown
    assert "http://u:***@h:5000/api" in shown and "postgresql://v:***@db/x" in shown


def test_free_port_is_bindable_and_port_in_use_sees_a_listener() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    assert not port_in_use("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_in_use("127.0.0.1", port)


def test_runs_page_url() -> None:
    assert runs_page_url("http://127.0.0.1:5000/", "7") == (
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert runs_page_url("https://u:pw@mlflow.example", "12", "salsweep-sweep") == (
        "https://u:***@mlflow.example/#/experiments/12/runs"
        "?workflowType=machine_learning&viewStateShareKey=salsweep-sweep"
    )
    # A key is a query value: characters with a meaning in URLs are escaped.
    assert runs_page_url("http://h", "1", "a b&c").endswith("viewStateShareKey=a+b%26c")


def test_sweep_view_state() -> None:
    state = sweep_view_state(
        ["loss.lambda_sg", "loss.num_scales"],
        ["optuna.value", "val/abs_rel"],
        "optuna.value",
        False,
    )
    columns = [
        "params.`loss.lambda_sg`",
        "params.`loss.num_scales`",
        "metrics.`optuna.value`",
        "metrics.`val/abs_rel`",
    ]
    assert state == {
        "orderByKey": "metrics.`optuna.value`",
        "orderByAsc": False,
        "selectedColumns": columns,
        "columnOrder": columns,
        # 7 px a character + 40, at least 160 px (a float's 17 digits).
        "columnWidths": dict(zip(columns, [160, 160, 160, 160], strict=True)),
    }


def test_sweep_view_state_lists_a_metric_once() -> None:
    state = sweep_view_state(["lr"], ["optuna.value", "optuna.value"], "optuna.value", True)
    assert state["selectedColumns"] == ["params.`lr`", "metrics.`optuna.value`"]
    assert state["columnWidths"] == {"params.`lr`": 160, "metrics.`optuna.value`": 160}
    long_name = sweep_view_state(["model.base_channels_of_the_first_stage"], [], "x", True)
    assert long_name["columnWidths"] == {"params.`model.base_channels_of_the_first_stage`": 306}
    capped = sweep_view_state(["p" * 50], [], "x", True)
    assert capped["columnWidths"] == {f"params.`{'p' * 50}`": 320}
    assert state["orderByAsc"] is True


def test_run_page_url_keeps_the_training_layout() -> None:
    assert run_page_url("http://u:pw@h:5000/", "3", "abc") == (
        "http://u:***@h:5000/#/experiments/3/runs/abc?workflowType=machine_learning"
    )
    assert run_page_url("http://h", "3", "abc", "") == (
        "http://h/#/experiments/3/runs/abc/artifacts?workflowType=machine_learning"
    )
    assert run_page_url("http://h", "3", "abc", "previews/epoch 002.png") == (
        "http://h/#/experiments/3/runs/abc/artifacts/previews/epoch%20002.png"
        "?workflowType=machine_learning"
    )


def test_runs_view_state_with_tags_and_given_widths() -> None:
    state = runs_view_state(
        [("tags", "salsweep.label"), ("params", "lr"), ("tags", "confirm.winner")],
        "optuna.value",
        True,
        {"confirm.winner": 400},
    )
    columns = ["tags.`salsweep.label`", "params.`lr`", "tags.`confirm.winner`"]
    assert state["selectedColumns"] == state["columnOrder"] == columns
    assert state["columnWidths"] == dict(zip(columns, [160, 160, 400], strict=True))


def test_charts_view_state_keeps_the_given_cards_first() -> None:
    state = charts_view_state(
        [
            ("Objective", ["optuna.value"]),
            ("Objective", ["val/abs_rel"]),
            ("Loss", ["train/total_loss", "val/total_loss"]),
        ],
        bars=["optuna.value"],
    )
    # The sections in the order given, kept in it (no sorting by name) and shown.
    sections = state["compareRunSections"]
    assert [s["name"] for s in sections] == ["Objective", "Loss"]
    assert state["isAccordionReordered"] is True
    assert all(s["display"] and s["isReordered"] and not s["deleted"] for s in sections)
    charts = state["compareRunCharts"]
    ids = {s["name"]: s["uuid"] for s in sections}
    assert [(c["type"], c["metricSectionId"], c["metricKey"]) for c in charts] == [
        ("BAR", ids["Objective"], "optuna.value"),
        ("LINE", ids["Objective"], "val/abs_rel"),
        ("LINE", ids["Loss"], "train/total_loss"),
    ]
    assert charts[0]["metricKey"] == "optuna.value" and "selectedMetricKeys" not in charts[0]
    both = charts[2]
    assert both["metricKey"] == "train/total_loss"  # no card of the UI's own for it
    assert both["selectedMetricKeys"] == ["train/total_loss", "val/total_loss"]
    # Every field of the bundle's LINE card that it reads without a default.
    assert both["range"] == {} and both["xAxisKey"] == "step" and both["yAxisKey"] == "metric"
    assert len({c["uuid"] for c in charts}) == 3
    assert all(not c["isGenerated"] and not c["deleted"] for c in charts)
    assert json.loads(json.dumps(state)) == state  # stored as JSON in a tag
