"""Worker jobs through submitit: submitted, watched, cancelled.

`SlurmQueue` submits each worker as one Slurm job (sbatch, through submitit's
SlurmExecutor) and watches them with ``squeue`` (no accounting database needed: a job
that ``squeue --states=all`` no longer lists, or lists in an ended state, has ended);
Ctrl-C of the launcher cancels them with ``scancel`` (SIGTERM to the worker, SIGKILL
after the cluster's KillWait). `LocalQueue` runs the same jobs as local processes through
submitit's LocalExecutor (tests, and trying a sweep's jobs on one machine).

Each job writes its standard output and error to ``<study folder>/jobs/<job id>_0_log.out``
and ``.err`` (studies.home), and what it returned, or its exception, to its result
pickle: `outcome` reads it (no result: the job was stopped or killed).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from studies.cluster.checks import ClusterError, nodes_are_here

if TYPE_CHECKING:
    from studies.cluster.worker import JobWorker
    from sweeps import SlurmSpec

__all__ = [
    "ENDED_STATES",
    "JobQueue",
    "LocalQueue",
    "Outcome",
    "SlurmQueue",
    "SubmittedJob",
    "outcome",
    "signal_delay_s",
    "slurm_parameters",
]

# Slurm job states of a job that has ended (it will not run again unless resubmitted).
ENDED_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)


@dataclass(frozen=True)
class SubmittedJob:
    """A worker job: its worker's index, its job id and its logs."""

    index: int
    job_id: str
    stdout: Path
    stderr: Path
    handle: Any = field(compare=False, repr=False)  # the submitit Job


@dataclass(frozen=True)
class Outcome:
    """How an ended job ended: its worker returned (``done``, with its summary), raised
    (``error``, with the traceback), or left no result (``stopped``: a signal, a kill)."""

    kind: Literal["done", "error", "stopped"]
    text: str = ""


def outcome(job: SubmittedJob) -> Outcome:
    """How ``job`` (ended) ended, from its result pickle."""
    from submitit.core.utils import pickle_load

    path = job.handle.paths.result_pickle
    try:
        kind, value = pickle_load(path)
    except (OSError, EOFError, ValueError, TypeError):
        return Outcome("stopped")
    except Exception:  # an unreadable pickle (a job killed while writing it)
        return Outcome("stopped")
    return Outcome("done" if kind == "success" else "error", str(value))


def signal_delay_s(time_limit_min: int) -> int:
    """Seconds before the time limit at which Slurm warns the job (SIGUSR2): 90, or a
    quarter of a short limit."""
    return min(90, max(10, time_limit_min * 15))


def slurm_parameters(slurm: SlurmSpec, study: str) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters (sbatch options) of the worker jobs of study
    ``study`` with the resources of ``slurm``."""
    threads = str(slurm.cpus_per_worker)
    params: dict[str, Any] = {
        "job_name": f"salsweep-{study}",
        "time": slurm.time_limit,
        "cpus_per_task": slurm.cpus_per_worker,
        "signal_delay_s": signal_delay_s(slurm.time_limit),
        "setup": [
            f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}",
            "export PYTHONUNBUFFERED=1",
            *slurm.setup,
        ],
        # Requeueable: a cluster that preempts by requeueing starts the job again itself.
        "additional_parameters": {"requeue": True, **slurm.sbatch},
    }
    if slurm.partition is not None:
        params["partition"] = slurm.partition
    if slurm.gpus_per_worker:
        params["gpus_per_node"] = slurm.gpus_per_worker
    if slurm.mem_gb is not None:
        mem = slurm.mem_gb
        params["mem"] = f"{int(mem)}GB" if mem == int(mem) else f"{int(mem * 1024)}MB"
    return params


class JobQueue(ABC):
    """Submits worker jobs into ``folder`` (a study's ``jobs/``), watches and cancels them."""

    kind: str

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # the pickles hold the storage's and server's addresses

    @abstractmethod
    def _executor(self) -> Any: ...

    def submit(self, worker: JobWorker, index: int) -> SubmittedJob:
        """Submit ``worker`` as worker ``index``'s job."""
        from submitit.core.utils import FailedJobError, FailedSubmissionError

        try:
            handle = self._executor().submit(worker)
        except (FailedJobError, FailedSubmissionError, OSError) as exc:
            detail = " ".join(str(exc).split())[:400]
            raise ClusterError(
                f"the {self.kind} executor refused worker {index}'s job: {detail}"
            ) from None
        paths = handle.paths
        return SubmittedJob(index, str(handle.job_id), paths.stdout, paths.stderr, handle)

    @abstractmethod
    def live(self, jobs: Sequence[SubmittedJob]) -> set[str]:
        """The ids of ``jobs`` still queued or running (requeued ones included)."""

    @abstractmethod
    def cancel(self, jobs: Sequence[SubmittedJob]) -> None:
        """Stop ``jobs``: SIGTERM to each worker (it fails its trial, closes its run)."""

    def nodes_here(self) -> bool:
        """Whether every node a job may run on is this machine."""
        return True


class SlurmQueue(JobQueue):
    """Worker jobs on Slurm (submitit's SlurmExecutor; ``squeue``, ``scancel``)."""

    kind = "slurm"
    COMMANDS = ("sbatch", "squeue", "scancel", "srun", "sinfo")

    def __init__(self, folder: Path, slurm: SlurmSpec, study: str) -> None:
        missing = [c for c in self.COMMANDS if shutil.which(c) is None]
        if missing:
            raise ClusterError(
                f"the Slurm executor needs Slurm's commands on this machine's PATH (missing: "
                f"{', '.join(missing)}): launch from a login node of the cluster"
            )
        super().__init__(folder)
        self.slurm = slurm
        import submitit

        self._slurm = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
        self._ended_once: set[str] = set()
        try:
            self._slurm.update_parameters(**slurm_parameters(slurm, study))
        except ValueError as exc:
            raise ClusterError(f"slurm: {' '.join(str(exc).split())[:400]}") from None

    def _executor(self) -> Any:
        return self._slurm

    def live(self, jobs: Sequence[SubmittedJob]) -> set[str]:
        if not jobs:
            return set()
        ids = ",".join(j.job_id for j in jobs)
        done = _run(["squeue", "--noheader", "--states=all", "--format=%i|%T", f"--jobs={ids}"])
        if done.returncode != 0:
            if "invalid job id" in done.stderr.lower():
                return set()  # every one of them has left slurmctld's memory: ended
            raise ClusterError(f"squeue failed: {' '.join(done.stderr.split())[:300]}")
        states: dict[str, str] = {}
        for line in done.stdout.splitlines():
            job, _, listed = line.strip().partition("|")
            if job and listed:
                states[job] = listed.split()[0]
        alive = set()
        for job in (j.job_id for j in jobs):
            state = states.get(job)
            if state is not None and state not in ENDED_STATES:
                alive.add(job)
            elif state is not None and job not in self._ended_once:
                # Ended, as far as this look goes: a preempted job that the cluster
                # requeues passes through PREEMPTED. Ended if the next look agrees.
                self._ended_once.add(job)
                alive.add(job)
        return alive

    def cancel(self, jobs: Sequence[SubmittedJob]) -> None:
        if jobs:
            _run(["scancel", *(j.job_id for j in jobs)])

    def nodes_here(self) -> bool:
        command = ["sinfo", "--noheader", "--Node", "--format=%N"]
        if self.slurm.partition is not None:
            command.append(f"--partition={self.slurm.partition}")
        listed = _run(command)
        nodes = sorted({n.strip() for n in listed.stdout.split() if n.strip()})
        return nodes_are_here(nodes, _names_of_this_host())


class LocalQueue(JobQueue):
    """The same jobs as processes of this machine (submitit's LocalExecutor: a controller
    process per job, the worker its child). A job gets the time-limit warning (SIGUSR2)
    ``signal_delay_s`` before ``time_limit_min``. The jobs inherit this process's
    environment (``OMP_NUM_THREADS`` included; torch's threads are the worker's settings).
    """

    kind = "local"

    def __init__(
        self, folder: Path, *, time_limit_min: float = 24 * 60.0, signal_delay_s: int = 90
    ) -> None:
        super().__init__(folder)
        import submitit

        self._local = submitit.LocalExecutor(folder=folder, max_num_timeout=0)
        # No `setup` lines: they would put a shell between the job's process and its
        # controller, and a signal to the job would stop the shell alone.
        self._local.update_parameters(timeout_min=time_limit_min, signal_delay_s=signal_delay_s)

    def _executor(self) -> Any:
        return self._local

    def live(self, jobs: Sequence[SubmittedJob]) -> set[str]:
        alive = set()
        for job in jobs:
            process = job.handle._process
            if process is not None and process.poll() is None:
                alive.add(job.job_id)
        return alive

    def cancel(self, jobs: Sequence[SubmittedJob]) -> None:
        # SIGTERM to the job's controller, which forwards it to the worker (submitit's
        # own cancel sends SIGINT, which the controller answers with SIGKILL 1 s later).
        for job in jobs:
            process = job.handle._process
            if process is not None and process.poll() is None:
                with suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)

    def signal_workers(self, jobs: Sequence[SubmittedJob], signum: int) -> None:
        """Send ``signum`` to the worker process of each of ``jobs`` (not its controller):
        a time-limit warning (SIGUSR2) or a lost node (SIGKILL), for tests."""
        for job in jobs:
            for pid in _children(job.handle._process.pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signum)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _names_of_this_host() -> set[str]:
    names = {socket.gethostname(), "localhost"}
    with suppress(OSError):
        names.add(socket.getfqdn())
    return names


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClusterError(f"{command[0]} failed: {exc}") from None
