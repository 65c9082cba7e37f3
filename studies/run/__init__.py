"""studies.run."""
