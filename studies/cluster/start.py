"""The start of a sweep on Slurm, from the command line's point of view: the checks that
refuse a launch before anything is created or submitted, and the job queue.

`refuse_sqlite` comes first (before an MLflow server is started for nothing); then
`slurm_queue` (Slurm's commands on the PATH, the spec's and the options' resources);
then `check_addresses` with the tracking URI that the launch resolved.
"""

from __future__ import annotations

from pathlib import Path

from studies.cluster.checks import ClusterError, address_problems, sqlite_problem
from studies.cluster.queue import SlurmQueue
from studies.home import JOBS_DIR, study_dir
from sweeps import SlurmSpec

__all__ = ["check_addresses", "jobs_folder", "refuse_sqlite", "slurm_queue"]


def refuse_sqlite(storage_url: str, *, allow_sqlite: bool) -> None:
    """`ClusterError` for an SQLite storage, unless ``allow_sqlite``."""
    problem = sqlite_problem(storage_url, allow_sqlite=allow_sqlite)
    if problem is not None:
        raise ClusterError(problem)


def jobs_folder(home: Path, name: str) -> Path:
    """``<home>/studies/<name>/jobs``: the jobs' pickles and logs (absolute: the jobs'
    working folder may be another)."""
    return (study_dir(home, name) / JOBS_DIR).resolve()


def slurm_queue(home: Path, name: str, slurm: SlurmSpec) -> SlurmQueue:
    """The Slurm job queue of study ``name``'s workers."""
    return SlurmQueue(jobs_folder(home, name), slurm, name)


def check_addresses(queue: SlurmQueue, storage_url: str, tracking_uri: str) -> None:
    """`ClusterError` when the jobs could not reach the storage or the MLflow server at
    these addresses (see `studies.cluster.checks.address_problems`); whether they answer
    is checked next, as every sweep opens them, before any job is submitted."""
    problems = address_problems(storage_url, tracking_uri, nodes_here=queue.nodes_here())
    if problems:
        raise ClusterError("; ".join(problems))
