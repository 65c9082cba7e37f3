"""salsweep package trainer."""
