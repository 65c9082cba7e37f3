"""studies.tracking.tracker."""
