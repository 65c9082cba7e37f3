"""studies.confirmation."""
