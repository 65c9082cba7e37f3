"""Sweeps on a cluster (``--executor slurm``): worker jobs submitted through submitit that
take their work from the shared storage, steered by a launcher that stays attached.

checks.py (what a cluster needs: a shared storage, addresses the nodes reach), phase.py
(the launcher's word to its jobs, in the storage), queue.py (jobs through submitit: Slurm,
or local processes), worker.py (what a job runs), progress.py (the one display, read from
the storage), launcher.py (the launcher), start.py (the checks before a Slurm launch).
Its names load on first use (see loss.lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.cluster.checks import (
        ClusterError,
        address_problems,
        sqlite_problem,
    )
    from studies.cluster.launcher import (
        ClusterRun,
        NextRound,
        race_rounds,
        run_cluster,
        run_cluster_confirmation,
    )
    from studies.cluster.queue import (
        JobQueue,
        LocalQueue,
        SlurmQueue,
        SubmittedJob,
    )
    from studies.cluster.start import (
        check_addresses,
        jobs_folder,
        refuse_sqlite,
        slurm_queue,
    )
    from studies.cluster.worker import (
        JobWorker,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.cluster.checks": ("ClusterError", "address_problems", "sqlite_problem"),
        "studies.cluster.launcher": (
            "ClusterRun",
            "NextRound",
            "race_rounds",
            "run_cluster",
            "run_cluster_confirmation",
        ),
        "studies.cluster.queue": ("JobQueue", "LocalQueue", "SlurmQueue", "SubmittedJob"),
        "studies.cluster.start": ("check_addresses", "jobs_folder", "refuse_sqlite", "slurm_queue"),
        "studies.cluster.worker": ("JobWorker",),
    },
)
