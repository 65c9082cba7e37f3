"""Passwords in the storage and tracking URLs never show: not in the output of a sweep or
of the read-only commands, not in MLflow (params, tags, the spec artifact), not in Optuna's
stored attributes, not in any file of the data dir. And both fail closed: an unreachable
server with a password in its URL is one line, password hidden.

Real parts: `salsweep` child processes (their whole output, libraries' log lines included,
is what must not show a password), the real PostgreSQL server (trust auth
ignores the password, so a URL can carry one and still connect) and the session's real
MLflow server (which has no authentication and ignores the basic-auth header the client
builds from the URL's user and password).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from studies import load_study
from studies.store.records import companion_study
from studies.tracking.server import ServerInfo
from tests.port_helpers import free_port
from tests.process_helpers import SalsweepProcess

STORAGE_SECRET = "pg-s3cr3t-7Qx"
TRACKING_SECRET = "mlf-s3cr3t-9Zk"
SECRETS = (STORAGE_SECRET, TRACKING_SECRET)


def _with_password(url: str, password: str) -> str:
    """``scheme://user@host...`` (or ``scheme://host``) with ``password`` added."""
    scheme, rest = url.split("://", 1)
    user, at, host = rest.partition("@")
    if not at:
        user, host = "salsweep", rest
    return f"{scheme}://{user}:{password}@{host}"


def _cli(
    salsweep: SalsweepProcess, *args: str, home: Path, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return salsweep.run(
        *args,
        "--home",
        str(home),
        timeout=timeout,
        env={**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )


def _spec(tmp_path: Path) -> Path:
    spec = {
        "name": "secrets",
        "base": {
            "data": {"height": 32, "width": 64, "num_train": 8, "num_val": 4, "num_test": 4},
            "model": {"base_channels": 4, "num_stages": 2},
            "epochs": 1,
            "steps_per_epoch": 2,
            "batch_size": 2,
            "device": "cpu",
            "previews": False,
        },
        "search": {"loss.lambda_sg": {"low": 0.1, "high": 1.0}},
        "budget": {"n_trials": 2},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "baseline": True,
        "confirm": {"top_k": 1, "initial_seeds": 3, "max_seeds": 3},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a password shows in {where}"


def test_passwords_never_show(
    postgres_url: str,
    mlflow_server: ServerInfo,
    tmp_path: Path,
    salsweep_process: SalsweepProcess,
) -> None:
    storage = _with_password(postgres_url, STORAGE_SECRET)
    tracking = _with_password(mlflow_server.url, TRACKING_SECRET)
    home = tmp_path / "home"
    launched = _cli(
        salsweep_process,
        "sweep",
        "launch",
        str(_spec(tmp_path)),
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
        home=home,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    _assert_no_secret("the output of sweep launch", launched.stdout + launched.stderr)
    # The URLs were used (not dropped on the way): the redacted forms show where they do.
    assert "***" in launched.stdout + launched.stderr

    for args in (["studies", "list"], ["studies", "show", "secrets"]):
        shown = _cli(salsweep_process, *args, "--storage", storage, home=home)
        assert shown.returncode == 0, shown.stderr
        _assert_no_secret(f"the output of {' '.join(args)}", shown.stdout + shown.stderr)
    exported = _cli(
        salsweep_process, "studies", "export", "secrets", "--storage", storage,
        "-o", str(tmp_path / "b.yaml"), home=home,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    _assert_no_secret("the exported configuration", (tmp_path / "b.yaml").read_text())

    # Optuna: every user attribute of the study, its companion study and their trials.
    study = load_study("secrets", postgres_url)
    companion = companion_study(study)
    assert companion is not None
    stored = [study.user_attrs, companion.user_attrs]
    trials = study.get_trials() + companion.get_trials()
    stored += [t.user_attrs for t in trials] + [t.system_attrs for t in trials]
    assert len(study.get_trials()) == 2 and len(companion.get_trials()) == 1 + 6
    _assert_no_secret("Optuna's stored attributes", json.dumps(stored, default=str))

    # MLflow: params and tags of every run (parent, trials, baseline, replicates), the
    # spec artifact, the experiment's tags.
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("secrets")
    runs = client.search_runs([experiment.experiment_id])
    # The parent, 2 trials, the baseline's search run, a race of 3 seeds of the winner and
    # of the baseline.
    assert len(runs) == 1 + 2 + 1 + 3 + 3
    for run in runs:
        _assert_no_secret(f"run {run.info.run_name}", json.dumps([run.data.params, run.data.tags]))
    _assert_no_secret("the experiment's tags", json.dumps(experiment.tags))
    parent = next(r for r in runs if r.info.run_name == "sweep")
    spec_text = Path(client.download_artifacts(parent.info.run_id, "sweep.yaml", str(tmp_path)))
    _assert_no_secret("sweep.yaml", spec_text.read_text())

    # Every file the sweep left in the data dir (trial folders, outboxes, logs).
    files = [p for p in home.rglob("*") if p.is_file()]
    assert files
    for path in files:
        _assert_no_secret(str(path.relative_to(home)), path.read_bytes().decode("latin-1"))


def test_unreachable_servers_hide_their_passwords(
    mlflow_server: ServerInfo, tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    dead = free_port()
    storage = f"postgresql+psycopg2://root:{STORAGE_SECRET}@127.0.0.1:{dead}/none"
    spec = _spec(tmp_path)
    cases = {
        # The tracking server is checked first: nothing is created when it does not answer.
        "tracking": ["--tracking-uri", f"http://alice:{TRACKING_SECRET}@127.0.0.1:{dead}"],
        "storage": ["--tracking-uri", mlflow_server.url, "--storage", storage],
    }
    for name, extra in cases.items():
        result = _cli(
            salsweep_process, "sweep", "launch", str(spec), *extra, home=tmp_path / name,
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 1, result.stdout + result.stderr
        _assert_no_secret(f"the error of an unreachable {name} server", result.stderr)
        assert "Traceback" not in result.stderr
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
        assert len(errors) == 1, result.stderr
        assert "***" in errors[0]  # the URL is named, its password hidden
