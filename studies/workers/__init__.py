"""Several worker processes on one study: the plan (workers, threads, GPUs), the
launcher that coordinates them, and the worker process itself.

Its names load on first use (see loss.lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.workers.launcher import (
        run_workers,
    )
    from studies.workers.plan import (
        auto_workers,
        cpu_count,
        detect_gpus,
        plan_workers,
        spawn_workers,
    )
    from studies.workers.settings import (
        WorkerSettings,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.workers.launcher": ("run_workers",),
        "studies.workers.plan": (
            "auto_workers",
            "cpu_count",
            "detect_gpus",
            "plan_workers",
            "spawn_workers",
        ),
        "studies.workers.settings": ("WorkerSettings",),
    },
)
