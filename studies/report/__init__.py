"""What a study tells people: trial rows, plots, the confirmation in words, tables,
CSV and a plot, and the export of the winner (trainer and packnet-sfm formats).

Its names load on first use (see loss.lazy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loss.lazy import lazy_face

if TYPE_CHECKING:
    from studies.report.confirmation import (
        TABLE_HEADER,
        confirmation_csv,
        confirmation_markdown,
        confirmation_metrics,
        export_header_lines,
        format_estimate,
        table_rows,
        table_title,
        terminal_table,
        verdict_lines,
    )
    from studies.report.confirmation_plot import (
        confirmation_figure,
        save_confirmation_plot,
    )
    from studies.report.export import (
        ExportError,
        export_best,
        write_export,
    )
    from studies.report.packnet import (
        PACKNET_FORK_DECLARATIONS,
    )
    from studies.report.plots import (
        save_figure,
        save_study_plots,
        study_figures,
    )
    from studies.report.trials import (
        ReplicateRow,
        TrialRow,
        replicate_rows,
        trial_rows,
    )

__getattr__, __dir__, __all__ = lazy_face(
    __name__,
    {
        "studies.report.confirmation": (
            "TABLE_HEADER",
            "confirmation_csv",
            "confirmation_markdown",
            "confirmation_metrics",
            "export_header_lines",
            "format_estimate",
            "table_rows",
            "table_title",
            "terminal_table",
            "verdict_lines",
        ),
        "studies.report.confirmation_plot": (
            "confirmation_figure",
            "save_confirmation_plot",
        ),
        "studies.report.export": (
            "ExportError",
            "export_best",
            "write_export",
        ),
        "studies.report.packnet": ("PACKNET_FORK_DECLARATIONS",),
        "studies.report.plots": (
            "save_figure",
            "save_study_plots",
            "study_figures",
        ),
        "studies.report.trials": (
            "ReplicateRow",
            "TrialRow",
            "replicate_rows",
            "trial_rows",
        ),
    },
)
