"""studies.report."""
