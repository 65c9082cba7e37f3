"""Helpers of the studies tests: a tiny sweep spec and the record of one real sweep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studies import SweepTarget
from sweeps import SweepSpec, parse_spec

N_TRIALS = 4  # searched trials (the SSI baseline runs beside the study)
# The session sweep's confirmation: a race of the 2 best configurations and the baseline,
# 3 seeds each (initial = maximum: one round, the least a race looks at).
SEEDS = 3
CONFIRM = {"top_k": 2, "initial_seeds": SEEDS, "max_seeds": SEEDS}


def tiny_spec(name: str, n_trials: int = N_TRIALS, **extra: Any) -> SweepSpec:
    data: dict[str, Any] = {
        "name": name,
        "base": {
            "loss": {"method": "sparse-scale-adaptive"},
            "data": {"height": 32, "width": 64, "num_train": 16, "num_val": 4, "num_test": 4},
            "model": {"base_channels": 4, "num_stages": 2},
            "epochs": 2,
            "steps_per_epoch": 2,
            "batch_size": 2,
            "device": "cpu",
        },
        "search": {
            "loss.lambda_sg": {"low": 0.1, "high": 1.0, "log": True},
            "loss.num_scales": {"low": 1, "high": 3},
            "loss.use_inv_depth": "bool",
        },
        "budget": {"n_trials": n_trials},
        "sampler": {"type": "tpe", "seed": 0},
        "pruner": {"type": "none"},
        "baseline": True,
    }
    data.update(extra)
    return parse_spec(data, "test")


@dataclass(frozen=True)
class Sweep:
    name: str
    target: SweepTarget
    experiment_id: str
    parent_run_id: str
    ran: int
    replicates: int = 0
    # The SQL statements the sweep's close sent to its Optuna storage (conftest's `sweep`).
    close_statements: tuple[str, ...] = ()
