"""MLflow: the tracking layout, a request-only client, run logging over outboxes on
disk, the courier that sends them (handed its transport), and the local server.

Its names load on first use (see loss.lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.tracking.client import (
        Client,
    )
    from studies.tracking.courier import (
        ALREADY,
        REJECTED,
        SENT,
        Unreachable,
        send_next,
    )
    from studies.tracking.layout import (
        CHILD_STATUS,
        CONFIRM_TEST_METRIC,
        CONFIRM_VALUE_METRIC,
        LABEL_TAG,
        NOTE_TAG,
        ROLE_TAG,
        STATE_TAG,
        STUDY_TAG,
        VERDICT_TAGS,
        ChildState,
        ParamValue,
        TrackingError,
        child_tags,
        flatten_params,
        now_ms,
        without_unused_loss_params,
    )
    from studies.tracking.outbox import (
        OP_END,
        OP_LOG,
        RunOutbox,
        find_outboxes,
    )
    from studies.tracking.runlog import (
        RunLog,
    )
    from studies.tracking.runs import (
        Tracker,
        unsent_runs,
    )
    from studies.tracking.server import (
        ServerError,
        ServerInfo,
        exposure_warning,
        resolve_tracking,
        server_status,
        start_server,
        stop_server,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.tracking.client": ("Client",),
        "studies.tracking.courier": (
            "ALREADY",
            "REJECTED",
            "SENT",
            "Unreachable",
            "send_next",
        ),
        "studies.tracking.layout": (
            "CHILD_STATUS",
            "CONFIRM_TEST_METRIC",
            "CONFIRM_VALUE_METRIC",
            "ChildState",
            "LABEL_TAG",
            "NOTE_TAG",
            "ParamValue",
            "ROLE_TAG",
            "STATE_TAG",
            "STUDY_TAG",
            "TrackingError",
            "VERDICT_TAGS",
            "child_tags",
            "flatten_params",
            "now_ms",
            "without_unused_loss_params",
        ),
        "studies.tracking.outbox": (
            "OP_END",
            "OP_LOG",
            "RunOutbox",
            "find_outboxes",
        ),
        "studies.tracking.runlog": ("RunLog",),
        "studies.tracking.runs": (
            "Tracker",
            "unsent_runs",
        ),
        "studies.tracking.server": (
            "ServerError",
            "ServerInfo",
            "exposure_warning",
            "resolve_tracking",
            "server_status",
            "start_server",
            "stop_server",
        ),
    },
)
