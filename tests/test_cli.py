"""The command line: exit codes, messages, `loss check`, `train`, `sweep validate`."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import _is_user_error, cli
from studies.store.catalog import StudyMismatch
from studies.tracking import ServerInfo
from sweeps import SpecError, SpecProblem
from trainer import load_train_config
from trainer.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_loss_check_prints_every_metric() -> None:
    code, output = run("loss", "check")
    assert code == 0, output
    for name in (
        "scale_adaptive/relative",
        "scale_adaptive/absolute",
        "gradient/scale_1",
        "gradient/scale_4",
        "loss_sa",
        "loss_sg",
        "total_loss",
    ):
        assert name in output
    total = float(re.search(r"total: (\S+)", output).group(1))  # type: ignore[union-attr]
    assert total > 0
    assert "finite: True" in output


def test_train_runs_a_config(tmp_path: Path) -> None:
    config = {
        "data": {"height": 32, "width": 64, "num_train": 8, "num_val": 4, "num_test": 4},
        "model": {"base_channels": 4, "num_stages": 2},
        "loss": {"num_scales": 2},
        "epochs": 2,
        "steps_per_epoch": 2,
        "batch_size": 2,
        "device": "cpu",
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    code, output = run("train", str(path), "--output-dir", str(tmp_path / "out"))
    assert code == 0, output
    epoch_lines = [line for line in output.splitlines() if line.startswith("epoch 2/2:")]
    assert len(epoch_lines) == 1, output
    # The metrics an objective is made of, each with a value, every epoch.
    shown = ("val/abs_rel_align", "val/abs_rel_align_depth", "val/abs_rel_med", "val/abs_rel")
    for key in ("train/total_loss", *shown):
        value = float(re.search(rf"{key}=(\S+)", epoch_lines[0]).group(1))  # type: ignore[union-attr]
        assert math.isfinite(value) and value > 0, key
    # The kept epoch's weights on the test split, at the end.
    assert "test split, weights of epoch" in output
    test_value = re.search(r"test/abs_rel_align\s*│\s*(\S+)", output)
    assert test_value is not None and 0 < float(test_value.group(1)) < 10, output
    assert (tmp_path / "out" / "previews" / "epoch_002.png").is_file()
    assert (tmp_path / "out" / "best.pt").is_file()


def test_train_bad_config_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("loss:\n  lambda_sgg: 1\n  num_scales: 0\nepochs: many\n")
    code, output = run("train", str(path))
    assert code == 1
    # The same messages as a bad sweep spec's (trainer.validation formats both).
    assert (
        "loss.lambda_sgg: unknown key (did you mean 'lambda_sg'? valid keys: epsilon, "
        "gradient_normalization, gradient_window, lambda_sg," in output
    )
    assert "loss.num_scales: Input should be greater than or equal to 1 (got 0)" in output
    assert "epochs: Input should be a valid integer, unable to parse string as an integer " in (
        output
    )
    assert "(got 'many')" in output
    assert "Traceback" not in output


def test_train_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 2\nloss: [unclosed\n")
    code, output = run("train", str(path))
    assert code == 1
    assert "line 3" in output or "line 2" in output
    assert "invalid YAML" in output


def test_missing_file_is_usage_error(tmp_path: Path) -> None:
    code, output = run("train", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "does not exist" in output


def test_shipped_train_config_loads() -> None:
    config = load_train_config(ROOT / "trainer" / "configs" / "default.yaml")
    assert config.loss.method == "sparse-scale-adaptive"
    assert config.data.kind == "synthetic"
    assert config.output_dir == Path("runs/default")


def test_sweep_validate_shipped_specs() -> None:
    for name in ("default.yaml", "seed-grid.yaml"):
        code, output = run("sweep", "validate", str(ROOT / "sweeps" / name))
        assert code == 0, output
        assert "valid" in output


def test_server_status_without_server(tmp_path: Path) -> None:
    code, output = run("server", "status", "--home", str(tmp_path))
    assert code == 1
    assert "no MLflow server is running" in output


def test_unknown_study_is_one_clear_line(tmp_path: Path) -> None:
    code, output = run("studies", "show", "nope", "--home", str(tmp_path))
    assert code == 1
    assert "no study named 'nope'" in output
    assert "Traceback" not in output


def test_unreachable_tracking_server_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, output = run(
        "sweep",
        "launch",
        str(ROOT / "sweeps" / "default.yaml"),
        "--home",
        str(home),
        "--tracking-uri",
        "http://127.0.0.1:9",
    )
    assert code == 1
    assert "no MLflow server answers at http://127.0.0.1:9" in output
    assert "Traceback" not in output
    assert not (home / "optuna.db").exists()


def test_launch_refuses_an_unknown_metric_before_creating_anything(
    tmp_path: Path, mlflow_server: ServerInfo
) -> None:
    """A typo in the objective's metric is found by the spec's checks: no study, no data
    dir, no MLflow experiment, no trained trial (it used to fail after a whole trial)."""
    from mlflow import MlflowClient

    data = yaml.safe_load((ROOT / "sweeps" / "default.yaml").read_text())
    data["name"] = "typo-metric"
    data["objective"]["metric"] = "val/absrel"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    home = tmp_path / "home"
    code, output = run(
        "sweep", "launch", str(spec), "--home", str(home), "--tracking-uri", mlflow_server.url
    )
    assert code == 1, output
    assert "objective.metric: 'val/absrel' is not a metric of the built-in trainer (did you " in (
        " ".join(output.split())
    )
    assert "mean 'val/abs_rel'?)" in " ".join(output.split())
    assert "Traceback" not in output and "unexpected" not in output
    assert not home.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]
    assert MlflowClient(mlflow_server.url).get_experiment_by_name("typo-metric") is None
    # `sweep validate` says the same, and creates nothing either.
    code, output = run("sweep", "validate", str(spec))
    assert code == 1 and "did you mean 'val/abs_rel'?" in " ".join(output.split())


def test_storage_password_is_never_printed() -> None:
    code, output = run(
        "studies",
        "list",
        "--storage",
        "postgresql+psycopg2://bob:s3cretpw@127.0.0.1:1/x",
    )
    assert code == 1
    assert "cannot open the Optuna storage" in output
    assert "s3cretpw" not in output


def test_cuda_without_cuda_is_a_user_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 1\n")
    code, output = run("train", str(path), "--device", "cuda")
    assert code == 1
    assert output.strip() == ("Error: device 'cuda' was requested but CUDA is not available here")


def test_user_errors_are_told_from_bugs() -> None:
    assert _is_user_error(StudyMismatch("no study"))
    assert isinstance(StudyMismatch("x"), UserError) and isinstance(StudyMismatch("x"), ValueError)
    assert _is_user_error(SpecError("spec.yaml", [SpecProblem("name", "bad")]))
    assert not _is_user_error(ValueError("a bug"))
    assert not _is_user_error(KeyError("a bug"))
    # Every user-facing error class of the project is told apart by its base alone.
    from studies.confirmation.confirmed import ConfirmError
    from studies.report.export import ExportError
    from studies.store.storage import StorageError
    from studies.tracking.layout import TrackingError
    from studies.tracking.server import ServerError
    from trainer.data import DataError
    from trainer.io import ConfigError
    from trainer.loop import NonFiniteLoss

    for cls in (ExportError, ServerError, StorageError, TrackingError, ConfirmError):
        assert _is_user_error(cls("x")), cls
    assert _is_user_error(DataError("f.png", "truncated"))
    assert _is_user_error(ConfigError("c.yaml", ["epochs: bad"]))
    assert _is_user_error(NonFiniteLoss(1, 2, float("nan")))


def test_non_loopback_host_is_warned_about(tmp_path: Path) -> None:
    """A server on 0.0.0.0 has no authentication: say so before starting it. The port is
    held by this test, so the start fails fast after the warning and nothing stays up."""
    import socket

    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output = run(
            "server", "start", "--host", "0.0.0.0", "--port", str(port), "--home", str(tmp_path)
        )
    assert code == 1
    text = " ".join(output.split())
    assert text.startswith("warning: the MLflow server will listen on 0.0.0.0")
    assert "authentication" in text.split("Error: ")[0]
    assert "Error: " in text


def test_sweep_schema_describes_the_spec() -> None:
    import json

    code, output = run("sweep", "schema")
    assert code == 0
    schema = json.loads(output)
    assert schema["title"] == "SweepSpec"
    assert set(schema["properties"]) >= {"name", "base", "search", "budget", "confirm"}
    assert "search" in schema["required"]


def _confirmed_study(home: Path) -> None:
    """Study ``s`` as a confirmed sweep leaves it (no training): search trials (one pruned),
    the SSI baseline's run and replicates in its companion study ``s:confirm``."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from studies.home import default_storage_url
    from studies.store.storage import open_storage
    from tests.studies.confirm_helpers import add_replicate, add_search_baseline, set_race

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=open_storage(default_storage_url(home)))
    study.set_user_attr("objective_metric", "val/abs_rel_align")
    for value, state in ((0.123456789, TrialState.COMPLETE), (None, TrialState.PRUNED)):
        study.add_trial(
            create_trial(
                state=state,
                value=value,
                params={"loss.lambda_sg": 0.123456789},
                distributions={"loss.lambda_sg": FloatDistribution(0.05, 2.0)},
                user_attrs={"mlflow_run_id": f"run-{len(study.trials)}"},
            )
        )
    add_search_baseline(study, 0.45, seed=0)
    set_race(study, ["trial-0"], initial_seeds=3, max_seeds=3)
    values = ((0.00012345, 0.00023456), (0.00013579, 0.00024681), (0.00012962, 0.00024068))
    for seed, (mine, base) in enumerate(values, 1):
        test = 0.0002 + seed * 0.00001
        lam = {"loss.lambda_sg": 0.123456789}
        add_replicate(study, "trial-0", seed, mine, test=test, params=lam)
        add_replicate(study, "baseline", seed, base, test=2 * test)


def test_studies_list_and_show_know_the_companion_study(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _confirmed_study(home)
    code, output = run("studies", "list", "--home", str(home))
    assert code == 0, output
    rows = [line.split("│")[1:-1] for line in output.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row][:6] for row in rows] == [
        ["s", "2", "1", "1", "0", "0.12346"],  # 5 significant digits
        ["s:confirm", "7", "7", "0", "0", "-"],  # no best across configurations
    ]
    assert "NAME:confirm: the SSI baseline's and the confirmation's runs of study NAME" in output

    code, output = run("studies", "show", "s:confirm", "--home", str(home))
    assert code == 0, output
    text = " ".join(output.split())
    assert "s:confirm: the runs outside the search of study s" in text
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│") and ("confirmation" in line or "search baseline" in line)
    ]
    assert rows[0] == [
        "0",
        "baseline (ssi)",
        "0",
        "search baseline",
        "COMPLETE",
        "0.45",
        "val/abs_rel_align",
        "-",  # the search baseline has no test score
        "baseline-0-search-baseline",
    ]
    assert rows[1] == [
        "1",
        "trial 0",
        "1",
        "confirmation",
        "COMPLETE",
        "0.00012345",
        "val/abs_rel_align",  # the value decides: validation; the test score beside it
        "0.00021",
        "trial-0-1-confirmation",
    ]
    # ... then the confirmation itself, at 4 significant digits: tiny values keep theirs.
    assert "0.0001296 ± 0.0000153 [0.0001143, 0.0001449]" in text
    assert "trial 0 (winner)" in text and "Winner: trial 0, val/abs_rel_align" in text

    code, output = run("studies", "show", "s", "--home", str(home))
    assert code == 0, output
    text = " ".join(output.split())
    assert "2 trials: 1 complete, 1 pruned (stopped early by the pruner: no value, not a " in text
    assert "failure), 0 failed" in text
    assert "lambda_sg=0.1235" in text and "0.12346" in text and "0.123456789" not in text
    assert "runs, one per seed: salsweep studies show s:confirm" in text


def test_show_a_companion_that_is_not_there(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _confirmed_study(home)
    code, output = run("studies", "show", "nope:confirm", "--home", str(home))
    assert code == 1
    assert "no study named 'nope:confirm'" in output and "Traceback" not in output


def test_a_pruned_trials_progress_line_reads_stopped_early_not_failed() -> None:
    """The progress line of a pruned trial, from the reason the objective prunes with
    (studies.run.objective: ``pruned at epoch N (metric=value)``)."""
    from cli import _ending

    line = _ending("PRUNED", None, "pruned at epoch 1 (val/abs_rel_align=0.4261)")
    assert line == "PRUNED at epoch 1 (val/abs_rel_align=0.4261): stopped early by the pruner"
    assert "fail" not in line.lower()
    # A command trial's reason (studies.command.runner) reads the same way.
    assert _ending("PRUNED", None, "pruned at step 3").endswith(": stopped early by the pruner")
    assert _ending("FAIL", None, "non-finite loss") == "FAIL (non-finite loss)"
