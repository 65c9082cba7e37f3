"""Export the winner's configuration as YAML: runnable again, or in packnet-sfm's layout.

The winner is the confirmation race's (chosen on the replicates' validation scores, see
studies.confirmation.confirmed; the leader, said so, while the race still runs) when the
study has a confirmation; otherwise the best single-seed search trial, and the header says
it is unconfirmed.

Contract with the objective (studies/objective.py, studies/sweep.py): a finished trial has
the user attributes ``config`` (``TrainConfig.model_dump(mode="json")``) and
``mlflow_run_id``; the study has ``spec`` (the spec's JSON dump), ``objective_metric``,
``direction``, ``mlflow_experiment_id`` and ``mlflow_parent_run_id``. A trial without a
stored config is rebuilt from the stored spec and its params.

The study comes as a record (studies.store.records: what `salsweep studies export` reads from
the tables without Optuna) or as an Optuna study (a sweep's, converted once).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from studies import attrs
from studies.attrs import trial_number
from studies.confirmation import Confirmation, load_confirmation, search_baseline_trial
from studies.report.confirmation import export_header_lines
from studies.store import COMPLETE, FAIL, StudyRecord, TrialRecord
from trainer.errors import UserError

if TYPE_CHECKING:
    from trainer.config import TrainConfig

__all__ = [
    "ExportError",
    "ExportFormat",
    "best_trial",
    "export_best",
    "exported_trial",
    "write_export",
]

ExportFormat = Literal["trainer", "packnet"]


class Unread:
    """The type of `UNREAD`: a confirmation not computed yet."""


UNREAD = Unread()


class ExportError(UserError, ValueError):
    """Nothing to export: no complete trial yet, or a trial without a usable config."""


def best_trial(record: StudyRecord) -> TrialRecord:
    """The best COMPLETE search trial (lowest number on a tie)."""
    trials = [
        t for t in record.get_trials((COMPLETE,)) if t.value is not None and math.isfinite(t.value)
    ]
    if not trials:
        counts: dict[str, int] = {}
        for t in record.trials:
            counts[t.state.lower()] = counts.get(t.state.lower(), 0) + 1
        shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials"
        raise ExportError(
            f"study {record.study_name!r} has no complete trial to export yet ({shown})"
        )
    sign = -1.0 if record.direction == "maximize" else 1.0
    return min(trials, key=lambda t: (sign * float(t.value or 0.0), t.number))


def exported_trial(
    record: StudyRecord, confirmation: Confirmation | None
) -> tuple[TrialRecord, Confirmation | None]:
    """The search trial whose config an export writes: the confirmed winner's, with the
    ``confirmation``; else the best trial, with None (unconfirmed)."""
    winner = None if confirmation is None else confirmation.winner
    number = None if winner is None else trial_number(winner.key)
    if confirmation is not None and number is not None:
        found = [t for t in record.trials if t.number == number]
        if found:
            return found[0], confirmation
    return best_trial(record), None


def _config(study: StudyRecord, trial: TrialRecord) -> TrainConfig:
    from pydantic import ValidationError

    from trainer.config import TrainConfig  # pydantic: an export validates what it writes
    from trainer.validation import describe_validation_error

    stored = trial.user_attrs.get(attrs.CONFIG)
    if stored is not None:
        try:
            return TrainConfig.model_validate(stored)
        except ValidationError as exc:  # stored by an older salsweep, say
            problems = "; ".join(describe_validation_error(exc, TrainConfig))
            raise ExportError(
                f"the stored config of trial {trial.number} of study {study.study_name!r} "
                f"is not a valid training config here: {problems}"
            ) from None
    spec_data = study.user_attrs.get(attrs.SPEC)
    if spec_data is None:
        raise ExportError(
            f"trial {trial.number} of study {study.study_name!r} has no stored config and the "
            "study has no spec to rebuild it from"
        )
    from sweeps import SpecError, parse_spec

    try:
        spec = parse_spec(spec_data, f"study {study.study_name}")
        return spec.config_for(trial.params)
    except SpecError as exc:
        raise ExportError(f"cannot rebuild the config of trial {trial.number}: {exc}") from None


def _header(
    study: StudyRecord,
    trial: TrialRecord,
    confirmation: Confirmation | None,
    fmt: ExportFormat,
    filename: str,
    with_training: bool = False,
    tracking_uri: str | None = None,
) -> list[str]:
    metric = str(study.user_attrs.get(attrs.OBJECTIVE_METRIC, "objective"))
    direction = study.direction
    spec = study.user_attrs.get(attrs.SPEC) or {}
    reduce = (spec.get("objective") or {}).get("reduce")
    how = f"{direction}, {reduce} epoch" if reduce else direction
    if confirmation is None:
        what = "best trial (unconfirmed)"
    elif confirmation.state.done:
        what = "confirmed winner"
    else:
        what = "leader of a confirmation race still running"
    lines = [
        f"# salsweep: {what} of study {study.study_name!r} ({fmt} format)",
        f"# study: {study.study_name}",
        f"# trial: {trial.number}",
        f"# objective: {metric} = {trial.value:.6g} ({how}; the search's single run)",
    ]
    if confirmation is not None:
        lines += export_header_lines(confirmation)
    else:
        lines.append(
            "# confirmed: no - unconfirmed: the best single-seed search trial, possibly the "
            f"luckiest seed (run `salsweep studies confirm {study.study_name}`)"
        )
        lines.append(f"# baseline: {_search_baseline(study, metric)}")
    lines.append(f"# mlflow run: {_mlflow_run(study, trial, tracking_uri)}")
    if fmt == "trainer":
        lines.append(f"# reproduce: salsweep train {filename}")
    else:
        from studies.report.packnet import packnet_header_lines

        lines += packnet_header_lines(study.study_name, with_training=with_training)
    return lines


def _mlflow_run(study: StudyRecord, trial: TrialRecord, tracking_uri: str | None) -> str:
    """The trial's MLflow run for the header: its id, experiment and page in the model-training
    layout (studies.urls.run_page_url, as every MLflow address salsweep writes) on
    ``tracking_uri``, else on the server the sweep logged to (the study's
    ``mlflow_tracking_uri``); the id alone when the server or the experiment is unknown."""
    from studies.urls import run_page_url

    run_id = trial.user_attrs.get(attrs.MLFLOW_RUN_ID)
    experiment = study.user_attrs.get(attrs.MLFLOW_EXPERIMENT_ID)
    if run_id is None:
        return "-"
    if experiment is None:
        return str(run_id)
    where = f"{run_id} (experiment {experiment})"
    server = tracking_uri or study.user_attrs.get(attrs.MLFLOW_TRACKING_URI)
    if not server:
        return where
    return f"{where} at {run_page_url(str(server), str(experiment), str(run_id))}"


def _search_baseline(study: StudyRecord, metric: str) -> str:
    """The SSI baseline's search run for the header: its value, why it has none, or that
    the study has none."""
    base = search_baseline_trial(study)
    if base is None:
        return "none (the study ran no SSI baseline: spec `baseline: false`, or not yet)"
    method = base.user_attrs.get(attrs.METHOD) or "ssi"
    seed = base.user_attrs.get(attrs.SEED)
    where = f"{method} (search run, seed {seed})"
    if base.value is not None:
        return f"{where}: {metric} = {base.value:.6g}"
    diverged = base.user_attrs.get(attrs.NON_FINITE)
    if diverged:
        return f"{where}: no value, diverged ({diverged})"
    state = "failed" if base.state == FAIL else base.state.lower()
    return f"{where}: no value, {state}"


def _packnet(config: TrainConfig, with_training: bool) -> str:
    """packnet-sfm's layout (studies/report/packnet.py) as YAML: the loss under model.loss,
    the keys that read alike annotated; no run name (a merge keeps the user's)."""
    import yaml

    from studies.report.packnet import annotate_packnet_yaml, packnet_config

    body = packnet_config(config, with_training=with_training)
    return annotate_packnet_yaml(yaml.safe_dump(body, sort_keys=False))


def export_best(
    record: StudyRecord,
    fmt: ExportFormat = "trainer",
    *,
    filename: str = "best.yaml",
    confirmation: Confirmation | Unread | None = UNREAD,
    with_training: bool = False,
    tracking_uri: str | None = None,
) -> str:
    """YAML text of the winner's configuration (see `exported_trial`) with a comment
    header: the race's winner with its validation and test figures, seeds and divergence
    rate, its comparisons with the baseline and the runner-up, and the verdict's sentences
    (or "unconfirmed").

    ``trainer``: the full TrainConfig (``salsweep train FILE`` runs it again); ``packnet``:
    packnet-sfm's layout, the loss only (``with_training``: also the proxy run's optimiser,
    epochs and batch size). ``filename`` only appears in the reproduce command.
    ``confirmation``: the record's, when the caller has it already (else read from it).
    ``tracking_uri``: the MLflow server of the header's run address (default: the one the
    sweep logged to, stored on the study; without it the header gives the run's id only).
    Raises `ExportError` when there is no complete search trial.
    """
    if with_training and fmt != "packnet":
        raise ValueError("with_training applies to the packnet format only")
    if fmt not in ("trainer", "packnet"):
        raise ValueError(f"unknown export format {fmt!r} (valid: trainer, packnet)")
    if isinstance(confirmation, Unread):
        confirmation = load_confirmation(record)
    trial, confirmation = exported_trial(record, confirmation)
    config = _config(record, trial)
    lines = _header(record, trial, confirmation, fmt, filename, with_training, tracking_uri)
    header = "\n".join(lines) + "\n"
    if fmt == "trainer":
        from trainer.io import dump_train_config

        return header + dump_train_config(config)
    return header + _packnet(config, with_training)


def write_export(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file beside it, then a rename,
    so that an interrupted write never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file 0600: keep the mode of the file replaced, else rw-r--r--.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
