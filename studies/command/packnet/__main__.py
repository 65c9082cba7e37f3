"""``python -m studies.command.packnet CONFIG.yaml``: see studies.command.packnet.launch."""

from __future__ import annotations

from studies.command.packnet.launch import main

raise SystemExit(main())
