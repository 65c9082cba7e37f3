"""The plan of local workers (``sweep launch --workers N``) and their processes' start.

Light on purpose (no torch, Optuna or MLflow): the CLI computes the plan and starts the
worker processes first, so that they load their heavy modules while the launcher loads its
own and prepares the study (studies.workers.launcher then takes them over). A started worker loads
its modules, then waits for its settings on its standard input; one whose input closes
before them exits quietly.

The device list is an argument of every pure function here (`plan_workers`,
`gpu_for_worker`), so that the assignment is tested without a GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from studies.run import worker_seed

__all__ = [
    "CPU_THREADS_PER_WORKER",
    "MAX_AUTO_WORKERS",
    "WorkerPlan",
    "auto_workers",
    "cpu_count",
    "detect_gpus",
    "gpu_for_worker",
    "parse_visible_devices",
    "plan_workers",
    "smi_devices",
    "spawn_workers",
    "threads_per_worker",
]

# `--workers auto`: one worker per this many cores (docs/BENCHMARKS.md, "Local workers":
# on 2 cores, 2 workers of 1 thread beat 1 worker of 2 threads) ...
CPU_THREADS_PER_WORKER = 1
# ... and at most this many: each holds its own copy of the rendered scenes and of torch
# (a few hundred MB), and a short proxy trial gains nothing from more. GPUs do not lower
# it: a proxy trial leaves its GPU mostly idle, bound by the Python of its process
# (docs/BENCHMARKS.md, "Several trials on one GPU": 8 at once on one H200 with 16 cores
# finished 6.9 times the trials per minute of one, 16 at once 9.7 times).
MAX_AUTO_WORKERS = 8


@dataclass(frozen=True)
class WorkerPlan:
    """What worker ``index`` gets: its sampler seed, CPU threads and GPU (None: the
    environment's devices are left as they are)."""

    index: int
    sampler_seed: int | None
    threads: int
    gpu: str | None

    def describe(self) -> str:
        gpu = f", GPU {self.gpu}" if self.gpu is not None else ""
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"worker {self.index}: sampler seed {self.sampler_seed}, {threads}{gpu}"


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(cores: int, workers: int) -> int:
    """Each worker's share of ``cores`` (at least one thread)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    return max(1, cores // workers)


def gpu_for_worker(devices: Sequence[str], index: int) -> str | None:
    """Round robin: worker ``index`` gets ``devices[index % len(devices)]``; None without
    devices."""
    return devices[index % len(devices)] if devices else None


def auto_workers(gpus: Sequence[str], cores: int) -> int:
    """``--workers auto``: one per `CPU_THREADS_PER_WORKER` cores, at most
    `MAX_AUTO_WORKERS`, and at least one per GPU (`gpu_for_worker` shares the GPUs out
    round robin: 8 workers on 1 GPU, 4 on each of 2)."""
    return max(len(gpus), 1, min(MAX_AUTO_WORKERS, cores // CPU_THREADS_PER_WORKER))


def plan_workers(
    workers: int, sampler_seed: int | None, *, cores: int, gpus: Sequence[str]
) -> list[WorkerPlan]:
    """The plan of ``workers`` local workers of a spec whose sampler seed is
    ``sampler_seed``, on ``cores`` CPU cores and the GPUs ``gpus`` (CUDA_VISIBLE_DEVICES
    entries; empty: none)."""
    threads = threads_per_worker(cores, workers)
    return [
        WorkerPlan(i, worker_seed(sampler_seed, i), threads, gpu_for_worker(gpus, i))
        for i in range(workers)
    ]


def parse_visible_devices(value: str) -> list[str]:
    """The devices of a ``CUDA_VISIBLE_DEVICES`` value as CUDA reads it: comma-separated
    indices or UUIDs, up to the first empty or negative entry (``""`` and ``-1``: none)."""
    devices = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry or entry.startswith("-"):
            break
        devices.append(entry)
    return devices


def smi_devices(listing: str) -> list[str]:
    """The CUDA devices in ``nvidia-smi -L`` output, by UUID (CUDA_VISIBLE_DEVICES takes
    UUIDs whatever CUDA_DEVICE_ORDER says); a GPU split into MIG instances gives those."""
    devices: list[str] = []
    gpu: str | None = None
    migs: list[str] = []

    def close() -> None:
        if gpu is not None:
            devices.extend(migs or [gpu])

    for line in listing.splitlines():
        stripped = line.strip()
        uuid = stripped.rpartition("(UUID: ")[2].rstrip(")") if "(UUID: " in stripped else None
        if stripped.startswith("GPU ") and uuid:
            close()
            gpu, migs = uuid, []
        elif stripped.startswith("MIG ") and uuid and gpu is not None:
            migs.append(uuid)
    close()
    return devices


def detect_gpus(env: Mapping[str, str] | None = None) -> list[str]:
    """The CUDA devices a worker may be given: ``CUDA_VISIBLE_DEVICES`` when set, else
    those ``nvidia-smi -L`` lists; none when torch is a CPU build. Starts no CUDA context
    in this process (workers are the ones to use the GPUs)."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        devices = parse_visible_devices(env["CUDA_VISIBLE_DEVICES"])
    else:
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return []
        try:
            listing = subprocess.run(
                [smi, "-L"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        devices = smi_devices(listing)
    if not devices:
        return []
    import torch.version  # the build's CUDA version: no driver call

    return devices if torch.version.cuda else []


def _spawn(plan: WorkerPlan) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(plan.threads)
    env["PYTHONUNBUFFERED"] = "1"
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    if plan.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = plan.gpu
    return subprocess.Popen(
        [sys.executable, "-m", "studies.workers.process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        bufsize=1,
    )


@contextmanager
def spawn_workers(plans: Sequence[WorkerPlan]) -> Iterator[list[subprocess.Popen[str]]]:
    """Start a worker process per plan; on the way out, stop whichever still runs (none,
    once `studies.workers.launcher.run_workers` has taken them over: it stops its workers itself;
    a worker that was never given its settings holds nothing yet): SIGTERM, then SIGKILL
    after a few seconds."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for plan in plans:
            procs.append(_spawn(plan))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + 5.0
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with suppress(OSError):
                        stream.close()
