"""What a sweep reads as it closes: SQL statements and Optuna study loads.

Runs ``salsweep sweep launch`` in-process (click's CliRunner, one process, no workers) on
a tiny spec (4 search trials, the SSI baseline, a confirmation of the top 2 and the
baseline with 2 seeds each: 6 replicates), against a real MLflow server and an Optuna
SQLite storage in a temporary data dir. From the moment the confirmation's replicates
are done (the sweep module's ``_confirm`` returns) to the moment the command returns,
it counts

- the SQL statements sent to the Optuna storage (an SQLAlchemy ``before_cursor_execute``
  listener on every engine: reads and writes),
- ``optuna.load_study`` and ``optuna.create_study`` calls (each builds a sampler),

that is: the summary on the parent run (plots, confirmation, best config), the parent
run's end, the late run ids, and the CLI's summary table and verdict.

``--tree DIR`` measures another source tree (e.g. an older commit: ``git worktree add
/tmp/before <commit>``) with this checkout's virtual environment; the sweep module is
found at ``studies.run.sweep`` or, in trees before the subpackages, ``studies.sweep``.

    .venv/bin/python benchmarks/close_reads_bench.py [--tree DIR]

Prints one line of JSON: {"sql_statements": N, "study_loads": N, "study_creates": N}.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SPEC = """\
name: close-reads
base:
  loss: {method: sparse-scale-adaptive}
  data: {height: 32, width: 64, num_train: 16, num_val: 4, num_test: 4}
  model: {base_channels: 4, num_stages: 2}
  epochs: 2
  steps_per_epoch: 2
  batch_size: 2
  device: cpu
search:
  loss.lambda_sg: {low: 0.1, high: 1.0, log: true}
  loss.num_scales: {low: 1, high: 3}
budget: {n_trials: 4}
sampler: {type: tpe, seed: 0}
pruner: {type: none}
baseline: true
confirm: {top_k: 2, initial_seeds: 3, max_seeds: 3}
"""


def measure(home: Path) -> dict[str, int]:
    """Run the sweep in this process and count what its close reads."""
    import optuna
    from click.testing import CliRunner
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    import cli

    try:
        sweep_module = importlib.import_module("studies.run.sweep")
    except ImportError:
        sweep_module = importlib.import_module("studies.sweep")
    counts = {"sql_statements": 0, "study_loads": 0, "study_creates": 0}
    closing = [False]

    def on_statement(*_args: object) -> None:
        if closing[0]:
            counts["sql_statements"] += 1

    event.listen(Engine, "before_cursor_execute", on_statement)
    confirm = sweep_module._confirm

    def confirmed(*args: object, **kwargs: object) -> object:
        result = confirm(*args, **kwargs)
        closing[0] = True
        return result

    sweep_module._confirm = confirmed
    load, create = optuna.load_study, optuna.create_study

    def counted_load(*args: object, **kwargs: object) -> object:
        counts["study_loads"] += closing[0]
        return load(*args, **kwargs)

    def counted_create(*args: object, **kwargs: object) -> object:
        counts["study_creates"] += closing[0]
        return create(*args, **kwargs)

    optuna.load_study, optuna.create_study = counted_load, counted_create  # type: ignore[assignment]
    spec = home / "spec.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(
        cli.cli, ["sweep", "launch", str(spec), "--home", str(home)], catch_exceptions=False
    )
    if result.exit_code != 0:
        raise SystemExit(f"the sweep failed ({result.exit_code}):\n{result.output}")
    if not closing[0]:
        raise SystemExit("the confirmation never ran: nothing measured")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=None, help="source tree to measure")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        with tempfile.TemporaryDirectory(prefix="salsweep-close-") as tmp:
            home = Path(tmp)
            try:
                print(json.dumps(measure(home)))
            finally:
                subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        "import cli; cli.main()",
                        "server",
                        "stop",
                        "--home",
                        str(home),
                    ],
                    check=False,
                    capture_output=True,
                )
        return
    tree = (args.tree or Path(__file__).resolve().parents[1]).resolve()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--in-process"],
        cwd=tree,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    print(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
