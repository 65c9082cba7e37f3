"""The data dir's layout (``--home``, ``SALSWEEP_HOME``; default ``.salsweep``), in one
module: every file and folder salsweep keeps there is named here.

```
<home>/optuna.db                        the default Optuna storage (SQLite)
<home>/mlflow.db, mlartifacts/          the local MLflow server's store and artifacts
<home>/mlflow-server.{json,log,lock}    its state (pid, address), log and start lock
<home>/studies/<name>/                  a study's folder:
    trial-<nnnn>/                       a search trial's outputs and run outbox
    replicates/<run name>/              a replicate's (and the baseline's) outputs and outbox
    mlflow-parent/<key>/                each sweep process's outbox of the parent run
    jobs/                               its cluster jobs (--executor slurm, submitit):
        <job id>_0_log.out, .err        each job's standard output and error
        <job id>_submitted.pkl          what the job runs (its settings: mode 0700)
```

Imports nothing heavy at import time: the read-only commands name the storage through it,
and `salsweep server status` reads the server's files.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "JOBS_DIR",
    "MLFLOW_ARTIFACTS",
    "MLFLOW_DB",
    "OPTUNA_DB",
    "PARENT_OUTBOX_DIR",
    "REPLICATES_DIR",
    "SERVER_LOCK",
    "SERVER_LOG",
    "SERVER_STATE",
    "STUDIES_DIR",
    "default_storage_url",
    "resolve_storage",
    "study_dir",
    "trial_dir",
]

OPTUNA_DB = "optuna.db"
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"
SERVER_STATE = "mlflow-server.json"
SERVER_LOG = "mlflow-server.log"
SERVER_LOCK = "mlflow-server.lock"
STUDIES_DIR = "studies"
# Under a study's folder.
REPLICATES_DIR = "replicates"
PARENT_OUTBOX_DIR = "mlflow-parent"
JOBS_DIR = "jobs"


def default_storage_url(home: Path) -> str:
    """SQLite file ``<home>/optuna.db``."""
    return f"sqlite:///{(home / OPTUNA_DB).resolve()}"


def resolve_storage(storage: str | None, home: Path) -> str:
    """The given SQLAlchemy URL, or the SQLite file in the data dir."""
    return storage or default_storage_url(home)


def study_dir(home: Path, name: str) -> Path:
    """``<home>/studies/<name>``: the folder of a study's trial outputs. Raises
    `sweeps.StudyNameError` for a name that is not a plain folder name, or whose folder
    would resolve outside the data dir (a symbolic link named like the study)."""
    from sweeps import StudyNameError, check_study_name  # pydantic: not for `server status`

    check_study_name(name)
    root = (home / STUDIES_DIR).resolve()
    folder = (root / name).resolve()
    if folder.parent != root:
        raise StudyNameError(name, f"its folder {folder} is outside the data dir {home}")
    return home / STUDIES_DIR / name


def trial_dir(study_folder: Path, number: int) -> Path:
    """A search trial's folder: ``trial-<nnnn>`` (zero-padded, so they sort)."""
    return study_folder / f"trial-{number:04d}"
