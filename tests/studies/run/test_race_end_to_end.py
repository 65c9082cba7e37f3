"""The sequential confirmation end to end: real sweeps (a command trial whose scores are
known in advance, so that the race's course is too) against the session's real MLflow
server and SQLite storage, through the CLI: a race of several rounds whose stored
replicates, printed verdict, export header and parent run agree; a race interrupted
between rounds and continued by `salsweep studies confirm`; and the local workers'
launcher running the rounds."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from cli import cli
from studies import SweepTarget, load_study, run_sweep
from studies.attrs import companion_name
from studies.confirmation.confirmed import load_confirmation
from studies.confirmation.sequential import RaceState, SequentialDesign, race
from studies.report.columns import verdict_figure
from studies.report.confirmation import export_header_lines
from studies.run import race_rounds
from studies.run.replicates import enqueue_jobs
from studies.store import as_record
from studies.tracking.server import ServerInfo
from sweeps import parse_spec

# Validation 0.2 + 0.1 lambda_sg plus a fixed pattern of noise by seed and configuration
# (sd about 0.003); test = validation + 0.05. Epoch 1 is 0.01 worse: epoch 2 is selected.
SCORE = """\
def score(lam, seed):
    noise = ((seed * 7919 + int(round(lam * 10)) * 104729) % 17 - 8) / 8
    return 0.2 + 0.1 * lam + 0.005 * noise
"""
PROGRAM = (
    """\
import sys
import yaml
from studies.command.reporter import report

"""
    + SCORE
    + """
config = yaml.safe_load(open(sys.argv[1]))
val = score(config["lambda_sg"], config["seed"])
for epoch, worse in ((1, 0.01), (2, 0.0)):
    report(epoch, **{"val/loss": val + worse, "test/loss": val + 0.05 + worse})
"""
)
namespace: dict[str, Any] = {}
exec(SCORE, namespace)  # the program's scores, here
LAMBDAS = {"a": 0.1, "b": 0.2}  # the best two of the grid 0.1, 0.2, 0.3 (seed 7)
DESIGN = SequentialDesign(n0=3, n_max=5)


def score(lam: float, seed: int) -> float:
    return float(namespace["score"](lam, seed))


def expected_race(keys: dict[float, str]) -> RaceState:
    """The race on the program's known scores, run to its end (replicate s: seed 8 + s)."""
    scores = {
        keys[lam]: [(score(lam, 8 + s), score(lam, 8 + s) + 0.05) for s in range(DESIGN.n_max)]
        for lam in LAMBDAS.values()
    }
    seen: dict[str, list[tuple[float, float]]] = {key: [] for key in scores}
    while not (state := race(DESIGN, seen, list(scores))).done:
        for key, indices in state.to_run.items():
            seen[key] += [scores[key][i] for i in indices]
    return state


def spec_data(project: Path, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "command": {
            "argv": [sys.executable, str(project / "train.py"), "{config}"],
            "workdir": str(project),
            "base_config": str(project / "train.yaml"),
            "keys": {"lambda_sg": "lambda_sg"},
            "seed_key": "seed",
            "seed": 7,
            "steps": 2,
            "grace_s": 1.0,
        },
        "search": {"lambda_sg": {"choices": [0.1, 0.2, 0.3]}},
        "objective": {"metric": "val/loss", "direction": "minimize"},
        "budget": {"n_trials": 3},
        "sampler": {"type": "grid", "seed": 0},
        "pruner": {"type": "none"},
        "baseline": False,
        "confirm": {"top_k": 2, "initial_seeds": DESIGN.n0, "max_seeds": DESIGN.n_max},
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(textwrap.dedent(PROGRAM))
    (folder / "train.yaml").write_text("lambda_sg: 0.5\nseed: 0\n")
    return folder


def _env(mlflow_server: ServerInfo, home: Path) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": mlflow_server.url, "SALSWEEP_HOME": str(home)}


def _words(text: str) -> str:
    return " ".join(text.split())


def check_race(name: str, storage: str) -> tuple[RaceState, dict[str, str]]:
    """The stored replicates are the race's: each (configuration, seed) once, paired
    seeds, the program's validation and test scores; the verdict replayed from them is
    the expected race's. Returns the race and the config key of each lambda_sg."""
    study = load_study(name, storage)
    keys = {t.params["lambda_sg"]: f"trial-{t.number}" for t in study.get_trials()}
    companion = optuna.load_study(study_name=companion_name(name), storage=storage)
    done = companion.get_trials(states=(TrialState.COMPLETE,))
    jobs = [(t.user_attrs["config_key"], t.user_attrs["seed"]) for t in done]
    assert len(jobs) == len(set(jobs))  # no replicate ran twice
    lam_of = {key: lam for lam, key in keys.items()}
    for t in done:
        stored = t.user_attrs
        lam, seed = lam_of[stored["config_key"]], stored["seed"]
        assert seed == 7 + 1 + stored["seed_index"]  # paired: seed index s, seed 8 + s
        assert t.value == pytest.approx(score(lam, seed), rel=1e-12)  # validation decides
        assert stored["test_value"] == pytest.approx(score(lam, seed) + 0.05, rel=1e-12)
        assert (stored["metric"], stored["test_metric"]) == ("val/loss", "test/loss")
    expected = expected_race({lam: keys[lam] for lam in LAMBDAS.values()})
    confirmation = load_confirmation(as_record(study))
    assert confirmation is not None
    state = confirmation.state
    assert state.done and (state.winner, state.looks, state.claims) == (
        expected.winner,
        expected.looks,
        expected.claims,
    )
    assert len(done) == state.runs == expected.runs
    return state, keys


@pytest.mark.slow
def test_a_race_of_several_rounds_agrees_everywhere(
    project: Path, mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    name = "race-e2e"
    path = tmp_path / "race.yaml"
    path.write_text(yaml.safe_dump(spec_data(project, name)))
    home = tmp_path / "home"
    storage = f"sqlite:///{home / 'optuna.db'}"
    launched = CliRunner().invoke(
        cli, ["sweep", "launch", str(path)], env=_env(mlflow_server, home)
    )
    assert launched.exit_code == 0, launched.output + repr(launched.exception)

    state, keys = check_race(name, storage)
    # Several rounds: every contender ran the 3 initial seeds, then the race added seeds.
    assert state.looks > DESIGN.n0
    winner = keys[0.1]
    assert state.winner == winner and state.comparisons[keys[0.2]].outcome == "better"
    confirmation = load_confirmation(as_record(load_study(name, storage)))
    assert confirmation is not None
    sentences = confirmation.sentences()
    assert sentences[0].startswith("Sequential paired t race on val/loss")
    # The verdict printed is the stored race's, sentence by sentence.
    printed = _words(launched.output)
    for sentence in sentences:
        assert _words(sentence) in printed
    assert f"Winner: trial {winner.split('-')[1]}, val/loss" in printed

    # The export's header (a command study's export has no config to write: its header
    # lines, which `studies export` puts above a built-in study's, tests/studies/run/
    # test_sweep.py): the same verdict, the winner's seeds.
    header = "\n".join(export_header_lines(confirmation))
    verdicts = [line[len("# verdict: ") :] for line in header.splitlines() if "# verdict: " in line]
    assert verdicts == sentences
    assert f"over {state.looks} seeds (training seeds 8-{7 + state.looks}; paired" in header

    # The parent run: the verdict's figures and the table with the sentences.
    client = MlflowClient(mlflow_server.url)
    study = load_study(name, storage)
    parent = client.get_run(study.user_attrs["mlflow_parent_run_id"])
    assert confirmation.winner is not None
    assert parent.data.tags["confirm.winner"] == verdict_figure(confirmation.winner)
    assert parent.data.metrics["confirm/looks"] == float(state.looks)
    assert all(f"- {s}" in parent.data.tags["mlflow.note.content"] for s in sentences)


@pytest.mark.slow
def test_an_interrupted_race_goes_on_from_its_stored_replicates(
    project: Path, mlflow_server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "race-resume"
    spec = parse_spec(spec_data(project, name), "test")
    home = tmp_path / "home"
    storage = f"sqlite:///{home / 'optuna.db'}"
    target = SweepTarget(storage, mlflow_server.url, home)
    real = race_rounds.run_jobs
    calls: list[int] = []

    def interrupted(study: optuna.Study, jobs: Any, runner: Any) -> int:
        calls.append(len(jobs))
        if len(calls) == 2:  # the second round queued, then Ctrl-C
            enqueue_jobs(study, jobs, runner.spec, runner.runs.tracker)
            raise KeyboardInterrupt
        return real(study, jobs, runner)

    monkeypatch.setattr(race_rounds, "run_jobs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, name, target)
    monkeypatch.undo()
    assert calls == [6, 2]  # 2 contenders x 3 initial seeds; then one seed each
    study = load_study(name, storage)
    companion = optuna.load_study(study_name=companion_name(name), storage=storage)
    assert len(companion.get_trials(states=(TrialState.COMPLETE,))) == 6
    assert len(companion.get_trials(states=(TrialState.WAITING,))) == 2
    stopped = load_confirmation(as_record(study))
    assert stopped is not None and not stopped.state.done and stopped.state.looks == 3

    env = _env(mlflow_server, home)
    # The design is fixed: another maximum is refused mid-race, nothing is run.
    refused = CliRunner().invoke(cli, ["studies", "confirm", name, "--max-seeds", "8"], env=env)
    assert refused.exit_code == 1
    assert "design is fixed before the first replicate" in _words(refused.output)
    assert len(companion.get_trials(states=(TrialState.COMPLETE,))) == 6
    # `studies confirm` goes on: the queued seeds, then the next rounds, none run twice.
    resumed = CliRunner().invoke(cli, ["studies", "confirm", name], env=env)
    assert resumed.exit_code == 0, resumed.output + repr(resumed.exception)
    state, _ = check_race(name, storage)
    assert state.looks > DESIGN.n0
    printed = _words(resumed.output)
    confirmation = load_confirmation(as_record(load_study(name, storage)))
    assert confirmation is not None
    assert all(_words(s) in printed for s in confirmation.sentences())
    # Decided: a second call runs nothing more.
    again = CliRunner().invoke(cli, ["studies", "confirm", name], env=env)
    assert again.exit_code == 0
    assert len(companion.get_trials(states=(TrialState.COMPLETE,))) == state.runs


@pytest.mark.slow
def test_local_workers_run_the_rounds(
    project: Path, mlflow_server: ServerInfo, tmp_path: Path
) -> None:
    name = "race-workers"
    path = tmp_path / "race.yaml"
    path.write_text(yaml.safe_dump(spec_data(project, name)))
    home = tmp_path / "home"
    args = ["sweep", "launch", str(path), "--workers", "2"]
    done = CliRunner().invoke(cli, args, env=_env(mlflow_server, home))
    assert done.exit_code == 0, done.output + repr(done.exception)
    assert "Traceback" not in done.output
    state, _ = check_race(name, f"sqlite:///{home / 'optuna.db'}")
    assert state.looks > DESIGN.n0  # the launcher queued rounds after the first
