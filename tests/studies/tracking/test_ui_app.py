"""salsweep's MLflow app plugin (studies.tracking.ui_app): the index page that opens the UI
in the model-training layout, its entry point, and the server command that uses it. The
layout a browser then shows is checked in tests/studies/test_ui_browser.py."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from studies.tracking.server import UI_APP_NAME, server_command, ui_app_installed
from studies.tracking.ui_app import (
    APP_NAME,
    WORKFLOW_STORAGE_KEY,
    create_app,
    index_html,
    layout_script,
)

PAGE = '<!doctype html><html><head><meta charset="utf-8"/><script defer src="m.js"></script>'


def test_the_script_goes_first_in_the_head() -> None:
    page = index_html(PAGE)
    assert page.startswith("<!doctype html><html><head><script>try{")
    assert page.index(layout_script()) < page.index('src="m.js"')  # before the UI's bundle
    assert page.replace(layout_script(), "") == PAGE


def test_the_script_stores_the_training_layout_only_when_unset() -> None:
    script = layout_script()
    assert f"var k='{WORKFLOW_STORAGE_KEY}'" in script
    assert "getItem(k)===null" in script  # a layout the user chose is kept
    assert "setItem(k,JSON.stringify('machine_learning'))" in script


def test_a_page_without_a_head_still_gets_the_script() -> None:
    assert index_html("<p>x</p>") == layout_script() + "<p>x</p>"


def test_the_storage_key_is_the_one_mlflow_bundle_reads() -> None:
    """The UI reads ``useLocalStorage({key: "mlflow.workflowType", version: 1})``, stored
    under ``<key>_v<version>``: both spellings are in the installed bundle."""
    import mlflow.server

    build = Path(str(mlflow.server.app.static_folder)) / "static" / "js"
    bundle = next(build.glob("main.*.js")).read_text(encoding="utf-8", errors="replace")
    assert 'key:"mlflow.workflowType",version:1' in bundle
    key, version = WORKFLOW_STORAGE_KEY.rsplit("_v", 1)
    assert (key, version) == ("mlflow.workflowType", "1")
    assert re.search(r"const o=\(e,t\)=>`\$\{e\}_v\$\{t\}`", bundle)  # key_v<version>


@pytest.fixture
def flask_index() -> Iterator[None]:
    """Restore MLflow's own index view after a test that installs the plugin's."""
    import mlflow.server

    original = mlflow.server.app.view_functions["serve"]
    try:
        yield
    finally:
        mlflow.server.app.view_functions["serve"] = original


@pytest.mark.usefixtures("flask_index")
def test_the_app_serves_mlflow_with_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("_MLFLOW_SGI_NAME", raising=False)  # gunicorn/waitress: Flask
    app = create_app()
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-cache"
    text = page.get_data(as_text=True)
    assert text.startswith("<!doctype html>")
    assert layout_script() in text and "static-files/static/js/main." in text
    assert client.get("/health").get_data(as_text=True) == "OK"  # the rest is MLflow's


@pytest.mark.usefixtures("flask_index")
def test_under_uvicorn_the_app_is_mlflow_asgi_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_MLFLOW_SGI_NAME", "uvicorn")
    from fastapi import FastAPI

    assert isinstance(create_app(), FastAPI)


def test_the_entry_point_names_the_plugin() -> None:
    assert APP_NAME == UI_APP_NAME
    points = importlib.metadata.entry_points(group="mlflow.app")
    assert {e.name: e.value for e in points}[APP_NAME] == "studies.tracking.ui_app:create_app"
    assert ui_app_installed()


def test_the_server_runs_the_plugin_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = server_command(tmp_path, "127.0.0.1", 5000)
    assert command[-2:] == ["--app-name", "salsweep"]
    monkeypatch.setattr("studies.tracking.server.ui_app_installed", lambda: False)
    assert "--app-name" not in server_command(tmp_path, "127.0.0.1", 5000)
