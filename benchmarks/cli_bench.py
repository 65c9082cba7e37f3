"""Seconds for the read-only commands, each a whole process as a user runs it.

Every command is ``.venv/bin/salsweep ...`` with ``SALSWEEP_HOME`` set to a temporary data
dir, timed from launch to exit; the figure is the median of ``--repeats`` runs (the
commands take turns, so a burst of load on the machine spreads over all of them). The data
dir holds one finished study written straight into its Optuna SQLite file, as a sweep of
``sweeps/default.yaml`` leaves it but without training or a tracking server: its spec and
objective as study attributes, ``--trials`` search trials (COMPLETE, one PRUNED) with their
per-epoch reports, config and MLflow run id, and the companion study with the SSI
baseline's search run and a confirmation of the top 3 configurations and the baseline (4
seeds each). No MLflow server runs, so ``server status`` exits 1.

Besides the time, one more run of each command in a fresh interpreter lists which heavy
modules (torch, mlflow, matplotlib, optuna, sqlalchemy, alembic, scipy, pydantic) it
imported.

Bytecode: the commands run with compiled bytecode, as on a user's machine (pip compiles
every module at install; otherwise the first run writes ``__pycache__``). The benchmark
keeps its own cache (``PYTHONPYCACHEPREFIX`` in its temporary dir, filled by the warm-up
round) and ignores ``PYTHONDONTWRITEBYTECODE``: a venv installed without ``.pyc`` files
(uv's default) under ``PYTHONDONTWRITEBYTECODE=1`` compiles every imported module on every
run, which doubles to triples these times. ``--no-bytecode-cache`` times that case.

``--compare DIR`` times another source tree in the same runs (each command of both trees
takes its turn), e.g. the last commit for a before/after table:

    git archive HEAD | tar -x -C /tmp/before

Prints a Markdown table for docs/BENCHMARKS.md:

    .venv/bin/python benchmarks/cli_bench.py [--repeats 5] [--trials 12] [--compare DIR]
        [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STUDY = "bench"
# A command that runs longer than this fails the benchmark instead of hanging it.
COMMAND_TIMEOUT_S = 120
HEAVY = ("torch", "mlflow", "matplotlib", "optuna", "sqlalchemy", "alembic", "scipy", "pydantic")
INVALID_SPEC = """\
name: broken
base:
  loss: {lambda_sgg: 1}
  epochs: many
search:
  loss.num_scales: {low: 4, high: 1}
sampler: {type: anneal}
"""
# salsweep's console script, for a source tree given by --compare.
LAUNCH = """
import sys
from cli import main
sys.argv[0] = "salsweep"
sys.exit(main())
"""
# Runs the CLI in this interpreter, then reports which heavy modules it imported.
PROBE = """
import sys
from cli import main
sys.argv = ["salsweep", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def write_study(home: Path, n_trials: int) -> None:
    """A finished sweep of sweeps/default.yaml in ``home``'s Optuna storage (no training)."""
    import optuna
    from optuna.trial import TrialState

    from studies.attrs import BASELINE_KEY, trial_key
    from studies.confirmation.confirmed import ROLE_CONFIRMATION, ROLE_SEARCH_BASELINE
    from studies.home import default_storage_url
    from studies.run.search_space import suggest_config
    from studies.store.catalog import quiet_optuna_logs
    from studies.store.records import companion_study
    from studies.store.storage import open_storage
    from sweeps import SPEC_DIR, load_spec

    quiet_optuna_logs()
    # ask/tell without Study.optimize: Optuna warns that the storage's heartbeat is unused.
    warnings.filterwarnings("ignore", message="Heartbeat of storage")
    spec = load_spec(SPEC_DIR / "default.yaml")
    storage = open_storage(default_storage_url(home))
    study = optuna.create_study(
        study_name=STUDY,
        storage=storage,
        direction=spec.objective.direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.set_user_attr("spec", spec.model_dump(mode="json"))
    study.set_user_attr("objective_metric", spec.objective.metric)
    study.set_user_attr("direction", spec.objective.direction)
    study.set_user_attr("mlflow_experiment_id", "1")
    study.set_user_attr("mlflow_parent_run_id", "parent")
    values: dict[int, float] = {}
    for i in range(n_trials):
        trial = study.ask()
        config = suggest_config(trial, spec)
        trial.set_user_attr("mlflow_run_id", f"run{i:04d}")
        trial.set_user_attr("config", config.model_dump(mode="json"))
        value = 0.30 - 0.01 * ((i * 7) % n_trials)
        for epoch in range(1, config.epochs + 1):
            trial.report(value + 0.05 / epoch, epoch)
        if i == n_trials - 1:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, value)
            values[i] = value
    companion = companion_study(study, create=True)
    assert companion is not None
    companion.set_user_attr("metric", spec.objective.metric)
    companion.set_user_attr("search_metric", spec.objective.metric)
    companion.set_user_attr("test_metric", "test/abs_rel_align")
    top = sorted(values, key=values.__getitem__)[:3]
    # A race of the 3 best and the baseline, 4 seeds each (its first round).
    companion.set_user_attr(
        "race",
        {
            "design": {
                "top_k": 3,
                "initial_seeds": 4,
                "max_seeds": 16,
                "indifference_zone": 0.005,
                "alpha": 0.05,
            },
            "candidates": [trial_key(n) for n in top],
            "baseline": BASELINE_KEY,
        },
    )
    runs = [(BASELINE_KEY, 0, ROLE_SEARCH_BASELINE, 0.33)]
    for key, base in [(BASELINE_KEY, 0.33)] + [(trial_key(n), values[n]) for n in top]:
        runs += [(key, seed, ROLE_CONFIRMATION, base + 0.004 * seed) for seed in (1, 2, 3, 4)]
    for key, seed, role, value in runs:
        number = int(key.split("-")[1]) if key != BASELINE_KEY else None
        params = {"loss.method": "ssi"} if number is None else study.trials[number].params
        race = (
            {}
            if role != ROLE_CONFIRMATION
            else {
                "seed_index": seed - 1,
                "data_seed": seed,
                "test_value": value + 0.01,
                "test_metric": "test/abs_rel_align",
            }
        )
        companion.add_trial(
            optuna.trial.create_trial(
                value=value,
                user_attrs={
                    "config_key": key,
                    "seed": seed,
                    "role": role,
                    "params": params,
                    "method": "ssi" if number is None else "scale-adaptive",
                    "mlflow_run_id": f"{key}-{seed}-{role}",
                    "metric": spec.objective.metric,
                    **race,
                },
            )
        )


def commands(work: Path) -> dict[str, tuple[list[str], int]]:
    """Label -> (arguments, expected exit code)."""
    invalid = work / "invalid.yaml"
    invalid.write_text(INVALID_SPEC, encoding="utf-8")
    spec = str(ROOT / "sweeps" / "default.yaml")
    return {
        "salsweep --help": (["--help"], 0),
        "studies list": (["studies", "list"], 0),
        f"studies show {STUDY}": (["studies", "show", STUDY], 0),
        f"studies export {STUDY} -o f.yaml": (
            ["studies", "export", STUDY, "-o", str(work / "f.yaml")],
            0,
        ),
        "sweep validate sweeps/default.yaml": (["sweep", "validate", spec], 0),
        "sweep validate invalid.yaml (exit 1)": (["sweep", "validate", str(invalid)], 1),
        "server status (none running, exit 1)": (["server", "status"], 1),
    }


def launcher(tree: Path | None) -> tuple[list[str], Path]:
    """The command that runs salsweep, and its working directory: the console script of
    this checkout, or for another source tree (``--compare``) the same ``cli.main`` run
    from that tree (Python puts the working directory first on ``sys.path``)."""
    if tree is None:
        return [str(BIN / "salsweep")], ROOT
    return [sys.executable, "-c", LAUNCH], tree


def time_once(
    args: list[str], env: dict[str, str], expected: int, tree: Path | None = None
) -> float:
    command, cwd = launcher(tree)
    start = time.perf_counter()
    done = subprocess.run(
        [*command, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != expected:
        raise SystemExit(
            f"salsweep {' '.join(args)} ({cwd}): exit {done.returncode}, expected {expected}\n"
            + done.stderr.decode(errors="replace")
        )
    return seconds


def heavy_modules(args: list[str], env: dict[str, str], tree: Path | None = None) -> str:
    probe = PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        env=env,
        cwd=tree or ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("HEAVY:")]
    return lines[-1].removeprefix("HEAVY:").replace(",", ", ") if lines else "?"


def python_floor(env: dict[str, str], repeats: int) -> dict[str, float]:
    """Interpreter start alone, with the imports every command pays for, and with those
    that reading through Optuna or exporting would add (run from the repository root)."""
    cases = {
        "python -c pass": "pass",
        "python -c 'import click, rich.console'": "import click, rich.console",
        # What reading a study through Optuna's RDB storage costs (studies.store.tables avoids it).
        "python -c 'import optuna, sqlalchemy.orm'": "import optuna, sqlalchemy.orm",
        # What an export adds: the config models (pydantic) and YAML.
        "python -c 'import trainer.config, yaml'": "import trainer.config, yaml",
    }
    out = {}
    for label, code in cases.items():
        subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
            times.append(time.perf_counter() - start)
        out[label] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=12, help="search trials of the study")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="another source tree (e.g. `git archive HEAD` unpacked) timed in the same "
        "runs, both through `python -c` (cli.main) instead of the console script",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run without cached bytecode (PYTHONDONTWRITEBYTECODE=1, an empty cache "
        "prefix): every run compiles what it imports, as with a venv installed without .pyc",
    )
    args = parser.parse_args()

    trees: list[Path | None] = [None] if args.compare is None else [args.compare, ROOT]
    with tempfile.TemporaryDirectory(prefix="salsweep-cli-bench-") as tmp:
        work = Path(tmp)
        home = work / "home"
        write_study(home, args.trials)
        env = dict(os.environ)
        env["SALSWEEP_HOME"] = str(home)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        if args.no_bytecode_cache:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("SALSWEEP_STORAGE", None)
        env.pop("MLFLOW_TRACKING_URI", None)
        cases = commands(work)
        for tree in trees:  # warm the file cache once
            for argv, expected in cases.values():
                time_once(argv, env, expected, tree)
        times: dict[tuple[str, Path | None], list[float]] = {
            (label, tree): [] for label in cases for tree in trees
        }
        for _ in range(args.repeats):
            for label, (argv, expected) in cases.items():
                for tree in trees:
                    times[label, tree].append(time_once(argv, env, expected, tree))
        heavy = {
            (label, tree): heavy_modules(argv, env, tree)
            for label, (argv, _) in cases.items()
            for tree in trees
        }
        floor = python_floor(env, args.repeats)

    load = os.getloadavg()[0]
    print(f"{args.repeats} runs each, study of {args.trials} trials + confirmation, ", end="")
    cache = "without cached bytecode" if args.no_bytecode_cache else "bytecode cached"
    print(f"{cache}, load average {load:.1f} at the end\n")
    names: dict[Path | None, str] = {None: "", ROOT: " (this tree)"}
    if args.compare is not None:
        names[args.compare] = f" ({args.compare.name})"
    print("| command | median s | min s | max s | heavy modules imported |")
    print("|---|---:|---:|---:|---|")
    for label in cases:
        for tree in trees:
            values = times[label, tree]
            print(
                f"| `{label}`{names[tree]} | {statistics.median(values):.2f} | "
                f"{min(values):.2f} | {max(values):.2f} | {heavy[label, tree] or 'none'} |"
            )
    for label, seconds in floor.items():
        print(f"| `{label}` (reference) | {seconds:.2f} | | | |")


if __name__ == "__main__":
    main()
