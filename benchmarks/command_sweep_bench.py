"""A trial of the built-in trainer run as a command (`salsweep train {config}`) against the
same trial in process: what the command path costs per trial beyond the program itself.

One tiny config (the tests' sizes: 32x64 images, 2 epochs of 2 steps, CPU) with the same
values and seed is trained two ways, taking turns ``--repeats`` times:

- in process: a 1-trial `studies.run_sweep` of a built-in spec (`trainer.fit` in this
  process, its epochs logged to MLflow through the outbox);
- command: a 1-trial `studies.run_sweep` of a command spec whose command is
  ``salsweep train {config} --output-dir {trial_dir}`` (the venv's console script), keys
  ``loss.*`` -> the same dotted keys, ``seed_key: seed``.

A trial's seconds are Optuna's (``datetime_complete - datetime_start``). Inside them, the
program's life (`studies.command.run_trial`: from writing its inputs until its group is
gone) and the in-process `trainer.fit` are timed here too. What a trial costs outside its
training is then trial - program (command) and trial - fit (in process): the MLflow run
opened and closed, the inputs, the supervision, the logs; the command path's overhead is
their difference, free of the noise of training itself on a loaded machine. The
program's own start-up (a fresh interpreter importing torch; ``salsweep train`` also
scores the test split and prints tables) is program - fit. The goal: overhead at most 3 s.
The values of both trials are printed side by side (they must be equal).

    .venv/bin/python benchmarks/command_sweep_bench.py [--repeats 3] [--tracking-uri URI]

Without ``--tracking-uri`` an MLflow server is started in a temporary data dir (and
stopped at the end).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studies import SweepTarget, load_study, quiet_optuna_logs, run_sweep  # noqa: E402
from studies.run import commands, objective  # noqa: E402
from sweeps import SweepSpec, parse_spec  # noqa: E402

BASE = {
    "loss": {"method": "sparse-scale-adaptive"},
    "data": {"height": 32, "width": 64, "num_train": 16, "num_val": 4, "num_test": 4},
    "model": {"base_channels": 4, "num_stages": 2},
    "epochs": 2,
    "steps_per_epoch": 2,
    "batch_size": 2,
    "device": "cpu",
}
SEARCH = {
    "loss.lambda_sg": {"low": 0.1, "high": 1.0, "log": True},
    "loss.num_scales": {"low": 1, "high": 3},
    "loss.use_inv_depth": "bool",
}


def specs(folder: Path) -> tuple[SweepSpec, SweepSpec]:
    """(built-in spec, command spec) of the same search, base and seed."""
    common: dict[str, Any] = {
        "search": SEARCH,
        "objective": {"metric": "val/abs_rel_align"},
        "budget": {"n_trials": 1},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "baseline": False,
    }
    builtin = parse_spec({"name": "in-process", "base": BASE, **common}, "bench")
    base = folder / "train.yaml"
    base.write_text(yaml.safe_dump(builtin.base.model_dump(mode="json"), sort_keys=False))
    salsweep = Path(sys.executable).parent / "salsweep"
    command = {
        "argv": [str(salsweep), "train", "{config}", "--output-dir", "{trial_dir}"],
        "workdir": str(folder),
        "base_config": str(base),
        "keys": {key: key for key in SEARCH},
        "seed_key": "seed",
        "seed": builtin.training_seed(),
    }
    return builtin, parse_spec({"name": "command", "command": command, **common}, "bench")


def trial_seconds(name: str, target: SweepTarget) -> tuple[float, float]:
    """(seconds, value) of the study's one trial."""
    (trial,) = load_study(name, target.storage_url).get_trials()
    assert trial.datetime_start is not None and trial.datetime_complete is not None
    assert trial.value is not None, f"{name}: trial {trial.state.name}"
    return (trial.datetime_complete - trial.datetime_start).total_seconds(), trial.value


class Timed:
    """Wraps ``module.name`` (a function) to record how long each call took."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name = module, name
        self.inner = getattr(module, name)
        self.seconds: list[float] = []
        setattr(module, name, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds.append(time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    quiet_optuna_logs()
    with tempfile.TemporaryDirectory(prefix="command-sweep-bench-") as tmp:
        home = Path(tmp)
        server = None
        uri = args.tracking_uri
        if uri is None:
            from studies.tracking.server import start_server, stop_server
            from tests.port_helpers import free_port

            server = start_server(home / "mlflow", port=free_port(), timeout=240.0)
            uri = server.url
        try:
            target = SweepTarget(f"sqlite:///{home / 'optuna.db'}", uri, home)
            builtin, command = specs(home)
            # Not counted: this process imports torch and renders the scenes once.
            run_sweep(builtin, "warm-up", target)
            program = Timed(commands, "run_trial")  # the program's life in a trial
            fit = Timed(objective, "fit")  # the in-process training
            rows = []
            for i in range(args.repeats):
                row: dict[str, float] = {}
                for way in ("in", "command") if i % 2 == 0 else ("command", "in"):
                    if way == "in":
                        run_sweep(builtin, f"in-{i}", target)
                        row["in"], row["in_value"] = trial_seconds(f"in-{i}", target)
                        row["fit"] = fit.seconds[-1]
                    else:
                        run_sweep(command, f"command-{i}", target)
                        row["command"], row["value"] = trial_seconds(f"command-{i}", target)
                        row["program"] = program.seconds[-1]
                row["overhead"] = (row["command"] - row["program"]) - (row["in"] - row["fit"])
                rows.append(row)
                print(
                    f"repeat {i}: in process {row['in']:.2f} s (fit {row['fit']:.2f}), "
                    f"command {row['command']:.2f} s (program {row['program']:.2f}), "
                    f"overhead {row['overhead']:+.3f} s; values {row['in_value']!r} "
                    f"{row['value']!r}",
                    flush=True,
                )
        finally:
            if server is not None:
                stop_server(home / "mlflow")
    print(f"\nload average {os.getloadavg()[0]:.1f}; {args.repeats} repeats, medians:")
    print(
        "| in-process trial s | fit s | command trial s | program s | start-up s "
        "| outside training, in process s | outside the program, command s | overhead s "
        "| worst s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    startup = statistics.median(r["program"] - r["fit"] for r in rows)
    outside_in = statistics.median(r["in"] - r["fit"] for r in rows)
    outside_cmd = statistics.median(r["command"] - r["program"] for r in rows)
    print(
        f"| {med('in'):.2f} | {med('fit'):.2f} | {med('command'):.2f} | {med('program'):.2f} "
        f"| {startup:.2f} | {outside_in:.3f} | {outside_cmd:.3f} | {med('overhead'):+.3f} "
        f"| {max(r['overhead'] for r in rows):+.3f} |"
    )
    same = all(r["in_value"] == r["value"] for r in rows)
    print(f"in-process and command values equal in every repeat: {same}")


if __name__ == "__main__":
    main()
