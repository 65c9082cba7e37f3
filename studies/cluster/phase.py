"""The launcher's word to its jobs, kept in the storage: what phase the sweep is in and
when the launcher last said so (a study system attribute of the search study).

A job cannot be told anything through a pipe: it reads this before it looks for work.
``search``: take search trials (queued by the launcher, see studies.cluster.worker) and
queued replicates; ``confirm``: take the confirmation's replicates; ``end``: exit. A word
older than `SILENT_S` means the launcher is gone (killed without a chance to cancel its
jobs): a job with no work left then exits, and ``salsweep sweep resume`` starts new ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, cast

from optuna.storages import BaseStorage

__all__ = ["BEAT_S", "PHASE_KEY", "SILENT_S", "Phase", "Word", "read_word", "say"]

PHASE_KEY = "salsweep:cluster"
# The launcher says its phase again at least this often (seconds) ...
BEAT_S = 10.0
# ... and a job takes a word older than this for a launcher that is gone (clocks of the
# launcher's and the job's machines may differ by a few seconds).
SILENT_S = 180.0
Phase = Literal["search", "confirm", "end"]
_PHASES = ("search", "confirm", "end")


@dataclass(frozen=True)
class Word:
    """The phase, and when (Unix time, the launcher's clock) the launcher said it."""

    phase: Phase
    at: float

    def silent(self, now: float | None = None, bound: float = SILENT_S) -> bool:
        """Whether the launcher has said nothing for longer than ``bound`` seconds."""
        return (time.time() if now is None else now) - self.at > bound


def say(storage: BaseStorage, study_id: int, phase: Phase, *, now: float | None = None) -> Word:
    """Store ``phase`` as the launcher's word to the jobs of study ``study_id``."""
    word = Word(phase, time.time() if now is None else now)
    storage.set_study_system_attr(study_id, PHASE_KEY, {"phase": word.phase, "at": word.at})
    return word


def read_word(storage: BaseStorage, study_id: int) -> Word | None:
    """The launcher's last word to the jobs of study ``study_id`` (None: none, or one this
    version does not read)."""
    stored = storage.get_study_system_attrs(study_id).get(PHASE_KEY)
    if not isinstance(stored, dict):
        return None
    phase, at = stored.get("phase"), stored.get("at")
    if phase not in _PHASES or not isinstance(at, int | float):
        return None
    return Word(cast(Phase, phase), float(at))
