"""A sweep's run logging over outboxes: every run a sweep process opens (the parent run
``sweep``, each trial's and replicate's run) is journalled on disk (studies.tracking.outbox)
and sent by this process's courier (studies.tracking.courier) through the request-only
client (studies.tracking.client), so that training never waits on the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from studies.home import PARENT_OUTBOX_DIR
from studies.tracking.client import Client
from studies.tracking.courier import adopt, flush_process
from studies.tracking.layout import PARENT_RUN_NAME, ParamValue
from studies.tracking.outbox import RunOutbox, find_outboxes
from studies.tracking.runlog import RunLog, attach_run, open_run

__all__ = ["Tracker", "unsent_runs"]


class Tracker:
    """The runs of one sweep process on one MLflow server. ``journal_dir`` (a sweep's
    folder) holds the outboxes of the parent run (:meth:`open_parent`) and of the runs
    whose ends an earlier process left unsent (:meth:`adopt_unsent`).
    ``client`` makes the plain requests (experiment, runs view, orphan runs)."""

    def __init__(self, tracking_uri: str, journal_dir: Path | None = None) -> None:
        self.client = Client(tracking_uri)
        self.journal_dir = journal_dir

    @property
    def tracking_uri(self) -> str:
        return self.client.tracking_uri

    def open_parent(
        self,
        experiment_id: str,
        study_name: str,
        params: Mapping[str, ParamValue],
        spec_yaml: str,
    ) -> RunLog:
        """The study's parent run ``sweep`` (found, or created with ``params`` and
        ``sweep.yaml``; see `Client.find_or_create_parent`), with an outbox of its own in
        the sweep's folder (``journal_dir``): what this process logs on it afterwards
        (plots, the confirmation, the best config, its end) is journalled and sent by the
        courier."""
        if self.journal_dir is None:
            raise ValueError("a parent run's outbox needs the sweep's folder (journal_dir)")
        run_id = self.client.find_or_create_parent(experiment_id, study_name, params, spec_yaml)
        folder = self.journal_dir / PARENT_OUTBOX_DIR
        return attach_run(self.client, folder, run_id, PARENT_RUN_NAME)

    def open_run(
        self,
        folder: Path,
        experiment_id: str,
        run_name: str,
        tags: Mapping[str, str],
        params: Mapping[str, ParamValue],
        *,
        owner: tuple[str, int] | None = None,
    ) -> RunLog:
        """Open run ``run_name`` through an outbox in ``folder`` (see studies.tracking.courier):
        never raises for the server. While the server answers, the run is created before
        this returns (``RunLog.run_id``); otherwise later, by the courier or
        ``salsweep studies sync``. ``owner``: the Optuna (study, trial number) it belongs to."""
        return open_run(self.client, folder, experiment_id, run_name, tags, params, owner=owner)

    def flush_runs(
        self,
        *,
        interrupted: bool = False,
        on_wait: Callable[[int, float], None] | None = None,
    ) -> bool:
        """Send what this process's runs journalled, for a bounded time (a worker process
        calls it as it ends; see `studies.tracking.courier.flush_process`). True when all
        is sent."""
        return flush_process(self.tracking_uri, interrupted=interrupted, on_wait=on_wait)

    def adopt_unsent(self) -> list[RunOutbox]:
        """The trials' and replicates' runs of the sweep (``journal_dir``) that ended in
        an earlier process with logs still on disk, handed to this process's courier: they
        are sent in the background and the sweep's end waits for them as for its own.
        Left alone: runs not ended (another process runs them, or it died: `studies sync`
        closes those) and the parent run's journals (no owner trial): their end would
        close the parent run that this sweep has just set RUNNING again."""
        if self.journal_dir is None:
            return []
        waiting = [
            o
            for o in find_outboxes(self.journal_dir)
            if o.ended and o.has_pending() and "owner" in o.header
        ]
        adopt(self.client, waiting)
        return waiting


def unsent_runs(outboxes: Sequence[RunOutbox]) -> list[str]:
    """The names of the runs among ``outboxes`` (a sweep's, any process) whose outbox on
    disk holds operations the server does not have: ``salsweep studies sync`` sends them."""
    names = [o.run_name for o in outboxes if o.has_pending()]
    return list(dict.fromkeys(names))
