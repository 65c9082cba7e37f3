"""studies.report.export on real Optuna studies in SQLite: best trial, both
formats, atomic write."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from studies.confirmation.confirmed import load_confirmation
from studies.report.export import ExportError, best_trial, export_best, write_export
from studies.store import as_record
from studies.store.catalog import read_study
from sweeps import SPEC_DIR, SweepSpec, load_spec
from tests.studies.confirm_helpers import add_replicate, add_search_baseline, set_race
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
    state: TrialState = TrialState.COMPLETE,
    store_config: bool = True,
) -> None:
    """A finished trial with the objective's user attributes."""
    config = spec.config_for(params)
    attrs: dict[str, Any] = {"mlflow_run_id": f"run-{len(study.trials)}"}
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
    add_search_baseline(s, 0.10)  # better, but the baseline (beside the study)
    add(s, spec, P1, 0.30)
    add(s, spec, P1, 0.40)
    add(s, spec, P2, 0.25)
    add(s, spec, P3, 0.20, state=TrialState.PRUNED)
    return s


def header(text: str) -> dict[str, str]:
    lines = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    return dict(line.split(": ", 1) for line in lines[1:] if ": " in line)


def test_best_trial_skips_pruned(study: optuna.Study) -> None:
    assert best_trial(as_record(study)).number == 2


def test_maximize_picks_the_largest(tmp_path: Path, spec: SweepSpec) -> None:
    s = make_study(tmp_path, spec, direction="maximize")
    add(s, spec, P1, 0.8)
    add(s, spec, P2, 0.9)
    add(s, spec, P3, 0.9)  # a tie: the earlier trial wins
    assert best_trial(as_record(s)).number == 1


def test_trainer_format_is_the_trials_config(study: optuna.Study, tmp_path: Path) -> None:
    assert study.trials[2].params == P2
    text = export_best(as_record(study), "trainer")
    config = TrainConfig.model_validate(yaml.safe_load(text))
    assert config.model_dump(mode="json") == study.trials[2].user_attrs["config"]
    assert config.loss.lambda_sg == 1.5 and config.loss.method == "scale-adaptive"
    # Runnable again: the trainer's loader reads the file, header and all.
    path = tmp_path / "best.yaml"
    write_export(text, path)
    assert load_train_config(path) == config


def test_header(study: optuna.Study) -> None:
    text = export_best(as_record(study), "trainer", filename="out/best.yaml")
    assert text.startswith(
        "# salsweep: best trial (unconfirmed) of study 'demo' (trainer format)\n"
    )
    assert header(text) == {
        "study": "demo",
        "trial": "2",
        "objective": "val/abs_rel = 0.25 (minimize, best epoch; the search's single run)",
        "confirmed": "no - unconfirmed: the best single-seed search trial, possibly the "
        "luckiest seed (run `salsweep studies confirm demo`)",
        "baseline": "ssi (search run, seed 0): val/abs_rel = 0.1",
        "mlflow run": "run-2 (experiment 7)",
        "reproduce": "salsweep train out/best.yaml",
    }


@pytest.mark.parametrize("fmt", ["trainer", "packnet"])
def test_the_header_gives_the_runs_page_in_the_training_layout(
    study: optuna.Study, tmp_path: Path, fmt: Literal["trainer", "packnet"]
) -> None:
    """The run's address, as every MLflow address salsweep writes: its page in the
    model-training layout, on the server the sweep logged to (stored on the study without
    its password), or on the one the caller names."""
    study.set_user_attr("mlflow_tracking_uri", "http://alice:***@127.0.0.1:5000")
    page = (
        "http://alice:***@127.0.0.1:5000/#/experiments/7/runs/run-2?workflowType=machine_learning"
    )
    assert header(export_best(as_record(study), fmt))["mlflow run"] == (
        f"run-2 (experiment 7) at {page}"
    )
    given = export_best(as_record(study), fmt, tracking_uri="https://bob:s3cret@mlflow.example/")
    assert header(given)["mlflow run"] == (
        "run-2 (experiment 7) at https://bob:***@mlflow.example/#/experiments/7/runs/run-2"
        "?workflowType=machine_learning"
    )
    assert "s3cret" not in given
    # Read without Optuna (`salsweep studies export`): the same line.
    url = f"sqlite:///{tmp_path}/s.db"
    assert header(export_best(read_study("demo", url), fmt))["mlflow run"].endswith(page)


def test_packnet_layout(study: optuna.Study) -> None:
    text = export_best(as_record(study), "packnet")
    assert header(text)["trial"] == "2"
    doc = yaml.safe_load(text)
    # The loss alone: the proxy's optimiser, epochs and batch size do not transfer, and
    # no run name (a top-level `name` would rename the user's run and checkpoint folder).
    assert list(doc) == ["model"]
    assert list(doc["model"]) == ["name", "loss"]
    assert doc["model"]["name"] == "SemiSupModel"
    # The loss under model.loss (studies/report/packnet.py; test_packnet.py merges it with
    # packnet-sfm's own loader).
    assert "params" not in doc["model"]
    loss = doc["model"]["loss"]
    assert {k: loss[k] for k in ("supervised_method", "lambda_sg", "num_scales")} == {
        "supervised_method": "salsweep-scale-adaptive",
        "lambda_sg": 1.5,
        "num_scales": 4,
    }
    trial_loss = TrainConfig.model_validate(study.trials[2].user_attrs["config"]).loss
    assert loss == {
        "supervised_method": "salsweep-scale-adaptive",
        "supervised_num_scales": 1,
        "supervised_loss_weight": 1.0,
        **trial_loss.loss_params(),
    }
    # The depth range is the loss's (the data's range of sweeps/default.yaml).
    assert (loss["min_depth"], loss["max_depth"]) == (1.0, 80.0)


def test_packnet_with_training_adds_the_proxy_runs_settings(study: optuna.Study) -> None:
    text = export_best(as_record(study), "packnet", with_training=True)
    doc = yaml.safe_load(text)
    assert list(doc) == ["model", "datasets", "arch"]  # still no run name
    assert list(doc["model"]) == ["name", "optimizer", "loss"]
    assert doc["model"]["optimizer"] == {
        "name": "AdamW",
        "depth": {"lr": 0.004, "weight_decay": 1e-4},
    }
    assert doc["datasets"]["train"]["batch_size"] == 4
    assert doc["arch"]["max_epochs"] == 4
    assert (
        doc["model"]["loss"]
        == yaml.safe_load(export_best(as_record(study), "packnet"))["model"]["loss"]
    )
    assert "(--with-training: tuned for salsweep's small proxy network, not for yours)" in text
    with pytest.raises(ValueError, match="packnet format only"):
        export_best(as_record(study), "trainer", with_training=True)


def test_packnet_header_says_one_thing_to_do(study: optuna.Study) -> None:
    text = export_best(as_record(study), "packnet", filename="out/best.yaml")
    comments = [line for line in text.splitlines() if line.startswith("#")]
    # One instruction (merge), no command that pretends the file runs alone.
    assert [line for line in comments if line.startswith("# to use: ")] == [
        "# to use: merge it into your packnet-sfm run config (the YAML you pass to "
        "scripts/train.py); your run name, depth_net, data sets and schedule stay yours"
    ]
    assert not [line for line in comments if "reproduce" in line]
    assert "out/best.yaml" not in text
    needs = header(text)["needs, once in your packnet-sfm copy"]
    assert "the loss registered at start-up, before the model is built" in needs
    assert "loss.packnet.register_packnet_loss" in needs
    assert 'README, "Use the loss in your own trainer / in packnet-sfm"' in needs
    assert "salsweep studies export demo --format packnet --print-defaults" in needs
    assert header(text)["holds"].startswith("the loss and its parameters (model.loss)")
    assert "--with-training adds them" in header(text)["holds"]


def test_packnet_scales_are_explained_beside_their_keys(study: optuna.Study) -> None:
    text = export_best(as_record(study), "packnet")
    lines = {line.split(":")[0].strip(): line for line in text.splitlines() if ":" in line}
    assert lines["supervised_num_scales"] == (
        "    supervised_num_scales: 1  # packnet-sfm's outputs supervised: the full-resolution "
        "one only"
    )
    assert lines["num_scales"] == (
        "    num_scales: 4  # the loss's gradient scales within that one output (not outputs)"
    )
    assert lines["max_depth"].startswith("    max_depth: 80.0  # the loss's depth range (m)")


def test_config_rebuilt_from_the_spec_when_not_stored(tmp_path: Path, spec: SweepSpec) -> None:
    s = make_study(tmp_path, spec)
    add(s, spec, P1, 0.3, store_config=False)
    assert "config" not in s.trials[0].user_attrs
    exported = yaml.safe_load(export_best(as_record(s)))
    # The trial's params (P1) over sweeps/default.yaml's base, every other setting at the
    # TrainConfig default: typed out here, not rebuilt by the code under test.
    expected = TrainConfig().model_dump(mode="json")
    expected["loss"].update(
        {"method": "scale-adaptive", "num_scales": 2, "lambda_sg": 0.2, "use_inv_depth": True}
    )
    expected["data"].update(
        {"height": 64, "width": 192, "num_train": 1000, "num_val": 128, "num_test": 128}
    )
    expected["model"]["base_channels"] = 8
    expected.update({"epochs": 4, "steps_per_epoch": 150, "batch_size": 4, "lr": 0.004})
    expected["previews"] = True
    assert TrainConfig.model_validate(exported).model_dump(mode="json") == expected


def test_config_that_no_longer_validates_is_an_export_error(
    tmp_path: Path, spec: SweepSpec
) -> None:
    s = make_study(tmp_path, spec)
    add(s, spec, P1, 0.3, store_config=False)
    # A param outside what the base allows: 64 px cannot take 8 scales.
    s.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=0.1,
            params={**P1, "loss.num_scales": 8},
            distributions={**DISTRIBUTIONS, "loss.num_scales": IntDistribution(1, 8)},
        )
    )
    with pytest.raises(ExportError, match="cannot rebuild the config of trial 1"):
        export_best(as_record(s))


def test_header_without_a_baseline(tmp_path: Path, spec: SweepSpec) -> None:
    s = make_study(tmp_path, spec)
    add(s, spec, P1, 0.3)
    found = header(export_best(as_record(s)))
    assert found["baseline"] == (
        "none (the study ran no SSI baseline: spec `baseline: false`, or not yet)"
    )
    assert found["objective"] == "val/abs_rel = 0.3 (minimize, best epoch; the search's single run)"


def test_header_when_the_baseline_failed_or_diverged(tmp_path: Path, spec: SweepSpec) -> None:
    s = make_study(tmp_path, spec)
    add(s, spec, P1, 0.3)
    # Interrupted (FAIL, no value): said so, never a number.
    add_replicate(
        s,
        "baseline",
        0,
        math.nan,
        role="search-baseline",
        state=TrialState.FAIL,
    )
    assert (
        header(export_best(as_record(s)))["baseline"]
        == "ssi (search run, seed 0): no value, failed"
    )
    # Diverged (a result, stored PRUNED with its reason): the reason is in the header.
    add_replicate(s, "baseline", 0, math.nan, role="search-baseline")
    assert header(export_best(as_record(s)))["baseline"] == (
        "ssi (search run, seed 0): no value, diverged (non-finite training loss)"
    )
    # A later complete run of the baseline wins over the failed ones.
    add_search_baseline(s, 0.35)
    assert (
        header(export_best(as_record(s)))["baseline"]
        == "ssi (search run, seed 0): val/abs_rel = 0.35"
    )


def test_nothing_to_export(tmp_path: Path, spec: SweepSpec) -> None:
    s = make_study(tmp_path, spec)
    add_search_baseline(s, 0.1)  # the baseline is no trial: nothing to export
    add(s, spec, P1, None, state=TrialState.FAIL)
    add(s, spec, P2, None, state=TrialState.PRUNED)
    with pytest.raises(ExportError, match=r"no complete trial to export yet \(1 fail, 1 pruned\)"):
        export_best(as_record(s), "trainer")
    assert issubclass(ExportError, ValueError)


def test_a_stored_config_that_no_longer_validates_is_one_clear_error(
    tmp_path: Path, spec: SweepSpec
) -> None:
    """A config stored by another salsweep version: the export names the problem (the
    trainer's own words) instead of writing a file `salsweep train` would refuse."""
    s = make_study(tmp_path, spec)
    add(s, spec, P1, 0.3)
    config = dict(s.trials[0].user_attrs["config"], retired_key=1)
    s.add_trial(
        create_trial(
            value=0.2, params=P2, distributions=DISTRIBUTIONS, user_attrs={"config": config}
        )
    )
    with pytest.raises(ExportError) as info:
        export_best(as_record(s), "trainer")
    assert str(info.value).startswith(
        "the stored config of trial 1 of study 'demo' is not a valid training config here: "
        "retired_key: unknown key (valid keys: "
    )


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


def confirm(study: optuna.Study, samples: dict[str, list[float]]) -> None:
    """A decided race of 3 seeds: replicates with seed indices 0, 1, 2 (training seeds 1, 2,
    3) for each config key, each scored ``value`` on validation and ``value + 0.05`` on
    test."""
    keys = [key for key in samples if key != "baseline"]
    set_race(study, keys, "baseline" if "baseline" in samples else None, max_seeds=3)
    for key, values in samples.items():
        number = None if key == "baseline" else int(key.split("-")[1])
        params = {} if number is None else study.trials[number].params
        for seed, value in enumerate(values, start=1):
            add_replicate(study, key, seed, value, test=value + 0.05, params=params)


def headers(text: str, key: str) -> list[str]:
    """Every header line ``# key: ...`` (those that repeat: verdict, caution)."""
    return [line[len(key) + 4 :] for line in text.splitlines() if line.startswith(f"# {key}: ")]


def test_confirmed_winner_is_exported_not_the_luckiest(study: optuna.Study) -> None:
    # Trial 2 had the best single run (0.25); over three seeds trial 1 is better.
    confirm(
        study,
        {
            "trial-2": [0.31, 0.34, 0.32],
            "trial-1": [0.20, 0.22, 0.21],
            "baseline": [0.40, 0.41, 0.39],
        },
    )
    text = export_best(as_record(study), "trainer", filename="best.yaml")
    assert text.startswith("# salsweep: confirmed winner of study 'demo' (trainer format)\n")
    config = TrainConfig.model_validate(yaml.safe_load(text))
    assert config.model_dump(mode="json") == study.trials[1].user_attrs["config"]
    found = header(text)
    assert found["trial"] == "1"
    assert found["confirmed"] == (
        "the winner of a sequential paired t race on val/abs_rel_align, chosen on validation; "
        "the test split only reports (race decided after 3 seeds)"
    )
    # mean 0.21, sd 0.01, half-width 4.303 * 0.01 / sqrt(3) = 0.02484
    assert found["winner"] == (
        "trial 1: val/abs_rel_align = 0.2100 ± 0.0248 [0.1852, 0.2348] (mean ± 95% CI, "
        "validation) over 3 seeds (training seeds 1-3, data seeds 1-3; paired with every "
        "contender), diverged 0 of 3 (0%); test/abs_rel_align = 0.2600 ± 0.0248 [0.2352, "
        "0.2848] (test split, reported only)"
    )
    assert found["baseline"].startswith(
        "ssi: val/abs_rel_align = 0.4000 ± 0.0248 [0.3752, 0.4248] over 3 seeds, diverged 0 "
        "of 3 (0%); winner - baseline on validation -0.1900 ["
    )
    assert "], 3 pairs (simultaneous 95%): winner better; on test -0.1900 [" in found["baseline"]
    assert found["runner-up"].startswith("trial 2: val/abs_rel_align = 0.3233 ± ")
    assert ": winner better; on test " in found["runner-up"]
    assert "caution" not in found
    confirmation = load_confirmation(as_record(study))
    assert confirmation is not None
    assert headers(text, "verdict") == confirmation.sentences()
    assert "Against the baseline, baseline (ssi): better, claimed after 3 seeds" in text


def test_export_says_when_the_race_did_not_resolve(study: optuna.Study) -> None:
    confirm(
        study,
        {
            "trial-1": [0.20, 0.26, 0.21],
            "trial-2": [0.24, 0.22, 0.23],
            "baseline": [0.22, 0.30, 0.19],
        },
    )
    text = export_best(as_record(study), "trainer")
    found = header(text)
    assert found["trial"] == "1"  # validation mean 0.2233 against 0.23
    assert found["runner-up"].endswith(
        "unresolved (maximum); on test " + found["runner-up"].split("; on test ")[1]
    )
    assert ": unresolved (maximum); on test" in found["baseline"]
    assert headers(text, "caution") == [
        "the race did not resolve the winner against the baseline (ssi): maximum",
        "the race did not resolve the winner against the runner-up (trial 2): maximum",
    ]


def test_export_with_a_diverged_replicate(study: optuna.Study) -> None:
    confirm(study, {"trial-2": [0.3, math.nan, 0.31], "baseline": [0.4, 0.41, 0.42]})
    text = export_best(as_record(study), "trainer")
    found = header(text)
    assert found["trial"] == "2"
    # Two finite scores; the diverged one is counted by the race as the worst of its seed.
    assert found["winner"].startswith(
        "trial 2: val/abs_rel_align = 0.3050 ± 0.0635 [0.2415, 0.3685] (mean ± 95% CI, "
        "validation) over 3 seeds"
    )
    assert "diverged 1 of 3 (33%)" in found["winner"]
    assert "Diverged replicates (each counted as the worst score of its seed plus 0.005): " in (
        text
    )


@pytest.mark.parametrize("fmt", ["trainer", "packnet"])
def test_export_of_the_study_read_without_optuna_is_the_same(
    tmp_path: Path, study: optuna.Study, fmt: Literal["trainer", "packnet"]
) -> None:
    """`salsweep studies export` reads the study with SQL (studies.store.catalog.read_study);
    the text is the one the Optuna study gives, confirmed or not."""
    url = f"sqlite:///{tmp_path}/s.db"
    assert export_best(read_study("demo", url), fmt) == export_best(as_record(study), fmt)
    confirm(study, {"trial-1": [0.20, 0.22, 0.21], "baseline": [0.40, 0.41, 0.39]})
    text = export_best(read_study("demo", url), fmt)
    assert text == export_best(as_record(study), fmt)
    assert header(text)["trial"] == "1" and "confirmed winner" in text
