"""Draw a stored study's report figures again: the parent run's plots/ and confirmation.png.

    .venv/bin/python docs/screenshots/make_plots.py STUDY --home HOME OUT_DIR

(the study as `salsweep sweep launch` left it in HOME's Optuna storage). The PNGs under
docs/screenshots/before/ are the ones the sweep of docs/screenshots/demo.yaml logged (commit
cc7dc2d); docs/screenshots/after/ were drawn by this script from the same study.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studies.confirmation import load_confirmation
from studies.home import default_storage_url
from studies.report import save_confirmation_plot, save_study_plots
from studies.store.catalog import read_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--home", type=Path, default=Path(".salsweep"))
    args = parser.parse_args()
    record = read_study(args.study, default_storage_url(args.home))
    for path in save_study_plots(record, args.out_dir):
        print(path)
    confirmation = load_confirmation(record)
    if confirmation is not None:
        print(save_confirmation_plot(confirmation, args.out_dir / "confirmation.png"))


if __name__ == "__main__":
    main()
