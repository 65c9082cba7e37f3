"""Local workers (`salsweep sweep launch --workers N`, studies.workers): the pure parts of
the plan, a real 2-worker launch through the CLI (the launching command in this process,
click's CliRunner; its workers real processes), and launches racing for the baseline.

The GPU parts (device list, round robin) take the device list as an argument: they are
tested here without a GPU, from given lists and a given `nvidia-smi -L` listing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from cli import cli
from studies import attrs, load_study
from studies.attrs import companion_name
from studies.confirmation.confirmed import load_confirmation
from studies.run.replicates import baseline_search_job
from studies.run.search_space import build_sampler, worker_seed
from studies.store import as_record
from studies.store.records import companion_study
from studies.tracking.server import ServerInfo
from studies.workers.launcher import (
    auto_workers,
    detect_gpus,
    gpu_for_worker,
    parse_visible_devices,
    plan_workers,
    smi_devices,
    threads_per_worker,
)
from tests.process_helpers import ROOT, PythonChild, SalsweepProcess
from tests.studies.sweep_helpers import tiny_spec

# ---------------------------------------------------------------------------- the plan


def test_worker_zero_keeps_the_spec_seed_and_the_others_differ() -> None:
    assert worker_seed(0, 0) == 0
    assert worker_seed(1234, 0) == 1234
    assert worker_seed(None, 3) is None  # a fresh seed per process stays fresh
    seeds = [worker_seed(7, i) for i in range(16)]
    assert len(set(seeds)) == 16
    assert all(s is not None and 0 <= s < 2**32 for s in seeds)
    assert seeds == [worker_seed(7, i) for i in range(16)]  # deterministic
    # no additive coincidence: worker 1 of seed 0 is not the spec seed 1 (nor worker 0 of it)
    assert worker_seed(0, 1) != worker_seed(1, 0)
    assert worker_seed(0, 2) != worker_seed(1, 1)
    with pytest.raises(ValueError, match="worker index"):
        worker_seed(0, -1)


def test_sampler_of_worker_zero_is_the_one_worker_sampler() -> None:
    spec = tiny_spec("s", sampler={"type": "random", "seed": 5})

    def draws(worker: int) -> list[float]:
        study = optuna.create_study(sampler=build_sampler(spec, worker=worker))
        return [study.ask().suggest_float("x", 0, 1) for _ in range(3)]

    assert draws(0) == draws(0)
    solo = optuna.create_study(sampler=build_sampler(spec))
    assert draws(0) == [solo.ask().suggest_float("x", 0, 1) for _ in range(3)]
    assert draws(1) != draws(0)


@pytest.mark.parametrize(
    ("cores", "workers", "threads"),
    [(2, 1, 2), (2, 2, 1), (2, 3, 1), (16, 3, 5), (16, 4, 4), (1, 4, 1)],
)
def test_threads_per_worker(cores: int, workers: int, threads: int) -> None:
    assert threads_per_worker(cores, workers) == threads


def test_threads_per_worker_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        threads_per_worker(2, 0)


def test_gpus_are_given_round_robin() -> None:
    # The device list is an argument: no GPU is needed to test the assignment.
    gpus = ["GPU-aaa", "GPU-bbb", "GPU-ccc"]
    assert [gpu_for_worker(gpus, i) for i in range(7)] == [
        "GPU-aaa",
        "GPU-bbb",
        "GPU-ccc",
        "GPU-aaa",
        "GPU-bbb",
        "GPU-ccc",
        "GPU-aaa",
    ]
    assert gpu_for_worker([], 0) is None
    plans = plan_workers(4, 0, cores=16, gpus=["0", "1"])
    assert [(p.index, p.gpu, p.threads) for p in plans] == [
        (0, "0", 4),
        (1, "1", 4),
        (2, "0", 4),
        (3, "1", 4),
    ]
    assert [p.sampler_seed for p in plans] == [worker_seed(0, i) for i in range(4)]
    assert plans[0].sampler_seed == 0
    assert plans[1].describe() == f"worker 1: sampler seed {worker_seed(0, 1)}, 4 threads, GPU 1"
    cpu = plan_workers(2, None, cores=2, gpus=[])
    assert [(p.gpu, p.threads, p.sampler_seed) for p in cpu] == [(None, 1, None)] * 2
    assert cpu[0].describe() == "worker 0: sampler seed None, 1 thread"


@pytest.mark.parametrize(
    ("value", "devices"),
    [
        ("0,1", ["0", "1"]),
        ("", []),
        ("-1", []),
        ("2,-1,3", ["2"]),  # CUDA stops at the first invalid entry
        (" GPU-abc , 1", ["GPU-abc", "1"]),
        ("0,,1", ["0"]),
    ],
)
def test_cuda_visible_devices_as_cuda_reads_it(value: str, devices: list[str]) -> None:
    assert parse_visible_devices(value) == devices


SMI = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-2222-3333-4444-555555555555)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-66666666-7777-8888-9999-000000000000)
  MIG 3g.20gb     Device  0: (UUID: MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee)
  MIG 3g.20gb     Device  1: (UUID: MIG-ffffffff-0000-1111-2222-333333333333)
GPU 2: NVIDIA L4 (UUID: GPU-44444444-5555-6666-7777-888888888888)
"""


def test_nvidia_smi_listing_gives_uuids_and_mig_instances() -> None:
    assert smi_devices(SMI) == [
        "GPU-11111111-2222-3333-4444-555555555555",
        "MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "MIG-ffffffff-0000-1111-2222-333333333333",
        "GPU-44444444-5555-6666-7777-888888888888",
    ]
    assert smi_devices("") == []
    assert smi_devices("No devices were found\n") == []


def test_detect_gpus_reads_cuda_visible_devices() -> None:
    import torch

    cuda_build = torch.version.cuda is not None
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    # Devices named, but a CPU build of torch could not use them: none.
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "3,1"}) == (["3", "1"] if cuda_build else [])


def test_auto_workers() -> None:
    assert auto_workers(["0", "1", "2"], cores=2) == 3  # at least one per GPU
    assert auto_workers([], cores=2) == 2  # one per core (docs/BENCHMARKS.md)
    assert auto_workers([], cores=1) == 1
    assert auto_workers([], cores=64) == 8  # bounded: memory per worker
    # A GPU shared by several: one per core still (docs/BENCHMARKS.md, on one H200).
    assert auto_workers(["0"], cores=16) == 8
    assert auto_workers(["0"], cores=4) == 4
    assert auto_workers(["0", "1"], cores=64) == 8  # 4 on each, round robin
    assert auto_workers([str(i) for i in range(12)], cores=16) == 12
    # What `--workers auto` then plans on one GPU and 16 cores: the bench's 8 x 2 threads.
    plans = plan_workers(auto_workers(["GPU-a"], cores=16), 0, cores=16, gpus=["GPU-a"])
    assert [(p.gpu, p.threads) for p in plans] == [("GPU-a", 2)] * 8


# ---------------------------------------------------------------------------- real launches


def _write_spec(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_two_workers_share_one_study_and_one_parent_run(
    mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    name = "local-workers"
    n_trials = 4
    confirm = {"top_k": 1, "initial_seeds": 3, "max_seeds": 3}  # a race of one round
    spec = tiny_spec(name, n_trials=n_trials, confirm=confirm)
    path = _write_spec(tmp_path, spec.model_dump(mode="json"))
    home = tmp_path / "home"
    storage = f"sqlite:///{home / 'optuna.db'}"
    args = ["sweep", "launch", str(path), "--workers", "2", "--home", str(home)]
    done = CliRunner().invoke(cli, [*args, "--tracking-uri", mlflow_server.url])
    output = done.output  # the workers' stderr too: the launcher relays it, labelled
    assert done.exit_code == 0, output + repr(done.exception)
    assert "Traceback" not in output

    # The plan printed: worker 0 keeps the spec's sampler seed, worker 1 gets its own.
    seeds = dict(re.findall(r"^worker (\d): sampler seed (\d+), 1 thread", output, re.M))
    assert seeds == {"0": "0", "1": str(worker_seed(0, 1))}
    # One display: every worker's lines, labelled.
    assert re.search(r"^w0 baseline: COMPLETE", output, re.M), output
    assert re.search(r"^w[01] trial \d: COMPLETE", output, re.M), output

    # One study, its budget exactly: 4 COMPLETE trials, numbers 0..3, nothing else.
    study = load_study(name, storage)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert study.user_attrs["n_trials"] == n_trials
    # Two worker processes, neither of them the launcher.
    companion = companion_study(study)
    assert companion is not None
    runs_done = [*trials, *companion.get_trials(states=(TrialState.COMPLETE,))]
    workers = {t.user_attrs["worker"] for t in runs_done}
    pids = {int(w.rpartition(":")[2]) for w in workers}
    assert len(pids) == 2, workers
    assert os.getpid() not in pids  # this process launched them

    # The baseline ran once, before the confirmation; the confirmation is complete.
    roles = [t.user_attrs.get("role") for t in companion.get_trials()]
    assert roles.count("search-baseline") == 1
    assert [t.state for t in companion.get_trials()] == [TrialState.COMPLETE] * len(roles)
    confirmation = load_confirmation(as_record(study))
    assert confirmation is not None
    assert sorted(c.key for c in confirmation.configs) == sorted(
        ["baseline", f"trial-{study.best_trial.number}"]
    )
    assert confirmation.state.done and all(c.seeds == 3 for c in confirmation.configs)

    # One parent run, FINISHED, every run of the sweep under it and closed.
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.info.run_name == "sweep"]
    assert len(parents) == 1
    parent = parents[0].info.run_id
    assert parent == study.user_attrs["mlflow_parent_run_id"]
    assert parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.info.run_id != parent]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent}
    # 4 trials, the baseline's search run, 2 configurations x 3 seeds
    assert len(children) == n_trials + 1 + 6
    assert {r.info.status for r in children} == {"FINISHED"}
    # Each trial's run and each replicate's, by their tags (a trial records its run's id
    # once the server has created the run, which its outbox may do late under load).
    trial_tags = sorted(
        int(r.data.tags["optuna.trial"]) for r in children if "optuna.trial" in r.data.tags
    )
    assert trial_tags == list(range(n_trials))
    replicate_tags = sorted(
        (r.data.tags["salsweep.config"], int(r.data.tags["salsweep.seed"]))
        for r in children
        if "salsweep.config" in r.data.tags
    )
    jobs = [t for t in runs_done if "config_key" in t.user_attrs]
    assert replicate_tags == sorted(
        (t.user_attrs["config_key"], t.user_attrs["seed"]) for t in jobs
    )


RACER = """
import sys
import time
from pathlib import Path
import yaml
from studies import SweepTarget, run_sweep
from sweeps import parse_spec
spec = parse_spec(yaml.safe_load(Path(sys.argv[1]).read_text()), "spec")
Path(sys.argv[5]).touch()
while not all(Path(p).exists() for p in sys.argv[5:]):  # both ready: go together
    time.sleep(0.01)
run_sweep(spec, "race", SweepTarget(sys.argv[2], sys.argv[3], Path(sys.argv[4])))
"""


@pytest.mark.slow
def test_racing_launches_run_the_baseline_once(mlflow_server: ServerInfo, tmp_path: Path) -> None:
    """Two launches of one study at the same moment. The race they can lose, both queueing
    the baseline's job, is set up beforehand (two copies queued), so that it happens on
    every run of the test: the first copy runs, the second is recognised and skipped."""
    spec = tiny_spec("race", n_trials=2)
    path = _write_spec(tmp_path, spec.model_dump(mode="json"))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="race", storage=storage)
    companion = companion_study(study, create=True)
    assert companion is not None
    for _ in range(2):
        companion.enqueue_trial({}, user_attrs=baseline_search_job(spec).user_attrs())
    flags = [str(tmp_path / f"ready-{i}") for i in range(2)]
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-c", RACER, str(path), storage, mlflow_server.url),
                *(str(tmp_path / f"home-{i}"), flags[i], flags[1 - i]),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    assert [p.returncode for p in procs] == [0, 0], outputs

    runs = optuna.load_study(study_name=companion_name("race"), storage=storage).get_trials()
    baseline = [t for t in runs if t.user_attrs.get("role") == "search-baseline"]
    assert [t.state for t in baseline] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert baseline[1].user_attrs[attrs.DUPLICATE_OF] == baseline[0].number
    assert attrs.MLFLOW_RUN_ID not in baseline[1].user_attrs  # never started a run
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("race")
    assert experiment is not None
    named = client.search_runs(
        [experiment.experiment_id], "attributes.run_name = 'baseline-seed0'", max_results=10
    )
    assert [(r.info.run_id, r.info.status) for r in named] == [
        (baseline[0].user_attrs[attrs.MLFLOW_RUN_ID], "FINISHED")
    ]
    # ... and the search went on: the study's budget, once.
    search = optuna.load_study(study_name="race", storage=storage).get_trials()
    assert [t.state for t in search].count(TrialState.COMPLETE) >= 2


# Imported by every process of the launch below (the CLI and its workers): a real forward
# hook makes the network's training output NaN, so every trial diverges.
DIVERGE = """
import math
import torch

def _poison(module, _inputs, output):
    if type(module).__name__ == "DepthNet" and module.training:
        return output * math.nan
    return None

torch.nn.modules.module.register_module_forward_hook(_poison)
"""


@pytest.mark.slow
def test_workers_stop_after_a_budget_of_diverged_trials(
    mlflow_server: ServerInfo, tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    """Every trial diverges: the launcher counts the workers' failures in a row and stops
    them at the budget (2), with the one-process sweep's message and exit code. (A study
    name of its own: test_sweep's one-process case has the experiment "nan" on the same
    session server.)"""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(DIVERGE)
    spec = tiny_spec("nan-workers", n_trials=4, baseline=False)
    path = _write_spec(tmp_path, spec.model_dump(mode="json"))
    home = tmp_path / "home"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")]),
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "SALSWEEP_HOME": str(home),
    }
    # The hook reaches the worker processes through the environment: a child process.
    done = salsweep_process.run(
        *("sweep", "launch", str(path), "--n-trials", "2", "--workers", "2"), env=env, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert errors[0].startswith(
        "Error: study 'nan-workers' stopped: 2 trials in a row failed, the last with a non-finite "
        "training loss (nan) at epoch 1, step 1"
    )
    study = optuna.load_study(study_name="nan-workers", storage=f"sqlite:///{home / 'optuna.db'}")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    client = MlflowClient(mlflow_server.url)
    assert client.get_run(study.user_attrs["mlflow_parent_run_id"]).info.status == "KILLED"
    experiment = client.get_experiment_by_name("nan-workers")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    trial_runs = [r for r in runs if "optuna.trial" in r.data.tags]
    assert sorted((r.data.tags["optuna.trial"], r.info.status) for r in trial_runs) == [
        ("0", "FAILED"),
        ("1", "FAILED"),
    ]


POPPER = """
import json, sys, time
from pathlib import Path
import optuna
from studies.store.storage import open_storage
study = optuna.load_study(study_name="queue", storage=open_storage(sys.argv[1]))
Path(sys.argv[2]).touch()
deadline = time.time() + 100  # a process that died before it was ready fails the test
while not all(Path(p).exists() for p in sys.argv[3:]):  # every process ready: go together
    if time.time() > deadline:
        sys.exit("the other processes never got ready")
    time.sleep(0.001)
popped = []
while (trial_id := study._pop_waiting_trial_id()) is not None:
    popped.append(trial_id)
print(json.dumps(popped))
"""


def test_a_queued_trial_is_popped_by_one_process_only(
    tmp_path: Path, python_child: PythonChild
) -> None:
    """4 processes take queued trials from one SQLite study at the same moment, as local
    workers take the confirmation's replicates: each trial goes to exactly one of them.
    (pysqlite alone began the transaction after the read, and 9-15 of 60 trials were taken
    twice; studies.store.storage makes the read and the write one locked step.)"""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    from studies.store.storage import open_storage

    study = optuna.create_study(study_name="queue", storage=open_storage(storage))
    for i in range(60):
        study.enqueue_trial({"x": i}, skip_if_exists=False)
    flags = [str(tmp_path / f"ready-{i}") for i in range(4)]  # Optuna loaded, study open
    procs = [
        python_child.popen(
            "-c",
            POPPER,
            storage,
            flag,
            *flags,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in flags
    ]
    popped: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        popped += json.loads(out.strip().splitlines()[-1])
    assert len(popped) == 60
    assert sorted(popped) == sorted(t._trial_id for t in study.get_trials())
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 60
