"""studies.export on real Optuna studies in SQLite: best trial, both formats, atomic write."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from studies.export import ExportError, best_trial, export_best, write_export
from sweeps import SPEC_DIR, SweepSpec, load_spec
from trainer import TrainConfig, load_train_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "loss.lambda_sg": FloatDistribution(0.05, 2.0, log=True),
    "loss.num_scales": IntDistribution(1, 4),
    "loss.use_inv_depth": CategoricalDistribution([True, False]),
}


def add(
    study: optuna.Study,
    spec: SweepSpec,
    params: dict[str, Any],
    value: float | None,
    *,
    baseline: bool = False,
    state: TrialState = TrialState.COMPLETE,
    store_config: bool = True,
) -> None:
    """A finished trial with the objective's user attributes."""
    config = spec.config_for(params, baseline=baseline)
    attrs: dict[str, Any] = {"mlflow_run_id": f"run-{len(study.trials)}", "baseline": baseline}
    if store_config:
        attrs["config"] = config.model_dump(mode="json")
    study.add_trial(
        create_trial(
            state=state,
            value=value,
            params=params,
            distributions=DISTRIBUTIONS,
            user_attrs=attrs,
            intermediate_values={1: value} if value is not None else None,
        )
    )


@pytest.fixture
def spec() -> SweepSpec:
    return load_spec(SPEC_DIR / "default.yaml")


def make_study(
    tmp_path: Path, spec: SweepSpec, direction: Literal["minimize", "maximize"] = "minimize"
) -> optuna.Study:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db", study_name="demo", direction=direction
    )
    study.set_user_attr("spec", spec.model_dump(mode="json"))
    study.set_user_attr("objective_metric", "val/abs_rel")
    study.set_user_attr("direction", direction)
    study.set_user_attr("mlflow_experiment_id", "7")
    study.set_user_attr("mlflow_parent_run_id", "parent")
    return study


P1 = {"loss.lambda_sg": 0.2, "loss.num_scales": 2, "loss.use_inv_depth": True}
P2 = {"loss.lambda_sg": 1.5, "loss.num_scales": 4, "loss.use_inv_depth": False}
P3 = {"loss.lambda_sg": 0.7, "loss.num_scales": 3, "loss.use_inv_depth": True}


@pytest.fixture
def study(tmp_path: Path, spec: SweepSpec) -> optuna.Study:
    s = make_study(tmp_path, spec)
    add(s, spec, spec.baseline_values(), 0.10, baseline=True)  # better, but the baseline
    add(s, spec, P1, 0.30)
    add(s, spec, P2, 0.25)
    add(s, spec, P3, 0.20, state=TrialState.PRUNED)
    return s


def header(text: str) -> dict[str, str]:
    lines = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    return dict(line.split(": ", 1) for line in lines[1:] if ": " in line)


def test_best_trial_skips_the_baseline_and_pruned(study: optuna.Study) -> None:
    assert best_trial(study).number == 2


def test_maximize_picks_the_largest(tmp_path: Path, spec: SweepSpec) -> None:
    s = make_study(tmp_path, spec, direction="maximize")
    add(s, spec, P1, 0.8)
    add(s, spec, P2, 0.9)
    add(s, spec, P3, 0.9)  # a tie: the earlier trial wins
    assert best_trial(s).number == 1


def test_trainer_format_is_the_trials_config(study: optuna.Study, tmp_path: Path) -> None:
    text = export_best(study, "trainer")
    config = TrainConfig.model_validate(yaml.safe_load(text))
    assert config.model_dump(mode="json") == study.trials[2].user_attrs["config"]
    assert config.loss.lambda_sg == 1.5 and config.loss.method == "scale-adaptive"
    # Runnable again: the trainer's loader reads the file, header and all.
    path = tmp_path / "best.yaml"
    write_export(text, path)
    assert load_train_config(path) == config


def test_header(study: optuna.Study) -> None:
    text = export_best(study, "trainer", filename="out/best.yaml")
    assert text.startswith("# salsweep: best trial of study 'demo' (trainer format)\n")
    assert header(text) == {
        "study": "demo",
        "trial": "2",
        "objective": "val/abs_rel = 0.25 (minimize, best epoch)",
        "baseline": "ssi (trial 0): val/abs_rel = 0.1",
        "mlflow run": "run-2 (experiment 7)",
        "reproduce": "salsweep train out/best.yaml",
    }


def test_packnet_layout(study: optuna.Study) -> None:
    text = export_best(study, "packnet")
    assert "# reproduce (in packnet-sfm): python scripts/train.py best.yaml" in text
    assert header(text)["trial"] == "2"
    doc = yaml.safe_load(text)
    assert list(doc) == ["name", "model", "datasets", "arch"]
    assert doc["name"] == "demo-trial-2"
    assert doc["model"]["name"] == "SemiSupModel"
    assert doc["model"]["params"] == {
        "supervised_method": "scale-adaptive",
        "supervised_loss_weight": 1.0,
        "lambda_sg": 1.5,
        "epsilon": 1e-8,
        "num_scales": 4,
        "use_absolute": True,
        "use_inv_depth": False,
    }
    assert doc["model"]["optimizer"]["depth"] == {"lr": 1e-3, "weight_decay": 1e-4}
    assert doc["datasets"]["train"]["batch_size"] == 4
    assert doc["arch"]["max_epochs"] == 3


def test_config_rebuilt_from_the_spec_when_not_stored(tmp_path: Path, spec: SweepSpec) -> None:
    s = make_study(tmp_path, spec)
    add(s, spec, P1, 0.3, store_config=False)
    config = TrainConfig.model_validate(yaml.safe_load(export_best(s)))
    assert config == spec.config_for(P1)


def test_nothing_to_export(tmp_path: Path, spec: SweepSpec) -> None:
    s = make_study(tmp_path, spec)
    add(s, spec, spec.baseline_values(), 0.1, baseline=True)
    add(s, spec, P1, None, state=TrialState.FAIL)
    with pytest.raises(ExportError, match=r"no complete trial to export yet \(1 complete, 1 fail;"):
        export_best(s, "trainer")
    assert issubclass(ExportError, ValueError)


def test_write_export_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "best.yaml"
    write_export("a: 1\n", path)
    assert path.read_text() == "a: 1\n" and path.stat().st_mode & 0o777 == 0o644
    write_export("a: 2\n", path)
    assert path.read_text() == "a: 2\n"
    with pytest.raises(UnicodeEncodeError):
        write_export("a: \ud800\n", path)  # fails while writing the temporary file
    assert path.read_text() == "a: 2\n"  # the old file is untouched
    assert [p.name for p in path.parent.iterdir()] == ["best.yaml"]  # no temp left behind
