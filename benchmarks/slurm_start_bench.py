"""What each executor costs to start a worker: a local worker process (``--workers N``)
against a Slurm job submitted through submitit (``--executor slurm``), on this machine's
single-node Slurm (.ci/slurm.sh), in one run.

Each round starts one of each, alternately (the same load for both): the worker's code
records when it starts (Python up; for the job: sbatch, the scheduler, srun, submitit's
unpickling) and when it is ready (torch, Optuna and MLflow imported, as a worker's first
step). Printed: the medians from the launch, and their ratio.

    .venv/bin/python benchmarks/slurm_start_bench.py --rounds 5

Results: docs/BENCHMARKS.md, "Executors: job start latency".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The worker's first step, as both kinds of worker run it (timestamps: Unix seconds).
PROBE = """
import json, sys, time
started = time.time()
import torch, optuna, mlflow  # noqa: E401 -- what a worker loads before its first trial
import studies.run.objective, studies.run.replicates  # noqa: E401
print(json.dumps({"started": started, "ready": time.time()}))
"""


def probe() -> dict[str, float]:
    """The job's callable (pickled by value from this script)."""
    started = time.time()
    import mlflow  # noqa: F401
    import optuna  # noqa: F401
    import torch  # noqa: F401

    import studies.run.objective
    import studies.run.replicates  # noqa: F401

    return {"started": started, "ready": time.time()}


def local_worker(root: Path) -> dict[str, float]:
    """A local worker's start: a Python process of this machine, as spawn_workers starts it."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    launched = time.time()
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True
    )
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return {"start": times["started"] - launched, "ready": times["ready"] - launched}


def slurm_job(folder: Path, partition: str | None) -> dict[str, float]:
    """A Slurm job's start through submitit, as the cluster launcher submits a worker."""
    import submitit

    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
    params: dict[str, object] = {"time": 5, "cpus_per_task": 1, "job_name": "salsweep-bench"}
    if partition:
        params["partition"] = partition
    executor.update_parameters(**params, setup=["export OMP_NUM_THREADS=1"])
    launched = time.time()
    job = executor.submit(probe)
    while not job.paths.result_pickle.exists():  # (submitit's own wait asks sacct too)
        time.sleep(0.05)
    times = job.result()
    return {"start": times["started"] - launched, "ready": times["ready"] - launched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--partition", default=None)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    results: dict[str, list[dict[str, float]]] = {"local": [], "slurm": []}
    with tempfile.TemporaryDirectory(prefix="salsweep-slurm-bench-") as tmp:
        for i in range(args.rounds):
            results["local"].append(local_worker(root))
            results["slurm"].append(slurm_job(Path(tmp) / f"round-{i}", args.partition))
            local, slurm = results["local"][-1], results["slurm"][-1]
            print(
                f"round {i + 1}: local start {local['start']:.2f} s ready {local['ready']:.2f} s"
                f" | slurm start {slurm['start']:.2f} s ready {slurm['ready']:.2f} s",
                flush=True,
            )
    load = os.getloadavg()
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, load {load[0]:.1f} {load[1]:.1f}")
    print(f"{args.rounds} rounds, medians from the launch (seconds):")
    medians = {}
    for kind, runs in results.items():
        medians[kind] = {k: statistics.median(r[k] for r in runs) for k in ("start", "ready")}
        print(
            f"  {kind:6s} worker code starts {medians[kind]['start']:.2f}, "
            f"ready (torch, Optuna, MLflow loaded) {medians[kind]['ready']:.2f}"
        )
    for key in ("start", "ready"):
        ratio = medians["slurm"][key] / medians["local"][key]
        extra = medians["slurm"][key] - medians["local"][key]
        print(f"  slurm / local, {key}: x{ratio:.2f} (+{extra:.2f} s)")


if __name__ == "__main__":
    main()
