"""studies.store."""
