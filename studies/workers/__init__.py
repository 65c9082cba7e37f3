"""studies.workers.launcher."""
