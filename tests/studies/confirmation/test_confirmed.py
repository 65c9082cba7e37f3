"""studies.confirmation.confirmed and studies.report.confirmation on real Optuna studies in
SQLite: the confirmation read back from the companion study, in tables, words, CSV and a plot."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from studies.attrs import (
    ROLE_CONFIRMATION,
    companion_name,
    confirmation_metric,
    trial_key,
    trial_number,
)
from studies.confirmation.confirmed import load_confirmation, replicates
from studies.confirmation.stats import estimate
from studies.report.confirmation import (
    confirmation_csv,
    confirmation_markdown,
    confirmation_metrics,
    format_difference,
    format_estimate,
    save_confirmation_plot,
    table_rows,
    verdict_sentence,
)
from studies.store import as_record
from studies.store.catalog import StudyMismatch, load_study, study_summaries
from studies.store.records import companion_study
from tests.process_helpers import PythonChild
from tests.studies.confirm_helpers import add_replicate, add_search_baseline

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_study(tmp_path: Path, direction: str = "minimize") -> optuna.Study:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db", study_name="v", direction=direction
    )
    for lam, value in [(0.1, 0.3), (0.5, 0.25), (1.0, 0.28)]:
        study.add_trial(
            create_trial(
                value=value,
                params={"loss.lambda_sg": lam},
                distributions={"loss.lambda_sg": FloatDistribution(0.05, 2.0)},
            )
        )
    return study


def p(lam: float) -> dict[str, float]:
    return {"loss.lambda_sg": lam}


def test_names_and_keys() -> None:
    assert companion_name("sweep-1") == "sweep-1:confirm"
    assert trial_key(12) == "trial-12" and trial_number("trial-12") == 12
    assert trial_number("baseline") is None
    assert confirmation_metric("val/abs_rel_align") == "test/abs_rel_align"
    assert confirmation_metric("train/total_loss") == "train/total_loss"


def test_no_confirmation(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    assert companion_study(study) is None and load_confirmation(as_record(study)) is None
    add_search_baseline(study, 0.4)  # a companion study, but no confirmation yet
    assert load_confirmation(as_record(study)) is None


def test_confirmation_read_back(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    add_search_baseline(study, 0.4)
    for seed, (a, b, base) in enumerate(
        [(0.20, 0.26, 0.40), (0.22, 0.24, 0.41), (0.21, math.nan, 0.39)], start=1
    ):
        add_replicate(study, "trial-1", seed, a, params=p(0.5))
        add_replicate(study, "trial-2", seed, b, params=p(1.0))
        add_replicate(study, "baseline", seed, base)
    # Two workers raced for one job: only the first result counts.
    add_replicate(study, "trial-1", 1, 0.99, params=p(0.5))
    # A failed (interrupted) replicate is no result.
    add_replicate(study, "trial-2", 4, 0.1, params=p(1.0), state=TrialState.FAIL)

    c = load_confirmation(as_record(study))
    assert c is not None
    assert (c.study_name, c.metric, c.direction) == ("v", "test/abs_rel_align", "minimize")
    assert [config.key for config in c.configs] == ["trial-1", "trial-2", "baseline"]
    winner = c.config("trial-1")
    assert c.winner == winner and c.runner_up == c.config("trial-2")
    assert winner.values == {1: 0.20, 2: 0.22, 3: 0.21}
    assert winner.estimate == estimate([0.20, 0.22, 0.21])
    assert winner.params == p(0.5) and winner.label == "trial 1"
    runner = c.config("trial-2")
    assert runner.estimate.n == 2 and runner.estimate.n_excluded == 1
    assert math.isnan(runner.values[3])
    baseline = c.baseline
    assert baseline is not None and baseline.label == "baseline (ssi)"
    assert baseline.vs_baseline is None
    assert winner.vs_baseline is not None
    assert winner.vs_baseline.mean == pytest.approx(-0.19) and winner.vs_baseline.n == 3
    assert c.verdict.vs_baseline_outcome == "better"
    # winner - runner-up over seeds 1, 2 (seed 3 has a NaN side): -0.06, -0.02
    assert c.verdict.vs_runner_up is not None
    assert c.verdict.vs_runner_up.n == 2 and c.verdict.vs_runner_up.n_excluded == 1
    assert c.verdict.vs_runner_up.mean == pytest.approx(-0.04)
    assert c.verdict.vs_runner_up_outcome == "indistinguishable"  # t(1) is wide
    companion = companion_study(study)
    assert companion is not None
    assert len(replicates(as_record(companion), ROLE_CONFIRMATION)) == 9

    rows = table_rows(c)
    assert rows[0] == (
        "trial 1 (winner)",
        "lambda_sg=0.5",
        "3",
        "0.2100 ± 0.0248 [0.1852, 0.2348]",
        "-0.1900 ± 0.0248 [-0.2148, -0.1652], 3 pairs",
    )
    assert rows[1][2] == "2 (+1 NaN)"
    assert rows[2][0] == "baseline (ssi)" and rows[2][4] == "-"
    sentence = verdict_sentence(c)
    assert sentence.startswith(
        "The winner, trial 1 (test/abs_rel_align 0.2100 ± 0.0248 [0.1852, 0.2348] on 3 seeds), "
        "beats the baseline (ssi) beyond noise (difference -0.1900 ± 0.0248"
    )
    assert sentence.endswith(
        "and is not distinguishable from the runner-up, trial 2 (difference -0.0400 ± 0.2541 "
        "[-0.2941, 0.2141], 2 pairs)."
    )
    assert re.sub(r"\d\.\d", "", sentence).count(".") == 1  # one sentence: one full stop

    markdown = confirmation_markdown(c)
    assert "| trial 1 (winner) | lambda_sg=0.5 | 3 | 0.2100 ± 0.0248 [0.1852, 0.2348] |" in markdown
    assert sentence in markdown
    table = list(csv.DictReader(io.StringIO(confirmation_csv(c))))
    assert [row["config"] for row in table] == ["trial-1", "trial-2", "baseline"]
    assert float(table[0]["mean"]) == pytest.approx(0.21)
    assert float(table[0]["ci_low"]) == pytest.approx(0.21 - 0.0248414, abs=1e-6)
    assert table[0]["winner"] == "True" and table[0]["n"] == "3"
    assert table[1]["n_nan"] == "1" and table[1]["seed_3"] == "nan"
    assert table[2]["vs_baseline_mean"] == ""
    assert confirmation_metrics(c) == pytest.approx(
        {
            "confirm/winner_mean": 0.21,
            "confirm/winner_ci_low": 0.21 - 0.0248414,
            "confirm/winner_ci_high": 0.21 + 0.0248414,
            "confirm/baseline_mean": 0.40,
        },
        abs=1e-6,
    )
    png = save_confirmation_plot(c, tmp_path / "out" / "confirmation.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_maximize_and_no_baseline(tmp_path: Path) -> None:
    study = make_study(tmp_path, "maximize")
    for seed, (a, b) in enumerate([(0.8, 0.7), (0.82, 0.71)], start=1):
        add_replicate(study, "trial-0", seed, a)
        add_replicate(study, "trial-2", seed, b)
    c = load_confirmation(as_record(study))
    assert c is not None and c.direction == "maximize"
    assert c.winner is not None and c.winner.key == "trial-0"
    assert c.baseline is None and c.verdict.vs_baseline is None
    assert table_rows(c)[0][4] == "no baseline"
    assert c.verdict.vs_runner_up_outcome == "better"  # +0.10, +0.11: both above 0
    assert "beats the runner-up, trial 2 beyond noise" in verdict_sentence(c)
    assert "confirm/baseline_mean" not in confirmation_metrics(c)


def test_one_config_one_seed(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    add_replicate(study, "trial-1", 1, 0.25)
    c = load_confirmation(as_record(study))
    assert c is not None
    assert table_rows(c)[0][3] == "0.2500 ± n/a"
    assert verdict_sentence(c) == (
        "The winner, trial 1 (test/abs_rel_align 0.2500 ± n/a on 1 seed), has no baseline and "
        "no runner-up to be compared with."
    )
    add_replicate(study, "baseline", 1, 0.3)
    c = load_confirmation(as_record(study))
    assert c is not None
    assert verdict_sentence(c).endswith(
        "cannot be compared with the baseline (ssi): 1 shared seed."
    )


def test_formatting() -> None:
    assert format_estimate(estimate([])) == "n/a"
    assert format_estimate(estimate([1.0, 1.0])) == "1.0000 ± 0.0000 [1.0000, 1.0000]"
    assert format_difference(estimate([0.5, 0.7])) == (
        "+0.6000 ± 1.2706 [-0.6706, 1.8706], 2 pairs"
    )
    assert format_difference(estimate([])) == "no shared seed"


def test_companion_hidden_from_the_catalog(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    add_replicate(study, "trial-1", 1, 0.25)
    url = f"sqlite:///{tmp_path}/s.db"
    assert [s.name for s in study_summaries(url)] == ["v"]
    with pytest.raises(StudyMismatch, match=r"no study named 'v:confirm'.*\(studies: v\)"):
        load_study("v:confirm", url)


READ_ONLY = """
import sys
from click.testing import CliRunner
from cli import cli
export = ["studies", "export", "v", "-o", sys.argv[2]]
commands = [["studies", "show", "v"], ["studies", "list"], export]
for args in commands:
    result = CliRunner().invoke(cli, [*args, "--storage", sys.argv[1]])
    assert result.exit_code == 0, result.output
    print(result.output)
print("heavy:", sorted(m for m in ("torch", "mlflow") if m in sys.modules))
"""


def test_read_only_commands_import_neither_torch_nor_mlflow(
    tmp_path: Path, python_child: PythonChild
) -> None:

    from sweeps import SPEC_DIR, load_spec

    study = make_study(tmp_path)
    spec = load_spec(SPEC_DIR / "default.yaml")
    study.set_user_attr("spec", spec.model_dump(mode="json"))
    add_search_baseline(study, 0.4)
    for seed, (a, base) in enumerate([(0.2, 0.4), (0.22, 0.41)], start=1):
        add_replicate(study, "trial-1", seed, a, params=p(0.5))
        add_replicate(study, "baseline", seed, base)
    root = Path(__file__).resolve().parents[3]
    out = python_child.run(
        "-c", READ_ONLY, f"sqlite:///{tmp_path}/s.db", str(tmp_path / "b.yaml"), cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
    assert "The winner, trial 1 (test/abs_rel_align 0.2100 ± 0.1271 [0.0829, 0.3371] on 2" in (
        " ".join(out.stdout.split())
    )
    assert "# confirmed: test/abs_rel_align = 0.21" in (tmp_path / "b.yaml").read_text()
