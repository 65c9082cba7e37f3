"""The companion study ``NAME:confirm`` as tools outside salsweep read it.

optuna-dashboard (a third-party client of the same Optuna storage) is asked through its
own WSGI app, as its browser page asks it (``GET /api/studies/<id>``), over the session's
real sweep: each trial carries its configuration and seed as readable fields, the
objective is named as one run's score, and the study's ``about``, shown beside the
dashboard's "Best Trial", says that the best trial is one seed, not the best configuration.
"""

from __future__ import annotations

import importlib.util
import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import optuna

from studies.attrs import ABOUT, ROLE_CONFIRMATION, companion_name
from studies.store.records import COMPANION_OBJECTIVE_NAME, companion_about, companion_study
from tests.studies.sweep_helpers import CONFIRM, SEEDS, Sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_companion_is_described_once(tmp_path: Path) -> None:
    """Created or loaded, the companion gets its objective's name and its ``about``;
    loading it again writes nothing more, and no warning reaches the user."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="demo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's ExperimentalWarning would print in sweeps
        companion = companion_study(study, create=True)
    assert companion is not None and companion.study_name == "demo:confirm"
    assert companion.metric_names == [COMPANION_OBJECTIVE_NAME]
    about = companion.user_attrs[ABOUT]
    assert about == companion_about("demo")
    assert "the luckiest single run, not the best configuration" in about
    assert "salsweep studies show demo" in about
    storage = companion._storage
    before = storage.get_study_system_attrs(companion._study_id)
    again = companion_study(study, create=True)
    assert again is not None and again.user_attrs[ABOUT] == about
    assert storage.get_study_system_attrs(companion._study_id) == before


def _dashboard_get(app: Any, path: str) -> dict[str, Any]:
    """``GET path`` from optuna-dashboard's WSGI app, its JSON answer."""
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO(b"")
    status: list[str] = []
    body = b"".join(app(environ, lambda s, _headers, _exc=None: status.append(s)))
    assert status and status[0].startswith("200"), (path, status, body[:300])
    return cast(dict[str, Any], json.loads(body))


def test_optuna_dashboard_shows_configuration_and_seed_and_no_verdict(
    sweep: Sweep, require_system: Callable[[str, bool, str], None]
) -> None:
    require_system(
        "optuna-dashboard",
        importlib.util.find_spec("optuna_dashboard") is not None,
        "pip install optuna-dashboard (make setup-dev installs it)",
    )
    import optuna_dashboard

    app = optuna_dashboard.wsgi(sweep.target.storage_url)
    listed = _dashboard_get(app, "/api/studies")["study_summaries"]
    studies = {s["study_name"]: s for s in listed}
    companion = studies[companion_name(sweep.name)]
    detail = _dashboard_get(app, f"/api/studies/{companion['study_id']}")

    # The objective is named as what a value is: one run's score.
    assert detail["objective_names"] == [COMPANION_OBJECTIVE_NAME]
    # Beside the dashboard's "Best Trial" card: what the trials are, and that the best one
    # is a single seed, not the best configuration.
    about = {a["key"]: a["value"] for a in detail["user_attrs"]}[ABOUT]
    assert about == companion_about(sweep.name)

    # Every replicate readable: its configuration's label, its seed and each searched
    # value as a field of its own (the trials table's columns), not only JSON blobs.
    columns = {a["key"] for a in detail["union_user_attrs"]}
    assert {"label", "seed", "role", "param.loss.lambda_sg", "param.loss.num_scales"} <= columns
    replicates = [t for t in detail["trials"] if _attrs(t).get("role") == ROLE_CONFIRMATION]
    per_config = SEEDS  # one round: initial_seeds = max_seeds
    assert len(replicates) == (CONFIRM["top_k"] + 1) * per_config  # and the baseline's
    labels: dict[str, set[str]] = {}
    for trial in replicates:
        fields = _attrs(trial)
        labels.setdefault(fields["label"], set()).add(fields["seed"])
        if fields["label"].startswith("trial "):
            assert float(fields["param.loss.lambda_sg"]) > 0
            assert fields["param.loss.num_scales"].isdigit()
        else:
            assert fields["label"] == "baseline (sparse-ssi)"
            assert fields["param.loss.method"] == "sparse-ssi"
    assert all(len(seeds) == per_config for seeds in labels.values())
    assert len(labels) == CONFIRM["top_k"] + 1

    # What the dashboard still shows, and README says: a single-objective study's best
    # trial, here one run (one seed) of one configuration, with the about beside it.
    (best,) = detail["best_trials"]
    assert "seed" in _attrs(best) and "label" in _attrs(best)


def _attrs(trial: dict[str, Any]) -> dict[str, str]:
    return {a["key"]: a["value"] for a in trial["user_attrs"]}
