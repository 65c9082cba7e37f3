"""Who hears of a sweep's progress: the CLI draws its progress bars from it, a worker
process forwards it to the launcher."""

from __future__ import annotations

from typing import Protocol

__all__ = ["SweepObserver"]


class SweepObserver(Protocol):
    """Receives progress of a sweep (the CLI draws progress bars from it).

    ``trial_*``: the search's trials, by number. ``run_*``: the runs outside the search
    (the SSI baseline, the confirmation's replicates), by label, e.g. ``baseline`` or
    ``confirm trial-3 seed 2``. ``tracking_wait``: a wait for the tracking server at the
    end, said before it begins.
    """

    def sweep_started(self, ui_url: str) -> None: ...

    def trial_started(self, number: int, params: dict[str, object], epochs: int) -> None: ...

    def epoch_finished(self, number: int, epoch: int, metrics: dict[str, float]) -> None: ...

    def trial_finished(
        self, number: int, state: str, value: float | None, reason: str | None
    ) -> None: ...

    def run_started(self, label: str, params: dict[str, object], epochs: int) -> None: ...

    def run_epoch_finished(self, label: str, epoch: int, metrics: dict[str, float]) -> None: ...

    def run_finished(
        self, label: str, state: str, value: float | None, reason: str | None
    ) -> None: ...

    def tracking_wait(self, runs: int, seconds: float) -> None:
        """The process ends, and the MLflow logs of ``runs`` runs are not sent yet: it
        waits ``seconds`` at most for the server (then they stay on disk)."""
