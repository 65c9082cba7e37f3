"""studies.confirmation.confirmed and studies.report.confirmation on real Optuna studies in
SQLite: the race read back from the companion study, in tables, words, CSV and a plot."""

from __future__ import annotations

import csv
import io
import math
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
from studies.confirmation.sequential import Difference, SequentialDesign, race
from studies.confirmation.stats import estimate
from studies.confirmation.words import race_sentences
from studies.report.confirmation import (
    confirmation_csv,
    confirmation_markdown,
    confirmation_metrics,
    export_header_lines,
    format_difference,
    format_estimate,
    format_race_difference,
    table_rows,
    verdict_lines,
)
from studies.report.confirmation_plot import save_confirmation_plot
from studies.store import as_record
from studies.store.catalog import StudyMismatch, load_study, study_summaries
from studies.store.records import companion_study
from tests.process_helpers import PythonChild
from tests.studies.confirm_helpers import add_replicate, add_search_baseline, set_race

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


VALIDATION = [(0.20, 0.26, 0.40), (0.22, 0.24, 0.41), (0.21, math.nan, 0.39)]
TEST = [(0.25, 0.30, 0.46), (0.28, 0.27, 0.45), (0.26, math.nan, 0.47)]


def race_study(tmp_path: Path) -> optuna.Study:
    """Trial 1, trial 2 (diverged on its third seed) and the baseline, 3 seeds each, in a
    race of 3 seeds at most."""
    study = make_study(tmp_path)
    add_search_baseline(study, 0.4)
    set_race(study, ["trial-1", "trial-2"], initial_seeds=3, max_seeds=3)
    for seed, (val, test) in enumerate(zip(VALIDATION, TEST, strict=True), start=1):
        keys = ("trial-1", "trial-2", "baseline")
        for key, v, t, lam in zip(keys, val, test, (0.5, 1.0, None), strict=True):
            add_replicate(study, key, seed, v, test=t, params=p(lam) if lam else None)
    return study


def test_confirmation_read_back(tmp_path: Path) -> None:
    study = race_study(tmp_path)
    # Two workers raced for one job: only the first result counts.
    add_replicate(study, "trial-1", 1, 0.99, test=0.99, params=p(0.5))
    # A failed (interrupted) replicate is no result.
    add_replicate(study, "trial-2", 4, 0.1, params=p(1.0), state=TrialState.FAIL)

    c = load_confirmation(as_record(study))
    assert c is not None
    assert (c.study_name, c.metric, c.test_metric, c.direction) == (
        "v",
        "val/abs_rel_align",
        "test/abs_rel_align",
        "minimize",
    )
    # The race replayed on the stored scores: the verdict is the pure race's.
    design = SequentialDesign(n0=3, n_max=3)
    scores = {
        key: [(VALIDATION[s][j], TEST[s][j]) for s in range(3)]
        for j, key in enumerate(("trial-1", "trial-2", "baseline"))
    }
    expected = race(design, scores, ["trial-1", "trial-2"], "baseline")
    assert c.state.done and c.state.looks == 3 and expected.done
    assert (c.state.winner, c.state.runner_up) == (expected.winner, expected.runner_up)
    assert c.state.claims == expected.claims
    # The winner first, then by validation mean; chosen on validation.
    assert [config.key for config in c.configs] == ["trial-1", "trial-2", "baseline"]
    winner = c.config("trial-1")
    assert c.winner == winner and c.runner_up == c.config("trial-2")
    assert winner.validation == {0: 0.20, 1: 0.22, 2: 0.21}
    assert winner.test == {0: 0.25, 1: 0.28, 2: 0.26}
    assert winner.training_seeds == {0: 1, 1: 2, 2: 3} and winner.data_seeds == {0: 1, 1: 2, 2: 3}
    assert winner.validation_estimate == estimate([0.20, 0.22, 0.21])
    assert winner.test_estimate == estimate([0.25, 0.28, 0.26])
    assert winner.params == p(0.5) and winner.label == "trial 1"
    assert winner.comparison is None
    runner = c.config("trial-2")
    assert (runner.seeds, runner.diverged) == (3, 1)
    assert runner.validation_estimate.n == 2 and runner.validation_estimate.n_excluded == 1
    assert math.isnan(runner.validation[2]) and math.isnan(runner.test[2])
    baseline = c.baseline
    assert baseline is not None and baseline.label == "baseline (ssi)"
    against_baseline = baseline.comparison
    assert against_baseline is not None and against_baseline.outcome == "better"
    assert against_baseline.validation.mean == pytest.approx(-0.19)
    assert against_baseline.validation.high < 0 and against_baseline.validation.n == 3
    assert against_baseline.test.mean == pytest.approx((-0.21 - 0.17 - 0.21) / 3)
    # The runner-up: its diverged seed counts as the worst of that seed plus the zone
    # (0.39 + 0.005), so the winner leads by (-0.06 - 0.02 - 0.185) / 3 over 3 pairs.
    against_runner = runner.comparison
    assert against_runner is not None
    assert (against_runner.outcome, against_runner.reason) == ("unresolved", "maximum")
    assert against_runner.validation.mean == pytest.approx((-0.06 - 0.02 - 0.185) / 3)
    companion = companion_study(study)
    assert companion is not None
    assert len(replicates(as_record(companion), ROLE_CONFIRMATION)) == 9

    rows = table_rows(c)
    assert rows[0] == (
        "trial 1 (winner)",
        "lambda_sg=0.5",
        "3",
        "0 of 3 (0%)",
        "0.2100 ± 0.0248 [0.1852, 0.2348]",
        format_estimate(estimate([0.25, 0.28, 0.26])),
        "-",
        "-",
        "winner",
    )
    assert rows[1][3] == "1 of 3 (33%)" and rows[1][8] == "unresolved (maximum)"
    assert rows[2][0] == "baseline (ssi)" and rows[2][8] == "winner better"
    assert rows[2][6] == format_race_difference(against_baseline.validation, 0.21)
    assert rows[2][6].startswith("-0.1900 [") and rows[2][6].endswith("], 3 pairs")
    lines = verdict_lines(c)
    assert lines == race_sentences(c.state, "val/abs_rel_align", c.labels)
    text = " ".join(lines)
    # The test, the seeds, the adjustment, the interval and the split, in words.
    assert lines[0].startswith("Sequential paired t race on val/abs_rel_align")
    assert "validation scores chose the winner" in text and "the test split only reports" in text
    assert "3 initial seeds, at most 3" in text and "Holm's step-down" in text
    assert "Winner: trial 1, val/abs_rel_align 0.2100 on validation (test 0.2633)" in text
    assert "Against the baseline, baseline (ssi): better, claimed after 3 seeds" in text
    assert "Against the runner-up, trial 2: unresolved at the maximum of 3 seeds" in text
    assert "trial 2 1 of 3 (33%)" in text

    markdown = confirmation_markdown(c)
    assert "| trial 1 (winner) | lambda_sg=0.5 | 3 | 0 of 3 (0%) | 0.2100 ± 0.0248" in markdown
    assert all(f"- {line}" in markdown for line in lines)
    table = list(csv.DictReader(io.StringIO(confirmation_csv(c))))
    assert [row["config"] for row in table] == ["trial-1", "trial-2", "baseline"]
    assert float(table[0]["val_mean"]) == pytest.approx(0.21)
    assert float(table[0]["val_ci_low"]) == pytest.approx(0.21 - 0.0248414, abs=1e-6)
    assert float(table[0]["test_mean"]) == pytest.approx(0.79 / 3)
    assert table[0]["winner"] == "True" and table[0]["seeds"] == "3"
    assert table[1]["diverged"] == "1" and table[1]["val_2"] == "nan"
    assert table[1]["outcome"] == "unresolved" and table[1]["reason"] == "maximum"
    assert table[2]["outcome"] == "better"
    assert float(table[2]["vs_winner_val_mean"]) == pytest.approx(-0.19)
    assert table[0]["outcome"] == ""
    assert confirmation_metrics(c) == pytest.approx(
        {
            "confirm/looks": 3.0,
            "confirm/runs": 9.0,
            "confirm/done": 1.0,
            "confirm/winner_mean": 0.21,
            "confirm/winner_ci_low": 0.21 - 0.0248414,
            "confirm/winner_ci_high": 0.21 + 0.0248414,
            "confirm/winner_test_mean": 0.79 / 3,
            "confirm/winner_diverged_rate": 0.0,
            "confirm/baseline_mean": 0.40,
            "confirm/baseline_test_mean": 0.46,
        },
        abs=1e-6,
    )
    png = save_confirmation_plot(c, tmp_path / "out" / "confirmation.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_maximize_and_no_baseline(tmp_path: Path) -> None:
    study = make_study(tmp_path, "maximize")
    set_race(study, ["trial-0", "trial-2"], baseline=None)
    for seed, (a, b) in enumerate([(0.8, 0.7), (0.82, 0.71), (0.83, 0.71)], start=1):
        add_replicate(study, "trial-0", seed, a, test=a - 0.05)
        add_replicate(study, "trial-2", seed, b, test=b - 0.05)
    c = load_confirmation(as_record(study))
    assert c is not None and c.direction == "maximize"
    assert c.winner is not None and c.winner.key == "trial-0"
    assert c.baseline is None and c.state.baseline is None
    runner = c.config("trial-2").comparison
    assert runner is not None and runner.outcome == "better"  # +0.10, +0.11, +0.12
    assert runner.validation.low > 0
    assert table_rows(c)[1][8] == "winner better"
    assert "Against the runner-up, trial 2: better" in " ".join(verdict_lines(c))
    assert "confirm/baseline_mean" not in confirmation_metrics(c)


def test_before_the_first_look(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    set_race(study, ["trial-1"], initial_seeds=3, max_seeds=6)
    add_replicate(study, "trial-1", 1, 0.25, test=0.3)
    c = load_confirmation(as_record(study))
    assert c is not None and c.winner is None and not c.state.done
    assert c.state.to_run == {"trial-1": (1, 2), "baseline": (0, 1, 2)}
    row = table_rows(c)[0]
    assert row[2:6] == ("1, racing", "0 of 1 (0%)", "0.2500 ± n/a", "0.3000 ± n/a")
    assert row[8] == "-"
    text = " ".join(verdict_lines(c))
    assert "The race has not had its first look: 0 seeds of the 3 initial seeds done." in text
    assert export_header_lines(c)[0].startswith("# confirmed: no winner yet")
    # A replicate of a seed index beyond a missing one waits for it: the race reads what
    # is contiguous.
    add_replicate(study, "trial-1", 3, 0.26, test=0.3)
    c = load_confirmation(as_record(study))
    assert c is not None and c.config("trial-1").seeds == 1


def test_replicates_without_a_race_are_no_verdict(tmp_path: Path) -> None:
    """Replicates of the fixed-seed confirmation of an earlier salsweep (no race stored, no
    seed index) give no verdict: their value was a test score."""
    study = make_study(tmp_path)
    add_replicate(study, "trial-1", 1, 0.25)
    assert load_confirmation(as_record(study)) is None


def test_formatting() -> None:
    assert format_estimate(estimate([])) == "n/a"
    assert format_estimate(estimate([1.0, 1.0])) == "1.0000 ± 0.0000 [1.0000, 1.0000]"
    assert format_difference(estimate([0.5, 0.7])) == (
        "+0.6000 ± 1.2706 [-0.6706, 1.8706], 2 pairs"
    )
    assert format_difference(estimate([])) == "no shared seed"
    assert format_race_difference(Difference(4, -0.019, -0.0302, -0.0078), 0.21) == (
        "-0.0190 [-0.0302, -0.0078], 4 pairs"
    )
    assert format_race_difference(Difference(1, 0.002, math.nan, math.nan)) == "+0.002000, 1 pair"
    assert format_race_difference(Difference(0, math.nan, math.nan, math.nan)) == "no shared seed"


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
    set_race(study, ["trial-1"], initial_seeds=3, max_seeds=3)
    for seed, (a, base) in enumerate([(0.2, 0.4), (0.22, 0.41), (0.21, 0.39)], start=1):
        add_replicate(study, "trial-1", seed, a, test=a + 0.05, params=p(0.5))
        add_replicate(study, "baseline", seed, base, test=base + 0.05)
    root = Path(__file__).resolve().parents[3]
    out = python_child.run(
        "-c", READ_ONLY, f"sqlite:///{tmp_path}/s.db", str(tmp_path / "b.yaml"), cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
    shown = " ".join(out.stdout.split())
    assert "Winner: trial 1, val/abs_rel_align 0.2100 on validation (test 0.2600) over 3" in shown
    assert "Against the baseline, baseline (ssi): better" in shown
    header = (tmp_path / "b.yaml").read_text()
    assert "# confirmed: the winner of a sequential paired t race on val/abs_rel_align" in header
    assert "# verdict: Winner: trial 1, val/abs_rel_align 0.2100 on validation" in header
