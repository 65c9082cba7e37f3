"""salsweep's MLflow app plugin: the MLflow server, whose UI opens in the model-training
layout in a browser that never chose one.

MLflow 3.17's UI (its JS bundle, read for this) takes its layout from the address's
``workflowType`` parameter and, without it, from the browser's local storage key
``mlflow.workflowType_v1`` (JSON: ``"genai"`` or ``"machine_learning"``; the bundle's
``useLocalStorage({key: "mlflow.workflowType", version: 1})``), whose default is GenAI.
Its own links (a run in the runs table, a run's parent, the sidebar) drop the parameter,
so a journey that starts on a ``workflowType=machine_learning`` address falls back to the
GenAI layout at the first click. Only the "GenAI / Model training" switch writes the key.

MLflow's extension point for the server is an app plugin: ``mlflow server --app-name NAME``
runs the object that the ``mlflow.app`` entry point ``NAME`` names (MLflow's own
``basic-auth`` is one). salsweep declares ``salsweep = studies.tracking.ui_app:create_app``
(pyproject.toml). :func:`create_app` is MLflow's server unchanged but for its single page,
``index.html`` (every UI address is ``/#/...``: the page is that one file), which gets a
few lines that store ``"machine_learning"`` under the key when the browser has no value
there yet, before the UI's bundle runs. A user who picks GenAI with the switch keeps it.

Importing this module loads MLflow's server (it is its app) and nothing of salsweep's
heavy parts (no torch, no Optuna).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "APP_NAME",
    "WORKFLOW_STORAGE_KEY",
    "WORKFLOW_TYPE",
    "create_app",
    "index_html",
    "layout_script",
]

#: The ``mlflow.app`` entry point's name: ``mlflow server --app-name salsweep``.
APP_NAME = "salsweep"
#: The UI's local-storage key of the layout (``useLocalStorage``'s ``<key>_v<version>``).
WORKFLOW_STORAGE_KEY = "mlflow.workflowType_v1"
#: The model-training layout's value (the address's ``workflowType`` takes the same).
WORKFLOW_TYPE = "machine_learning"
# The index route's endpoint in mlflow.server (``@app.route(...) def serve()``).
_INDEX_ENDPOINT = "serve"
_HEAD = "<head>"


def layout_script() -> str:
    """The ``<script>`` that stores the training layout when the browser has no layout yet
    (local storage unavailable, e.g. blocked: nothing happens)."""
    return (
        "<script>try{var k='" + WORKFLOW_STORAGE_KEY + "';"
        "if(window.localStorage.getItem(k)===null)"
        "window.localStorage.setItem(k,JSON.stringify('" + WORKFLOW_TYPE + "'))"
        "}catch(e){}</script>"
    )


def index_html(original: str) -> str:
    """MLflow's ``index.html`` with :func:`layout_script` first in its ``<head>``, so that
    it runs before the UI's bundle (a deferred script) reads the key."""
    head = original.find(_HEAD)
    if head < 0:  # not the page we know: put it first anyway
        return layout_script() + original
    cut = head + len(_HEAD)
    return original[:cut] + layout_script() + original[cut:]


def _serve_index(static_folder: Path) -> Any:
    """The index view: MLflow's page with the layout script (read once, then kept)."""
    from flask import Response

    page = static_folder / "index.html"
    text = index_html(page.read_text(encoding="utf-8"))

    def serve() -> Response:
        # No caching: a browser must not keep a page whose script a restart may change.
        return Response(text, mimetype="text/html", headers={"Cache-Control": "no-cache"})

    return serve


def create_app(app: Any = None) -> Any:
    """MLflow's server app with the index page of :func:`index_html`: the ASGI (FastAPI)
    app under uvicorn, MLflow's default; the Flask app under gunicorn or waitress (as
    MLflow's ``basic-auth`` plugin chooses). Without the UI's build (a source checkout of
    MLflow) the index route is left as MLflow has it."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app as flask_app

    app = flask_app if app is None else app
    static = Path(str(app.static_folder))
    if (static / "index.html").is_file():
        app.view_functions[_INDEX_ENDPOINT] = _serve_index(static)
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app
