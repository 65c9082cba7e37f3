"""salsweep: tune the Scale-Adaptive Loss with Optuna sweeps tracked in MLflow.

Thin on purpose: parse options, call a package, draw the result. This is the only place
where exceptions become messages and exit codes: 0 success, 1 an error the user can act on
(one line, no traceback unless --debug), 2 misuse (click's usage errors), 130 interrupted.
"""

from __future__ import annotations

import functools
import math
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # rich.progress loads where progress is drawn (sweeps), not for a read
    from rich.progress import Progress, TaskID
    from rich.text import Text

    from studies import Confirmation, StudyRecord, SweepOutcome

__all__ = ["cli", "main"]

# Piped or captured output has no terminal width: use a wide one rather than wrapping
# tables of trials into unreadable columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _home_option(func: F) -> F:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="SALSWEEP_HOME",
        default=Path(".salsweep"),
        show_default=True,
        help="Data dir: Optuna SQLite file, MLflow server files, trial outputs (SALSWEEP_HOME).",
    )(func)


def _storage_option(func: F) -> F:
    return click.option(
        "--storage",
        envvar="SALSWEEP_STORAGE",
        default=None,
        help="Optuna storage URL (SALSWEEP_STORAGE); default: SQLite file in the data dir.",
    )(func)


def _tracking_option(func: F) -> F:
    return click.option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        default=None,
        help="MLflow server (MLFLOW_TRACKING_URI); default: the data dir's local server, "
        "started when none is running.",
    )(func)


def _is_user_error(exc: BaseException) -> bool:
    """True for an error that carries a message meant for the user: every such error of the
    project derives from `trainer.errors.UserError` (a module that imports nothing)."""
    from trainer.errors import UserError

    return isinstance(exc, UserError)


class SalsweepGroup(click.Group):
    """Maps exceptions to messages and exit codes for every command below it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (studies.run.signals.Terminated)
            from studies.run import exit_code

            code = exit_code(exc)
            how = "interrupted" if code == 130 else "terminated (SIGTERM)"
            err.print(
                f"[yellow]{how}[/]: the running trial was marked failed; "
                "`salsweep sweep resume NAME` continues the sweep"
            )
            ctx.exit(code)
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                traceback.print_exc()
            known = _is_user_error(exc)
            message = str(exc) if known else f"unexpected {type(exc).__name__}: {exc}"
            hint = "" if known else " (run with --debug for the traceback)"
            raise click.ClickException(message + hint) from None


@click.group(cls=SalsweepGroup)
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="salsweep")
def cli(debug: bool) -> None:
    """Tune the Scale-Adaptive Loss (G2-MonoDepth) with Optuna sweeps tracked in MLflow."""


# ---------------------------------------------------------------------------- sweeps


@cli.group(cls=SalsweepGroup)
def sweep() -> None:
    """Launch, validate and resume sweeps."""


class _RichObserver:
    """Progress bars for trials and epochs (studies.SweepObserver). With local workers,
    each worker has its own (``for_worker``): its lines and epoch bar start with ``w<i>``,
    and all of them advance one bar of trials."""

    def __init__(
        self,
        progress: Progress,
        total: int,
        metric: str = "val/abs_rel",
        *,
        prefix: str = "",
        trials: TaskID | None = None,
    ) -> None:
        self.progress = progress
        self.metric = metric
        self.prefix = prefix
        if trials is None:
            trials = progress.add_task("trials", total=total, visible=total > 0)
        self.trials = trials
        self.epochs = progress.add_task(f"{prefix}epochs", total=1, visible=False)

    def for_worker(self, index: int) -> _RichObserver:
        return _RichObserver(self.progress, 0, self.metric, prefix=f"w{index} ", trials=self.trials)

    def log(self, line: str) -> None:
        """A line a worker wrote to its standard error."""
        self.progress.console.print(
            f"{self.prefix}{line}", markup=False, highlight=False, soft_wrap=True
        )

    def sweep_started(self, ui_url: str) -> None:
        # soft_wrap: a URL cut across lines cannot be clicked or copied.
        self.progress.console.print(
            f"MLflow runs: [link={ui_url}]{ui_url}[/link]", soft_wrap=True, highlight=False
        )

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None:
        self.progress.reset(
            self.epochs, total=epochs, visible=True, description=f"{self.prefix}trial {number}"
        )
        self.progress.console.print(
            f"{self.prefix}trial {number}: {_settings(params)}", markup=False, soft_wrap=True
        )

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        self.run_epoch_finished(f"trial {number}", epoch, metrics)

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None:
        self.progress.advance(self.trials)
        self.progress.update(self.epochs, visible=False)
        self.progress.console.print(
            f"{self.prefix}trial {number}: {_ending(state, value, reason)}",
            markup=False,
            soft_wrap=True,
        )

    # Runs outside the search: the SSI baseline and the confirmation's replicates.
    def run_started(self, label: str, params: dict[str, object], epochs: int) -> None:
        self.progress.reset(
            self.epochs, total=epochs, visible=True, description=f"{self.prefix}{label}"
        )
        self.progress.console.print(
            f"{self.prefix}{label}: {_settings(params)}", markup=False, soft_wrap=True
        )

    def run_epoch_finished(self, label: str, epoch: int, metrics: dict[str, float]) -> None:
        value = metrics.get(self.metric, math.nan)
        short = self.metric.split("/")[-1]
        self.progress.update(
            self.epochs,
            completed=epoch,
            description=f"{self.prefix}{label} {short}={value:.4f}",
        )

    def run_finished(self, label: str, state: str, value: float | None, reason: str | None) -> None:
        self.progress.update(self.epochs, visible=False)
        self.progress.console.print(
            f"{self.prefix}{label}: {_ending(state, value, reason)}", markup=False, soft_wrap=True
        )

    def tracking_wait(self, runs: int, seconds: float) -> None:
        self.progress.console.print(
            f"{self.prefix}sending the MLflow logs of {runs} run(s): waiting up to "
            f"{seconds:.0f} s for the tracking server (what it does not take stays on disk)",
            markup=False,
            highlight=False,
        )


def _study_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A study name that can name a folder of the data dir, checked before anything starts."""
    if value is None:
        return None
    from sweeps import check_study_name

    return check_study_name(value)


def _settings(params: dict[str, Any]) -> str:
    """``lambda_sg=0.3786, num_scales=3``: searched values at readable precision."""
    from studies.report.numbers import settings

    return settings(params)


def _ending(state: str, value: float | None, reason: str | None) -> str:
    """How a trial or run ended, in a progress line. A pruned trial was stopped early on
    purpose, not a failure: ``PRUNED at epoch 2 (val/abs_rel_align=0.4261), stopped early``."""
    from studies.report.numbers import figure

    if state == "COMPLETE":
        return f"COMPLETE value={figure(value)}"
    if state == "PRUNED" and reason and reason.startswith("pruned "):
        return f"PRUNED {reason.removeprefix('pruned ')}: stopped early by the pruner"
    shown = "" if value is None else f" value={figure(value)}"
    return f"{state}{shown}" + (f" ({reason})" if reason else "")


class _WorkersType(click.ParamType):
    """``--workers``: a number >= 1, or ``auto``."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)
        if number < 1:
            self.fail(f"{number} is not >= 1", param, ctx)
        return number


def _workers_option(func: F) -> F:
    return click.option(
        "--workers",
        type=_WorkersType(),
        default=1,
        show_default=True,
        help="Worker processes on this machine, sharing the study: a number, or auto (one "
        "per CPU core, at most 8, at least one per GPU; GPUs are shared round robin).",
    )(func)


def _worker_plans(workers: int | str, seed: int | None) -> list[Any]:
    """The plan of the local workers (one: the sweep runs in this process), printed."""
    if workers == 1:
        return []
    from studies.workers import auto_workers, cpu_count, detect_gpus, plan_workers

    gpus = detect_gpus()
    cores = cpu_count()
    count = auto_workers(gpus, cores) if workers == "auto" else int(workers)
    if count == 1:
        return []
    plans = plan_workers(count, seed, cores=cores, gpus=gpus)
    for plan in plans:
        err.print(plan.describe(), highlight=False, markup=False)
    return plans


@dataclass(frozen=True)
class _Executor:
    """``--executor`` and the Slurm options (None: the spec's ``slurm:`` value)."""

    kind: str = "local"
    partition: str | None = None
    time_limit: int | None = None
    cpus_per_worker: int | None = None
    gpus_per_worker: int | None = None
    sbatch: tuple[str, ...] = ()
    allow_sqlite: bool = False

    def slurm(self, spec: Any) -> Any:
        """The spec's ``slurm:`` settings with these options applied."""
        from sweeps import SlurmSpec

        sbatch = {}
        for option in self.sbatch:
            key, sep, value = option.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"{option!r} is not NAME=VALUE", param_hint="--sbatch")
            sbatch[key.strip().removeprefix("--")] = value.strip()
        return (spec.slurm or SlurmSpec()).overridden(
            "command line options",
            partition=self.partition,
            time_limit=self.time_limit,
            cpus_per_worker=self.cpus_per_worker,
            gpus_per_worker=self.gpus_per_worker,
            sbatch=sbatch or None,
        )


def _executor_options(func: F) -> F:
    """``--executor`` and the Slurm options, gathered into ``executor`` (an `_Executor`)."""
    options = [
        click.option(
            "--executor",
            "executor_kind",
            type=click.Choice(["local", "slurm"]),
            default="local",
            show_default=True,
            help="Where the workers run: processes of this machine, or Slurm jobs submitted "
            "through submitit (--workers jobs; README, 'Sweeps on a Slurm cluster').",
        ),
        click.option("--partition", default=None, help="Slurm partition (spec: slurm.partition)."),
        click.option(
            "--time-limit",
            type=click.IntRange(min=1),
            default=None,
            help="Minutes per Slurm job (spec: slurm.time_limit, default 60).",
        ),
        click.option(
            "--cpus-per-worker",
            type=click.IntRange(min=1),
            default=None,
            help="CPUs per Slurm job (spec: slurm.cpus_per_worker, default 1).",
        ),
        click.option(
            "--gpus-per-worker",
            type=click.IntRange(min=0),
            default=None,
            help="GPUs per Slurm job (spec: slurm.gpus_per_worker, default 0).",
        ),
        click.option(
            "--sbatch",
            multiple=True,
            metavar="NAME=VALUE",
            help="Another sbatch option for every job, e.g. account=lab (spec: slurm.sbatch); "
            "repeatable.",
        ),
        click.option(
            "--allow-sqlite",
            is_flag=True,
            help="With --executor slurm, use an SQLite storage anyway: only where every job "
            "runs on this machine (SQLite over a network file system loses writes).",
        ),
    ]

    def gather(**kwargs: Any) -> Any:
        executor = _Executor(
            kind=kwargs.pop("executor_kind"),
            partition=kwargs.pop("partition"),
            time_limit=kwargs.pop("time_limit"),
            cpus_per_worker=kwargs.pop("cpus_per_worker"),
            gpus_per_worker=kwargs.pop("gpus_per_worker"),
            sbatch=tuple(kwargs.pop("sbatch")),
            allow_sqlite=kwargs.pop("allow_sqlite"),
        )
        return func(executor=executor, **kwargs)

    functools.update_wrapper(gather, func)
    wrapped: Any = gather
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def _job_count(workers: int | str) -> int:
    if workers == "auto":
        raise click.BadParameter(
            "give the number of worker jobs with --executor slurm", param_hint="--workers"
        )
    return int(workers)


def _on_cluster(
    spec: Any,
    name: str,
    storage: str | None,
    tracking_uri: str | None,
    home: Path,
    executor: _Executor,
) -> tuple[Any, Any, Any]:
    """The checks before a sweep on Slurm (an SQLite storage, Slurm's commands, the
    addresses the jobs get), in that order, before anything is created or submitted;
    returns (target, queue, slurm settings)."""
    from studies.home import resolve_storage

    storage_url = resolve_storage(storage, home)
    from studies.cluster import check_addresses, refuse_sqlite, slurm_queue

    refuse_sqlite(storage_url, allow_sqlite=executor.allow_sqlite)
    slurm = executor.slurm(spec)
    queue = slurm_queue(home, name, slurm)
    from studies import SweepTarget, quiet_optuna_logs, resolve_tracking

    quiet_optuna_logs()
    tracking = resolve_tracking(tracking_uri, home)
    if tracking.started_here:
        err.print(f"started the MLflow server at {tracking.uri} (stop: salsweep server stop)")
    check_addresses(queue, storage_url, tracking.uri)
    return SweepTarget(storage_url, tracking.uri, home), queue, slurm


def _run_on_cluster(
    spec: Any,
    name: str,
    storage: str | None,
    tracking_uri: str | None,
    home: Path,
    n_trials: int | None,
    create: bool,
    workers: int | str,
    executor: _Executor,
) -> None:
    """`sweep launch|resume --executor slurm`: the workers are Slurm jobs."""
    count = _job_count(workers)
    target, queue, slurm = _on_cluster(spec, name, storage, tracking_uri, home, executor)
    from studies.cluster import ClusterRun, run_cluster

    total = n_trials if n_trials is not None else spec.budget.n_trials
    if not create and n_trials is None:
        from studies import attrs, load_study

        total = load_study(name, target.storage_url).user_attrs.get(attrs.BUDGET, total)
    cluster = ClusterRun(queue, count, slurm.cpus_per_worker, slurm.resubmits)
    with _progress() as progress:
        observer = _RichObserver(progress, total, spec.objective.metric)
        outcome = run_cluster(
            spec,
            name,
            target,
            cluster,
            n_trials=n_trials,
            observer=observer,
            worker_observer=observer.for_worker,
            create=create,
        )
    _print_outcome(name, outcome)
    err.print(f"job logs: {queue.folder}", highlight=False, markup=False, soft_wrap=True)


def _run(
    spec: Any,
    name: str,
    storage: str | None,
    tracking_uri: str | None,
    home: Path,
    n_trials: int | None,
    create: bool,
    workers: int | str = 1,
    executor: _Executor | None = None,
) -> None:
    if executor is not None and executor.kind == "slurm":
        _run_on_cluster(
            spec, name, storage, tracking_uri, home, n_trials, create, workers, executor
        )
        return
    from studies.workers import spawn_workers

    plans = _worker_plans(workers, spec.sampler.seed)
    # Local workers start first: they load torch, Optuna and MLflow while this process
    # does and prepares the study (none are started for the one-process sweep).
    with spawn_workers(plans) as started:
        from studies import (
            SweepTarget,
            quiet_optuna_logs,
            resolve_storage,
            resolve_tracking,
            run_sweep,
        )

        quiet_optuna_logs()
        tracking = resolve_tracking(tracking_uri, home)
        if tracking.started_here:
            err.print(f"started the MLflow server at {tracking.uri} (stop: salsweep server stop)")
        target = SweepTarget(resolve_storage(storage, home), tracking.uri, home)
        total = n_trials if n_trials is not None else spec.budget.n_trials
        if not create and n_trials is None:  # a resume keeps the budget it was launched with
            from studies import attrs, load_study

            total = load_study(name, target.storage_url).user_attrs.get(attrs.BUDGET, total)
        with _progress() as progress:
            observer = _RichObserver(progress, total, spec.objective.metric)
            if plans:
                from studies.workers import run_workers

                outcome = run_workers(
                    spec,
                    name,
                    target,
                    plans,
                    n_trials=n_trials,
                    observer=observer,
                    worker_observer=observer.for_worker,
                    create=create,
                    debug=bool(click.get_current_context().find_root().params.get("debug")),
                    started=started,
                )
            else:
                outcome = run_sweep(
                    spec, name, target, n_trials=n_trials, observer=observer, create=create
                )
    _print_outcome(name, outcome)


def _print_outcome(name: str, outcome: SweepOutcome) -> None:
    _print_study(outcome.record, outcome.confirmation)
    if outcome.confirmation_skipped:
        err.print(f"confirmation not run here: {outcome.confirmation_skipped}")
    _print_mlflow_logs(name, outcome)
    out.print(f"MLflow runs: {outcome.ui_url}", soft_wrap=True, highlight=False)
    out.print(f"Export the winner's configuration: salsweep studies export {name} -o best.yaml")


def _print_mlflow_logs(name: str, outcome: SweepOutcome) -> None:
    """What this sweep sent of the logs an earlier one left on disk, and one line naming
    the runs whose MLflow logs wait on disk (the server was away)."""
    if outcome.earlier_sent:
        err.print(
            f"sent the MLflow logs of {outcome.earlier_sent} run(s) that an earlier sweep of "
            f"{name} had left on disk",
            markup=False,
            highlight=False,
        )
    runs = outcome.unsent
    if runs:
        shown = ", ".join(runs[:10]) + (f" and {len(runs) - 10} more" if len(runs) > 10 else "")
        err.print(
            f"MLflow logs not sent yet (the server did not answer) for {len(runs)} run(s): "
            f"{shown}; they wait in the trial folders: salsweep studies sync {name}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@contextmanager
def _progress() -> Iterator[Progress]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        yield progress


@sweep.command("launch")
@click.argument(
    "spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--study-name",
    default=None,
    callback=_study_name,
    help="Study (and MLflow experiment) name; default: the spec's name.",
)
@click.option(
    "--n-trials",
    type=click.IntRange(min=1),
    default=None,
    help="Total trials of the study (overrides the spec's budget).",
)
@_workers_option
@_executor_options
@_storage_option
@_tracking_option
@_home_option
def sweep_launch(
    spec_path: Path,
    study_name: str | None,
    n_trials: int | None,
    workers: int | str,
    executor: _Executor,
    storage: str | None,
    tracking_uri: str | None,
    home: Path,
) -> None:
    """Create (or continue) the study of SPEC and run its trials."""
    from sweeps import load_spec

    spec = load_spec(spec_path)
    name = study_name or spec.name
    _run(spec, name, storage, tracking_uri, home, n_trials, True, workers, executor)


@sweep.command("validate")
@click.argument(
    "spec_path", metavar="SPEC", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def sweep_validate(spec_path: Path) -> None:
    """Check SPEC and print it resolved; creates nothing."""
    from sweeps import load_spec, spec_to_yaml

    spec = load_spec(spec_path)
    # soft_wrap: lines longer than the console stay whole, so the output is YAML to save.
    out.print(spec_to_yaml(spec), highlight=False, markup=False, soft_wrap=True)
    err.print(f"{spec_path}: valid")


@sweep.command("schema")
def sweep_schema() -> None:
    """Print the JSON Schema of a sweep spec (for editors that check YAML against one)."""
    import json

    from sweeps import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2))


@sweep.command("resume")
@click.argument("name", callback=_study_name)
@click.option(
    "--n-trials",
    type=click.IntRange(min=1),
    default=None,
    help="Total trials of the study (overrides the stored budget).",
)
@_workers_option
@_executor_options
@_storage_option
@_tracking_option
@_home_option
def sweep_resume(
    name: str,
    n_trials: int | None,
    workers: int | str,
    executor: _Executor,
    storage: str | None,
    tracking_uri: str | None,
    home: Path,
) -> None:
    """Run the remaining trials of study NAME (as launched, same spec)."""
    from studies import resolve_storage, stored_spec

    spec = stored_spec(name, resolve_storage(storage, home))
    _run(spec, name, storage, tracking_uri, home, n_trials, False, workers, executor)


# ---------------------------------------------------------------------------- studies


@cli.group(cls=SalsweepGroup)
def studies() -> None:
    """List, inspect and export studies."""


def _storage_url(storage: str | None, home: Path) -> str:
    """`studies.resolve_storage`, imported from studies.home itself (which imports
    nothing), not through studies.store.storage (Optuna)."""
    from studies.home import resolve_storage

    return resolve_storage(storage, home)


@studies.command("list")
@_storage_option
@_home_option
def studies_list(storage: str | None, home: Path) -> None:
    """Every study in the storage, with its trial counts and best value; each study's
    companion NAME:confirm (its baseline and confirmation runs) on the row after it."""
    from studies.attrs import is_companion_name
    from studies.report.numbers import figure
    from studies.store.catalog import study_summaries

    table = Table("study", "trials", "complete", "pruned", "failed", "best", "started")
    companions = False
    for s in study_summaries(_storage_url(storage, home), companions=True):
        companion = is_companion_name(s.name)
        companions = companions or companion
        # A companion's values belong to several configurations (and splits): no best.
        best = "-" if companion else figure(s.best_value)
        started = s.started.strftime("%Y-%m-%d %H:%M") if s.started else "-"
        table.add_row(
            s.name,
            str(s.n_trials),
            str(s.n_complete),
            str(s.n_pruned),
            str(s.n_failed),
            best,
            started,
        )
    out.print(table)
    if companions:
        out.print(
            "NAME:confirm: the SSI baseline's and the confirmation's runs of study NAME "
            "(salsweep studies show NAME:confirm); no best: its values are per configuration",
            markup=False,
            highlight=False,
        )


# How the tables show a trial's state: a pruned trial was stopped early on purpose.
_STATE_STYLE = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red"}


def _state(state: str) -> Text:
    from rich.text import Text

    return Text(state, style=_STATE_STYLE.get(state, ""))


def _print_study(study: StudyRecord, confirmation: Confirmation | None) -> None:
    """The trials table and the confirmation of a study read once (``confirmation``: its
    confirmation, None when it has none yet)."""
    from studies import trial_rows
    from studies.report.numbers import figure

    name = study.study_name
    table = Table("trial", "state", "params", "value", "duration", "MLflow run", title=name)
    rows = trial_rows(study)
    for row in rows:
        duration = "-" if row.duration is None else f"{row.duration:.1f}s"
        number = "baseline" if row.number is None else str(row.number)
        table.add_row(
            number,
            _state(row.state),
            _settings(row.params),
            figure(row.value),
            duration,
            row.mlflow_run_id or "-",
        )
    out.print(table)
    counts = _state_counts(row.state for row in rows if not row.baseline)
    if counts:
        out.print(counts, markup=False, highlight=False)
    _print_confirmation(study, confirmation)
    if study.companion is not None:
        out.print(
            f"the baseline's and the confirmation's runs, one per seed: salsweep studies show "
            f"{study.study_name}:confirm",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _state_counts(states: Iterable[str]) -> str:
    """``12 trials: 5 complete, 7 pruned (stopped early by the pruner: no value, not a
    failure), 0 failed``."""
    found = list(states)
    if not found:
        return ""
    pruned = found.count("PRUNED")
    parts = [f"{found.count('COMPLETE')} complete"]
    parts.append(
        f"{pruned} pruned (stopped early by the pruner: no value, not a failure)"
        if pruned
        else "0 pruned"
    )
    parts.append(f"{found.count('FAIL')} failed")
    others = len(found) - found.count("COMPLETE") - pruned - found.count("FAIL")
    if others:
        parts.append(f"{others} running or waiting")
    return f"{len(found)} trials: " + ", ".join(parts)


def _print_confirmation(study: StudyRecord, confirmation: Confirmation | None) -> None:
    """The race's table and its verdict, a sentence a line (nothing without one)."""
    from rich.text import Text

    from studies import table_title, terminal_table, verdict_lines

    if confirmation is None:
        out.print(f"unconfirmed: no confirmation yet (salsweep studies confirm {study.study_name})")
        return
    header, rows = terminal_table(confirmation)
    table = Table(*header, title=table_title(confirmation))
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # brackets are not markup
    out.print(table)
    for line in verdict_lines(confirmation):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@studies.command("show")
@click.argument("name")  # looked up, never made a folder: no name check
@_storage_option
@_home_option
def studies_show(name: str, storage: str | None, home: Path) -> None:
    """A table of the trials of study NAME, and its confirmation with the verdict.

    NAME:confirm (the companion study) lists the runs outside the search: the SSI
    baseline's search run and the confirmation's replicates, one per seed.
    """
    from studies import load_confirmation
    from studies.attrs import is_companion_name

    if is_companion_name(name):
        from studies.store.catalog import read_companion

        study = read_companion(name, _storage_url(storage, home))
        _print_replicates(name, study)
        _print_confirmation(study, load_confirmation(study))
        return
    from studies import read_study

    study = read_study(name, _storage_url(storage, home))
    _print_study(study, load_confirmation(study))


def _print_replicates(name: str, study: StudyRecord) -> None:
    """The trials of the companion study of ``study``: one row per run, with its
    configuration, training seed, role, state, value and MLflow run."""
    from rich.text import Text

    from studies.report import replicate_rows
    from studies.report.numbers import figure

    assert study.companion is not None
    title = f"{name}: the runs outside the search of study {study.study_name}"
    table = Table(
        "trial", "config", "seed", "role", "state", "value", "metric", "test", title=title
    )
    table.add_column("MLflow run", no_wrap=True)  # whole, to copy
    rows = replicate_rows(study.companion)
    for row in rows:
        value = figure(row.value) + (f" ({row.note})" if row.note else "")
        table.add_row(
            str(row.number),
            row.config,
            "-" if row.seed is None else str(row.seed),
            row.role,
            _state(row.state),
            Text(value),
            row.metric or "-",
            figure(row.test_value),
            row.mlflow_run_id or "-",
        )
    out.print(table)
    if not rows:
        out.print("no runs yet", markup=False)
    out.print(
        "each configuration's searched values: the confirmation table below, or salsweep "
        f"studies show {study.study_name}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@studies.command("confirm")
@click.argument("name", callback=_study_name)
@click.option(
    "--top-k",
    type=click.IntRange(min=1, max=100),
    default=None,
    help="Candidates of the race: the best distinct search trials (default: the spec's "
    "confirm.top_k, else 3).",
)
@click.option(
    "--initial-seeds",
    type=click.IntRange(min=3, max=100),
    default=None,
    help="Seeds every contender runs before the first look (default: the spec's "
    "confirm.initial_seeds, else 4).",
)
@click.option(
    "--max-seeds",
    type=click.IntRange(min=3, max=100),
    default=None,
    help="The most seeds a contender runs (default: the spec's confirm.max_seeds, else 16).",
)
@click.option(
    "--indifference-zone",
    type=click.FloatRange(min=0.0, min_open=True, max=1.0),
    default=None,
    help="Differences below this (metric units) do not matter (default: the spec's "
    "confirm.indifference_zone, else 0.005).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0.0, max=0.5, min_open=True, max_open=True),
    default=None,
    help="Probability of any false claim over the race (default: the spec's confirm.alpha, "
    "else 0.05).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --executor slurm: worker jobs running the replicates.",
)
@_executor_options
@_storage_option
@_tracking_option
@_home_option
def studies_confirm(
    name: str,
    top_k: int | None,
    initial_seeds: int | None,
    max_seeds: int | None,
    indifference_zone: float | None,
    alpha: float | None,
    workers: int,
    executor: _Executor,
    storage: str | None,
    tracking_uri: str | None,
    home: Path,
) -> None:
    """Race the top configurations of study NAME and its baseline on paired replicates.

    Every contender runs the initial seeds, then one more seed a round while its comparison
    with the winner is open, up to the maximum; the winner is chosen on validation, the
    test split only reports. The design is fixed when the race starts: options given to a
    race under way must match it. Runs only the replicates not done yet: a second call adds
    nothing, an interrupted one continues.
    """
    if executor.kind == "slurm":
        design = {
            "top_k": top_k,
            "initial_seeds": initial_seeds,
            "max_seeds": max_seeds,
            "indifference_zone": indifference_zone,
            "alpha": alpha,
        }
        _confirm_on_cluster(name, design, workers, executor, storage, tracking_uri, home)
        return
    from studies import (
        SweepTarget,
        confirm_sweep,
        quiet_optuna_logs,
        resolve_storage,
        resolve_tracking,
        stored_spec,
    )

    quiet_optuna_logs()
    storage_url = resolve_storage(storage, home)
    spec = stored_spec(name, storage_url)  # an unknown study fails before any server starts
    tracking = resolve_tracking(tracking_uri, home)
    if tracking.started_here:
        err.print(f"started the MLflow server at {tracking.uri} (stop: salsweep server stop)")
    target = SweepTarget(storage_url, tracking.uri, home)
    with _progress() as progress:
        outcome = confirm_sweep(
            name,
            target,
            top_k=top_k,
            initial_seeds=initial_seeds,
            max_seeds=max_seeds,
            indifference_zone=indifference_zone,
            alpha=alpha,
            observer=_RichObserver(progress, 0, spec.objective.metric),
        )
    _print_study(outcome.record, outcome.confirmation)
    if outcome.confirmation_skipped:
        err.print(f"the race goes on elsewhere: {outcome.confirmation_skipped}")
    _print_mlflow_logs(name, outcome)
    out.print(f"MLflow runs: {outcome.ui_url}", soft_wrap=True, highlight=False)


def _confirm_on_cluster(
    name: str,
    design: dict[str, Any],
    workers: int,
    executor: _Executor,
    storage: str | None,
    tracking_uri: str | None,
    home: Path,
) -> None:
    """`studies confirm --executor slurm`: the replicates run in Slurm jobs."""
    from studies.home import resolve_storage
    from studies.store import stored_spec

    spec = stored_spec(name, resolve_storage(storage, home))  # an unknown study fails first
    target, queue, slurm = _on_cluster(spec, name, storage, tracking_uri, home, executor)
    from studies.cluster import ClusterRun, run_cluster_confirmation

    cluster = ClusterRun(queue, workers, slurm.cpus_per_worker, slurm.resubmits)
    with _progress() as progress:
        observer = _RichObserver(progress, 0, spec.objective.metric)
        outcome = run_cluster_confirmation(
            name,
            target,
            cluster,
            design=design,
            observer=observer,
            worker_observer=observer.for_worker,
        )
    _print_study(outcome.record, outcome.confirmation)
    _print_mlflow_logs(name, outcome)
    out.print(f"MLflow runs: {outcome.ui_url}", soft_wrap=True, highlight=False)
    err.print(f"job logs: {queue.folder}", highlight=False, markup=False, soft_wrap=True)


@studies.command("sync")
@click.argument("name", callback=_study_name)
@_storage_option
@_tracking_option
@_home_option
def studies_sync(name: str, storage: str | None, tracking_uri: str | None, home: Path) -> None:
    """Send to MLflow the logs of study NAME's runs that wait in their folders.

    A sweep whose tracking server was away keeps its runs' logs on disk; this sends every
    one the server does not have, never one it has: a second call sends nothing. Runs whose
    trial ended without closing them (a worker that died) are closed.
    """
    from studies.run import sync_study
    from studies.store import quiet_optuna_logs
    from studies.tracking import resolve_tracking

    quiet_optuna_logs()
    tracking = resolve_tracking(tracking_uri, home)
    if tracking.started_here:
        err.print(f"started the MLflow server at {tracking.uri} (stop: salsweep server stop)")
    report = sync_study(name, home, tracking.uri, _storage_url(storage, home))
    out.print(
        f"study {name}: {report.synced} of {report.runs} run(s) synced: {report.sent} "
        f"operation(s) sent ({report.epochs} epoch(s) of metrics), {report.already} already "
        f"there, {report.rejected} refused by the server, {report.closed} run(s) closed, "
        f"{report.recorded} run id(s) recorded in the study",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if report.still_running:
        err.print(
            f"{len(report.still_running)} run(s) still running: "
            + ", ".join(report.still_running[:10]),
            markup=False,
            highlight=False,
        )


@studies.command("export")
@click.argument("name")  # looked up, never made a folder: no name check
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (YAML); required unless --print-defaults.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["trainer", "packnet"]),
    default="trainer",
    show_default=True,
    help="trainer: runnable with `salsweep train`; packnet: packnet-sfm YAML layout.",
)
@click.option(
    "--print-defaults",
    is_flag=True,
    help="With --format packnet: print the lines that declare the loss's keys in "
    "packnet-sfm's configs/default_config.py.",
)
@click.option(
    "--with-training",
    is_flag=True,
    help="With --format packnet: also write the proxy run's optimiser (lr, weight decay), "
    "epochs and batch size, which were tuned for salsweep's small proxy network (left out "
    "by default: the file holds the loss).",
)
@_storage_option
@_home_option
def studies_export(
    name: str,
    output: Path | None,
    fmt: str,
    print_defaults: bool,
    with_training: bool,
    storage: str | None,
    home: Path,
) -> None:
    """Write the best trial's configuration of study NAME.

    The confirmed winner's when the study has a confirmation. --format trainer: the whole
    training config (salsweep train FILE runs it again); --format packnet: the loss and its
    parameters, to merge into a packnet-sfm run config.
    """
    if with_training and fmt != "packnet":
        raise click.UsageError("--with-training needs --format packnet")
    if print_defaults:
        if fmt != "packnet":
            raise click.UsageError("--print-defaults needs --format packnet")
        from studies.report import PACKNET_FORK_DECLARATIONS

        click.echo(PACKNET_FORK_DECLARATIONS, nl=False)
        if output is None:
            return
    if output is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    from studies import export_best, read_study, write_export

    study = read_study(name, _storage_url(storage, home))
    text = export_best(
        study,
        fmt,  # type: ignore[arg-type]
        filename=str(output),
        with_training=with_training,
    )
    write_export(text, output)
    err.print(f"wrote {output} ({fmt} format)")


# ---------------------------------------------------------------------------- server


@cli.group(cls=SalsweepGroup)
def server() -> None:
    """The local MLflow tracking server (SQLite in the data dir)."""


@server.command("start")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback exposes a server without authentication.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@_home_option
def server_start(host: str, port: int, home: Path) -> None:
    """Start the server in the background (no-op when it already runs)."""
    from studies.tracking import exposure_warning, start_server

    if (warning := exposure_warning(host)) is not None:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    info = start_server(home, host=host, port=port)
    out.print(f"MLflow server running at {info.url} (pid {info.pid})")


@server.command("stop")
@_home_option
def server_stop(home: Path) -> None:
    """Stop the server and every process it started."""
    from studies import stop_server

    out.print("stopped" if stop_server(home) else "no server was running")


@server.command("status")
@_home_option
def server_status_cmd(home: Path) -> None:
    """Exit 0 and print the address when the server is running and healthy, else exit 1."""
    from studies import server_status

    info = server_status(home)
    if info is None:
        raise click.ClickException(f"no MLflow server is running for {home}")
    out.print(f"MLflow server running at {info.url} (pid {info.pid})")


# ---------------------------------------------------------------------------- train, loss


# Per epoch of `salsweep train`: the metrics an objective is usually made of (aligned in
# inverse depth and in depth, median-scaled and raw abs_rel).
_TRAIN_SHOWN = ("val/abs_rel_align", "val/abs_rel_align_depth", "val/abs_rel_med", "val/abs_rel")


@cli.command("train")
@click.argument(
    "config_path", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="Override the config's device.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Override the config's output folder (previews, best checkpoint).",
)
def train(config_path: Path, device: str | None, output_dir: Path | None) -> None:
    """One training run from a YAML TrainConfig (e.g. an exported best.yaml).

    Prints the validation metrics every epoch, then the kept epoch's weights scored on the
    test split. Run as a sweep's command trial (``salsweep train {config}``), it reports
    every epoch's metrics to the sweep (studies.command.reporter; nothing outside a sweep).
    """
    from studies.command.reporter import report
    from trainer import load_train_config

    config = load_train_config(config_path)  # a bad config fails before torch is loaded
    from trainer import fit, resolve_device

    updates: dict[str, object] = {}
    if device is not None:
        updates["device"] = device
    if output_dir is not None:
        updates["output_dir"] = output_dir
    config = config.model_copy(update=updates)
    try:
        resolve_device(config.device)
    except ValueError as exc:  # e.g. cuda asked for on a machine without it
        raise click.ClickException(str(exc)) from None

    with _progress() as progress:
        task = progress.add_task("epoch 1", total=config.epochs * config.steps_per_epoch)

        def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
            report(epoch, **metrics)
            shown = " ".join(
                f"{key}={metrics.get(key, math.nan):.4f}"
                for key in ("train/total_loss", *_TRAIN_SHOWN)
            )
            progress.console.print(
                f"epoch {epoch}/{config.epochs}: {shown} ({metrics['epoch_time_s']:.1f}s)",
                soft_wrap=True,  # one line per epoch, also in a narrow or piped terminal
            )
            progress.update(task, description=f"epoch {min(epoch + 1, config.epochs)}")

        result = fit(
            config,
            on_epoch_end,
            on_step=lambda _s, _n: progress.advance(task),
            evaluate_test=True,
        )
    table = Table(
        "metric",
        "final",
        f"best (epoch {result.best_epoch})",
        title=f"{config_path} on {result.device}",
    )
    for key in sorted(result.final):
        table.add_row(key, f"{result.final[key]:.6g}", f"{result.best[key]:.6g}")
    out.print(table)
    test = Table("metric", "test", title=f"test split, weights of epoch {result.best_epoch}")
    for key in sorted(result.test):
        test.add_row(key, f"{result.test[key]:.6g}")
    out.print(test)
    if result.checkpoint is not None:
        out.print(f"best checkpoint: {result.checkpoint}")


@cli.group(cls=SalsweepGroup)
def loss() -> None:
    """Check the loss functions."""


@loss.command("check")
@click.option("--seed", type=int, default=0, show_default=True)
def loss_check(seed: int) -> None:
    """The seed's quick check: random (2,1,192,640) inverse depths through the loss."""
    from loss import quick_check

    result = quick_check(seed)
    table = Table("metric", "value", title="scale-adaptive loss, random (2,1,192,640) input")
    for key, value in result.metrics.items():
        table.add_row(key, f"{float(value):.6g}")
    out.print(table)
    out.print(f"total: {float(result.total):.6g} (finite: {math.isfinite(float(result.total))})")


def main() -> None:
    """Console-script entry point."""
    from studies.run import exit_code, install_stop_handlers

    install_stop_handlers()  # SIGTERM stops a sweep as cleanly as Ctrl-C (exit 143)
    try:
        cli.main(prog_name="salsweep")
    except KeyboardInterrupt as exc:  # raised outside a command (e.g. while importing)
        sys.exit(exit_code(exc))


if __name__ == "__main__":
    main()
