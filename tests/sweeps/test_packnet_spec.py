"""sweeps/packnet-sfm.yaml: the spec validates (sweeps.load_spec, the command checks),
and what it hands a trial is what packnet-sfm and the launcher take: the shipped base
config (sweeps/packnet-sfm/semisup_kitti.yaml) with a trial's values, parsed by
packnet-sfm's real parse_train_file, gives the spec's objective among its metric names.

Without packnet-sfm's sources (tests/packnet_helpers.py) the tests that parse with them
skip with the reason (fail under CI=true); the spec's own checks run regardless.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from studies.command.prepare import TrialInputs, prepare_trial
from sweeps import CommandSpec, SweepSpec, load_spec
from tests.packnet_helpers import missing_reason, packnet_root
from tests.process_helpers import PythonChild

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "sweeps" / "packnet-sfm.yaml"
TEMPLATE = ROOT / "sweeps" / "packnet-sfm" / "semisup_kitti.yaml"
OBJECTIVE = "KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gt"


@pytest.fixture
def spec(monkeypatch: pytest.MonkeyPatch) -> SweepSpec:
    """The spec as `salsweep sweep validate` reads it from salsweep's folder."""
    monkeypatch.chdir(ROOT)
    return load_spec(SPEC)


@pytest.fixture
def packnet(
    require_system: Callable[[str, bool, str], None], monkeypatch: pytest.MonkeyPatch
) -> Path:
    root = packnet_root()
    require_system("packnet-sfm", root is not None, missing_reason())
    assert root is not None
    monkeypatch.setattr(sys, "path", [str(root), *sys.path])
    import packnet_sfm.losses.supervised_loss as supervised

    monkeypatch.setattr(supervised, "get_loss_func", supervised.get_loss_func)
    return root


def command(spec: SweepSpec) -> CommandSpec:
    assert spec.command is not None
    return spec.command


def test_the_packnet_spec_validates(spec: SweepSpec) -> None:
    cmd = command(spec)
    assert cmd.argv[:4] == ["python3", "-m", "studies.command.packnet", "{config}"]
    # the launcher checks the spec's objective at start-up, before any training
    assert cmd.argv[cmd.argv.index("--objective") + 1] == spec.objective.metric == OBJECTIVE
    assert cmd.workdir == ROOT and cmd.base_config == TEMPLATE
    assert cmd.config_keys() == {
        "lambda_sg": "model.loss.lambda_sg",
        "num_scales": "model.loss.num_scales",
        "use_inv_depth": "model.loss.use_inv_depth",
    }
    assert cmd.seed_key == "arch.seed" and cmd.metrics == "file"
    assert set(spec.search) == set(cmd.keys)
    assert spec.objective.direction == "minimize" and not spec.baseline and spec.confirm is None
    base = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    assert cmd.steps == base["arch"]["max_epochs"]  # one report per epoch


def _values(spec: SweepSpec, end: str) -> dict[str, Any]:
    """Each searched setting at its range's ``end`` (low/high), or its first/last choice,
    with the types Optuna suggests (a float range gives floats)."""
    out: dict[str, Any] = {}
    for name, param in spec.search.items():
        if hasattr(param, "choices"):
            out[name] = param.choices[0 if end == "low" else -1]
        else:
            value = getattr(param, end)
            out[name] = float(value) if type(param).__name__ == "FloatRange" else value
    return out


@pytest.mark.parametrize("end", ["low", "high"])
def test_a_trials_config_runs_in_packnet_sfm(
    spec: SweepSpec, packnet: Path, tmp_path: Path, end: str
) -> None:
    """The runner's own trial preparation (config copy with the keys set), then the
    launcher on it: packnet-sfm parses it (yacs takes each suggested value's type), the
    loss is registered with the trial's values and the seed, and the validation set
    gives the objective."""
    import packnet_sfm.losses.supervised_loss as supervised

    from studies.command.packnet import metric_names, parse_config, prepare

    values = _values(spec, end)
    plan = prepare_trial(command(spec), TrialInputs(3, values, seed=11, trial_dir=tmp_path))
    assert plan.config_file is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        config, _ = parse_config(plan.config_file)
    registration = prepare(config, supervised)
    assert {k: registration.params[k] for k in values} == values
    assert config.arch.seed == 11
    assert spec.objective.metric in metric_names(config)


@pytest.mark.slow
def test_the_trials_command_line_starts_the_launcher(
    spec: SweepSpec, packnet: Path, tmp_path: Path, python_child: PythonChild
) -> None:
    """The trial's argv and environment as the runner builds them (packnet-sfm found
    through SALSWEEP_PACKNET_SFM, inherited), in a process of its own, up to training
    (--dry-run: the model needs torchvision, which is not installed here)."""
    values = {"lambda_sg": 0.25, "num_scales": 2, "use_inv_depth": True}
    env = {**os.environ, "SALSWEEP_PACKNET_SFM": str(packnet)}
    plan = prepare_trial(
        command(spec), TrialInputs(0, values, seed=5, trial_dir=tmp_path), base_env=env
    )
    # This interpreter for python3.
    done = python_child.run(*plan.argv[1:], "--dry-run", cwd=plan.cwd, env=dict(plan.env))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("loss: salsweep-sparse-scale-adaptive lambda_sg=0.25 ")
    assert "num_scales=2 " in lines[0] and "use_inv_depth=True " in lines[0]
    assert f"  {OBJECTIVE}" in lines
    assert "SyntaxWarning" not in done.stderr
